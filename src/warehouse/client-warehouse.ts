import { Readable } from "node:stream";
import type { ClickHouseClient, ClickHouseSettings } from "@clickhouse/client";
import { inlineParams } from "./inline-params.ts";
import { type InsertRows, QueryMemoryError, type Warehouse } from "./warehouse.ts";

/** What an implementation adds to the shared client code: its settings. */
export interface ClientWarehouseOptions {
  kind: Warehouse["kind"];
  database: string;
  onCall?: (operation: "insert" | "query", seconds: number) => void;
  /** Settings of an insert of `bytes` (or undefined for rows given as objects). */
  insertSettings?: (bytes: number | undefined) => ClickHouseSettings;
  /**
   * Settings every query and command runs with, written in its SETTINGS
   * clause rather than sent as settings (see chdb-warehouse.ts for why).
   */
  querySettings?: Record<string, number>;
  /**
   * Query parameters written into the SQL as literals (inline-params.ts)
   * instead of bound by the engine: chDB binds them one query at a time.
   */
  inlineParams?: boolean;
  /**
   * A query's rows as JSONEachRow text, asked of the engine without the
   * client, where that is shorter (chDB: chdb-sessions.ts). Only with
   * {@link inlineParams}: the SQL it is given holds the parameters.
   */
  queryText?: (sql: string) => Promise<string>;
  /**
   * Counts each insert and statement as it starts and ends, done or not,
   * and so gives the warehouse its {@link Warehouse.writes} and
   * {@link Warehouse.settled}: only where this process is the data's one
   * writer.
   */
  writeCount?: WriteCount;
}

/** The writes of every warehouse of a process on one chDB. */
export interface WriteCount {
  /** Writes ended. */
  value: number;
  /** Writes running now. */
  running: number;
  /** Told once none is running. */
  idle: (() => void)[];
}

/** A {@link Warehouse} over an @clickhouse/client, whatever its connection. */
export function clientWarehouse(
  client: ClickHouseClient,
  options: ClientWarehouseOptions,
): Warehouse {
  const db = `\`${options.database}\``;
  const timed = async <T>(operation: "insert" | "query", run: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    const result = await run();
    options.onCall?.(operation, (performance.now() - started) / 1000);
    return result;
  };
  const counter = options.writeCount;
  const written = <T>(run: () => Promise<T>): Promise<T> => {
    if (counter === undefined) return run();
    counter.running++;
    return run().finally(() => {
      counter.value++;
      if (--counter.running === 0) for (const settle of counter.idle.splice(0)) settle();
    });
  };
  /** The SQL and parameters to send: the parameters in the SQL where the engine is not to bind them. */
  const bound = (sql: string, params: Record<string, unknown>) =>
    options.inlineParams && Object.keys(params).length > 0
      ? { query: inlineParams(sql, params), query_params: {} }
      : { query: sql, query_params: params };
  const withCap = (cap: number): Warehouse => {
    const settings = { ...(cap > 0 ? { max_memory_usage: cap } : {}), ...options.querySettings };
    const capped = async <T>(run: () => Promise<T>): Promise<T> => {
      try {
        return await run();
      } catch (err) {
        if (cap > 0 && (err as { type?: string }).type === "MEMORY_LIMIT_EXCEEDED") {
          throw new QueryMemoryError(`the query needs more than ${cap} bytes of memory`, {
            cause: err,
          });
        }
        throw err;
      }
    };
    return {
      kind: options.kind,
      db,
      database: options.database,
      insert: (table, rows) =>
        timed("insert", () =>
          written(() =>
            client
              .insert({
                table: `${db}.${table}`,
                ...insertBody(rows),
                clickhouse_settings: {
                  // The rollup views run side by side, not one after another.
                  parallel_view_processing: 1,
                  ...(rows.bestEffortTimes ? { date_time_input_format: "best_effort" } : {}),
                  ...options.insertSettings?.("text" in rows ? rows.text.length : undefined),
                },
              })
              .then(() => {}),
          ),
        ),
      query: <T>(sql: string, params: Record<string, unknown> = {}) =>
        timed("query", () =>
          capped(async () => {
            const { query, query_params } = bound(sql, params);
            const text = options.queryText
              ? await options.queryText(withSettings(query, settings))
              : await client
                  .query({
                    query: withSettings(query, settings),
                    query_params,
                    format: "JSONEachRow",
                  })
                  .then((result) => result.text());
            return eachRow<T>(text);
          }),
        ),
      queryBytes: (sql, params, format) =>
        timed("query", () =>
          capped(async () => {
            const { query, query_params } = bound(sql, params);
            const { stream } = await client.exec({
              query: `${withSettings(query, settings)}\nFORMAT ${format}`,
              query_params,
            });
            const chunks: Buffer[] = [];
            for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
            return Buffer.concat(chunks);
          }),
        ),
      // No SETTINGS clause here: on CREATE TABLE it would name the table's settings.
      command: (sql, params = {}) =>
        written(() => client.command(bound(sql, params)).then(() => {})),
      withQueryMemoryCap: withCap,
      ...(counter
        ? {
            writes: () => counter.value,
            settled: () =>
              counter.running === 0
                ? Promise.resolve()
                : new Promise<void>((settle) => counter.idle.push(settle)),
          }
        : {}),
      async check() {
        const ping = await client.ping();
        if (!ping.success) throw ping.error;
      },
      close: () => client.close(),
    };
  };
  return withCap(0);
}

function insertBody(rows: InsertRows) {
  if (rows.format === "JSONEachRow") return { format: rows.format, values: [...rows.rows] };
  return {
    format: rows.format,
    columns: [...rows.columns] as [string, ...string[]],
    // chDB reads the whole body into one string anyway: hand it one chunk.
    values: Readable.from([rows.text], { objectMode: false }),
  };
}

/**
 * The rows of a JSONEachRow answer: a JSON object a line (strings escape
 * their line breaks). The client's own `json()` reads them through a stream,
 * a row at a time: on chDB that was 0.4-0.6 ms of a small query's 2-5.
 */
function eachRow<T>(text: string): T[] {
  const rows: T[] = [];
  for (let at = 0; at < text.length; ) {
    let end = text.indexOf("\n", at);
    if (end < 0) end = text.length;
    if (end > at) rows.push(JSON.parse(text.slice(at, end)) as T);
    at = end + 1;
  }
  return rows;
}

/** `sql` with a SETTINGS clause, if there are any. */
function withSettings(sql: string, settings: Record<string, number>): string {
  const list = Object.entries(settings).map(([k, v]) => `${k} = ${v}`);
  return list.length === 0 ? sql : `${sql}\nSETTINGS ${list.join(", ")}`;
}
