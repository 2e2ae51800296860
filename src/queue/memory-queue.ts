import type { EventBatch } from "./event-batch.ts";
import { type BatchHandler, type EventQueue, QueueUnavailableError } from "./queue.ts";

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
      try {
        await handler(batch);
      } catch (cause) {
        throw new QueueUnavailableError(`the batch could not be stored: ${String(cause)}`, {
          cause,
        });
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
