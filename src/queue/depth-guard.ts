import type { EventQueue } from "./queue.ts";
import { QueueUnavailableError } from "./queue.ts";

/** The queue cannot take more now; try again after `retryAfterSeconds`. */
export class QueueBusyError extends QueueUnavailableError {
  override name = "QueueBusyError";
  readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds: number) {
    super(message);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** Options of {@link guardDepth}. */
export interface DepthGuardOptions {
  /** Refuse new batches while more than this many wait in the queue. */
  maxDepth: number;
  /** How often the depth is read. @default 500 */
  probeMs?: number;
}

/**
 * Backpressure: while more than `maxDepth` batches wait (the consumers are
 * behind) or the broker does not answer, publishes are refused at once with
 * a retry hint, instead of piling up without bound or waiting on a dead
 * connection. The depth is read in the background, never on a request.
 */
export function guardDepth(queue: EventQueue, options: DepthGuardOptions): EventQueue {
  let depth = 0;
  let unreachable: string | undefined;
  let probing = false;
  const timer = setInterval(() => {
    if (probing) return;
    probing = true;
    queue
      .depth()
      .then(
        (d) => {
          depth = d;
          unreachable = undefined;
        },
        (err: unknown) => {
          unreachable = err instanceof Error ? err.message : String(err);
        },
      )
      .finally(() => {
        probing = false;
      });
  }, options.probeMs ?? 500);
  timer.unref();
  return {
    ...queue,
    publish(batch) {
      if (unreachable !== undefined) {
        return Promise.reject(new QueueBusyError(`the queue does not answer (${unreachable})`, 1));
      }
      if (depth > options.maxDepth) {
        return Promise.reject(
          new QueueBusyError(
            `more than ${options.maxDepth} batches wait in the queue (${depth}): consumers are behind`,
            5,
          ),
        );
      }
      return queue.publish(batch);
    },
    async close() {
      clearInterval(timer);
      await queue.close();
    },
  };
}
