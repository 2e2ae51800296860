import type { Logger } from "pino";
import type { DedupeStore } from "../dedupe/dedupe-store.ts";
import type { Metrics } from "../observability/metrics.ts";
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
  metrics: Metrics;
  /** Flushes (with the request ids they carry) and failures worked around. */
  log: Logger;
}

/** The consumer: `handle` is the queue's handler. */
export interface BatchConsumer {
  readonly handle: BatchHandler;
  /** Stops retrying; batches still held are handed back to the queue. */
  close(): Promise<void>;
}

/** A flush's first-copy rows, and what the dedupe store said of each. */
interface Claimed {
  ids: string[];
  rows: string[];
  keep: boolean[];
  /** The store was down or forgets on restart: the warehouse has the last word. */
  askWarehouse: boolean;
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
 *
 * Two flushes overlap: the next one's claims go to Redis while this one's
 * insert runs in ClickHouse (inserts themselves go one at a time, in order).
 * A claim belongs to the message that made it, so overlapping changes
 * nothing about which copy is kept; asking the warehouse instead (store down
 * or forgetful) waits for the insert before, so that it sees its rows.
 */
export function createBatchConsumer(options: BatchConsumerOptions): BatchConsumer {
  const { dedupe, warehouse, flushRows, flushBatches, flushIntervalMs, metrics, log } = options;
  const [minDelay, maxDelay] = options.retryDelayMs ?? [100, 5000];
  let pending: Pending[] = [];
  let pendingRows = 0;
  let timer: NodeJS.Timeout | undefined;
  /** The newest flush's dedupe round trip, while it runs. */
  let claiming: Promise<void> | undefined;
  /** The newest flush, to its end: each insert waits for the one before. */
  let inserting: Promise<void> = Promise.resolve();
  /** Flushes begun and not ended: one inserting, one claimed and waiting, at most. */
  let flushes = 0;
  const busy = () => claiming !== undefined || flushes >= 2;
  let closed = false;

  function schedule() {
    if (busy() || pending.length === 0) return;
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
    if (busy() || pending.length === 0) return;
    // About flushRows rows at a time, however much piled up meanwhile.
    let take = 0;
    let rows = 0;
    while (take < pending.length && (rows < flushRows || take === 0)) {
      rows += pending[take]?.rows.length ?? 0;
      take++;
    }
    const items = pending.slice(0, take);
    pending = pending.slice(take);
    pendingRows -= rows;
    const claimed = claim(items);
    const settled = () => {
      claiming = undefined;
      schedule();
    };
    claiming = claimed.then(settled, settled);
    flushes++;
    inserting = flush(items, claimed, inserting).finally(() => {
      flushes--;
      schedule();
    });
  }

  async function flush(items: Pending[], claimed: Promise<Claimed>, previous: Promise<void>) {
    try {
      const claims = await claimed;
      await previous; // never rejects: flush answers its batches instead
      const body = await survivingRows(items, claims);
      await insertWithRetry(body.rows, body.count);
      const now = Date.now();
      for (const item of items) {
        metrics.acceptedToQueryable.observe((now - item.batch.acceptedAt) / 1000);
        item.done();
      }
      metrics.flushRows.observe(body.count);
      log.info(
        {
          rows: body.count,
          batches: items.length,
          requestIds: [...new Set(items.flatMap((i) => i.batch.requestIds))].slice(0, 20),
        },
        "flushed",
      );
    } catch (err) {
      for (const item of items) item.done(err);
    }
  }

  /** Drops repeats within the flush and claims the rest, in one round trip. */
  async function claim(items: Pending[]): Promise<Claimed> {
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
    const started = performance.now();
    try {
      const keep = await dedupe.claim(ids, owners);
      metrics.redisRoundTrip.observe((performance.now() - started) / 1000);
      // A store that forgets on restart cannot vouch for what came before it.
      return { ids, rows, keep, askWarehouse: !dedupe.durable };
    } catch (err) {
      // Without the store, ask the warehouse instead: slower, but a repeat
      // with other fields must not reach the rollups, where it would count.
      log.warn(
        { err },
        `dedupe store (${dedupe.kind}) unavailable; checking the warehouse instead`,
      );
      return { ids, rows, keep: ids.map(() => true), askWarehouse: true };
    }
  }

  /** The rows to insert: claimed, and, where the store cannot vouch, not yet stored. */
  async function survivingRows(items: Pending[], claims: Claimed) {
    const { ids, rows } = claims;
    const keep = claims.askWarehouse ? await notStored(ids, claims.keep) : claims.keep;
    let text = "";
    let count = 0;
    for (let i = 0; i < rows.length; i++) {
      if (!keep[i]) continue;
      text += `${rows[i]}\n`;
      count++;
    }
    const received = items.reduce((n, item) => n + item.rows.length, 0);
    metrics.eventsDeduplicated.inc(received - count);
    return { rows: text, count };
  }

  /** `keep`, less the ids the events table already holds (asked in chunks that fit a URL). */
  async function notStored(ids: readonly string[], keep: boolean[]): Promise<boolean[]> {
    const asked = ids.filter((_, i) => keep[i]);
    const stored = new Set<string>();
    for (let i = 0; i < asked.length; i += 2000) {
      const rows = await warehouse.rows<{ id: string }>(
        `SELECT DISTINCT toString(event_id) AS id FROM ${warehouse.db}.events WHERE event_id IN {ids:Array(UUID)}`,
        { ids: asked.slice(i, i + 2000) },
      );
      for (const r of rows) stored.add(r.id);
    }
    return keep.map((k, i) => k && !stored.has(ids[i] as string));
  }

  async function insertWithRetry(body: string, count: number) {
    if (count === 0) return;
    let delay = minDelay;
    for (;;) {
      try {
        await warehouse.insertTsv("events", BATCH_COLUMNS, body);
        metrics.eventsInserted.inc(count);
        return;
      } catch (err) {
        metrics.insertFailures.inc();
        if (closed) throw err;
        log.warn({ err }, `insert of ${count} rows failed; retrying in ${delay} ms`);
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
    metrics.consumerLag.set(Math.max(0, Date.now() - batch.acceptedAt) / 1000);
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
    async close() {
      closed = true;
      clearTimeout(timer);
      const held = pending;
      pending = [];
      for (const item of held) item.done(new Error("the consumer is closing"));
      await claiming;
      await inserting;
    },
  };
}
