import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { EventBatch } from "../../src/queue/event-batch.ts";
import { createJournalQueue, journalDeadLetters } from "../../src/queue/journal-queue.ts";
import { type EventQueue, outcome, QueueUnavailableError } from "../../src/queue/queue.ts";
import { createRabbitQueue } from "../../src/queue/rabbitmq-queue.ts";
import { batchOf } from "../batches.ts";
import { AMQP_URL, freePort, reportErrors, uniqueNamespace, waitFor } from "../helpers.ts";
import { takeDeadLetters } from "../parts.ts";
import { tempDir } from "../temp-dirs.ts";

interface Implementation {
  name: string;
  make(namespace: string): Promise<EventQueue>;
  /** The batches it set aside, as "id: reason". */
  deadLetters(namespace: string): Promise<string[]>;
}

const JOURNALS = tempDir("tally-journal-contract-");

// Both answer a publish once the batch is safe (the broker confirmed it; the
// local log synced it): what the consumer does with it is theirs to keep.
const implementations: Implementation[] = [
  {
    name: "local log",
    make: (namespace) =>
      createJournalQueue({
        dir: join(JOURNALS, namespace),
        prefetch: 4,
        retryDelayMs: 20,
        onError: reportErrors,
      }),
    deadLetters: async (namespace) => journalDeadLetters(join(JOURNALS, namespace)),
  },
  {
    name: "RabbitMQ",
    make: async (namespace) =>
      createRabbitQueue({ url: AMQP_URL, namespace, prefetch: 4, onError: reportErrors }),
    deadLetters: takeDeadLetters,
  },
];

describe.each(implementations)("the queue contract: $name", (impl) => {
  const open: EventQueue[] = [];
  afterEach(async () => {
    for (const q of open.splice(0)) await q.close();
  });
  const queueIn = async (namespace = uniqueNamespace()) => {
    const q = await impl.make(namespace);
    open.push(q);
    return { q, namespace };
  };
  const settle = (p: Promise<void>) =>
    p.then(
      () => "resolves",
      (err) =>
        err instanceof QueueUnavailableError ? "rejects retryable" : `rejects ${String(err)}`,
    );

  it("delivers a batch whole to the handler, once it is acknowledged", async () => {
    const { q } = await queueIn();
    const seen: EventBatch[] = [];
    await q.consume(async (b) => {
      seen.push(b);
      return outcome.ack;
    });
    const batch = { ...batchOf(7, 1), requestIds: ["r1", "r2"] };
    expect(await settle(q.publish(batch))).toBe("resolves");
    await q.check();
    const [got] = await waitFor(
      async () => seen,
      (s) => s.length === 1,
    );
    expect(got).toMatchObject({ id: batch.id, rows: 7, requestIds: ["r1", "r2"] });
    expect(got?.body.equals(batch.body)).toBe(true);
    expect(Math.abs((got?.acceptedAt ?? 0) - batch.acceptedAt)).toBeLessThan(1000);
    await new Promise((r) => setTimeout(r, 200));
    expect(seen).toHaveLength(1);
  });

  it("keeps a batch its handler hands back or throws on, and sets aside one it dead-letters, with the reason", async () => {
    const { q, namespace } = await queueIn();
    const deliveries = new Map<string, number>();
    await q.consume(async (b) => {
      const n = (deliveries.get(b.id) ?? 0) + 1;
      deliveries.set(b.id, n);
      if (b.id === "requeued" && n === 1) return outcome.requeue("not now");
      if (b.id === "thrown" && n === 1) throw new Error("a bug in the handler");
      if (b.id === "poison") return outcome.deadLetter("it can never be stored");
      return outcome.ack;
    });
    const requeued = await settle(q.publish({ ...batchOf(1, 2), id: "requeued" }));
    const thrown = await settle(q.publish({ ...batchOf(1, 3), id: "thrown" }));
    const poison = await settle(q.publish({ ...batchOf(1, 4), id: "poison" }));
    expect([requeued, thrown, poison]).toEqual(["resolves", "resolves", "resolves"]);
    await waitFor(
      async () => [deliveries.get("requeued"), deliveries.get("thrown")],
      ([a, b]) => a === 2 && b === 2,
    );
    expect(
      await waitFor(
        () => impl.deadLetters(namespace),
        (d) => d.length > 0,
      ),
    ).toEqual(["poison: it can never be stored"]);
  });

  it("bounds what a consumer holds unanswered: its prefetch", async () => {
    const { q } = await queueIn();
    let held = 0;
    let most = 0;
    let opened = false;
    const release: (() => void)[] = [];
    await q.consume(async () => {
      held++;
      most = Math.max(most, held);
      if (!opened) await new Promise<void>((r) => release.push(r));
      held--;
      return outcome.ack;
    });
    const published = Array.from({ length: 12 }, (_, i) => q.publish(batchOf(1, 100 + i)));
    await waitFor(
      async () => held,
      (n) => n >= 4,
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(most).toBe(4);
    opened = true;
    for (const r of release.splice(0)) r();
    await Promise.all(published);
  });
});

describe("queue errors surface", () => {
  it("local log: a closed one refuses a publish as retryable", async () => {
    const q = await createJournalQueue({
      dir: join(JOURNALS, uniqueNamespace()),
      prefetch: 4,
      onError: reportErrors,
    });
    await q.close();
    await expect(q.publish(batchOf(1, 5))).rejects.toBeInstanceOf(QueueUnavailableError);
  });

  it("RabbitMQ away: publish and check fail promptly as retryable, and the reporter hears of it", async () => {
    const errors: unknown[] = [];
    const q = createRabbitQueue({
      url: `amqp://guest:guest@127.0.0.1:${await freePort()}`,
      namespace: uniqueNamespace(),
      prefetch: 4,
      publishTimeoutMs: 500,
      onError: (err) => errors.push(err),
    });
    try {
      await expect(q.publish(batchOf(1, 6))).rejects.toBeInstanceOf(QueueUnavailableError);
      await expect(q.check()).rejects.toThrow();
      await waitFor(
        async () => errors.length,
        (n) => n > 0,
      );
    } finally {
      await q.close();
    }
  });
});
