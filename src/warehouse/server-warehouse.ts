import { createClient } from "@clickhouse/client";
import { clientWarehouse } from "./client-warehouse.ts";
import type { Warehouse, WarehouseOptions } from "./warehouse.ts";

/** A ClickHouse server over HTTP at `url`. */
export function createServerWarehouse(options: WarehouseOptions & { url: string }): Warehouse {
  const client = createClient({
    url: options.url,
    request_timeout: 60_000,
    // On a cluster: a user's rows are on one shard, so IN and JOIN over the
    // Distributed tables run shard by shard; an insert returns once its
    // shards have it, not when the node's spool does (acknowledged = stored).
    ...(options.cluster === undefined
      ? {}
      : {
          clickhouse_settings: {
            distributed_product_mode: "local",
            distributed_foreground_insert: 1,
          },
        }),
  });
  return clientWarehouse(client, {
    kind: "clickhouse",
    database: options.database,
    onCall: options.onCall,
  });
}
