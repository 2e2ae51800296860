import { once } from "node:events";
import type { ErrorReporter } from "../observability/dependency-errors.ts";
import { connectRedis, isCluster, type RedisClient } from "../redis/connect.ts";
import type { DedupeStore } from "./dedupe-store.ts";

/**
 * One round trip per batch: a Lua script runs `SET id owner NX GET EX ttl`
 * for every id and answers, as one string, "1" where the id is new or
 * already this owner's and "0" where another owner has it. (Lua sees a
 * missing key's reply as false.) Ids come grouped by owner, `owner, count`
 * pairs after the two ttls and the ids: consecutive ids share their batch,
 * so the owner is sent once per batch, not once per id, and the answer is
 * one string to read, not an array of numbers.
 *
 * The ids are one argument, each ended by a line break, and each key is
 * the first key (the keys' prefix) and an id. With a key an argument, the
 * client's CPU was 3.2-4.5 µs an id for an accepted batch of 500, and
 * 1.8-2.6 in a consumer's flush of 20,000; packed, 2.2-3.0 and 1.1-1.7
 * (five alternating runs; Redis's own CPU did not move). On a cluster,
 * the prefix carries the ids' hash tag: the keys the script makes share
 * its slot.
 *
 * A second key is a batch's mark, set when its one owner owns every id
 * (see `claimBatch`), for the second ttl (0: no mark). It goes a second
 * before the claims it vouches for: those made now, and any the owner made
 * before (a consumer that came first), whose time left bounds it.
 */
const CLAIM = `
local ttl = ARGV[1]
local mark = tonumber(ARGV[2])
local ids = ARGV[3]
local out = {}
local whole = true
local i = 1
local from = 1
for g = 4, #ARGV, 2 do
  local owner = ARGV[g]
  for _ = 1, tonumber(ARGV[g + 1]) do
    local to = string.find(ids, '\\n', from, true)
    local key = KEYS[1] .. string.sub(ids, from, to - 1)
    from = to + 1
    local prev = redis.call('SET', key, owner, 'NX', 'GET', 'EX', ttl)
    if not prev then
      out[i] = '1'
    elseif prev == owner then
      out[i] = '1'
      if mark > 0 then mark = math.min(mark, redis.call('TTL', key) - 1) end
    else
      out[i] = '0'
      whole = false
    end
    i = i + 1
  end
end
if whole and mark > 0 and KEYS[2] then redis.call('SET', KEYS[2], '1', 'EX', mark) end
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
  // The keys are `<prefix><event_id>`; on a cluster the prefix has the id's hash tag.
  const prefix = `${options.namespace}:seen:`;
  const prefixOf = clustered
    ? (id: string) => `{${options.namespace}:${id.slice(0, 2)}}:seen:`
    : () => prefix;
  const ttl = String(options.ttlSeconds);
  /** A mark's ttl, a second less than a claim's (0, with a ttl of 1: no mark). */
  const markTtl = String(options.ttlSeconds - 1);
  /** Batches are marked whole on one Redis (a cluster spreads a batch's ids over slots). */
  const marks = !clustered;
  const markOf = (batchId: string) => `${options.namespace}:whole:${batchId}`;
  type Claimer = RedisClient & { claimIds(...args: string[]): Promise<string> };

  /**
   * The script's arguments for `ids` (sharing a prefix), claimed by
   * `owners` in turn (each for its count of the ids), with the batch's
   * `mark` key where it is to be set.
   */
  function scriptArgs(ids: readonly string[], owners: [string, number][], mark?: string) {
    const args = [mark === undefined ? "1" : "2", prefixOf(ids[0] as string)];
    if (mark !== undefined) args.push(mark);
    args.push(ttl, mark === undefined ? "0" : markTtl, packed(ids));
    for (const [owner, count] of owners) args.push(owner, String(count));
    return args;
  }

  /** The ids at positions `at` and their owners, consecutive ones of an owner counted together. */
  function chunkArgs(ids: readonly string[], owners: readonly string[], at: readonly number[]) {
    const runs: [string, number][] = [];
    for (const i of at) {
      const owner = owners[i] as string;
      const last = runs.at(-1);
      if (last?.[0] === owner) last[1]++;
      else runs.push([owner, 1]);
    }
    return scriptArgs(
      at.map((i) => ids[i] as string),
      runs,
    );
  }

  /** Positions split into script calls of at most CHUNK ids. */
  function chunked(at: readonly number[]): number[][] {
    const chunks: number[][] = [];
    for (let from = 0; from < at.length; from += CHUNK) chunks.push(at.slice(from, from + CHUNK));
    return chunks;
  }

  /**
   * One answer per chunk: one Redis gets them in one pipeline; a cluster
   * gets them all at once (back to back on each node's connection).
   */
  async function send(calls: string[][]): Promise<string[]> {
    if (clustered) return Promise.all(calls.map((args) => (redis as Claimer).claimIds(...args)));
    const pipeline = redis.pipeline() as ReturnType<RedisClient["pipeline"]> & {
      claimIds(...args: string[]): unknown;
    };
    for (const args of calls) pipeline.claimIds(...args);
    return ((await pipeline.exec()) ?? []).map(([err, out]) => {
      if (err) throw err;
      return out as string;
    });
  }

  async function claim(ids: readonly string[], owners: readonly string[]): Promise<boolean[]> {
    if (ids.length === 0) return [];
    await connected();
    // A cluster: a group per hash tag (its keys share a slot); one Redis: one group.
    const groups = new Map<string, number[]>();
    for (let i = 0; i < ids.length; i++) {
      const tag = clustered ? (ids[i] as string).slice(0, 2) : "";
      const group = groups.get(tag);
      if (group === undefined) groups.set(tag, [i]);
      else group.push(i);
    }
    const chunks = [...groups.values()].flatMap(chunked);
    const answers = await send(chunks.map((chunk) => chunkArgs(ids, owners, chunk)));
    const keep = new Array<boolean>(ids.length);
    answers.forEach((answer, c) => {
      const chunk = chunks[c] as number[];
      readAnswer(answer, chunk.length).forEach((k, j) => {
        keep[chunk[j] as number] = k;
      });
    });
    return keep;
  }

  return {
    kind: "redis",
    durable: true,
    claim,
    async claimBatch(batchId, ids) {
      if (!marks || ids.length === 0 || ids.length > CHUNK) {
        return claim(ids, new Array<string>(ids.length).fill(batchId));
      }
      await connected();
      const args = scriptArgs(ids, [[batchId, ids.length]], markOf(batchId));
      return readAnswer(await (redis as Claimer).claimIds(...args), ids.length);
    },
    async whole(batchIds) {
      if (!marks || batchIds.length === 0) return batchIds.map(() => false);
      await connected();
      const marked = await redis.mget(batchIds.map(markOf));
      return marked.map((mark) => mark !== null);
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

/** Ids as the script reads them: each ended by a line break (which no event id holds). */
function packed(ids: readonly string[]): string {
  for (const id of ids) {
    if (id.includes("\n")) throw new Error(`an event id holds a line break: ${JSON.stringify(id)}`);
  }
  return `${ids.join("\n")}\n`;
}

/** The script's answer for `count` ids: "1" (store it) or "0" for each. */
function readAnswer(answer: string, count: number): boolean[] {
  if (answer.length !== count) {
    throw new Error(`Redis answered ${answer.length} claims for ${count} ids`);
  }
  return Array.from({ length: count }, (_, i) => answer.charCodeAt(i) === 49);
}
