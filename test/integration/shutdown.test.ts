import { Connection } from "rabbitmq-client";
import { describe, expect, it } from "vitest";
import { stopConsuming } from "../../src/app/tally.ts";
import { createBatchConsumer } from "../../src/consumer/batch-consumer.ts";
import { createMetrics } from "../../src/observability/metrics.ts";
import type { Warehouse } from "../../src/warehouse/warehouse.ts";
import { batchOf } from "../batches.ts";
import {
  AMQP_URL,
  rabbitQueue,
  realServices,
  reportErrors,
  silentLog,
  start,
  testConfig,
  waitFor,
} from "../helpers.ts";
import { realParts } from "../parts.ts";

describe("shutdown hands held batches back (RabbitMQ)", () => {
  it("returns every batch a closing consumer holds to the queue, and dead-letters none", async () => {
    // Flushes only far in the future: every delivered batch stays held.
    const config = testConfig({
      ...realServices(),
      TALLY_FLUSH_INTERVAL_MS: "60000",
      TALLY_PREFETCH: "64",
    });
    const consumer = await start(config, "consumer");
    const producer = rabbitQueue(config.namespace);
    for (let i = 0; i < 10; i++) await producer.publish(batchOf(1, 1200 + i));
    const rabbit = new Connection(AMQP_URL);
    const depth = async (queue: string) =>
      (await rabbit.queueDeclare({ queue, passive: true })).messageCount;
    // All ten delivered and held (none ready in the queue).
    await waitFor(
      () => depth(`${config.namespace}.events`),
      (n) => n === 0,
    );
    await consumer.close();
    await producer.close();
    await waitFor(
      () => depth(`${config.namespace}.events`),
      (n) => n === 10,
    );
    expect(await depth(`${config.namespace}.events.dead`)).toBe(0);
    await rabbit.close();
  });

  it("dead-letters nothing when it stops while a slow insert is in flight", async () => {
    const { namespace, queue, dedupe, warehouse: real } = await realParts({ prefetch: 64 });
    let inserting = false;
    const slow: Warehouse = {
      ...real,
      insert: async (t, rows) => {
        inserting = true;
        await new Promise((r) => setTimeout(r, 1000));
        await real.insert(t, rows);
      },
    };
    const consumer = createBatchConsumer({
      onDedupeError: reportErrors,
      dedupe,
      warehouse: slow,
      flushRows: 1,
      flushBatches: 1,
      flushIntervalMs: 10,
      metrics: createMetrics(),
      log: silentLog,
    });
    await queue.consume(consumer.handle);
    const producer = rabbitQueue(namespace);
    let seed = 1300;
    const batch = () => batchOf(1, seed++);
    await producer.publish(batch());
    await waitFor(
      async () => inserting,
      (v) => v,
    );
    // These arrive while the first insert is slow: the consumer holds them.
    for (let i = 0; i < 5; i++) await producer.publish(batch());
    const rabbit = new Connection(AMQP_URL);
    const depth = async (q: string) =>
      (await rabbit.queueDeclare({ queue: q, passive: true })).messageCount;
    await waitFor(
      () => depth(`${namespace}.events`),
      (n) => n === 0,
    );
    await stopConsuming(queue, consumer);
    await producer.close();
    // The first was stored, and so was the second, claimed while the first
    // insert ran (two flushes overlap); the other four are back on the queue,
    // none dead-lettered.
    await waitFor(
      () => depth(`${namespace}.events`),
      (n) => n === 4,
    );
    expect(await depth(`${namespace}.events.dead`)).toBe(0);
    await rabbit.close();
    await dedupe.close();
    await real.close();
  });
});
