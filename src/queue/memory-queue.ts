import type { EventBatch } from "./event-batch.ts";
import {
  type BatchHandler,
  BatchRefusedError,
  type EventQueue,
  outcome,
  QueueUnavailableError,
} from "./queue.ts";

/**
 * The in-process queue of the embedded default. Nothing in-process is
 * durable, so a publish resolves only once the consumer has stored the batch:
 * an acknowledged event is in the warehouse, exactly as with RabbitMQ it is
 * on the broker's disk.
 */
export function createMemoryQueue(): EventQueue {
  let handler: BatchHandler | undefined;
  let closed = false;
  return {
    kind: "in-process",
    async publish(batch: EventBatch) {
      if (closed || handler === undefined) {
        throw new QueueUnavailableError("the in-process queue has no consumer");
      }
      const result = await handler(batch).catch((cause) => outcome.requeue(String(cause)));
      // Nothing waits on a queue here: the caller is told, and may retry a requeue.
      if (result.action === "requeue") {
        throw new QueueUnavailableError(`the batch could not be stored: ${result.reason}`);
      }
      if (result.action === "dead-letter") {
        throw new BatchRefusedError(`the batch can never be stored: ${result.reason}`);
      }
    },
    async consume(h) {
      handler = h;
    },
    async check() {
      if (closed) throw new QueueUnavailableError("closed");
    },
    async depth() {
      return 0; // a publish waits for its batch to be stored: nothing waits here
    },
    async close() {
      closed = true;
    },
  };
}
