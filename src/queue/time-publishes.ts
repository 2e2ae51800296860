import type { EventBatch } from "./event-batch.ts";
import type { EventQueue } from "./queue.ts";

/** `queue`, telling `observe` how long each publish took to be taken (confirmed or synced). */
export function timePublishes(queue: EventQueue, observe: (seconds: number) => void): EventQueue {
  return {
    ...queue,
    async publish(batch: EventBatch) {
      const started = performance.now();
      await queue.publish(batch);
      observe((performance.now() - started) / 1000);
    },
  };
}
