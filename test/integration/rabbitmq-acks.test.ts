import { Socket } from "node:net";
import { afterEach, expect, it, vi } from "vitest";
import { type BatchOutcome, type EventQueue, outcome } from "../../src/queue/queue.ts";
import { createRabbitQueue } from "../../src/queue/rabbitmq-queue.ts";
import { batchOf } from "../batches.ts";
import { AMQP_URL, reportErrors, uniqueNamespace, waitFor } from "../helpers.ts";

const open: EventQueue[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const q of open.splice(0)) await q.close();
});

const queueIn = async (namespace: string) => {
  const q = await createRabbitQueue({
    url: AMQP_URL,
    namespace,
    prefetch: 64,
    onError: reportErrors,
  });
  open.push(q);
  return q;
};

it("acknowledges the batches a flush answers together in one write to the broker", async () => {
  const namespace = uniqueNamespace();
  const q = await queueIn(namespace);
  const answers: ((o: BatchOutcome) => void)[] = [];
  await q.consume((_batch) => new Promise((resolve) => answers.push(resolve)));
  const batches = Array.from({ length: 40 }, (_, i) => batchOf(1, i));
  await Promise.all(batches.map((b) => q.publish(b)));
  await waitFor(
    async () => answers.length,
    (n) => n === batches.length,
  );

  // Every write to the broker's port while they are answered, as the consumer's flush answers them.
  const brokerPort = Number(new URL(AMQP_URL).port || 5672);
  const write = vi.spyOn(Socket.prototype as unknown as { _write: () => void }, "_write");
  const writev = vi.spyOn(Socket.prototype as unknown as { _writev: () => void }, "_writev");
  const toBroker = () =>
    [...write.mock.contexts, ...writev.mock.contexts].filter(
      (s) => (s as Socket).remotePort === brokerPort,
    );
  for (const answer of answers) answer(outcome.ack);
  const writes = await waitFor(
    async () => toBroker(),
    (w) => w.length > 0,
  );
  vi.restoreAllMocks();
  // One write (two at most, if the answers straddled a turn of the event loop), not one per acknowledgement.
  expect(writes.length).toBeGreaterThanOrEqual(1);
  expect(writes.length).toBeLessThanOrEqual(2);

  // And they were acknowledged: with the consumer gone, none comes back to the queue.
  await q.close();
  open.splice(open.indexOf(q), 1);
  const again = await queueIn(namespace);
  expect(await again.depth()).toBe(0);
});
