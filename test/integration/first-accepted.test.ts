import { describe, expect, it } from "vitest";
import { createBatchConsumer } from "../../src/consumer/batch-consumer.ts";
import { batchIds } from "../../src/event/row-format.ts";
import { createMetrics } from "../../src/observability/metrics.ts";
import { claimOnAccept } from "../../src/queue/claim-on-accept.ts";
import type { Warehouse } from "../../src/warehouse/warehouse.ts";
import { batchOf } from "../batches.ts";
import { reportErrors, silentLog } from "../helpers.ts";
import { closeAfterEach, realParts } from "../parts.ts";

async function storedTypes(warehouse: Warehouse) {
  return warehouse.query<{ event_type: string; rows: string }>(
    `SELECT event_type, count() AS rows FROM ${warehouse.db}.events GROUP BY event_type ORDER BY event_type`,
    {},
  );
}

/**
 * Two copies of the same events with different fields, accepted one after
 * the other (by two APIs, say), reach the consumers in the other order: the
 * copy accepted first must be the one stored.
 */
describe("the first accepted copy wins, in whatever order consumers see the copies (RabbitMQ, Redis, chDB)", () => {
  const track = closeAfterEach();

  /**
   * Two copies accepted in order, the later with `laterRows` events (the
   * first's 300 and more), and a consumer that records the ids it claims itself.
   */
  async function setUp(laterRows = 300) {
    const { queue, dedupe, warehouse } = await realParts();
    track(warehouse);
    track(dedupe);
    track(queue);
    const accepting = claimOnAccept(
      queue,
      (batchId, ids) => dedupe.claimBatch(batchId, ids),
      reportErrors,
    );
    /** Ids the consumer claims itself, with their batch. */
    const claimedAgain: string[] = [];
    const consumer = track(
      createBatchConsumer({
        onDedupeError: reportErrors,
        dedupe: {
          ...dedupe,
          claim(ids, owners) {
            claimedAgain.push(...ids.map((id, i) => `${owners[i]} ${id}`));
            return dedupe.claim(ids, owners);
          },
        },
        warehouse,
        metrics: createMetrics(),
        log: silentLog,
        flushRows: 10_000,
        flushBatches: 8,
        flushIntervalMs: 50,
      }),
    );
    const first = batchOf(300, 5, "2025-10-28 12:00:00.000000", "first_accepted");
    const second = batchOf(laterRows, 5, "2025-10-28 12:00:01.000000", "accepted_later");
    // Accepted in this order: each publish confirmed by RabbitMQ, then claimed.
    await accepting.publish(first);
    await accepting.publish(second);
    return { consumer, dedupe, warehouse, first, second, claimedAgain };
  }

  it("claims again only the ids of batches not found whole at accept", async () => {
    // The later batch repeats the first's 300 events and adds 100.
    const { consumer, dedupe, warehouse, first, second, claimedAgain } = await setUp(400);
    expect(await dedupe.whole([first.id, second.id])).toEqual([true, false]);
    const outcomes = await Promise.all([consumer.handle(second), consumer.handle(first)]);
    expect(outcomes).toEqual([{ action: "ack" }, { action: "ack" }]);
    expect(await storedTypes(warehouse)).toEqual([
      { event_type: "accepted_later", rows: 100 },
      { event_type: "first_accepted", rows: 300 },
    ]);
    expect(claimedAgain.sort()).toEqual(
      batchIds(second.body)
        .map((id) => `${second.id} ${id}`)
        .sort(),
    );
  });

  it("when the later copy's batch is consumed, alone, before the first's", async () => {
    const { consumer, warehouse, first, second } = await setUp();
    expect(await consumer.handle(second)).toEqual({ action: "ack" });
    expect(await consumer.handle(first)).toEqual({ action: "ack" });
    expect(await storedTypes(warehouse)).toEqual([{ event_type: "first_accepted", rows: 300 }]);
  });

  it("when both batches are in one flush, the later copy's first", async () => {
    const { consumer, warehouse, first, second } = await setUp();
    const outcomes = await Promise.all([consumer.handle(second), consumer.handle(first)]);
    expect(outcomes).toEqual([{ action: "ack" }, { action: "ack" }]);
    expect(await storedTypes(warehouse)).toEqual([{ event_type: "first_accepted", rows: 300 }]);
  });
});
