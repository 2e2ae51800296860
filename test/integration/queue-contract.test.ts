import { afterEach, describe, expect, it } from "vitest";
import type { EventBatch } from "../../src/queue/event-batch.ts";
import { createMemoryQueue } from "../../src/queue/memory-queue.ts";
import {
  type BatchOutcome,
  BatchRefusedError,
  type EventQueue,
  outcome,
  QueueUnavailableError,
} from "../../src/queue/queue.ts";
import { createRabbitQueue } from "../../src/queue/rabbitmq-queue.ts";
import { batchOf } from "../batches.ts";
import { AMQP_URL, freePort, reportErrors, uniqueNamespace, waitFor } from "../helpers.ts";
import { takeDeadLetters } from "../parts.ts";

interface Implementation {
  name: string;
  make(namespace: string): EventQueue;
  /** What a publisher sees of its batch's outcome once the handler has answered. */
  published: Record<BatchOutcome["action"], "resolves" | "rejects retryable" | "rejects refused">;
  /** Whether a requeued batch comes back to the handler (a broker keeps it). */
  redelivers: boolean;
}

const implementations: Implementation[] = [
  {
    name: "in-process",
    make: () => createMemoryQueue(),
    // Nothing is durable in-process: the publisher waits for the outcome.
    published: { ack: "resolves", requeue: "rejects retryable", "dead-letter": "rejects refused" },
    redelivers: false,
  },
  {
    name: "RabbitMQ",
    make: (namespace) =>
      createRabbitQueue({ url: AMQP_URL, namespace, prefetch: 4, onError: reportErrors }),
    // The broker has the batch once it confirms: the outcome is the broker's business.
    published: { ack: "resolves", requeue: "resolves", "dead-letter": "resolves" },
    redelivers: true,
  },
];

describe.each(implementations)("the queue contract: $name", (impl) => {
  const open: EventQueue[] = [];
  afterEach(async () => {
    for (const q of open.splice(0)) await q.close();
  });
  const queueIn = (namespace = uniqueNamespace()) => {
    const q = impl.make(namespace);
    open.push(q);
    return { q, namespace };
  };
  const settle = (p: Promise<void>) =>
    p.then(
      () => "resolves",
      (err) =>
        err instanceof BatchRefusedError
          ? "rejects refused"
          : err instanceof QueueUnavailableError
            ? "rejects retryable"
            : `rejects ${String(err)}`,
    );

  it("delivers a batch whole to the handler, once it is acknowledged", async () => {
    const { q } = queueIn();
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
    const { q, namespace } = queueIn();
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
    expect([requeued, thrown, poison]).toEqual([
      impl.published.requeue,
      impl.published.requeue,
      impl.published["dead-letter"],
    ]);
    if (impl.redelivers) {
      await waitFor(
        async () => [deliveries.get("requeued"), deliveries.get("thrown")],
        ([a, b]) => a === 2 && b === 2,
      );
      expect(
        await waitFor(
          () => takeDeadLetters(namespace),
          (d) => d.length > 0,
        ),
      ).toEqual(["poison: it can never be stored"]);
    }
  });

  it("bounds what a consumer holds unanswered (RabbitMQ: its prefetch; in-process: the publishers waiting)", async () => {
    const { q } = queueIn();
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
    // RabbitMQ lends its prefetch and no more; in-process, each waiting publisher's batch is held.
    expect(most).toBe(impl.redelivers ? 4 : 12);
    opened = true;
    for (const r of release.splice(0)) r();
    await Promise.all(published);
  });
});

describe("queue errors surface", () => {
  it("in-process: a publish with no consumer is refused as retryable", async () => {
    const q = createMemoryQueue();
    await expect(q.publish(batchOf(1, 5))).rejects.toBeInstanceOf(QueueUnavailableError);
    await q.close();
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
