import type { EventBatch } from "./event-batch.ts";

/**
 * What a handler's promise means: resolved, the batch is stored and is
 * acknowledged; rejected with a {@link PoisonBatchError}, it can never be
 * stored and goes to the dead-letter queue; rejected otherwise, it stays on
 * the queue for another try.
 */
export type BatchHandler = (batch: EventBatch) => Promise<void>;

/** The seam between the API and the consumer. */
export interface EventQueue {
  /** Human name for health reports ("rabbitmq", "in-process"). */
  readonly kind: string;
  /**
   * Resolves once the batch is safe: confirmed by the broker (durable), or,
   * for the in-process queue, stored by the consumer. Rejects with
   * {@link QueueUnavailableError} when it cannot be taken: then none of it was.
   */
  publish(batch: EventBatch): Promise<void>;
  /** Starts delivering batches to `handler`. */
  consume(handler: BatchHandler): Promise<void>;
  /** Throws when the queue cannot take batches now. */
  check(): Promise<void>;
  /** Messages waiting to be consumed. */
  depth(): Promise<number>;
  close(): Promise<void>;
}

/** The queue could not take a batch; the caller may retry it. */
export class QueueUnavailableError extends Error {
  override name = "QueueUnavailableError";
}

/** A batch that no retry can store (malformed); it is dead-lettered. */
export class PoisonBatchError extends Error {
  override name = "PoisonBatchError";
}
