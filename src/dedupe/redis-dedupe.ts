import { once } from "node:events";
import { Redis } from "ioredis";
import type { ErrorReporter } from "../observability/dependency-errors.ts";
import type { DedupeStore } from "./dedupe-store.ts";

/**
 * One round trip per batch: a Lua script runs `SET id owner NX GET EX ttl`
 * for every id and answers, as one string, "1" where the id is new or
 * already this owner's and "0" where another owner has it. (Lua sees a
 * missing key's reply as false.) Ids come grouped by owner, `owner, count`
 * pairs after the ttl: consecutive ids share their batch, so the owner is
 * sent once per batch, not once per id, and the answer is one string to
 * read, not an array of numbers.
 */
const CLAIM = `
local ttl = ARGV[1]
local out = {}
local i = 1
for g = 2, #ARGV, 2 do
  local owner = ARGV[g]
  for _ = 1, tonumber(ARGV[g + 1]) do
    local prev = redis.call('SET', KEYS[i], owner, 'NX', 'GET', 'EX', ttl)
    if (not prev) or prev == owner then out[i] = '1' else out[i] = '0' end
    i = i + 1
  end
end
return table.concat(out)
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
  /** Told of the client's errors (it reconnects by itself; claims fail fast meanwhile). */
  onError: ErrorReporter;
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
  redis.on("error", (err) => options.onError(err, "client"));
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
        const to = Math.min(from + CHUNK, ids.length);
        const args: string[] = [];
        for (let i = from; i < to; i++) args.push(prefix + (ids[i] as string));
        args.push(ttl);
        for (let i = from; i < to; ) {
          const owner = owners[i] as string;
          let end = i + 1;
          while (end < to && owners[end] === owner) end++;
          args.push(owner, String(end - i));
          i = end;
        }
        pipeline.claimIds(to - from, ...args);
      }
      const replies = (await pipeline.exec()) ?? [];
      const keep = new Array<boolean>(ids.length);
      let k = 0;
      for (const [err, out] of replies) {
        if (err) throw err;
        const answer = out as string;
        for (let i = 0; i < answer.length; i++) keep[k++] = answer.charCodeAt(i) === 49; /* "1" */
      }
      if (k !== ids.length) throw new Error(`Redis answered ${k} claims for ${ids.length} ids`);
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
