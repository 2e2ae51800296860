import { createClient } from "@clickhouse/client";
import { clientWarehouse } from "./client-warehouse.ts";
import type { Warehouse, WarehouseOptions } from "./warehouse.ts";

/** A ClickHouse server over HTTP at `url`. */
export function createServerWarehouse(options: WarehouseOptions & { url: string }): Warehouse {
  return clientWarehouse(createClient({ url: options.url, request_timeout: 60_000 }), {
    kind: "clickhouse",
    database: options.database,
    onCall: options.onCall,
  });
}
