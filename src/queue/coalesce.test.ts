import { describe, expect, it } from "vitest";
import { waitFor } from "../../test/helpers.ts";
import { coalescePublishes } from "./coalesce.ts";
import type { EventBatch } from "./event-batch.ts";
import { type EventQueue, QueueUnavailableError } from "./queue.ts";

const batch = (n: number): EventBatch => ({
  id: `b${n}`,
  body: Buffer.from(`row-${n}\n`),
  rows: 1,
  acceptedAt: 1000 + n,
  requestIds: [`r${n}`],
});

/**
 * A queue whose publishes stay in flight until released, recording what it
 * was given (a broker awaiting its confirm); `refuse` fails every publish.
 */
function heldQueue(refuse = false) {
  const seen: EventBatch[] = [];
  const release: (() => void)[] = [];
  const queue: EventQueue = {
    kind: "held",
    async publish(b) {
      if (refuse) throw new QueueUnavailableError("refused");
      seen.push(b);
      await new Promise<void>((r) => release.push(r));
    },
    consume: async () => {},
    check: async () => {},
    depth: async () => 0,
    close: async () => {},
  };
  return { queue, seen, release };
}

describe("coalescePublishes", () => {
  it("combines what is given in one turn, and what arrives while publishes are in flight", async () => {
    const { queue, seen, release } = heldQueue();
    const q = coalescePublishes(queue, { inFlight: 1, maxRows: 3 });
    // Given in one turn (as requests read from one socket chunk): 1, 2 and 3 leave together (maxRows 3).
    const first = [1, 2, 3, 4, 5].map((n) => q.publish(batch(n)));
    await waitFor(
      async () => seen.length,
      (n) => n === 1,
    );
    expect(seen[0]).toMatchObject({ rows: 3, acceptedAt: 1001, requestIds: ["r1", "r2", "r3"] });
    expect(seen[0]?.body.toString()).toBe("row-1\nrow-2\nrow-3\n");
    // 4 and 5 wait for the one publish in flight, then leave as one message.
    release.shift()?.();
    await waitFor(
      async () => seen.length,
      (n) => n === 2,
    );
    expect(seen[1]).toMatchObject({ rows: 2, requestIds: ["r4", "r5"] });
    release.shift()?.();
    await Promise.all(first);
    // Nothing in flight and nothing waiting: a lone batch goes out as it is.
    const alone = q.publish(batch(6));
    await waitFor(
      async () => seen.length,
      (n) => n === 3,
    );
    expect(seen[2]).toMatchObject({ id: "b6", rows: 1 });
    release.shift()?.();
    await alone;
  });

  it("holds a message with room left while another is in flight, and lets full ones go", async () => {
    const { queue, seen, release } = heldQueue();
    const q = coalescePublishes(queue, { inFlight: 4, maxRows: 3 });
    const turn = () => new Promise((r) => setImmediate(r));
    const first = q.publish(batch(1));
    await turn();
    // Room for three more publishes, but 1's message had room left and is in flight: 2 and 3 wait.
    const small = [q.publish(batch(2))];
    await turn();
    small.push(q.publish(batch(3)));
    await turn();
    await turn();
    expect(seen.map((b) => b.requestIds)).toEqual([["r1"]]);
    // A full message goes at once, beside the one in flight.
    const full = q.publish({ ...batch(9), body: Buffer.from("x\ny\nz\n"), rows: 3 });
    await waitFor(
      async () => seen.length,
      (n) => n === 3,
    );
    // 2 and 3 went with it (the full batch did not fit behind them), as one message.
    expect(seen.slice(1).map((b) => b.requestIds)).toEqual([["r2", "r3"], ["r9"]]);
    for (const r of release.splice(0)) r();
    await Promise.all([first, ...small, full]);
    // With nothing in flight, 4 and 5 (one turn) leave together; 6 waits until their message is confirmed.
    const later = [4, 5].map((n) => q.publish(batch(n)));
    await waitFor(
      async () => seen.length,
      (n) => n === 4,
    );
    expect(seen[3]?.requestIds).toEqual(["r4", "r5"]);
    const next = q.publish(batch(6));
    await turn();
    await turn();
    expect(seen).toHaveLength(4);
    release.shift()?.();
    await waitFor(
      async () => seen.length,
      (n) => n === 5,
    );
    expect(seen[4]?.requestIds).toEqual(["r6"]);
    release.shift()?.();
    await Promise.all([...later, next]);
  });

  it("splits a batch of more than maxRows rows, and answers once the broker has every part", async () => {
    const { queue, seen, release } = heldQueue();
    const q = coalescePublishes(queue, { maxRows: 2 });
    const big: EventBatch = {
      id: "big",
      body: Buffer.from("a\tb\nc\n\\n\nd\ne\n"),
      rows: 5,
      acceptedAt: 1000,
      requestIds: ["r"],
    };
    let answered = false;
    const publishing = q.publish(big).then(() => {
      answered = true;
    });
    await waitFor(
      async () => seen.length,
      (n) => n === 3,
    );
    expect(seen.map((b) => [b.rows, b.body.toString()])).toEqual([
      [2, "a\tb\nc\n"],
      [2, "\\n\nd\n"],
      [1, "e\n"],
    ]);
    expect(new Set(seen.map((b) => b.id)).size).toBe(3);
    expect(seen.every((b) => b.acceptedAt === 1000 && b.requestIds[0] === "r")).toBe(true);
    release.shift()?.();
    release.shift()?.();
    await new Promise((r) => setImmediate(r));
    expect(answered).toBe(false);
    release.shift()?.();
    await publishing;
  });

  it("fails the caller of a split batch when any part fails", async () => {
    const { queue } = heldQueue(true);
    const q = coalescePublishes(queue, { maxRows: 1 });
    await expect(
      q.publish({ ...batch(1), body: Buffer.from("x\ny\n"), rows: 2 }),
    ).rejects.toBeInstanceOf(QueueUnavailableError);
  });

  it("fails every caller whose batch rode in a message that failed", async () => {
    const { queue } = heldQueue(true);
    const q = coalescePublishes(queue, { inFlight: 1 });
    const results = await Promise.allSettled([1, 2, 3].map((n) => q.publish(batch(n))));
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected", "rejected"]);
  });
});
