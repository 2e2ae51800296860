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

/** Options of {@link createRedisDedupe}. */
export interface RedisDedupeOptions {
  /** e.g. "redis://127.0.0.1:6379" */
  url: string;
  /** Prefix of every key: `<ns>:seen:<event_id>`. */
  namespace: string;
  ttlSeconds: number;
}

type ClaimingRedis = Redis & {
  claimIds(numKeys: number, ...args: string[]): Promise<number[]>;
};

/** Dedupe claims in Redis, kept for `ttlSeconds`. */
export function createRedisDedupe(options: RedisDedupeOptions): DedupeStore {
  const redis = new Redis(options.url, {
    lazyConnect: false,
    // Fail fast while Redis is away; the consumer decides what to do.
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    connectTimeout: 2000,
  }) as ClaimingRedis;
  redis.on("error", () => {});
  redis.defineCommand("claimIds", { lua: CLAIM });
  const prefix = `${options.namespace}:seen:`;
  const ttl = String(options.ttlSeconds);
  return {
    kind: "redis",
    async claim(ids, owners) {
      if (ids.length === 0) return [];
      const args = new Array<string>(ids.length * 2 + 1);
      for (let i = 0; i < ids.length; i++) args[i] = prefix + ids[i];
      args[ids.length] = ttl;
      for (let i = 0; i < owners.length; i++) args[ids.length + 1 + i] = owners[i] as string;
      const out = await redis.claimIds(ids.length, ...args);
      return out.map((v) => v === 1);
    },
    async check() {
      await redis.ping();
    },
    async close() {
      redis.disconnect();
    },
  };
}
