import { type EventBatch, newBatchId, splitBatch } from "./event-batch.ts";
import type { EventQueue } from "./queue.ts";

/**
 * Most rows in one message. RabbitMQ bounds a consumer's unacknowledged
 * messages (TALLY_PREFETCH), not their rows: with a message a request (up
 * to 10,000 events), a backlog of 3M events made a consumer's peak RSS
 * 1,631 MiB; split to 500 rows, 662. The default prefetch (512) then holds
 * at most 256,000 rows.
 */
export const MAX_MESSAGE_ROWS = 500;

/** Options of {@link coalescePublishes}. */
export interface CoalesceOptions {
  /**
   * Most rows in one message: smaller batches are combined up to it, bigger
   * ones split. A consumer holds up to its prefetch in messages, so this
   * bounds what it holds in rows. @default 500
   */
  maxRows?: number;
  /** Publishes in flight at once; more wait and are combined. @default 4 */
  inFlight?: number;
}

/**
 * Combines small batches into bigger messages under load. Batches given in
 * the same turn of the event loop leave together at its end; up to
 * `inFlight` publishes go out at once; batches that arrive while they await
 * their confirms wait, and leave together as one message when one returns.
 * As in Nagle's algorithm, a message with room left waits while another
 * such is in flight; full ones go at once. At 2,000 single-event calls/s
 * that cut the broker's CPU by a fifth and the machine's by 8%, and the
 * p50 and p99 fell with them: a call now and then waits behind another
 * message's confirm, but every call waits less for a core. Each
 * caller's promise settles with the message that carried its batch, so an
 * acknowledgement still means the broker has it. At low load nothing waits;
 * under load the broker, the consumer and Redis see far fewer messages. A
 * batch of more than `maxRows` rows leaves as several messages, and its
 * caller is answered once the broker has every one: a part taken before
 * another failed is stored once, whatever the client's retry brings again,
 * as every copy of an event is.
 */
export function coalescePublishes(queue: EventQueue, options: CoalesceOptions = {}): EventQueue {
  const maxRows = options.maxRows ?? MAX_MESSAGE_ROWS;
  const limit = options.inFlight ?? 4;
  let active = 0;
  /** Publishes in flight with room left in their message (0 or 1). */
  let partial = 0;
  let waiting: { batch: EventBatch; resolve: () => void; reject: (err: unknown) => void }[] = [];
  let pumpScheduled = false;

  function pump() {
    while (active < limit && waiting.length > 0) {
      let rows = 0;
      let take = 0;
      while (
        take < waiting.length &&
        (take === 0 || rows + (waiting[take]?.batch.rows ?? 0) <= maxRows)
      ) {
        rows += waiting[take]?.batch.rows ?? 0;
        take++;
      }
      // Full: as many rows as a message holds, or the next batch would not fit.
      const full = take < waiting.length || rows >= maxRows;
      if (!full && partial > 0) return;
      if (!full) partial++;
      const group = waiting.slice(0, take);
      waiting = waiting.slice(take);
      const combined =
        group.length === 1 ? (group[0]?.batch as EventBatch) : combine(group.map((g) => g.batch));
      active++;
      queue
        .publish(combined)
        .then(
          () => {
            for (const g of group) g.resolve();
          },
          (err: unknown) => {
            for (const g of group) g.reject(err);
          },
        )
        .finally(() => {
          active--;
          if (!full) partial--;
          pump();
        });
    }
  }

  return {
    ...queue,
    kind: queue.kind,
    publish(batch) {
      if (batch.rows <= maxRows) return enqueue(batch);
      return Promise.all(splitBatch(batch, maxRows).map(enqueue)).then(() => {});
    },
  };

  function enqueue(batch: EventBatch) {
    return new Promise<void>((resolve, reject) => {
      waiting.push({ batch, resolve, reject });
      // Requests read in one turn of the event loop leave together: at
      // 2,000 single-event calls/s that halved the broker messages.
      if (pumpScheduled) return;
      pumpScheduled = true;
      setImmediate(() => {
        pumpScheduled = false;
        pump();
      });
    });
  }
}

function combine(batches: EventBatch[]): EventBatch {
  return {
    id: newBatchId(),
    body: Buffer.concat(batches.map((b) => b.body)),
    rows: batches.reduce((n, b) => n + b.rows, 0),
    acceptedAt: Math.min(...batches.map((b) => b.acceptedAt)),
    requestIds: batches.flatMap((b) => b.requestIds),
  };
}
