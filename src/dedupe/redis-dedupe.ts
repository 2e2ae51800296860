import { once } from "node:events";
import { Redis } from "ioredis";
import type { DedupeStore } from "./dedupe-store.ts";

/**
 * One round trip per batch: a Lua script runs `SET id owner NX GET EX ttl`
 * for every id and answers 1 where the id is new or already this owner's.
 * (Lua sees a missing key's reply as false.)
 */
const CLAIM = `
local ttl = ARGV[1]
local out = {}
for i = 1, #KEYS do
  local owner = ARGV[i + 1]
  local prev = redis.call('SET', KEYS[i], owner, 'NX', 'GET', 'EX', ttl)
  if (not prev) or prev == owner then out[i] = 1 else out[i] = 0 end
end
return out
`;

/** Ids per script call. */
const CHUNK = 5000;

/** Options of {@link createRedisDedupe}. */
export interface RedisDedupeOptions {
  /** e.g. "redis://127.0.0.1:6379" */
  url: string;
  /** Prefix of every key: `<ns>:seen:<event_id>`. */
  namespace: string;
  ttlSeconds: number;
}

/** Dedupe claims in Redis, kept for `ttlSeconds`. */
export function createRedisDedupe(options: RedisDedupeOptions): DedupeStore {
  const redis = new Redis(options.url, {
    lazyConnect: false,
    // Fail fast while Redis is away; the consumer decides what to do.
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    connectTimeout: 2000,
  });
  redis.on("error", () => {});
  redis.defineCommand("claimIds", { lua: CLAIM });
  // Commands fail at once while Redis is away (the consumer then goes on
  // without it), but the first ones after start wait briefly for the connection.
  const connected = () =>
    redis.status === "ready"
      ? undefined
      : Promise.race([once(redis, "ready"), new Promise((r) => setTimeout(r, 1000).unref())]);
  const prefix = `${options.namespace}:seen:`;
  const ttl = String(options.ttlSeconds);
  return {
    kind: "redis",
    durable: true,
    async claim(ids, owners) {
      if (ids.length === 0) return [];
      await connected();
      // Chunks keep each script short and its arguments within limits; one
      // pipeline sends them all in a single round trip.
      const pipeline = redis.pipeline() as ReturnType<Redis["pipeline"]> & {
        claimIds(numKeys: number, ...args: string[]): unknown;
      };
      for (let from = 0; from < ids.length; from += CHUNK) {
        const n = Math.min(CHUNK, ids.length - from);
        const args = new Array<string>(n * 2 + 1);
        for (let i = 0; i < n; i++) args[i] = prefix + ids[from + i];
        args[n] = ttl;
        for (let i = 0; i < n; i++) args[n + 1 + i] = owners[from + i] as string;
        pipeline.claimIds(n, ...args);
      }
      const replies = (await pipeline.exec()) ?? [];
      const keep: boolean[] = [];
      for (const [err, out] of replies) {
        if (err) throw err;
        for (const v of out as number[]) keep.push(v === 1);
      }
      return keep;
    },
    async check() {
      await connected();
      await redis.ping();
    },
    async close() {
      redis.disconnect();
    },
  };
}
