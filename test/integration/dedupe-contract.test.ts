import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import type { DedupeStore } from "../../src/dedupe/dedupe-store.ts";
import { createMemoryDedupe } from "../../src/dedupe/memory-dedupe.ts";
import { createRedisDedupe } from "../../src/dedupe/redis-dedupe.ts";
import {
  freePort,
  REDIS_URL,
  reportErrors,
  rng,
  uniqueNamespace,
  uuidFrom,
  waitFor,
} from "../helpers.ts";

/** Each implementation of the dedupe seam, made fresh for a test. */
const implementations: [name: string, make: () => DedupeStore][] = [
  ["in-process", () => createMemoryDedupe({ ttlSeconds: 600 })],
  [
    "Redis",
    () =>
      createRedisDedupe({
        url: REDIS_URL,
        namespace: uniqueNamespace(),
        ttlSeconds: 600,
        onError: reportErrors,
      }),
  ],
];

/** The contract of DedupeStore, the same for every implementation. */
describe.each(implementations)("the dedupe store contract: %s", (_name, make) => {
  const open: DedupeStore[] = [];
  const store = () => {
    const s = make();
    open.push(s);
    return s;
  };
  afterAll(async () => {
    for (const s of open) await s.close();
  });

  it("answers per id: new yes, the same owner again yes, another owner no; mixed owners in one call", async () => {
    const dedupe = store();
    await dedupe.check();
    expect(await dedupe.claim(["a", "b", "c"], ["m1", "m1", "m2"])).toEqual([true, true, true]);
    expect(await dedupe.claim(["a", "b", "c", "d"], ["m1", "m2", "m2", "m2"])).toEqual([
      true,
      false,
      true,
      true,
    ]);
    expect(await dedupe.claim([], [])).toEqual([]);
  });

  it("claims a batch's ids as claim does, and calls it whole only where it owns them all", async () => {
    const dedupe = store();
    expect(await dedupe.claimBatch("m1", ["a", "b", "a"])).toEqual([true, true, true]);
    expect(await dedupe.claimBatch("m2", ["b", "c"])).toEqual([false, true]);
    expect(await dedupe.claimBatch("m3", [])).toEqual([]);
    const batches = ["m1", "m2", "m3", "never-claimed"];
    const whole = await dedupe.whole(batches);
    expect(whole.slice(1)).toEqual([false, false, false]);
    // Redis marks m1; the in-process store keeps no marks (its API claims nothing at accept).
    expect(whole[0]).toBe(dedupe.durable);
    // What a mark vouches for: the batch owns each id, and another batch is refused it.
    expect(await dedupe.claim(["a", "b"], ["m1", "m1"])).toEqual([true, true]);
    expect(await dedupe.claim(["a", "b"], ["m4", "m4"])).toEqual([false, false]);
    expect(await dedupe.whole([])).toEqual([]);
  });

  it("claims a very large flush (far past any argument limit) in one call", async () => {
    const dedupe = store();
    const random = rng(5);
    const ids = Array.from({ length: 400_000 }, () => uuidFrom(random));
    const mine = ids.map(() => "batch-a");
    expect((await dedupe.claim(ids, mine)).every((k) => k)).toBe(true);
    expect((await dedupe.claim(ids, mine)).every((k) => k)).toBe(true); // a redelivery of batch-a
    const theirs = await dedupe.claim(
      ids,
      ids.map(() => "batch-b"),
    );
    // The in-process store holds fewer claims than this flush: it has forgotten some, and
    // the consumer asks the warehouse about every id it lets through. Redis forgets none.
    if (dedupe.durable) expect(theirs.some((k) => k)).toBe(false);
    else expect(theirs.some((k) => k)).toBe(true);
  });
});

/** The namespace's claim buckets. */
async function claimKeys(redis: Redis, namespace: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const found of redis.scanStream({ match: `${namespace}:claims:*`, count: 10_000 })) {
    keys.push(...(found as string[]));
  }
  return keys;
}

describe("bounds and errors of each dedupe store", () => {
  it("in-process: holds at most its cap of claims, so memory stays bounded", async () => {
    const dedupe = createMemoryDedupe({ ttlSeconds: 600, maxIds: 10_000 });
    const random = rng(6);
    for (let i = 0; i < 20; i++) {
      const ids = Array.from({ length: 5000 }, () => uuidFrom(random));
      await dedupe.claim(
        ids,
        ids.map(() => `m${i}`),
      );
    }
    expect(dedupe.size).toBe(10_000);
  });

  it("Redis: a claim is kept for the ttl at least, then forgotten and its bucket freed, so memory stays bounded", async () => {
    const namespace = uniqueNamespace();
    const dedupe = createRedisDedupe({
      url: REDIS_URL,
      namespace,
      ttlSeconds: 2,
      onError: reportErrors,
    });
    const redis = new Redis(REDIS_URL);
    try {
      const claimed = Date.now();
      expect(await dedupe.claim(["x1"], ["m"])).toEqual([true]);
      const [first] = await claimKeys(redis, namespace);
      // Within the ttl, another owner is refused, however often it asks.
      let forgotten: number | undefined;
      while (forgotten === undefined) {
        const [mine] = await dedupe.claim(["x1"], ["later"]);
        if (mine) forgotten = Date.now() - claimed;
        else await new Promise((r) => setTimeout(r, 100));
      }
      expect(forgotten).toBeGreaterThanOrEqual(2000);
      // Buckets are a second wide here: the claim is read in its bucket and the two after.
      expect(forgotten).toBeLessThanOrEqual(4000);
      // What is left is the last claim's bucket: the first one is gone, not waiting to expire.
      const left = await claimKeys(redis, namespace);
      expect(left).toHaveLength(1);
      expect(left).not.toContain(first);
    } finally {
      redis.disconnect();
      await dedupe.close();
    }
  });

  it("Redis: a whole batch's mark goes a second before its claims, those made now and those made earlier", async () => {
    const namespace = uniqueNamespace();
    const redis = new Redis(REDIS_URL);
    // A claim of the old layout (a key an id) with 30 s left, as a consumer made it before an upgrade.
    await redis.set(`${namespace}:seen:x4`, "c", "EX", 30);
    const dedupe = createRedisDedupe({
      url: REDIS_URL,
      namespace,
      ttlSeconds: 60,
      onError: reportErrors,
    });
    try {
      expect(await dedupe.claimBatch("b", ["x3"])).toEqual([true]);
      // Buckets of 30 s: x3 is kept 60-90 s from now, its mark a second less.
      const mark = await redis.pttl(`${namespace}:whole:b`);
      expect(mark).toBeGreaterThanOrEqual(58_000);
      expect(mark).toBeLessThanOrEqual(89_000);
      // The old layout's claim is still the owner's: another batch is refused it, c is not.
      expect(await dedupe.claimBatch("d", ["x4"])).toEqual([false]);
      expect(await dedupe.claimBatch("c", ["x4", "x5"])).toEqual([true, true]);
      const early = await redis.pttl(`${namespace}:whole:c`);
      expect(early).toBeGreaterThan(0);
      expect(early).toBeLessThanOrEqual(29_000);
      expect(await dedupe.whole(["b", "c", "d"])).toEqual([true, true, false]);
    } finally {
      redis.disconnect();
      await dedupe.close();
    }
  });

  it("Redis: keys of the old layout are read for a ttl after an upgrade, and never in a namespace without them", async () => {
    const redis = new Redis(REDIS_URL);
    const upgraded = uniqueNamespace();
    const fresh = uniqueNamespace();
    await redis.set(`${upgraded}:seen:old`, "m", "EX", 600);
    const stores = [upgraded, fresh].map((namespace) =>
      createRedisDedupe({ url: REDIS_URL, namespace, ttlSeconds: 600, onError: reportErrors }),
    );
    try {
      const until = (namespace: string) => redis.get(`${namespace}:seen-keys-until`);
      await waitFor(
        () => Promise.all([until(upgraded), until(fresh)]),
        (both) => both.every((u) => u !== null),
      );
      expect(Number(await until(upgraded))).toBeGreaterThan(Date.now() + 600_000);
      expect(await until(fresh)).toBe("0");
    } finally {
      redis.disconnect();
      for (const s of stores) await s.close();
    }
  });

  it("Redis: mid-upgrade, new claims are written in the old layout too, so a consumer of the version before sees them", async () => {
    const redis = new Redis(REDIS_URL);
    const upgraded = uniqueNamespace();
    const fresh = uniqueNamespace();
    await redis.set(`${upgraded}:seen:old`, "m", "EX", 600);
    const [mid, clean] = [upgraded, fresh].map((namespace) =>
      createRedisDedupe({ url: REDIS_URL, namespace, ttlSeconds: 600, onError: reportErrors }),
    ) as [DedupeStore, DedupeStore];
    /** What a consumer of the version before did for an id: SET NX GET, the owner it found (null: it claimed it). */
    const oldClaim = (namespace: string, id: string, owner: string) =>
      redis.set(`${namespace}:seen:${id}`, owner, "EX", 600, "NX", "GET");
    try {
      // From the first claim on: a claim waits for the scan's answer, so none is missed there.
      expect(await mid.claimBatch("b", ["n0"])).toEqual([true]);
      expect(await redis.get(`${upgraded}:seen:n0`)).toBe("b");
      let n = 1;
      const id = `n${n}`;
      expect(await mid.claim([id], ["b"])).toEqual([true]);
      const kept = await redis.ttl(`${upgraded}:seen:${id}`);
      expect(kept).toBeGreaterThanOrEqual(600); // as long as its bucket: 600-900 s
      expect(kept).toBeLessThanOrEqual(900);
      // The version before finds the claim and refuses it to its batch; its own claims are read back.
      expect(await oldClaim(upgraded, id, "c")).toBe("b");
      expect(await oldClaim(upgraded, "o1", "c")).toBeNull();
      expect(await mid.claim(["o1"], ["b"])).toEqual([false]);
      // A namespace without old keys never writes them, once its scan has answered.
      await waitFor(
        () => redis.get(`${fresh}:seen-keys-until`),
        (until) => until === "0",
      );
      await waitFor(
        async () => {
          const id = `f${n++}`;
          expect(await clean.claim([id], ["b"])).toEqual([true]);
          return redis.exists(`${fresh}:seen:${id}`);
        },
        (exists) => exists === 0,
      );
      for (let i = 0; i < 10; i++) {
        expect(await clean.claim([`g${i}`], ["b"])).toEqual([true]);
        expect(await redis.exists(`${fresh}:seen:g${i}`)).toBe(0);
      }
    } finally {
      redis.disconnect();
      await mid.close();
      await clean.close();
    }
  });

  it("Redis away: claims and checks fail fast, and the error reaches the reporter", async () => {
    const errors: unknown[] = [];
    const dedupe = createRedisDedupe({
      url: `redis://127.0.0.1:${await freePort()}`,
      namespace: uniqueNamespace(),
      ttlSeconds: 60,
      onError: (err) => errors.push(err),
    });
    try {
      const started = Date.now();
      await expect(dedupe.claim(["a"], ["m"])).rejects.toThrow();
      await expect(dedupe.check()).rejects.toThrow();
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(errors.length).toBeGreaterThan(0);
    } finally {
      await dedupe.close();
    }
  });
});
