import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { createClient } from "@clickhouse/client";
import { Session } from "chdb";
import { chdbSessions } from "./chdb-sessions.ts";
import { clientWarehouse, type WriteCount } from "./client-warehouse.ts";
import { CHDB_LIBRARY, releaseLibraryPages } from "./library-pages.ts";
import { mergeThreadPriority } from "./merge-priority.ts";
import type { Warehouse, WarehouseOptions } from "./warehouse.ts";

/**
 * ClickHouse embedded (chDB) in `dataDir`, one per process, through the same
 * client as a server. What differs lives here only:
 * - chDB's connection runs clickhouse_settings as SET on its session,
 *   where they stay for every later query, so queries carry theirs in a
 *   SETTINGS clause;
 * - a chDB session runs one statement at a time, so the client has several
 *   ({@link CHDB_SESSIONS}), and chDB binds query parameters one query of
 *   the process at a time, so they are written into the SQL
 *   (inline-params.ts), and a query's answer is taken from chDB as it
 *   comes, not through the client's stream (chdb-sessions.ts);
 * - chDB shares the API's process and cores, so a small insert, and the
 *   merges after it (merge-priority.ts), run below the API's priority
 *   ({@link insertPriority}) and queries at the normal one;
 * - chDB's library is in the process's memory, so what only the engine's
 *   start touched of it is given back once the service has started
 *   (library-pages.ts).
 */
export function createChdbWarehouse(options: WarehouseOptions): Warehouse {
  const path = resolve(options.dataDir, "chdb");
  mkdirSync(path, { recursive: true });
  // The engine starts with the first session at `path`, configured by it;
  // the client's sessions below join that engine.
  const engine = new Session(path, { connectionArgs: CHDB_SERVER_ARGS });
  const sessions = chdbSessions(path, CHDB_SESSIONS);
  const mergePriority = mergeThreadPriority();
  const warehouse = clientWarehouse(createClient({ connection: sessions.connection }), {
    // chDB's data is this process's alone: every write to it is counted here.
    writeCount: writeCountOf(path),
    kind: "chdb",
    database: options.database,
    onCall: options.onCall,
    insertSettings: (bytes) => {
      const priority = insertPriority(bytes ?? 0);
      // The merges that follow this insert's parts yield as it does.
      mergePriority(priority);
      return { os_thread_priority: String(priority) };
    },
    querySettings: QUERY_SETTINGS,
    inlineParams: true,
    queryText: (sql) => sessions.queryText(sql, "JSONEachRow"),
  });
  return {
    ...warehouse,
    releaseStartPages: () => releaseLibraryPages(CHDB_LIBRARY),
    async close() {
      await warehouse.close();
      engine.close();
    },
  };
}

/**
 * Statements chDB runs at once for one warehouse. The bench's small data
 * (100k events), with one session and chDB's binding against these four:
 * the page's nine questions at once 50-52 ms against 32-33 (55-57 one
 * after another); DAU while the consumer's inserts run, 125-143 ms p50
 * (each ask waited for an insert) against 6. A session costs 1-2 MiB.
 */
export const CHDB_SESSIONS = 4;

/** Writes to each chDB data directory, by every warehouse of this process opened on it. */
const writeCounts = new Map<string, WriteCount>();
function writeCountOf(path: string) {
  let count = writeCounts.get(path);
  if (count === undefined) {
    count = { value: 0, running: 0, idle: [] };
    writeCounts.set(path, count);
  }
  return count;
}

/**
 * chDB's server settings, for an engine that shares a process with the
 * service: ClickHouse sizes itself for a server of its own.
 * - Its caches (5 GiB of marks, 5 GiB of primary index, 5 GiB of skip-index
 *   marks) would let an embedded service grow by gigabytes as its data is
 *   read. A million events' tables hold 24 KiB of marks and 153 KiB of
 *   primary index, so these bounds are far above what it reads.
 * - It removes merged-away parts with up to 128 threads, which then stay
 *   in its pool, idle, with what they allocated: 2.4M events inserted, the
 *   process went from 37 threads to 162 at the first removal. 16 is enough:
 *   with vertical merges (migration 11), the bench's embedded service
 *   peaked at 559-572 MiB against 610-621 with 128 (3M events). With 2 it
 *   peaked as low, but queries slowed by a fifth to a third while the
 *   parts of a big load were removed (lifecycle at 5M events 38.8 ms
 *   against 28.7-30.1).
 */
const CHDB_SERVER_ARGS = [
  `--mark_cache_size=${128 << 20}`,
  `--primary_index_cache_size=${128 << 20}`,
  `--index_mark_cache_size=${64 << 20}`,
  "--max_parts_cleaning_thread_pool_size=16",
];

/**
 * What every query (not an insert) runs with in chDB:
 * - The normal priority: an insert's stays on chDB's session.
 * - A thread for every 8 granules read (65,536 rows, or 80 MiB), up to
 *   max_threads: 8 is ClickHouse's smallest read task, and its defaults
 *   wait for 20 granules and 240 MiB. A per-user rollup holds a row a user,
 *   so up to 163,840 users it was read by one thread, with all its per-row
 *   work (lifecycle ORs or sorts every user's days). At 10M events (100,000
 *   users), 5 alternating rounds: lifecycle by week 25-29 ms against 32-37,
 *   weekly retention of every user 17-22 against 21-24; the other stats at
 *   10M, at 1M and on 100k events as fast either way.
 * - The answer written by the query's own thread: parallel formatting hands
 *   every answer, however small, to two threads of its own and back (wakeups
 *   and /proc reads for each). Without it `SELECT 1` cost 0.52 ms of CPU
 *   against 0.76, and the small-data stats 0.2 ms less each (DAU 2.22 ms
 *   against 2.40 at 100k events, 4 alternating rounds); exports of 30 days
 *   took as long either way.
 */
const QUERY_SETTINGS = {
  os_thread_priority: 0,
  merge_tree_min_rows_for_concurrent_read: 8 * 8192,
  merge_tree_min_bytes_for_concurrent_read: 8 * (10 << 20),
  output_format_parallel_formatting: 0,
};

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
export function insertPriority(bytes: number): number {
  return bytes < 1 << 20 ? 10 : 0;
}
