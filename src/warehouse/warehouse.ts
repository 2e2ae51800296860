import { clusterWarehouse } from "./cluster.ts";
import { createServerWarehouse } from "./server-warehouse.ts";

/** Options of {@link createWarehouse}. */
export interface WarehouseOptions {
  /** A ClickHouse server's HTTP URL; unset means embedded chDB in `dataDir`. */
  url: string | undefined;
  /** The embedded engine's data directory (one per process). */
  dataDir: string;
  /** The database every table lives in. */
  database: string;
  /** A ClickHouse cluster (with `url`, one of its nodes): the schema is sharded and replicated over it. */
  cluster?: string;
  /** Told how long each insert and query took. */
  onCall?: (operation: "insert" | "query", seconds: number) => void;
}

/** Rows for {@link Warehouse.insert}: text in a ClickHouse format, or objects. */
export type InsertRows = (
  | { format: "TabSeparated" | "CSV"; columns: readonly string[]; text: string }
  | { format: "JSONEachRow"; rows: readonly Record<string, unknown>[] }
) & {
  /** Times may be in any form ClickHouse can guess (ISO 8601 with a zone, say). @default false */
  bestEffortTimes?: boolean;
};

/** A query needed more memory than its cap allows; nothing else suffered. */
export class QueryMemoryError extends Error {
  override name = "QueryMemoryError";
}

/**
 * ClickHouse, a server or embedded: the one way every stage reaches it
 * (migrations, indexes, compaction, the consumer, the analytics). The two
 * implementations live in `server-warehouse.ts` and `chdb-warehouse.ts`;
 * what only chDB needs stays in the latter.
 */
/** The formats an export (or the consumer's list of stored ids) is written in, by ClickHouse itself. */
export type RawFormat = "CSVWithNames" | "CSV" | "TabSeparatedRaw" | "Parquet" | "RowBinary";

export interface Warehouse {
  /** "clickhouse" or "chdb", for health reports. */
  readonly kind: "clickhouse" | "chdb";
  /** The database's name, quoted for SQL. */
  readonly db: string;
  /** The database's name as it is, for the system tables. */
  readonly database: string;
  /** Inserts `rows` into `table` of this database. */
  insert(table: string, rows: InsertRows): Promise<void>;
  /** Runs a parameterised query and returns its rows. */
  query<T>(sql: string, params?: Record<string, unknown>): Promise<T[]>;
  /** Runs a parameterised statement that answers no rows (DDL, INSERT … SELECT, OPTIMIZE). */
  command(sql: string, params?: Record<string, unknown>): Promise<void>;
  /** Runs a parameterised query and returns its answer as ClickHouse writes it in `format` (exports). */
  queryBytes(sql: string, params: Record<string, unknown>, format: RawFormat): Promise<Buffer>;
  /**
   * The same warehouse (and connection), each of whose queries fails alone
   * with {@link QueryMemoryError} past `bytes` of memory; 0 means no cap.
   */
  withQueryMemoryCap(bytes: number): Warehouse;
  /**
   * How many writes (inserts and statements) this process has made to the
   * data so far; there only where this process is the data's one writer
   * (chDB), so an answer read after the count's last change holds until it
   * changes again ({@link reuseAnswers}).
   */
  readonly writes?: () => number;
  /**
   * Resolves once none of those writes is running. A read runs beside a
   * write (as on a server), and an insert lands table by table, its views'
   * tables after the events': a read after this sees every write whole.
   */
  readonly settled?: () => Promise<void>;
  /**
   * Gives the kernel back what only the engine's start needed, once the
   * service has started, and answers how many bytes; there only where the
   * engine runs in this process (chDB).
   */
  readonly releaseStartPages?: () => Promise<number>;
  /** Throws when ClickHouse does not answer. */
  check(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Connects to ClickHouse over HTTP when `url` is set, or opens chDB. chDB is
 * loaded only then: its library adds 150 MiB to the RSS of any process that
 * loads it, used or not.
 */
export async function createWarehouse(options: WarehouseOptions): Promise<Warehouse> {
  if (options.url === undefined) {
    const { createChdbWarehouse } = await import("./chdb-warehouse.ts");
    return createChdbWarehouse(options);
  }
  const server = createServerWarehouse({ ...options, url: options.url });
  return options.cluster === undefined ? server : clusterWarehouse(server, options.cluster);
}
