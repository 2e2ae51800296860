import type { Warehouse } from "./warehouse.ts";

/** Options of {@link reuseAnswers}. */
export interface ReuseOptions {
  /** Answers kept, the least recently used dropped first. @default 256 */
  maxEntries?: number;
  /** Rows past which an answer is not kept. @default 10,000 */
  maxRows?: number;
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
  const writes = warehouse.writes;
  if (writes === undefined) return warehouse;
  const maxEntries = options.maxEntries ?? 256;
  const maxRows = options.maxRows ?? 10_000;
  const maxAgeMs = options.maxAgeMs ?? 10_000;
  const now = options.now ?? Date.now;
  const answers = new Map<string, { writes: number; at: number; rows: unknown[] }>();
  return {
    ...warehouse,
    async query<T>(sql: string, params: Record<string, unknown> = {}): Promise<T[]> {
      if (/\b(now|now64|today|yesterday)\s*\(/i.test(sql)) return warehouse.query<T>(sql, params);
      const key = `${sql}\n${JSON.stringify(params)}`;
      const before = writes();
      const kept = answers.get(key);
      if (kept !== undefined && kept.writes === before && now() - kept.at < maxAgeMs) {
        // Most recently used last.
        answers.delete(key);
        answers.set(key, kept);
        return structuredClone(kept.rows) as T[];
      }
      const at = now();
      const rows = await warehouse.query<T>(sql, params);
      if (rows.length <= maxRows) {
        answers.delete(key);
        answers.set(key, { writes: before, at, rows: structuredClone(rows) });
        if (answers.size > maxEntries) answers.delete(answers.keys().next().value as string);
      }
      return rows;
    },
  };
}
