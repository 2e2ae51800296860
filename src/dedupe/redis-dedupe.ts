import { once } from "node:events";
import type { Redis } from "ioredis";
import type { ErrorReporter } from "../observability/dependency-errors.ts";
import { connectRedis, isCluster, type RedisClient } from "../redis/connect.ts";
import type { DedupeStore } from "./dedupe-store.ts";

/**
 * One round trip per batch. Claims live in hashes, one a time bucket
 * (`<prefix><bucket>`, field the id, value its owner), not in a key an id:
 * a Lua script reads every id of a call from the buckets still kept with
 * one HMGET each, answers, and writes the new ones with one HSET. Its
 * answer is one string: "1" where the id is new or already this owner's,
 * "0" where another owner has it. A key an id (`SET id owner NX GET EX
 * ttl`, one call an id) cost Redis 2.4-2.6 µs of CPU an id and 187 bytes;
 * the buckets 1.2 and 112 (batches of 500, three alternating runs of
 * 200,000 ids on a Redis of their own).
 *
 * A bucket is half the ttl wide; the script reads the current one and the
 * two before it, so a claim is kept for at least the ttl and at most one
 * and a half (then its bucket is unlinked: freed in Redis's background
 * thread, not by an expiry that would stall it for a big hash). Time is
 * Redis's own (TIME): every process sees the same bucket.
 *
 * Ids come grouped by owner, `owner, count` pairs after the ids: the owner
 * is sent once per batch. The ids are one argument, each ended by a line
 * break. On a cluster the prefix carries the ids' hash tag: the buckets the
 * script makes share its slot.
 *
 * A batch's mark (the last key, when given) is set when its one owner owns
 * every id (see `claimBatch`). It goes a second before the claims it
 * vouches for: those made now, and any the owner made before (a consumer
 * that came first), in an older bucket or under the old layout.
 *
 * The old layout, a key an id (`<ns>:seen:<id>`), is read too for the ids
 * no bucket holds, while its keys may live (see `legacyUntil`), so an
 * upgrade forgets no claim within the window. In a namespace known to be
 * mid-upgrade, each new claim is written there too, for as long, so that
 * the processes of the version before, still running, see the new ones'
 * claims (a repeat is not stored twice, one by each version).
 */
const CLAIM = `
local now = tonumber(redis.call('TIME')[1])
local width = tonumber(ARGV[1])
-- The old layout: '0' left alone, '1' read, '2' read and written.
local legacy = ARGV[2] ~= '0'
local mirror = ARGV[2] == '2'
local ids = ARGV[3]
local bucket = math.floor(now / width)
local list = {}
local owners = {}
local n = 0
local from = 1
for g = 4, #ARGV, 2 do
  local owner = ARGV[g]
  for _ = 1, tonumber(ARGV[g + 1]) do
    local to = string.find(ids, '\\n', from, true)
    n = n + 1
    list[n] = string.sub(ids, from, to - 1)
    owners[n] = owner
    from = to + 1
  end
end
-- Where each id is claimed, and until when that claim is kept.
local found = {}
local kept = {}
for age = 0, 2 do
  local key = KEYS[1] .. (bucket - age)
  for first = 1, n, 4000 do
    local last = math.min(n, first + 3999)
    local got = redis.call('HMGET', key, unpack(list, first, last))
    for i = first, last do
      local owner = got[i - first + 1]
      if owner and not found[i] then
        found[i] = owner
        kept[i] = (bucket - age + 3) * width
      end
    end
  end
end
if legacy then
  local keys = {}
  local at = {}
  for i = 1, n do
    if not found[i] then
      keys[#keys + 1] = KEYS[2] .. list[i]
      at[#at + 1] = i
    end
  end
  for first = 1, #keys, 4000 do
    local last = math.min(#keys, first + 3999)
    local got = redis.call('MGET', unpack(keys, first, last))
    for j = first, last do
      local owner = got[j - first + 1]
      if owner then
        local i = at[j]
        found[i] = owner
        if owner == owners[i] then kept[i] = now + redis.call('TTL', keys[j]) end
      end
    end
  end
end
local out = {}
local new = {}
local mine = {}
local whole = true
local until_ = (bucket + 3) * width
for i = 1, n do
  local id = list[i]
  local owner = found[i] or mine[id]
  if not owner then
    out[i] = '1'
    mine[id] = owners[i]
    new[#new + 1] = id
    new[#new + 1] = owners[i]
  elseif owner == owners[i] then
    out[i] = '1'
    if kept[i] and kept[i] < until_ then until_ = kept[i] end
  else
    out[i] = '0'
    whole = false
  end
end
if #new > 0 then
  local key = KEYS[1] .. bucket
  for first = 1, #new, 4000 do
    redis.call('HSET', key, unpack(new, first, math.min(#new, first + 3999)))
  end
  -- Only if no call comes for a while: unlinking the oldest bucket below frees it first.
  redis.call('EXPIREAT', key, (bucket + 4) * width)
  if mirror then
    -- Processes of the version before, mid-upgrade, read the old layout only: each new claim goes there too, kept as long.
    local left = (bucket + 3) * width - now
    for j = 1, #new, 2 do redis.call('SET', KEYS[2] .. new[j], new[j + 1], 'EX', left, 'NX') end
  end
end
redis.call('UNLINK', KEYS[1] .. (bucket - 3))
local mark = until_ - now - 1
if whole and KEYS[3] and mark > 0 then redis.call('SET', KEYS[3], '1', 'EX', mark) end
return table.concat(out)
`;

/** Ids per script call. */
const CHUNK = 5000;

/** How long a claim waits, at a process's start, for the first answer about the old layout. */
const LEGACY_WAIT_MS = 3000;

/**
 * On a Redis Cluster, one script's keys must share a hash slot: a key
 * carries a hash tag, `{<ns>:<two hex digits of the id>}`, so the ids of a
 * flush spread over 256 slots (and so over every master), and are claimed
 * in one script per tag, all sent at once (back to back on each node's
 * connection: one round trip per node). One Redis keeps its buckets as
 * `<ns>:claims:<bucket>`.
 */

/** Options of {@link createRedisDedupe}. */
export interface RedisDedupeOptions {
  /** e.g. "redis://127.0.0.1:6379", or several, comma-separated: a cluster's seeds. */
  url: string;
  /** Prefix of every key: `<ns>:claims:<bucket>`, `<ns>:whole:<batch>`. */
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
  const { namespace, ttlSeconds } = options;
  /** The script's key prefixes for an id, its buckets' and the old layout's: on a cluster with the id's hash tag. */
  const prefixes = (tag: string) => [`${tag}:claims:`, `${tag}:seen:`] as const;
  const single = prefixes(namespace);
  const prefixesOf = clustered
    ? (id: string) => prefixes(`{${namespace}:${id.slice(0, 2)}}`)
    : () => single;
  /** A bucket's width, half the ttl: the script reads three, so a claim lives a ttl at least. */
  const width = String(Math.max(1, Math.ceil(ttlSeconds / 2)));
  /** Batches are marked whole on one Redis (a cluster spreads a batch's ids over slots). */
  const marks = !clustered;
  const markOf = (batchId: string) => `${namespace}:whole:${batchId}`;
  type Claimer = RedisClient & { claimIds(...args: string[]): Promise<string> };
  const legacy = legacyUntil(redis, namespace, ttlSeconds, options.onError);
  /**
   * Claims wait for the first answer about the old layout (a scan at most,
   * once per namespace), so that mid-upgrade a new process's claims reach
   * the old layout from the first one on. Not past LEGACY_WAIT_MS from the
   * start (a scan of a large Redis): the old layout is then read only, as
   * before. Not while Redis is away, so that claims still fail fast.
   */
  const firstAnswer = Promise.race([
    legacy.answered,
    new Promise((r) => setTimeout(r, LEGACY_WAIT_MS).unref()),
  ]);
  /** Awaited before each claim: the connection (see `connected`), then that first answer. */
  const readyToClaim = async () => {
    await connected();
    if (legacy.until === Number.POSITIVE_INFINITY && redis.status === "ready") await firstAnswer;
  };

  /**
   * The script's arguments for `ids` (sharing a tag), claimed by `owners`
   * in turn (each for its count of the ids), with the batch's `mark` key
   * where it is to be set.
   */
  function scriptArgs(ids: readonly string[], owners: [string, number][], mark?: string) {
    const args = [mark === undefined ? "2" : "3", ...prefixesOf(ids[0] as string)];
    if (mark !== undefined) args.push(mark);
    args.push(width, oldLayout(legacy.until), packed(ids));
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
    await readyToClaim();
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
      await readyToClaim();
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

/**
 * Until when (ms) keys of the old layout, a key an id (`<ns>:seen:<id>`,
 * on a cluster `{<ns>:<tag>}:seen:<id>`), may still hold claims: the
 * script reads them until then. Asked of Redis once per namespace and
 * remembered there (`<ns>:seen-keys-until`): a scan finds any such key,
 * and a namespace that has them (an upgrade) reads them for a ttl and an
 * hour more (the old processes of a rolling upgrade write them a while
 * longer); one without them (a new one), never. Until the answer is
 * known, or if it cannot be, they are read: slower, never wrong.
 */
function legacyUntil(
  redis: RedisClient,
  namespace: string,
  ttlSeconds: number,
  onError: ErrorReporter,
): { until: number; answered: Promise<void> } {
  let answer = () => {};
  const known = {
    until: Number.POSITIVE_INFINITY,
    /** Resolves at the first answer. */
    answered: new Promise<void>((r) => {
      answer = r;
    }),
  };
  const key = `${namespace}:seen-keys-until`;
  const nodes = (): Redis[] => (isCluster(redis) ? redis.nodes("master") : [redis]);
  const pattern = isCluster(redis) ? `{${namespace}:??}:seen:*` : `${namespace}:seen:*`;
  async function anyOldKey(node: Redis): Promise<boolean> {
    for await (const keys of node.scanStream({ match: pattern, count: 10_000 })) {
      if ((keys as string[]).length > 0) return true;
    }
    return false;
  }
  const ask = async () => {
    if (redis.status !== "ready") await once(redis, "ready");
    let until = await redis.get(key);
    if (until === null) {
      const found = (await Promise.all(nodes().map(anyOldKey))).some(Boolean);
      const candidate = found ? Date.now() + (ttlSeconds + 3600) * 1000 : 0;
      await redis.set(key, String(candidate), "NX");
      until = (await redis.get(key)) ?? String(candidate);
    }
    known.until = Number(until);
    answer();
  };
  const tryAsking = () =>
    ask().catch((err) => {
      if (redis.status === "end") return; // closed: nothing to claim any more
      onError(err, "finding claims of the old layout (they are read meanwhile)");
      setTimeout(tryAsking, 10_000).unref();
    });
  void tryAsking();
  return known;
}

/**
 * What the script does with the old layout until `until`: reads it ("1")
 * while it may hold claims, and writes each new claim there too ("2") once
 * this namespace is known to be mid-upgrade. Not while that is unknown: a
 * new namespace's first claims would then be found by its own scan, which
 * would take them for an upgrade's.
 */
function oldLayout(until: number): "0" | "1" | "2" {
  if (Date.now() >= until) return "0";
  return until === Number.POSITIVE_INFINITY ? "1" : "2";
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
