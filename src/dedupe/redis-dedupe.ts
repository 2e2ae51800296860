import { once } from "node:events";
import type { ErrorReporter } from "../observability/dependency-errors.ts";
import { connectRedis, isCluster, type RedisClient } from "../redis/connect.ts";
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

/**
 * On a Redis Cluster, one script's keys must share a hash slot: a key
 * carries a hash tag, `{<ns>:<two hex digits of the id>}`, so the ids of a
 * flush spread over 256 slots (and so over every master), and are claimed
 * in one script per tag, all sent at once (back to back on each node's
 * connection: one round trip per node). One Redis keeps
 * the keys it always had, `<ns>:seen:<event_id>`.
 */

/** Options of {@link createRedisDedupe}. */
export interface RedisDedupeOptions {
  /** e.g. "redis://127.0.0.1:6379", or several, comma-separated: a cluster's seeds. */
  url: string;
  /** Prefix of every key: `<ns>:seen:<event_id>`. */
  namespace: string;
  ttlSeconds: number;
  /** Told of the client's errors (it reconnects by itself; claims fail fast meanwhile). */
  onError: ErrorReporter;
}

/** Dedupe claims in Redis, kept for `ttlSeconds`. */
export function createRedisDedupe(options: RedisDedupeOptions): DedupeStore {
  const redis = connectRedis(options.url, { lazyConnect: false });
  redis.on("error", (err) => options.onError(err, "client"));
  redis.defineCommand("claimIds", { lua: CLAIM });
  // Commands fail at once while Redis is away (the consumer then goes on
  // without it), but the first ones after start wait briefly for the connection.
  const connected = () =>
    redis.status === "ready"
      ? undefined
      : Promise.race([once(redis, "ready"), new Promise((r) => setTimeout(r, 1000).unref())]);
  const clustered = isCluster(redis);
  const prefix = `${options.namespace}:seen:`;
  const keyOf = clustered
    ? (id: string) => `{${options.namespace}:${id.slice(0, 2)}}:seen:${id}`
    : (id: string) => prefix + id;
  const ttl = String(options.ttlSeconds);
  type Claimer = RedisClient & {
    claimIds(numKeys: number, ...args: string[]): Promise<string>;
  };

  /** The script's arguments for ids `at` (their positions), grouped by owner. */
  function scriptArgs(ids: readonly string[], owners: readonly string[], at: readonly number[]) {
    const args: string[] = at.map((i) => keyOf(ids[i] as string));
    args.push(ttl);
    for (let j = 0; j < at.length; ) {
      const owner = owners[at[j] as number] as string;
      let end = j + 1;
      while (end < at.length && owners[at[end] as number] === owner) end++;
      args.push(owner, String(end - j));
      j = end;
    }
    return args;
  }

  /** Claims the ids at positions `at` (one hash tag's), a script per chunk. */
  async function claimGroup(
    ids: readonly string[],
    owners: readonly string[],
    at: readonly number[],
    keep: boolean[],
  ) {
    const calls: Promise<string>[] = [];
    const chunks: number[][] = [];
    for (let from = 0; from < at.length; from += CHUNK) {
      const chunk = at.slice(from, from + CHUNK);
      chunks.push(chunk);
      calls.push((redis as Claimer).claimIds(chunk.length, ...scriptArgs(ids, owners, chunk)));
    }
    const answers = await Promise.all(calls);
    answers.forEach((answer, c) => {
      const chunk = chunks[c] as number[];
      if (answer.length !== chunk.length) {
        throw new Error(`Redis answered ${answer.length} claims for ${chunk.length} ids`);
      }
      for (let j = 0; j < chunk.length; j++) keep[chunk[j] as number] = answer.charCodeAt(j) === 49;
    });
  }

  return {
    kind: "redis",
    durable: true,
    async claim(ids, owners) {
      if (ids.length === 0) return [];
      await connected();
      const keep = new Array<boolean>(ids.length);
      if (!clustered) {
        // Chunks keep each script short and its arguments within limits; the
        // client's one pipeline sends them all in a single round trip.
        const pipeline = redis.pipeline() as ReturnType<RedisClient["pipeline"]> & {
          claimIds(numKeys: number, ...args: string[]): unknown;
        };
        const chunks: number[][] = [];
        for (let from = 0; from < ids.length; from += CHUNK) {
          const chunk = Array.from(
            { length: Math.min(CHUNK, ids.length - from) },
            (_, j) => from + j,
          );
          chunks.push(chunk);
          pipeline.claimIds(chunk.length, ...scriptArgs(ids, owners, chunk));
        }
        const replies = (await pipeline.exec()) ?? [];
        replies.forEach(([err, out], c) => {
          if (err) throw err;
          const answer = out as string;
          const chunk = chunks[c] as number[];
          if (answer.length !== chunk.length) {
            throw new Error(`Redis answered ${answer.length} claims for ${chunk.length} ids`);
          }
          for (let j = 0; j < chunk.length; j++)
            keep[chunk[j] as number] = answer.charCodeAt(j) === 49;
        });
        return keep;
      }
      // A cluster: one group per hash tag, all sent at once.
      const groups = new Map<string, number[]>();
      for (let i = 0; i < ids.length; i++) {
        const tag = (ids[i] as string).slice(0, 2);
        const group = groups.get(tag);
        if (group === undefined) groups.set(tag, [i]);
        else group.push(i);
      }
      await Promise.all([...groups.values()].map((at) => claimGroup(ids, owners, at, keep)));
      return keep;
    },
    async check() {
      await connected();
      if (isCluster(redis)) await Promise.all(redis.nodes("master").map((n) => n.ping()));
      else await redis.ping();
    },
    async close() {
      redis.disconnect();
    },
  };
}
