import { describe, expect, it } from "vitest";
import { createBatchConsumer } from "../../src/consumer/batch-consumer.ts";
import { createMetrics } from "../../src/observability/metrics.ts";
import type { Warehouse } from "../../src/warehouse/warehouse.ts";
import { batchOf } from "../batches.ts";
import { counterValue, reportErrors, silentLog, waitFor } from "../helpers.ts";
import { closeAfterEach, realParts, takeDeadLetters } from "../parts.ts";

/** Events stored (read FINAL) in `warehouse`. */
async function storedEvents(warehouse: Warehouse): Promise<number> {
  const [r] = await warehouse.query<{ n: string }>(
    `SELECT count() AS n FROM ${warehouse.db}.events FINAL`,
    {},
  );
  return Number(r?.n);
}

/** Failed inserts of one kind. */
async function failuresOf(metrics: ReturnType<typeof createMetrics>, kind: string) {
  const { values } = await metrics.insertFailures.get();
  return values.filter((v) => v.labels.kind === kind).reduce((n, v) => n + v.value, 0);
}

/** A batch whose row starts with a good event_id but whose time ClickHouse cannot read. */
const poison = {
  id: "poison-insert",
  body: Buffer.from(
    "0b3f5f0e-9a55-4d8c-8d5e-2a1f6c3b7e91\tnot-a-time\tu1\tpage_view\t{}\t2025-10-28 12:00:00.000\n",
  ),
  rows: 1,
  acceptedAt: Date.now(),
  requestIds: ["req-poison"],
};

describe("an insert that always fails (RabbitMQ, Redis, chDB)", () => {
  const track = closeAfterEach();

  async function parts(warehouseFor: (real: Warehouse) => Warehouse = (w) => w) {
    const { namespace, queue, dedupe, warehouse: real } = await realParts({ prefetch: 64 });
    track(queue);
    track(dedupe);
    track(real);
    const metrics = createMetrics();
    const consumer = track(
      createBatchConsumer({
        dedupe,
        warehouse: warehouseFor(real),
        metrics,
        log: silentLog,
        onDedupeError: reportErrors,
        flushRows: 10_000,
        flushBatches: 32,
        flushIntervalMs: 100,
        retryDelayMs: [10, 50],
        insertAttempts: 3,
      }),
    );
    return { namespace, queue, real, metrics, consumer };
  }

  it("dead-letters the one batch ClickHouse cannot read, with its reason, and stores the batches flushed with it", async () => {
    const { namespace, queue, real, metrics, consumer } = await parts();
    await queue.consume(consumer.handle);
    // One flush: six good batches around the poison one.
    const good = [1, 2, 3, 4, 5, 6].map((seed) => batchOf(50, seed));
    await Promise.all([...good.slice(0, 3), poison, ...good.slice(3)].map((b) => queue.publish(b)));
    await waitFor(
      () => storedEvents(real),
      (n) => n === 300,
    );
    await waitFor(
      () => counterValue(metrics.batchesDeadLettered),
      (n) => n === 1,
    );
    // Traffic keeps flowing after it.
    await queue.publish(batchOf(40, 7));
    await waitFor(
      () => storedEvents(real),
      (n) => n === 340,
    );
    const reasons = await waitFor(
      () => takeDeadLetters(namespace),
      (r) => r.length === 1,
    );
    expect(reasons[0]).toMatch(/^poison-insert: ClickHouse refused its rows: .*DateTime/);
    expect(await failuresOf(metrics, "bad-data")).toBeGreaterThan(0);
  });

  it("hands batches back, never dead-letters them, while inserts fail for a reason no batch carries; readiness says it is stuck", async () => {
    let failing = true;
    const { namespace, queue, real, metrics, consumer } = await parts((w) => ({
      ...w,
      insert: async (table, rows) => {
        if (failing)
          throw Object.assign(new Error("injected: too many parts"), { type: "TOO_MANY_PARTS" });
        return w.insert(table, rows);
      },
    }));
    await queue.consume(consumer.handle);
    await Promise.all([1, 2, 3].map((seed) => queue.publish(batchOf(20, seed))));
    // Past its tries the flush goes back to the queue and comes again, and again.
    await waitFor(
      () => failuresOf(metrics, "retryable"),
      (n) => n >= 9,
    );
    expect(() => consumer.checkStuck(0)).toThrow(/inserts have failed for \d+ s: .*too many parts/);
    expect(() => consumer.checkStuck(3_600_000)).not.toThrow();
    failing = false;
    await waitFor(
      () => storedEvents(real),
      (n) => n === 60,
    );
    expect(() => consumer.checkStuck(0)).not.toThrow();
    expect(await counterValue(metrics.consumerStuckSeconds)).toBe(0);
    expect(await takeDeadLetters(namespace)).toEqual([]);
    expect(await counterValue(metrics.batchesDeadLettered)).toBe(0);
  });
});
