import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { Readable } from "node:stream";
import {
  type ClickHouseClient,
  type ClickHouseClientConfigOptions,
  createClient,
} from "@clickhouse/client";
import { createChdbConnection } from "chdb/connection";

/** Options of {@link createWarehouse}. */
export interface WarehouseOptions {
  /** A ClickHouse server's HTTP URL; unset means embedded chDB in `dataDir`. */
  url: string | undefined;
  /** The embedded engine's data directory (one per process). */
  dataDir: string;
  /** The database every table lives in. */
  database: string;
  /** Told how long each insert and query took. */
  onCall?: (operation: "insert" | "query", seconds: number) => void;
}

/** A query needed more memory than its cap allows; nothing else suffered. */
export class QueryMemoryError extends Error {
  override name = "QueryMemoryError";
}

/** ClickHouse, a server or embedded: one client, one SQL dialect. */
export interface Warehouse {
  /** "clickhouse" or "chdb", for health reports. */
  readonly kind: string;
  /** The database's name, quoted for SQL. */
  readonly db: string;
  /** The database's name as it is, for the system tables. */
  readonly database: string;
  readonly client: ClickHouseClient;
  /** Inserts TabSeparated rows into `table`, naming their columns. */
  insertTsv(table: string, columns: readonly string[], body: string): Promise<void>;
  /** Runs a parameterised query and returns its rows. */
  rows<T>(query: string, params: Record<string, unknown>): Promise<T[]>;
  /**
   * The same warehouse (and client), each of whose queries fails alone with
   * {@link QueryMemoryError} past `bytes` of memory; 0 means no cap.
   */
  withQueryMemoryCap(bytes: number): Warehouse;
  /** Throws when ClickHouse does not answer. */
  check(): Promise<void>;
  close(): Promise<void>;
}

/** Connects to ClickHouse over HTTP when `url` is set, or opens chDB. */
export function createWarehouse(options: WarehouseOptions): Warehouse {
  let client: ClickHouseClient;
  if (options.url !== undefined) {
    client = createClient({ url: options.url, request_timeout: 60_000 });
  } else {
    const path = resolve(options.dataDir, "chdb");
    mkdirSync(path, { recursive: true });
    // chdb types its connection against its own copy of client-common.
    const connection = createChdbConnection({
      path,
    }) as unknown as ClickHouseClientConfigOptions["connection"];
    client = createClient({ connection });
  }
  const db = `\`${options.database}\``;
  const chdb = options.url === undefined;
  const withCap = (cap: number): Warehouse => ({
    kind: chdb ? "chdb" : "clickhouse",
    db,
    database: options.database,
    client,
    async insertTsv(table, columns, body) {
      const started = performance.now();
      await client.insert({
        table: `${db}.${table}`,
        columns: [...columns] as [string, ...string[]],
        format: "TabSeparated",
        // chDB reads the whole body into one string anyway: hand it one chunk.
        values: Readable.from([body], { objectMode: false }),
        clickhouse_settings: {
          // The three rollup views run side by side, not one after another.
          parallel_view_processing: 1,
          ...(chdb ? { os_thread_priority: String(insertPriority(body)) } : {}),
        },
      });
      options.onCall?.("insert", (performance.now() - started) / 1000);
    },
    async rows<T>(query: string, params: Record<string, unknown>) {
      const started = performance.now();
      let rows: T[];
      try {
        const result = await client.query({
          // In the query, not clickhouse_settings: chDB's connection runs
          // those as SET on its one session, and they would stay for every
          // later query, ingest's included.
          query: withSettings(query, {
            ...(cap > 0 ? { max_memory_usage: cap } : {}),
            // The insert's priority stays on chDB's session; stats run at the normal one.
            ...(chdb ? { os_thread_priority: 0 } : {}),
          }),
          query_params: params,
          format: "JSONEachRow",
        });
        rows = await result.json<T>();
      } catch (err) {
        if (cap > 0 && (err as { type?: string }).type === "MEMORY_LIMIT_EXCEEDED") {
          throw new QueryMemoryError(`the query needs more than ${cap} bytes of memory`, {
            cause: err,
          });
        }
        throw err;
      }
      options.onCall?.("query", (performance.now() - started) / 1000);
      return rows;
    },
    withQueryMemoryCap: withCap,
    async check() {
      const ping = await client.ping();
      if (!ping.success) throw ping.error;
    },
    async close() {
      await client.close();
    },
  });
  return withCap(0);
}

/**
 * The OS priority (nice) of an insert's threads in chDB, which shares the
 * API's process and cores. A small insert means a trickle of calls, whose
 * latency is what matters: it yields (nice 10), and chDB's bursts of insert
 * threads stop stalling the API's event loop. At 2,000 gRPC calls/s, p99
 * had a median of 25 ms instead of 34 (six bench runs each). A big insert
 * means a flood, where the insert is the slowest stage, so it keeps the
 * normal priority: niced too, it cost 7% of the end-to-end throughput.
 * (A process without CAP_SYS_NICE cannot raise a thread back to 0: chDB's
 * threads then stay niced once used, and all of chDB yields to the API.)
 */
function insertPriority(body: string): number {
  return body.length < 1 << 20 ? 10 : 0;
}

/** `query` with a SETTINGS clause, if there are any. */
function withSettings(query: string, settings: Record<string, number>): string {
  const list = Object.entries(settings).map(([k, v]) => `${k} = ${v}`);
  return list.length === 0 ? query : `${query}\nSETTINGS ${list.join(", ")}`;
}
