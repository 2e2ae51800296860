import type { DedupeStore } from "../dedupe/dedupe-store.ts";
import { BATCH_COLUMNS, type EventBatch, rowIds } from "../queue/event-batch.ts";
import { type BatchHandler, PoisonBatchError } from "../queue/queue.ts";
import type { Warehouse } from "../warehouse/warehouse.ts";

/** Options of {@link createBatchConsumer}. */
export interface BatchConsumerOptions {
  dedupe: DedupeStore;
  warehouse: Warehouse;
  /** Insert once this many rows are waiting... */
  flushRows: number;
  /** ...or once it holds this many batches (keep it below the queue's prefetch, which caps them)... */
  flushBatches: number;
  /** ...or once the oldest has waited this long (ms). */
  flushIntervalMs: number;
  /** Backoff between failed inserts, doubling up to the max (ms). @default [100, 5000] */
  retryDelayMs?: readonly [number, number];
  /** Told about failures the consumer works around. */
  onWarning?: (message: string, err: unknown) => void;
}

/** Running totals, for metrics and tests. */
export interface ConsumerCounts {
  /** Rows received from the queue (redeliveries included). */
  received: number;
  /** Rows dropped as repeats of an event already stored. */
  duplicates: number;
  /** Rows inserted into the warehouse. */
  inserted: number;
  /** Failed insert attempts (each retried). */
  insertFailures: number;
}

/** The consumer: `handle` is the queue's handler. */
export interface BatchConsumer {
  readonly handle: BatchHandler;
  readonly counts: Readonly<ConsumerCounts>;
  /** Stops retrying; batches still held are handed back to the queue. */
  close(): Promise<void>;
}

interface Pending {
  batch: EventBatch;
  ids: string[];
  rows: string[];
  done: (err?: unknown) => void;
}

/**
 * Gathers batches until `flushRows` rows, `flushBatches` batches or
 * `flushIntervalMs`, then: drops
 * repeats within the flush, claims the rest in the dedupe store in one round
 * trip, inserts the survivors in one insert, and only then resolves each
 * batch's handler (so the queue acknowledges it). A failed insert is retried
 * with backoff while the batches stay unacknowledged; if the process dies
 * instead, the queue redelivers them, and the dedupe claims, made in each
 * batch's own name, let them through again.
 */
export function createBatchConsumer(options: BatchConsumerOptions): BatchConsumer {
  const { dedupe, warehouse, flushRows, flushBatches, flushIntervalMs } = options;
  const [minDelay, maxDelay] = options.retryDelayMs ?? [100, 5000];
  const warn = options.onWarning ?? (() => {});
  const counts: ConsumerCounts = { received: 0, duplicates: 0, inserted: 0, insertFailures: 0 };
  let pending: Pending[] = [];
  let pendingRows = 0;
  let timer: NodeJS.Timeout | undefined;
  let flushing: Promise<void> | undefined;
  let closed = false;

  function schedule() {
    if (flushing !== undefined || pending.length === 0) return;
    if (pendingRows >= flushRows || pending.length >= flushBatches) {
      clearTimeout(timer);
      timer = undefined;
      startFlush();
    } else if (timer === undefined) {
      timer = setTimeout(() => {
        timer = undefined;
        startFlush();
      }, flushIntervalMs);
    }
  }

  function startFlush() {
    if (flushing !== undefined || pending.length === 0) return;
    const items = pending;
    pending = [];
    pendingRows = 0;
    flushing = flush(items).finally(() => {
      flushing = undefined;
      schedule();
    });
  }

  async function flush(items: Pending[]) {
    try {
      const body = await survivingRows(items);
      await insertWithRetry(body.rows, body.count);
      for (const item of items) item.done();
    } catch (err) {
      for (const item of items) item.done(err);
    }
  }

  async function survivingRows(items: Pending[]) {
    // First copy within the flush wins; only those are claimed.
    const seen = new Set<string>();
    const ids: string[] = [];
    const owners: string[] = [];
    const rows: string[] = [];
    for (const item of items) {
      for (let i = 0; i < item.ids.length; i++) {
        const id = item.ids[i] as string;
        if (seen.has(id)) continue;
        seen.add(id);
        ids.push(id);
        owners.push(item.batch.id);
        rows.push(item.rows[i] as string);
      }
    }
    let keep: boolean[] | undefined;
    try {
      keep = await dedupe.claim(ids, owners);
    } catch (err) {
      // Without the store, insert everything: the warehouse collapses repeats
      // (first accepted copy wins), so stats stay exact; only storage grows.
      warn(`dedupe store (${dedupe.kind}) unavailable; inserting without it`, err);
    }
    let text = "";
    let count = 0;
    for (let i = 0; i < rows.length; i++) {
      if (keep !== undefined && !keep[i]) continue;
      text += `${rows[i]}\n`;
      count++;
    }
    const received = items.reduce((n, item) => n + item.rows.length, 0);
    counts.duplicates += received - count;
    return { rows: text, count };
  }

  async function insertWithRetry(body: string, count: number) {
    if (count === 0) return;
    let delay = minDelay;
    for (;;) {
      try {
        await warehouse.insertTsv("events", BATCH_COLUMNS, body);
        counts.inserted += count;
        return;
      } catch (err) {
        counts.insertFailures++;
        if (closed) throw err;
        warn(`insert of ${count} rows failed; retrying in ${delay} ms`, err);
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, maxDelay);
      }
    }
  }

  const handle: BatchHandler = (batch) => {
    if (closed) return Promise.reject(new Error("the consumer is closing"));
    let parsed: { ids: string[]; rows: string[] };
    try {
      parsed = rowIds(batch.body);
    } catch (err) {
      return Promise.reject(new PoisonBatchError(`batch ${batch.id}: ${String(err)}`));
    }
    counts.received += parsed.rows.length;
    return new Promise<void>((resolve, reject) => {
      pending.push({
        batch,
        ...parsed,
        done: (err) => (err === undefined ? resolve() : reject(err)),
      });
      pendingRows += parsed.rows.length;
      schedule();
    });
  };

  return {
    handle,
    counts,
    async close() {
      closed = true;
      clearTimeout(timer);
      const held = pending;
      pending = [];
      for (const item of held) item.done(new Error("the consumer is closing"));
      await flushing;
    },
  };
}
