import { appendFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { waitFor } from "../../test/helpers.ts";
import { tempDir } from "../../test/temp-dirs.ts";
import type { EventBatch } from "./event-batch.ts";
import { createJournalQueue, journalDeadLetters } from "./journal-queue.ts";
import { type BatchOutcome, outcome } from "./queue.ts";

const batch = (n: number, bytes = 10): EventBatch => ({
  id: `b${n}`,
  body: Buffer.from(`${String(n).padEnd(bytes, "x")}\n`),
  rows: 1,
  acceptedAt: 1000 + n,
  requestIds: [`r${n}`],
});

const errors: string[] = [];
const open = (dir: string, segmentBytes?: number, maxHeldBytes?: number) =>
  createJournalQueue({
    dir,
    prefetch: 8,
    segmentBytes,
    maxHeldBytes,
    retryDelayMs: 10,
    onError: (err, context) => errors.push(`${context}: ${String(err)}`),
  });

/** Consumes into `seen`, answering each batch with `answer`. */
const collect = (answer: (b: EventBatch) => BatchOutcome = () => outcome.ack) => {
  const seen: string[] = [];
  const handler = async (b: EventBatch) => {
    seen.push(b.id);
    return answer(b);
  };
  return { seen, handler };
};

describe("the local log (the embedded queue)", () => {
  it("delivers again, after a restart, what was not answered for good, with every field", async () => {
    const dir = tempDir("journal-");
    const first = await open(dir);
    for (let n = 1; n <= 6; n++) await first.publish(batch(n));
    // The consumer stores 1-3; 4-6 are never answered (the process dies).
    const held = collect();
    await first.consume(async (b) => {
      held.seen.push(b.id);
      return Number(b.id.slice(1)) <= 3 ? outcome.ack : new Promise<BatchOutcome>(() => {});
    });
    await waitFor(
      async () => held.seen.length,
      (n) => n === 6,
    );
    await first.close();

    const again = await open(dir);
    const got: EventBatch[] = [];
    await again.consume(async (b) => {
      got.push(b);
      return outcome.ack;
    });
    await waitFor(
      async () => got.length,
      (n) => n === 3,
    );
    expect(got.map((b) => b.id)).toEqual(["b4", "b5", "b6"]);
    expect(got[0]).toMatchObject({ rows: 1, acceptedAt: 1004, requestIds: ["r4"] });
    expect(got[0]?.body.toString()).toBe("4xxxxxxxxx\n");
    await again.close();
    // All answered: nothing comes back.
    const third = await open(dir);
    const none = collect();
    await third.consume(none.handler);
    await new Promise((r) => setTimeout(r, 50));
    expect(none.seen).toEqual([]);
    await third.close();
  });

  it("drops a record cut short by a crash, and what follows it, and says so", async () => {
    const dir = tempDir("journal-");
    const first = await open(dir);
    for (let n = 1; n <= 3; n++) await first.publish(batch(n));
    await first.close();
    // A write the crash cut short: a header promising more bytes than follow.
    const [segment] = readdirSync(dir).filter((f) => f.endsWith(".log"));
    const path = join(dir, segment as string);
    const whole = statSync(path).size;
    appendFileSync(path, Buffer.from([200, 0, 0, 0, 1, 2, 3, 4, 5, 6]));
    errors.length = 0;
    const again = await open(dir);
    expect(errors).toEqual([expect.stringMatching(/cut short by a crash .*10 bytes after offset/)]);
    expect(statSync(path).size).toBe(whole);
    const { seen, handler } = collect();
    await again.consume(handler);
    await waitFor(
      async () => seen.length,
      (n) => n === 3,
    );
    // New records follow the last whole one.
    await again.publish(batch(4));
    await waitFor(
      async () => seen.length,
      (n) => n === 4,
    );
    expect(seen).toEqual(["b1", "b2", "b3", "b4"]);
    await again.close();
  });

  it("delivers a requeued batch again, and sets a dead-lettered one aside with its reason", async () => {
    const dir = tempDir("journal-");
    const q = await open(dir);
    const tries = new Map<string, number>();
    const { seen, handler } = collect((b) => {
      const n = (tries.get(b.id) ?? 0) + 1;
      tries.set(b.id, n);
      if (b.id === "b1" && n < 3) return outcome.requeue("not yet");
      if (b.id === "b2") return outcome.deadLetter("never");
      return outcome.ack;
    });
    await q.consume(handler);
    await q.publish(batch(1));
    await q.publish(batch(2));
    await waitFor(
      async () => seen.length,
      (n) => n === 4,
    );
    expect(tries).toEqual(
      new Map([
        ["b1", 3],
        ["b2", 1],
      ]),
    );
    await q.close();
    expect(journalDeadLetters(dir)).toEqual(["b2: never"]);
  });

  it("lends the consumer at most maxLentRows rows at once, but always one batch", async () => {
    const dir = tempDir("journal-");
    const q = await createJournalQueue({ dir, prefetch: 8, maxLentRows: 5, onError: () => {} });
    const held: (() => void)[] = [];
    const seen: string[] = [];
    await q.consume(async (b) => {
      seen.push(b.id);
      await new Promise<void>((r) => held.push(r));
      return outcome.ack;
    });
    const sized = (n: number, rows: number) => ({ ...batch(n), rows });
    // More rows than the bound, alone: lent all the same.
    await q.publish(sized(1, 7));
    for (let n = 2; n <= 5; n++) await q.publish(sized(n, 2));
    await waitFor(
      async () => seen.length,
      (n) => n === 1,
    );
    held.shift()?.();
    // 2 + 2 + 2 rows: the third batch is lent while 4 are out, then no more.
    // The log lends in one synchronous pass, so a fifth would be seen with
    // the fourth: no wait needed to tell that it was not lent.
    await waitFor(
      async () => seen.length,
      (n) => n >= 4,
    );
    expect(seen).toEqual(["b1", "b2", "b3", "b4"]);
    held.shift()?.();
    await waitFor(
      async () => seen.length,
      (n) => n === 5,
    );
    for (const release of held.splice(0)) release();
    await q.close();
  });

  it("starts a new segment past its size, and removes a segment once all of it is answered", async () => {
    const dir = tempDir("journal-");
    const q = await open(dir, 1000);
    const release: (() => void)[] = [];
    const { seen, handler } = collect();
    await q.consume(async (b) => {
      await new Promise<void>((r) => release.push(r));
      return handler(b);
    });
    for (let n = 1; n <= 10; n++) await q.publish(batch(n, 300));
    const segments = () => readdirSync(dir).filter((f) => f.endsWith(".log"));
    expect(segments().length).toBeGreaterThanOrEqual(3);
    // Answered: the checkpoint moves on, and the segments behind it go.
    while (seen.length < 10) {
      for (const r of release.splice(0)) r();
      await new Promise((r) => setTimeout(r, 5));
    }
    await waitFor(
      async () => segments().length,
      (n) => n === 1,
    );
    await q.close();
  });

  it("keeps past its memory budget only on disk, and reads each batch back whole when its turn comes", async () => {
    const dir = tempDir("journal-");
    // No memory budget, and small segments: every batch is read back, from several segments.
    const q = await open(dir, 1000, 0);
    const published = Array.from({ length: 8 }, (_, i) => batch(i + 1, 300));
    for (const b of published) await q.publish(b);
    // The publishers' buffers are theirs again once acknowledged: the log kept no reference.
    for (const b of published) b.body.fill("z");
    const got: EventBatch[] = [];
    const tries = new Map<string, number>();
    await q.consume(async (b) => {
      const n = (tries.get(b.id) ?? 0) + 1;
      tries.set(b.id, n);
      if (b.id === "b3" && n === 1) return outcome.requeue("not yet");
      if (b.id === "b5") return outcome.deadLetter("never");
      got.push(b);
      return outcome.ack;
    });
    await waitFor(
      async () => got.length,
      (n) => n === 7,
    );
    got.sort((a, b) => a.acceptedAt - b.acceptedAt);
    expect(got.map((b) => b.id)).toEqual(["b1", "b2", "b3", "b4", "b6", "b7", "b8"]);
    for (const b of got) {
      const n = Number(b.id.slice(1));
      expect(b).toMatchObject({ rows: 1, acceptedAt: 1000 + n, requestIds: [`r${n}`] });
      expect(b.body.toString()).toBe(`${String(n).padEnd(300, "x")}\n`);
    }
    await q.close();
    expect(journalDeadLetters(dir)).toEqual(["b5: never"]);
  });
});
