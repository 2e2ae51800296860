import { describe, expect, it } from "vitest";
import { createMemoryRateLimiter } from "./rate-limiter.ts";

describe("in-process rate limiter", () => {
  it("stays bounded past 100,000 callers without letting a throttled caller in", async () => {
    const t = 0;
    const limiter = createMemoryRateLimiter({ rps: 1, burst: 2 }, { now: () => t });
    expect([await limiter.take("hot"), await limiter.take("hot")]).toEqual([0, 0]);
    expect(await limiter.take("hot")).toBeGreaterThan(0);
    for (let i = 0; i < 150_000; i++) {
      await limiter.take(`caller-${i}`);
      // The hot caller keeps calling, so it is never the least recently seen.
      if (i % 1000 === 0) expect(await limiter.take("hot")).toBeGreaterThan(0);
    }
    expect(limiter.size).toBeLessThanOrEqual(100_000);
    expect(await limiter.take("hot")).toBeGreaterThan(0);
    // The least recently seen were forgotten: back with a full bucket.
    expect(await limiter.take("caller-0")).toBe(0);
  });
});
