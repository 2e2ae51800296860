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
  /**
   * `batchId` claims all of `ids` (the API, once the broker has the batch),
   * answering as `claim` does; where it then owns every one of them, the
   * store may remember the batch as whole, for `whole` to tell consumers.
   */
  claimBatch(batchId: string, ids: readonly string[]): Promise<boolean[]>;
  /**
   * Per batch, whether it owns every id it carries (a `claimBatch` that
   * found none taken), so that a consumer can store its rows without
   * claiming each again. No where the store does not know: the consumer
   * then claims the batch's ids itself.
   */
  whole(batchIds: readonly string[]): Promise<boolean[]>;
  /** Throws when the store cannot answer now. */
  check(): Promise<void>;
  close(): Promise<void>;
}
