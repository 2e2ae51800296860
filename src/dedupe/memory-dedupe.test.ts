import { describe, expect, it } from "vitest";
import { createMemoryDedupe } from "./memory-dedupe.ts";

describe("in-process dedupe", () => {
  it("keeps at most maxIds claims, forgetting the oldest first", async () => {
    const dedupe = createMemoryDedupe({ ttlSeconds: 3600, maxIds: 1000 });
    for (let b = 0; b < 50; b++) {
      const ids = Array.from({ length: 100 }, (_, i) => `id-${b}-${i}`);
      await dedupe.claim(
        ids,
        ids.map(() => `batch-${b}`),
      );
      expect(dedupe.size).toBeLessThanOrEqual(1000);
    }
    // The newest are still known (another owner is refused); the oldest are forgotten.
    expect(await dedupe.claim(["id-49-0", "id-0-0"], ["other", "other"])).toEqual([false, true]);
  });

  it("forgets claims past their ttl, and a redelivery of the owner is let through again", async () => {
    let t = 0;
    const dedupe = createMemoryDedupe({ ttlSeconds: 10, now: () => t });
    expect(await dedupe.claim(["a", "b"], ["x", "x"])).toEqual([true, true]);
    expect(await dedupe.claim(["a", "b"], ["x", "y"])).toEqual([true, false]);
    t = 10_001;
    expect(await dedupe.claim(["c"], ["z"])).toEqual([true]);
    expect(dedupe.size).toBe(1);
    expect(await dedupe.claim(["b"], ["y"])).toEqual([true]);
  });

  it("remembers each claim for half its ttl at least, and forgets it by the ttl", async () => {
    let t = 0;
    const dedupe = createMemoryDedupe({ ttlSeconds: 10, now: () => t });
    const refused = async (id: string) => !(await dedupe.claim([id], ["other"]))[0];
    await dedupe.claim(["a"], ["x"]);
    t = 5_000;
    await dedupe.claim(["b"], ["x"]);
    t = 9_999;
    expect([await refused("a"), await refused("b")]).toEqual([true, true]);
    t = 10_001;
    // "a" is a ttl old; "b", claimed 5 s ago, is remembered still.
    expect([await refused("a"), await refused("b")]).toEqual([false, true]);
    t = 15_001;
    expect(await refused("b")).toBe(false);
  });
});
