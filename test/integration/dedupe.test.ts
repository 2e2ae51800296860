import { afterAll, describe, expect, it } from "vitest";
import { createRedisDedupe } from "../../src/dedupe/redis-dedupe.ts";
import { REDIS_URL, reportErrors, rng, uniqueNamespace, uuidFrom } from "../helpers.ts";

describe("Redis dedupe claims", () => {
  const dedupe = createRedisDedupe({
    url: REDIS_URL,
    namespace: uniqueNamespace(),
    ttlSeconds: 600,
    onError: reportErrors,
  });
  afterAll(() => dedupe.close());

  it("claims a very large flush (far past any argument limit): new ids yes, an owner's own again yes, another owner's no", async () => {
    const random = rng(5);
    const ids = Array.from({ length: 400_000 }, () => uuidFrom(random));
    const mine = ids.map(() => "batch-a");
    expect((await dedupe.claim(ids, mine)).every((k) => k)).toBe(true);
    expect((await dedupe.claim(ids, mine)).every((k) => k)).toBe(true); // a redelivery of batch-a
    const theirs = await dedupe.claim(
      ids,
      ids.map(() => "batch-b"),
    );
    expect(theirs.some((k) => k)).toBe(false);
  });
});
