import type { Warehouse } from "./warehouse.ts";

/** Options of {@link reuseAnswers}. */
export interface ReuseOptions {
  /** Answers kept, the least recently used dropped first. @default 256 */
  maxEntries?: number;
  /** Rows past which an answer is not kept. @default 10,000 */
  maxRows?: number;
  /** Bytes past which an answer in a format of ClickHouse's (queryBytes) is not kept. @default 256 KiB */
  maxBytes?: number;
  /**
   * Age past which an answer is asked again even with no write since: a
   * bound on what could change without one (a table's TTL, a mutation
   * finishing in the background). @default 10 s
   */
  maxAgeMs?: number;
  now?: () => number;
}

/**
 * `warehouse`, answering a query asked again from memory while no write
 * has been made since it was answered: a dashboard's repeated questions cost
 * a lookup instead of a query (on chDB, 2-5 ms of fixed cost each, at any
 * size). Only where the warehouse counts every write to its data
 * ({@link Warehouse.writes}: chDB, which no other process writes); with a
 * ClickHouse server, other processes write, and it is `warehouse` itself.
 * An answer is kept with the count read before it was asked, so a write that
 * ends while it runs makes it stale at once. Queries naming the time
 * (now(), today()) are never kept.
 */
export function reuseAnswers(warehouse: Warehouse, options: ReuseOptions = {}): Warehouse {
  if (warehouse.writes === undefined) return warehouse;
  const writes = warehouse.writes;
  const maxEntries = options.maxEntries ?? 256;
  const maxRows = options.maxRows ?? 10_000;
  const maxBytes = options.maxBytes ?? 256 << 10;
  const maxAgeMs = options.maxAgeMs ?? 10_000;
  const now = options.now ?? Date.now;
  const answers = new Map<string, { writes: number; at: number; answer: unknown }>();
  /**
   * `ask`'s answer to `sql` (with `asked`: its parameters, its format), or
   * a copy of the one kept; a copy of it kept where `keep` says.
   */
  async function reused<T>(
    sql: string,
    asked: string,
    ask: () => Promise<T>,
    keep: (answer: T) => boolean,
    copy: (answer: T) => T,
  ): Promise<T> {
    if (/\b(now|now64|today|yesterday)\s*\(/i.test(sql)) return ask();
    const key = `${sql}\n${asked}`;
    const before = writes();
    const kept = answers.get(key);
    if (kept !== undefined && kept.writes === before && now() - kept.at < maxAgeMs) {
      // Most recently used last.
      answers.delete(key);
      answers.set(key, kept);
      return copy(kept.answer as T);
    }
    const at = now();
    const answer = await ask();
    if (keep(answer)) {
      answers.delete(key);
      answers.set(key, { writes: before, at, answer: copy(answer) });
      if (answers.size > maxEntries) answers.delete(answers.keys().next().value as string);
    }
    return answer;
  }
  return {
    ...warehouse,
    query: <T>(sql: string, params: Record<string, unknown> = {}) =>
      reused(
        sql,
        JSON.stringify(params),
        () => warehouse.query<T>(sql, params),
        (rows) => rows.length <= maxRows,
        structuredClone,
      ),
    queryBytes: (sql, params, format) =>
      reused(
        sql,
        `${JSON.stringify(params)}\n${format}`,
        () => warehouse.queryBytes(sql, params, format),
        (data) => data.length <= maxBytes,
        (data) => Buffer.from(data),
      ),
  };
}
