import type { Logger } from "pino";
import type { DedupeStore } from "../dedupe/dedupe-store.ts";
import { ROW_COLUMNS, rowIds } from "../event/row-format.ts";
import type { Metrics } from "../observability/metrics.ts";
import type { EventBatch } from "../queue/event-batch.ts";
import { type BatchHandler, type BatchOutcome, outcome } from "../queue/queue.ts";
import type { Warehouse } from "../warehouse/warehouse.ts";
import { backoffMs, insertErrorKind } from "./insert-errors.ts";
import type { StoredIds } from "./stored-ids.ts";

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
  /** Backoff between failed inserts, doubling up to the max, jittered (ms). @default [100, 5000] */
  retryDelayMs?: readonly [number, number];
  /**
   * Tries of one insert before its batches are handed back to the queue
   * (retryable errors) or its flush is split to find the batch that fails.
   * While the warehouse does not answer at all, tries go on: no batch is to
   * blame for an outage. @default 8
   */
  insertAttempts?: number;
  /** Told when the dedupe store cannot answer (the warehouse is asked instead). */
  onDedupeError: (err: unknown, context?: string) => void;
  /**
   * The deleted users (warehouse/deletions.ts loadTombstones): user_id as
   * escaped in a row, and the time (a row's text form) before which their
   * events are dropped. Asked again before each insert attempt.
   */
  tombstones?: () => ReadonlyMap<string, string>;
  /**
   * The ids the events table may hold, where this consumer is its one
   * writer (chDB): only those are asked about when the dedupe store cannot
   * vouch. Without it, every id is asked.
   */
  storedIds?: StoredIds;
  metrics: Metrics;
  /** Flushes (with the request ids they carry) and failures worked around. */
  log: Logger;
}

/** The consumer: `handle` is the queue's handler. */
export interface BatchConsumer {
  readonly handle: BatchHandler;
  /** Throws, naming the error, while the current insert has failed for longer than `ms`. */
  checkStuck(ms: number): void;
  /** Stops retrying; batches still held are handed back to the queue. */
  close(): Promise<void>;
}

/** A flush's first-copy rows, and what the dedupe store said of each. */
interface Claimed {
  ids: string[];
  rows: string[];
  /** The index, in the flush, of the batch each id came from. */
  owners: number[];
  keep: boolean[];
  /** The store was down or forgets on restart: the warehouse has the last word. */
  askWarehouse: boolean;
}

/**
 * A batch until its flush, with its ids and rows as text. Held as its bytes
 * and where its rows end instead (aa642e5), it inserted no faster, and the
 * embedded peak after 3M events rose by 10-30 MiB.
 */
interface Pending {
  batch: EventBatch;
  ids: string[];
  rows: string[];
  done: (result: BatchOutcome) => void;
}

/** A batch's rows that survived dedupe, to insert together with others'. */
interface Survivors {
  item: Pending;
  rows: string[];
}

/** An insert that gave up: retryable errors outlasted the tries, or the rows are bad. */
class InsertFailed extends Error {
  readonly kind: "bad-data" | "retryable";
  constructor(kind: "bad-data" | "retryable", cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.kind = kind;
  }
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
  const { storedIds } = options;
  const retryDelay = options.retryDelayMs ?? [100, 5000];
  const insertAttempts = options.insertAttempts ?? 8;
  /** Since when the current insert has been failing, and why. */
  let stuck: { since: number; error: string } | undefined;
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
    let survivors: Survivors[];
    try {
      const claims = await claimed;
      await previous; // never rejects: flush answers its batches instead
      survivors = await survivingRows(items, claims);
    } catch (err) {
      // The warehouse could not be asked what it holds: try the batches again later.
      for (const item of items) item.done(outcome.requeue(`dedupe check failed: ${String(err)}`));
      return;
    }
    const count = survivors.reduce((n, s) => n + s.rows.length, 0);
    await store(survivors);
    const now = Date.now();
    for (const item of items)
      metrics.acceptedToQueryable.observe((now - item.batch.acceptedAt) / 1000);
    metrics.flushRows.observe(count);
    log.info(
      {
        rows: count,
        batches: items.length,
        requestIds: [...new Set(items.flatMap((i) => i.batch.requestIds))].slice(0, 20),
      },
      "flushed",
    );
  }

  /**
   * Inserts the batches' rows together and answers each batch. When the
   * insert gives up on bad rows (or on an error that outlasted its tries
   * while the warehouse answers), the batches are split in halves and each
   * half is stored alone, down to the one batch that fails: that one is
   * dead-lettered with the reason and the rest are stored. At most about
   * log2(batches) rounds of tries, so a poison batch is set aside in bounded
   * time while every other batch goes through.
   */
  async function store(group: Survivors[]): Promise<void> {
    try {
      await insertWithRetry(group);
      for (const s of group) s.item.done(outcome.ack);
      return;
    } catch (err) {
      const failed = err as InsertFailed;
      const blameless = failed.kind === "retryable" && !(await warehouseAnswers());
      if (closed || blameless) {
        for (const s of group) s.item.done(outcome.requeue(failed.message));
        return;
      }
      if (group.length === 1) {
        const [only] = group as [Survivors];
        if (failed.kind === "retryable") {
          // The broker's delivery limit dead-letters it if this never heals.
          only.item.done(outcome.requeue(failed.message));
          return;
        }
        metrics.batchesDeadLettered.inc();
        log.error(
          { err: failed.cause, batch: only.item.batch.id, rows: only.rows.length },
          "dead-lettering a batch ClickHouse cannot read",
        );
        only.item.done(outcome.deadLetter(`ClickHouse refused its rows: ${failed.message}`));
        return;
      }
    }
    const half = Math.ceil(group.length / 2);
    await store(group.slice(0, half));
    await store(group.slice(half));
  }

  async function warehouseAnswers(): Promise<boolean> {
    try {
      await warehouse.check();
      return true;
    } catch {
      return false;
    }
  }

  /** The group's rows as one body, less those of deleted users from before their deletion. */
  function rowsToInsert(group: Survivors[]): { body: string; count: number; dropped: number } {
    const tombstones = options.tombstones?.();
    // Most of the time no one is deleted: no row is looked at.
    const deleted = tombstones !== undefined && tombstones.size > 0 ? tombstones : undefined;
    let body = "";
    let count = 0;
    let dropped = 0;
    for (const s of group) {
      for (const row of s.rows) {
        if (deleted !== undefined && isDeleted(row, deleted)) {
          dropped++;
          continue;
        }
        body += `${row}\n`;
        count++;
      }
    }
    return { body, count, dropped };
  }

  /**
   * Drops repeats within each batch and claims the rest: batches the store
   * knows whole (the API's claim found all their ids theirs) are kept
   * without claiming each id; the others' ids are claimed in one round trip.
   */
  async function claim(items: Pending[]): Promise<Claimed> {
    // The first copy within each batch is claimed; between batches the
    // store decides, not their order in the flush: the API claims a batch's
    // ids once the broker has it (queue/claim-on-accept.ts), so a copy
    // accepted first wins even when a later copy's batch comes first here.
    const ids: string[] = [];
    const owners: number[] = [];
    const rows: string[] = [];
    for (let b = 0; b < items.length; b++) {
      const item = items[b] as Pending;
      const seen = new Set<string>();
      for (let i = 0; i < item.ids.length; i++) {
        const id = item.ids[i] as string;
        if (seen.has(id)) continue;
        seen.add(id);
        ids.push(id);
        owners.push(b);
        rows.push(item.rows[i] as string);
      }
    }
    const started = performance.now();
    try {
      const whole = await dedupe.whole(items.map((item) => item.batch.id));
      const asked: number[] = [];
      for (let i = 0; i < ids.length; i++) if (!whole[owners[i] as number]) asked.push(i);
      const answers = await dedupe.claim(
        asked.map((i) => ids[i] as string),
        asked.map((i) => items[owners[i] as number]?.batch.id as string),
      );
      const keep = owners.map((b) => whole[b] === true);
      asked.forEach((i, j) => {
        keep[i] = answers[j] as boolean;
      });
      metrics.redisRoundTrip.observe((performance.now() - started) / 1000);
      // A store that forgets on restart cannot vouch for what came before it.
      return { ids, rows, owners, keep, askWarehouse: !dedupe.durable };
    } catch (err) {
      // Without the store, ask the warehouse instead: slower, but a repeat
      // with other fields must not reach the rollups, where it would count.
      options.onDedupeError(
        err,
        `dedupe store (${dedupe.kind}) unavailable; checking the warehouse instead`,
      );
      return { ids, rows, owners, keep: ids.map(() => true), askWarehouse: true };
    }
  }

  /** Each batch's rows to insert: claimed, and, where the store cannot vouch, not yet stored. */
  async function survivingRows(items: Pending[], claims: Claimed): Promise<Survivors[]> {
    const { ids, rows, owners } = claims;
    const keep = claims.askWarehouse ? await notStored(ids, rows, claims.keep) : claims.keep;
    const survivors = items.map((item) => ({ item, rows: [] as string[] }));
    // The store says yes to one batch's copy of an id; without it (the
    // warehouse asked), each batch's copy looks new: keep the first only.
    const kept = claims.askWarehouse ? new Set<string>() : undefined;
    let count = 0;
    for (let i = 0; i < rows.length; i++) {
      if (!keep[i]) continue;
      if (kept !== undefined) {
        if (kept.has(ids[i] as string)) continue;
        kept.add(ids[i] as string);
      }
      survivors[owners[i] as number]?.rows.push(rows[i] as string);
      // Before the insert: should it fail part-way, a retry asks about the id, and is told.
      storedIds?.add(ids[i] as string);
      count++;
    }
    const received = items.reduce((n, item) => n + item.rows.length, 0);
    metrics.eventsDeduplicated.inc(received - count);
    return survivors;
  }

  /**
   * `keep`, less the ids the events table holds as another copy (asked in
   * chunks that fit a URL; only those `storedIds` may hold). A stored copy
   * with this row's accepted_at is this row itself, stored by an earlier
   * delivery of its batch whose insert may have stopped part-way (the
   * process killed while the views ran): it is stored again, which the
   * events table and the rollups (sets) absorb, so no view is left without it.
   */
  async function notStored(ids: readonly string[], rows: readonly string[], keep: boolean[]) {
    const asked = ids.filter((id, i) => keep[i] && (storedIds?.mayHold(id) ?? true));
    const stored = new Map<string, Set<string>>();
    // Each query reads the granules that hold any of its ids, most of the
    // table for thousands of random ids: so as few queries as the URL of a
    // server's parameters allows (10,000 UUIDs are about 390 KB of its 1 MiB).
    for (let i = 0; i < asked.length; i += 10_000) {
      const found = await warehouse.query<{ id: string; at: string }>(
        `SELECT DISTINCT toString(event_id) AS id, toString(accepted_at) AS at
         FROM ${warehouse.db}.events WHERE event_id IN {ids:Array(UUID)}`,
        { ids: asked.slice(i, i + 10_000) },
      );
      for (const r of found) {
        const copies = stored.get(r.id) ?? new Set<string>();
        copies.add(r.at);
        stored.set(r.id, copies);
      }
    }
    return keep.map((k, i) => {
      const copies = stored.get(ids[i] as string);
      return k && (copies === undefined || copies.has(acceptedAtOf(rows[i] as string)));
    });
  }

  /**
   * One insert of the group's rows, tried up to `insertAttempts` times with
   * jittered backoff; past that, or at once for bad rows, it throws
   * {@link InsertFailed}. While the warehouse does not answer at all, it goes
   * on trying (and `checkStuck` says so), since no batch is to blame.
   */
  async function insertWithRetry(group: Survivors[]) {
    for (let attempt = 0; ; attempt++) {
      // Again at each try: a user deleted meanwhile loses their rows from before it.
      const { body, count, dropped } = rowsToInsert(group);
      if (count === 0) {
        metrics.eventsDroppedDeleted.inc(dropped);
        return;
      }
      try {
        await warehouse.insert("events", {
          format: "TabSeparated",
          columns: ROW_COLUMNS,
          text: body,
        });
        metrics.eventsInserted.inc(count);
        metrics.eventsDroppedDeleted.inc(dropped);
        stuck = undefined;
        metrics.consumerStuckSeconds.set(0);
        return;
      } catch (err) {
        const kind = insertErrorKind(err);
        metrics.insertFailures.inc({ kind });
        stuck ??= { since: Date.now(), error: String(err) };
        stuck.error = String(err);
        if (kind === "bad-data" || closed) throw new InsertFailed(kind, err);
        if (attempt + 1 >= insertAttempts && (await warehouseAnswers())) {
          throw new InsertFailed(kind, err);
        }
        const delay = Math.round(backoffMs(Math.min(attempt, 30), retryDelay));
        log.warn(
          { err, attempt: attempt + 1 },
          `insert of ${count} rows failed; retrying in ${delay} ms`,
        );
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  const handle: BatchHandler = (batch) => {
    if (closed) return Promise.resolve(outcome.requeue("the consumer is closing"));
    let parsed: { ids: string[]; rows: string[] };
    try {
      parsed = rowIds(batch.body);
    } catch (err) {
      metrics.batchesDeadLettered.inc();
      return Promise.resolve(outcome.deadLetter(`batch ${batch.id}: ${String(err)}`));
    }
    metrics.consumerLag.set(Math.max(0, Date.now() - batch.acceptedAt) / 1000);
    return new Promise<BatchOutcome>((done) => {
      pending.push({ batch, ...parsed, done });
      pendingRows += parsed.rows.length;
      schedule();
    });
  };

  return {
    handle,
    checkStuck(ms) {
      if (stuck === undefined) return;
      const seconds = (Date.now() - stuck.since) / 1000;
      metrics.consumerStuckSeconds.set(seconds);
      if (seconds * 1000 >= ms) {
        throw new Error(
          `the consumer's inserts have failed for ${Math.round(seconds)} s: ${stuck.error}`,
        );
      }
    },
    async close() {
      closed = true;
      clearTimeout(timer);
      const held = pending;
      pending = [];
      for (const item of held) item.done(outcome.requeue("the consumer is closing"));
      await claiming;
      await inserting;
    },
  };
}

/** Where a row's fields start: event_id (36), a tab, occurred_at (23), a tab, then user_id. */
const TIME_AT = 37;
const USER_AT = TIME_AT + 24;

/** Whether a row (row-format.ts) is a deleted user's, from before their deletion. */
function isDeleted(row: string, deleted: ReadonlyMap<string, string>): boolean {
  const end = row.indexOf("\t", USER_AT);
  const before = deleted.get(row.slice(USER_AT, end));
  return before !== undefined && row.slice(TIME_AT, TIME_AT + 23) < before;
}

/** A row's accepted_at, as ClickHouse writes it back (its last field). */
function acceptedAtOf(row: string): string {
  return row.slice(row.lastIndexOf("\t") + 1);
}
