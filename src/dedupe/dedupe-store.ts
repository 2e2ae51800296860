/**
 * Remembers which batch first carried each event_id.
 *
 * `claim` records `batchId` as the owner of every id not seen before and
 * answers, per id, whether this batch should store it: yes when the batch
 * just claimed it, and yes again when the batch claimed it on an earlier
 * delivery. That second yes is what keeps a redelivered batch, whose insert
 * failed after its claims were made, from losing its events.
 */
export interface DedupeStore {
  /** Human name for health reports ("redis", "in-process"). */
  readonly kind: string;
  /** Whether claims outlive the process (Redis) or are forgotten by a restart (in-process). */
  readonly durable: boolean;
  /** `owners[i]` claims `ids[i]`; the result's i-th entry says whether to store it. */
  claim(ids: readonly string[], owners: readonly string[]): Promise<boolean[]>;
  /** Throws when the store cannot answer now. */
  check(): Promise<void>;
  close(): Promise<void>;
}
