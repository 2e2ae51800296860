import type { EventBatch } from "./event-batch.ts";

/**
 * What became of a batch, as its handler says it: `ack`, stored (or
 * nothing of it needed storing); `requeue`, not stored now, to be delivered
 * again; `dead-letter`, never storable, set aside with its reason. Each
 * queue maps these to its broker in one place.
 */
export type BatchOutcome =
  | { readonly action: "ack" }
  | { readonly action: "requeue"; readonly reason: string }
  | { readonly action: "dead-letter"; readonly reason: string };

/** The outcomes, made. */
export const outcome = {
  ack: { action: "ack" } as BatchOutcome,
  requeue: (reason: string): BatchOutcome => ({ action: "requeue", reason }),
  deadLetter: (reason: string): BatchOutcome => ({ action: "dead-letter", reason }),
};

/** Stores a batch, or says why not; a handler that throws is taken as `requeue`. */
export type BatchHandler = (batch: EventBatch) => Promise<BatchOutcome>;

/** The seam between the API and the consumer. */
export interface EventQueue {
  /** Human name for health reports ("rabbitmq", "local log"). */
  readonly kind: string;
  /**
   * Resolves once the batch is safe: confirmed by the broker, or synced to
   * the local log's file. Rejects with
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
