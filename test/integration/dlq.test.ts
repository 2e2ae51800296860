import { Connection } from "rabbitmq-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBatchConsumer } from "../../src/consumer/batch-consumer.ts";
import { encodeRow } from "../../src/event/row-format.ts";
import { createMetrics } from "../../src/observability/metrics.ts";
import { createRabbitQueue } from "../../src/queue/rabbitmq-queue.ts";
import { toProto } from "../clients.ts";
import {
  AMQP_URL,
  reportErrors,
  silentLog,
  spawnTally,
  uniqueNamespace,
  waitFor,
} from "../helpers.ts";
import { realParts } from "../parts.ts";

async function tally(args: string[], env: Record<string, string>) {
  const run = spawnTally(args, env);
  const code = await run.exit;
  return { code, out: run.stdout(), err: run.stderr() };
}

describe("the dead-letter queue and tally dlq (RabbitMQ, Redis, chDB)", () => {
  const namespace = uniqueNamespace();
  let parts: Awaited<ReturnType<typeof realParts>>;
  beforeAll(async () => {
    parts = await realParts({ namespace });
  });
  const env = { AMQP_URL, TALLY_NAMESPACE: namespace };
  afterAll(async () => {
    await parts.dedupe.close();
    await parts.warehouse.close();
  });

  it("dead-letters a poison batch with its reason, lists it, and replays what can be stored", async () => {
    const { queue, dedupe, warehouse } = parts;
    // A poison batch, dead-lettered by the consumer with its reason.
    const consumer = createBatchConsumer({
      onDedupeError: reportErrors,
      dedupe,
      warehouse,
      flushRows: 1000,
      flushBatches: 8,
      flushIntervalMs: 20,
      metrics: createMetrics(),
      log: silentLog,
    });
    await queue.consume(consumer.handle);
    await queue.publish({
      id: "poison-1",
      body: Buffer.from("not a row\n"),
      rows: 1,
      acceptedAt: Date.now(),
      requestIds: ["req-p"],
    });
    const rabbit = new Connection(AMQP_URL);
    const dead = `${namespace}.events.dead`;
    await waitFor(
      async () => (await rabbit.queueDeclare({ queue: dead, passive: true })).messageCount,
      (n) => n === 1,
    );
    await consumer.close();
    await queue.close(); // stop consuming before the replay
    // A good batch that ended there too (say, past its delivery limit during an outage).
    const row = encodeRow(
      toProto({
        event_id: "9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d",
        occurred_at: "2025-10-28T12:00:00Z",
        user_id: "u",
        event_type: "dlq_test",
      }),
      "{}",
      "2025-10-28 12:00:00.000000",
    );
    const pub = rabbit.createPublisher({ confirm: true });
    await pub.send(
      {
        routingKey: dead,
        durable: true,
        messageId: "good-1",
        headers: { rows: 1, "x-tally-reason": "delivery limit" },
      },
      Buffer.from(row),
    );
    await pub.close();

    const list = await tally(["dlq", "list"], env);
    expect(list.code).toBe(0);
    expect(list.out).toContain("poison-1");
    expect(list.out).toContain("does not start with an event_id");
    expect(list.out).toContain("good-1");
    // Listing takes nothing away.
    expect((await rabbit.queueDeclare({ queue: dead, passive: true })).messageCount).toBe(2);

    const replay = await tally(["dlq", "replay"], env);
    expect(replay.code).toBe(0);
    expect(replay.out).toContain("replayed 2");
    // A consumer stores the good one; the poison one comes back to the dead-letter queue.
    const again = createBatchConsumer({
      onDedupeError: reportErrors,
      dedupe,
      warehouse,
      flushRows: 1000,
      flushBatches: 8,
      flushIntervalMs: 20,
      metrics: createMetrics(),
      log: silentLog,
    });
    const fresh = createRabbitQueue({
      url: AMQP_URL,
      namespace,
      prefetch: 16,
      onError: reportErrors,
    });
    await fresh.consume(again.handle);
    await waitFor(
      async () =>
        (
          await warehouse.query<{ n: string }>(
            `SELECT count() AS n FROM ${warehouse.db}.events FINAL`,
            {},
          )
        )[0]?.n,
      (n) => Number(n) === 1,
    );
    await waitFor(
      async () => (await rabbit.queueDeclare({ queue: dead, passive: true })).messageCount,
      (n) => n === 1,
    );
    await again.close();
    await fresh.close();
    await rabbit.close();
  });

  it("keeps the dead-letter queue replicated (quorum), and still uses a classic one an earlier version made", async () => {
    const rabbit = new Connection(AMQP_URL);
    const consumer = () =>
      createBatchConsumer({
        onDedupeError: reportErrors,
        dedupe: parts.dedupe,
        warehouse: parts.warehouse,
        flushRows: 1000,
        flushBatches: 8,
        flushIntervalMs: 20,
        metrics: createMetrics(),
        log: silentLog,
      });
    const poison = (id: string) => ({
      id,
      body: Buffer.from("not a row\n"),
      rows: 1,
      acceptedAt: Date.now(),
      requestIds: [],
    });
    try {
      for (const [ns, classic] of [
        [uniqueNamespace(), false],
        [uniqueNamespace(), true],
      ] as const) {
        const dead = `${ns}.events.dead`;
        if (classic) await rabbit.queueDeclare({ queue: dead, durable: true });
        const queue = createRabbitQueue({
          url: AMQP_URL,
          namespace: ns,
          prefetch: 16,
          onError: reportErrors,
        });
        const c = consumer();
        await queue.consume(c.handle);
        await queue.publish(poison(`poison-${ns}`));
        await waitFor(
          async () => (await rabbit.queueDeclare({ queue: dead, passive: true })).messageCount,
          (n) => n === 1,
        );
        await c.close();
        await queue.close();
        // Declaring it as a quorum queue succeeds only where it is one.
        const asQuorum = await rabbit
          .queueDeclare({ queue: dead, durable: true, arguments: { "x-queue-type": "quorum" } })
          .then(
            () => "quorum",
            (err: { code?: string }) => err.code,
          );
        expect(asQuorum).toBe(classic ? "PRECONDITION_FAILED" : "quorum");
        await rabbit.queueDelete({ queue: dead });
        await rabbit.queueDelete({ queue: `${ns}.events` });
      }
    } finally {
      await rabbit.close();
    }
  });
});
