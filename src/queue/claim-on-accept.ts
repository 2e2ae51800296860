import { batchIds } from "../event/row-format.ts";
import type { ErrorReporter } from "../observability/dependency-errors.ts";
import type { EventBatch } from "./event-batch.ts";
import type { EventQueue } from "./queue.ts";

/** Claims `ids` for `batchId` where no one has them yet (the dedupe store's `claimBatch`). */
export type ClaimBatch = (batchId: string, ids: readonly string[]) => Promise<unknown>;

/**
 * Makes "first accepted" the copy that wins, with several APIs and
 * consumers: once the broker has confirmed a batch, its event ids are
 * claimed in the dedupe store in the batch's name, before the caller is
 * answered. A consumer stores an id only for the batch that claimed it, so
 * when two copies of an event reach two consumers, in either order, the one
 * stored is the one accepted first, and the events table (whose version
 * prefers the earliest accepted_at) agrees. A batch found to own all its
 * ids is marked whole, and consumers store it without claiming again.
 *
 * After the confirm, not before: a claim always names a batch the broker
 * holds, so a publish that fails leaves no claim behind to refuse the
 * client's retry. If the store cannot answer, the batch is acknowledged
 * anyway (it is safe on the broker) and consumers fall back to first consumed.
 */
export function claimOnAccept(
  queue: EventQueue,
  claim: ClaimBatch,
  onError: ErrorReporter,
  onClaimed: (seconds: number) => void = () => {},
): EventQueue {
  return {
    ...queue,
    async publish(batch: EventBatch) {
      await queue.publish(batch);
      const ids = batchIds(batch.body);
      const started = performance.now();
      try {
        await claim(batch.id, ids);
        onClaimed((performance.now() - started) / 1000);
      } catch (err) {
        onError(err, "claiming accepted events; consumers will keep the first consumed copy");
      }
    },
  };
}
