import type { ClickHouseClientConfigOptions } from "@clickhouse/client";
import { createChdbConnection } from "chdb/connection";

type Connection = NonNullable<ClickHouseClientConfigOptions["connection"]>;

/** Longest SQL a session parses: ClickHouse's default is 256 KiB. */
const MAX_QUERY_BYTES = 4 << 20;

/**
 * One connection to the client over `sessions` chDB sessions on the engine
 * at `path`, each call sent to the session with the fewest calls running.
 * A chDB session runs one statement at a time, and a server answers many at
 * once: with one session, a page's questions were answered one after
 * another, and each waited for any insert of the consumer's in flight.
 */
export function chdbSessions(path: string, sessions: number): Connection {
  const all = Array.from({ length: sessions }, () => {
    // chdb types its connection against its own copy of client-common.
    const connection = createChdbConnection({ path }) as unknown as Connection;
    // Parameters are written into the SQL (inline-params.ts): the consumer's
    // check of 10,000 event ids is about 420 KB of it, past ClickHouse's
    // default 256 KiB. A SET stays on its session.
    const ready = connection.command({
      query: `SET max_query_size = ${MAX_QUERY_BYTES}`,
      query_id: crypto.randomUUID(),
      clickhouse_settings: {},
    } as Parameters<Connection["command"]>[0]);
    ready.catch(() => {}); // awaited by the session's first call
    return { connection, ready, running: 0 };
  });
  const on = async <T>(call: (c: Connection) => Promise<T>): Promise<T> => {
    let least = all[0] as (typeof all)[number];
    for (const s of all) if (s.running < least.running) least = s;
    least.running++;
    try {
      await least.ready;
      return await call(least.connection);
    } finally {
      least.running--;
    }
  };
  return {
    ping: (params) => on((c) => c.ping(params)),
    query: (params) => on((c) => c.query(params)),
    insert: (params) => on((c) => c.insert(params)),
    command: (params) => on((c) => c.command(params)),
    exec: (params) => on((c) => c.exec(params)),
    async close() {
      await Promise.all(all.map((s) => s.connection.close()));
    },
  };
}
