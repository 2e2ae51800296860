import { Connection } from "rabbitmq-client";
import { describe, expect, it } from "vitest";
import { type BatchConsumer, createBatchConsumer } from "../../src/consumer/batch-consumer.ts";
import type { DedupeStore } from "../../src/dedupe/dedupe-store.ts";
import { createRedisDedupe } from "../../src/dedupe/redis-dedupe.ts";
import { createMetrics, type Metrics } from "../../src/observability/metrics.ts";
import { claimOnAccept } from "../../src/queue/claim-on-accept.ts";
import { createRabbitQueue } from "../../src/queue/rabbitmq-queue.ts";
import { createChdbWarehouse } from "../../src/warehouse/chdb-warehouse.ts";
import { migrate } from "../../src/warehouse/migrations.ts";
import type { Warehouse } from "../../src/warehouse/warehouse.ts";
import { batchOf } from "../batches.ts";
import {
  AMQP_URL,
  closeRabbitConnections,
  counterValue,
  DATA_DIR,
  REDIS_URL,
  reportErrors,
  silentLog,
  uniqueNamespace,
  waitFor,
} from "../helpers.ts";
import { closeAfterEach, realParts } from "../parts.ts";

const parts = () => realParts();

async function stats(warehouse: Warehouse) {
  await warehouse.settled?.(); // only whole inserts
  const [r] = await warehouse.query<{ rows: string; events: string }>(
    `SELECT (SELECT count() FROM ${warehouse.db}.events) AS rows, (SELECT count() FROM ${warehouse.db}.events FINAL) AS events`,
    {},
  );
  return { rows: Number(r?.rows), events: Number(r?.events) };
}

/** A warehouse whose inserts run `fault` around the real insert. */
function withFault(
  warehouse: Warehouse,
  fault: (insert: () => Promise<void>, attempt: number) => Promise<void>,
): Warehouse {
  let attempt = 0;
  return {
    ...warehouse,
    insert: (t, rows) => fault(() => warehouse.insert(t, rows), attempt++),
  };
}

const consumerOn = (
  dedupe: DedupeStore,
  warehouse: Warehouse,
  metrics: Metrics = createMetrics(),
) =>
  createBatchConsumer({
    onDedupeError: reportErrors,
    dedupe,
    warehouse,
    metrics,
    log: silentLog,
    flushRows: 10_000,
    flushBatches: 8,
    flushIntervalMs: 20,
    retryDelayMs: [10, 50],
  });

describe("the consumer under faults (RabbitMQ, Redis, chDB)", () => {
  const track = closeAfterEach();

  it.each([
    ["claimed by the consumer", false],
    ["claimed at accept and marked whole", true],
  ])(
    "does not lose events whose insert failed, when the batch is redelivered: %s",
    async (_how, atAccept) => {
      const { namespace, queue: broker, dedupe, warehouse } = await parts();
      const queue = atAccept
        ? claimOnAccept(broker, (batchId, ids) => dedupe.claimBatch(batchId, ids), reportErrors)
        : broker;
      track(warehouse);
      track(dedupe);
      // First consumer: claims the ids in Redis, then every insert fails; it dies holding the batch.
      let failures = 0;
      const broken = withFault(warehouse, async () => {
        failures++;
        throw new Error("injected: ClickHouse refused the insert");
      });
      const firstMetrics = createMetrics();
      const first = consumerOn(dedupe, broken, firstMetrics);
      await queue.consume(first.handle);
      await queue.publish(batchOf(500, 1));
      await waitFor(
        async () => failures,
        (n) => n >= 2,
      );
      await first.close();
      await queue.close(); // the unacknowledged batch goes back on the queue

      // A new consumer gets the redelivery: the claims are the batch's own, so it stores everything.
      const again = track(
        createRabbitQueue({
          url: AMQP_URL,
          namespace,
          prefetch: 16,
          onError: reportErrors,
        }),
      );
      const secondMetrics = createMetrics();
      const second = track(consumerOn(dedupe, warehouse, secondMetrics));
      await again.consume(second.handle);
      await waitFor(
        () => stats(warehouse),
        (s) => s.events === 500,
      );
      expect(await stats(warehouse)).toEqual({ rows: 500, events: 500 });
      expect(await counterValue(firstMetrics.eventsInserted)).toBe(0);
      expect(await counterValue(firstMetrics.insertFailures)).toBeGreaterThanOrEqual(2);
      expect(await counterValue(secondMetrics.eventsDeduplicated)).toBe(0);
      expect(await counterValue(secondMetrics.eventsInserted)).toBe(500);
    },
  );

  it("counts once a batch inserted twice (insert succeeded, its acknowledgement did not)", async () => {
    const { queue, dedupe, warehouse } = await parts();
    track(warehouse);
    track(dedupe);
    track(queue);
    let stored = 0;
    const flaky = withFault(warehouse, async (insert, attempt) => {
      await insert();
      stored++;
      if (attempt === 0) throw new Error("injected: connection lost after the insert");
    });
    const consumer = track(consumerOn(dedupe, flaky));
    await queue.consume(consumer.handle);
    await queue.publish(batchOf(300, 2));
    await waitFor(
      async () => stored,
      (n) => n === 2,
    );
    // Every row was stored twice (merges may since have collapsed them on disk); every stat reads one.
    expect((await stats(warehouse)).events).toBe(300);
  });

  it("keeps storing, exactly, while Redis is unreachable", async () => {
    const { queue, dedupe, warehouse } = await parts();
    track(warehouse);
    track(dedupe);
    track(queue);
    const down: DedupeStore = {
      kind: "redis",
      durable: true,
      claim: async () => {
        throw new Error("injected: ECONNREFUSED");
      },
      claimBatch: async () => {
        throw new Error("injected: ECONNREFUSED");
      },
      whole: async () => {
        throw new Error("injected: ECONNREFUSED");
      },
      check: async () => {},
      close: async () => {},
    };
    const metrics = createMetrics();
    const consumer = track(consumerOn(down, warehouse, metrics));
    await queue.consume(consumer.handle);
    await queue.publish(batchOf(200, 3));
    await waitFor(
      () => counterValue(metrics.eventsInserted),
      (n) => n === 200,
    );
    // The same events again, accepted later: without Redis the consumer asks the
    // warehouse, finds them stored, and stores no second copy.
    await queue.publish({ ...batchOf(200, 3, "2025-10-28 12:05:00.000000"), id: "later" });
    await waitFor(
      () => counterValue(metrics.eventsDeduplicated),
      (n) => n === 200,
    );
    expect(await counterValue(metrics.eventsInserted)).toBe(200);
    expect((await stats(warehouse)).events).toBe(200);
    const [kept] = await warehouse.query<{ accepted_at: string }>(
      `SELECT DISTINCT toString(accepted_at) AS accepted_at FROM ${warehouse.db}.events`,
      {},
    );
    expect(kept?.accepted_at).toBe("2025-10-28 12:00:00.000000"); // the first accepted copy
  });

  it("flushes when it holds many small batches, not only by rows or time", async () => {
    const namespace = uniqueNamespace();
    // Prefetch 8 caps what it holds at 8 single-event batches, far below flushRows.
    const queue = track(
      createRabbitQueue({ url: AMQP_URL, namespace, prefetch: 8, onError: reportErrors }),
    );
    const dedupe = track(
      createRedisDedupe({ url: REDIS_URL, namespace, ttlSeconds: 600, onError: reportErrors }),
    );
    const warehouse = track(
      createChdbWarehouse({ url: undefined, dataDir: DATA_DIR, database: namespace }),
    );
    await migrate(warehouse);
    const consumer = track(
      createBatchConsumer({
        onDedupeError: reportErrors,
        dedupe,
        warehouse,
        flushRows: 10_000,
        flushIntervalMs: 60_000,
        flushBatches: 4,
        metrics: createMetrics(),
        log: silentLog,
      }),
    );
    await queue.consume(consumer.handle);
    for (let i = 0; i < 40; i++) await queue.publish(batchOf(1, 100 + i));
    await waitFor(
      () => stats(warehouse),
      (s) => s.events === 40,
    );
  });

  it("keeps each insert near flushRows when batches pile up behind a slow one", async () => {
    const { queue, dedupe, warehouse } = await parts();
    track(warehouse);
    track(dedupe);
    track(queue);
    const sizes: number[] = [];
    const slowFirst = withFault(warehouse, async (insert, attempt) => {
      if (attempt === 0) await new Promise((r) => setTimeout(r, 500));
      await insert();
    });
    const recording: Warehouse = {
      ...slowFirst,
      insert: (t, rows) => {
        sizes.push(("text" in rows ? rows.text : "").split("\n").length - 1);
        return slowFirst.insert(t, rows);
      },
    };
    const consumer = track(
      createBatchConsumer({
        onDedupeError: reportErrors,
        dedupe,
        warehouse: recording,
        flushRows: 100,
        flushBatches: 1000,
        flushIntervalMs: 10,
        metrics: createMetrics(),
        log: silentLog,
      }),
    );
    await queue.consume(consumer.handle);
    await Promise.all(Array.from({ length: 14 }, (_, i) => queue.publish(batchOf(50, 300 + i))));
    await waitFor(
      () => stats(warehouse),
      (s) => s.events === 700,
    );
    expect(Math.max(...sizes)).toBeLessThanOrEqual(150); // flushRows, plus at most one batch
  });

  it("publishes a batch of many coalesced requests (its headers stay within AMQP's frame size)", async () => {
    const { queue, dedupe, warehouse } = await parts();
    track(warehouse);
    track(dedupe);
    track(queue);
    const seen: string[][] = [];
    const consumer = track(consumerOn(dedupe, warehouse));
    await queue.consume((b) => {
      seen.push([...b.requestIds]);
      return consumer.handle(b);
    });
    const requestIds = Array.from(
      { length: 1000 },
      (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
    );
    await queue.publish({ ...batchOf(5, 9), requestIds });
    await waitFor(
      () => stats(warehouse),
      (s) => s.events === 5,
    );
    expect(seen[0]?.length).toBeGreaterThan(0);
    expect(requestIds).toEqual(expect.arrayContaining(seen[0] ?? []));
  });

  it("dead-letters a malformed batch instead of retrying it forever", async () => {
    const { namespace, queue, dedupe, warehouse } = await parts();
    track(warehouse);
    track(dedupe);
    track(queue);
    const consumer: BatchConsumer = track(consumerOn(dedupe, warehouse));
    await queue.consume(consumer.handle);
    await queue.publish({
      id: "bad",
      body: Buffer.from("not a row\n"),
      rows: 1,
      acceptedAt: Date.now(),
      requestIds: [],
    });
    await queue.publish(batchOf(10, 4));
    await waitFor(
      () => stats(warehouse),
      (s) => s.events === 10,
    );
    const rabbit = new Connection(AMQP_URL);
    try {
      const dead = `${namespace}.events.dead`;
      const waiting = await waitFor(
        async () => (await rabbit.queueDeclare({ queue: dead, passive: true })).messageCount,
        (n) => n === 1,
      );
      expect(waiting).toBe(1);
    } finally {
      await rabbit.close();
    }
  });

  it("fails no publish in flight when the broker closes the consumer's connection", async () => {
    const { namespace, queue, dedupe, warehouse } = await parts();
    track(warehouse);
    track(dedupe);
    track(queue);
    const consumer = track(consumerOn(dedupe, warehouse));
    await queue.consume(consumer.handle);
    let published = 0;
    let faulted = false;
    const failures: unknown[] = [];
    const publish = () =>
      queue.publish(batchOf(20, 1000 + published++)).catch((err) => failures.push(err));
    // The consumer first stores a batch: its connection opens on its own time
    // (CI once closed nothing). Publishing flat out meanwhile left, on a busy
    // machine, more than its 20 s to drain after the fault.
    await publish();
    await waitFor(
      () => stats(warehouse),
      (s) => s.events > 0,
    );
    // Ten publishers keep batches in flight from before the fault until 100 batches after it.
    const publishers = Array.from({ length: 10 }, async () => {
      let after = 0;
      while (!faulted || after++ < 10) await publish();
    });
    await waitFor(
      async () => published,
      (n) => n > 50,
    );
    const closed = closeRabbitConnections([`tally-${namespace}-consumer`]);
    faulted = true;
    await Promise.all(publishers);
    expect(closed).toBe(1);
    expect(failures).toEqual([]);
    await waitFor(
      () => stats(warehouse),
      (s) => s.events === published * 20,
    );
  });

  it("refuses a publish that no queue took (the queue deleted under it) instead of acknowledging it", async () => {
    const { namespace, queue } = await parts();
    track(queue);
    await queue.publish(batchOf(5, 1));
    const rabbit = new Connection(AMQP_URL);
    try {
      await rabbit.queueDelete({ queue: `${namespace}.events` });
    } finally {
      await rabbit.close();
    }
    // The broker confirms a message it routed nowhere: only its return says so.
    await expect(queue.publish(batchOf(5, 2))).rejects.toThrow(/no queue took it.*NO_ROUTE/);
    // The depth probe declares the queue again, and publishing goes on.
    expect(await queue.depth()).toBe(0);
    await queue.publish(batchOf(5, 3));
    expect(
      await waitFor(
        () => queue.depth(),
        (n) => n === 1,
      ),
    ).toBe(1);
  });
});
