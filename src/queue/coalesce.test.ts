import { describe, expect, it } from "vitest";
import { coalescePublishes } from "./coalesce.ts";
import type { EventBatch } from "./event-batch.ts";
import { createMemoryQueue } from "./memory-queue.ts";

const batch = (n: number): EventBatch => ({
  id: `b${n}`,
  body: Buffer.from(`row-${n}\n`),
  rows: 1,
  acceptedAt: 1000 + n,
  requestIds: [`r${n}`],
});

describe("coalescePublishes", () => {
  it("sends alone when nothing waits, and combines what arrives while publishes are in flight", async () => {
    const queue = createMemoryQueue();
    const seen: EventBatch[] = [];
    let release: (() => void)[] = [];
    await queue.consume(async (b) => {
      seen.push(b);
      await new Promise<void>((r) => release.push(r));
    });
    const q = coalescePublishes(queue, { inFlight: 1, maxRows: 3 });
    const first = q.publish(batch(1));
    const rest = [2, 3, 4, 5].map((n) => q.publish(batch(n)));
    await new Promise((r) => setTimeout(r, 10));
    expect(seen.map((b) => b.id)).toEqual(["b1"]); // the first went straight out
    release.shift()?.();
    await first;
    await new Promise((r) => setTimeout(r, 10));
    // 2, 3 and 4 waited and left as one message (maxRows 3); 5 waits for the next turn.
    expect(seen).toHaveLength(2);
    expect(seen[1]).toMatchObject({ rows: 3, acceptedAt: 1002, requestIds: ["r2", "r3", "r4"] });
    expect(seen[1]?.body.toString()).toBe("row-2\nrow-3\nrow-4\n");
    for (;;) {
      const r = release.shift();
      if (r === undefined) {
        if (seen.length === 3) break;
        await new Promise((w) => setTimeout(w, 5));
        continue;
      }
      r();
    }
    await Promise.all(rest);
    expect(seen[2]).toMatchObject({ id: "b5", rows: 1 });
    release = [];
  });

  it("fails every caller whose batch rode in a message that failed", async () => {
    const queue = createMemoryQueue(); // no consumer: every publish fails
    const q = coalescePublishes(queue, { inFlight: 1 });
    const results = await Promise.allSettled([1, 2, 3].map((n) => q.publish(batch(n))));
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected", "rejected"]);
  });
});
