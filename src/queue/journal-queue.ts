import {
  appendFileSync,
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import type { ErrorReporter } from "../observability/dependency-errors.ts";
import type { EventBatch } from "./event-batch.ts";
import { type BatchHandler, type EventQueue, outcome, QueueUnavailableError } from "./queue.ts";

/** Options of {@link createJournalQueue}. */
export interface JournalQueueOptions {
  /** Its own directory (segments, checkpoint, dead letters). */
  dir: string;
  /** Batches handed to the consumer at once, unanswered (Infinity: as many as `maxLentRows` allows). */
  prefetch: number;
  /**
   * Rows handed to the consumer at once, unanswered: past them it gets no
   * more batches (but always one) until it answers some. What it holds it
   * keeps in memory, as rows. @default no bound but `prefetch`
   */
  maxLentRows?: number;
  /** A segment's size before the next one starts. @default 64 MiB */
  segmentBytes?: number;
  /** Bytes of batches kept, not yet stored, before publishes are refused (503). @default 256 MiB */
  maxPendingBytes?: number;
  /**
   * Bytes of those batches also held in memory, so that a consumer keeping
   * up never reads them back; the rest are read from their segment when
   * their turn comes. @default 16 MiB
   */
  maxHeldBytes?: number;
  /** Before a batch handed back (requeue) is delivered again (ms). @default 200 */
  retryDelayMs?: number;
  /** Told of what was found damaged at start, and of failed writes. */
  onError: ErrorReporter;
  /** Told, at start, of the batches kept from before (to deliver again), if any. */
  onRecover?: (batches: number, rows: number) => void;
}

/** A record: [u32 length][u32 crc32 of the payload], then the payload: [u32 meta length][meta JSON][body]. */
const HEADER = 8;

interface Entry {
  /** The batch, while held in memory; otherwise it is read back from its record. */
  batch: EventBatch | undefined;
  rows: number;
  bytes: number;
  segment: number;
  /** Where its record starts in its segment. */
  offset: number;
  done: boolean;
}

const segmentName = (n: number) => `${String(n).padStart(10, "0")}.log`;

/**
 * The embedded queue: a durable local log. A publish appends the batch to
 * the current segment and resolves once it is on disk: writes that arrive
 * while one is being synced are written and synced together (group
 * commit), so an acknowledgement costs one fdatasync shared by everyone
 * waiting (about 0.2 ms here), not a chDB insert (tens of ms). The consumer
 * gets the batches in order, `prefetch` at a time; a batch is kept until
 * the consumer answers ack (or dead-letter: it goes to
 * `dead-letters.jsonl` with the reason), and a requeued one comes back.
 *
 * After a crash, every batch from the checkpoint on is delivered again: a
 * record cut short by the crash (its publish was never answered) and
 * anything after it are dropped. Batches stored just before the crash
 * come back too, and the consumer, whose in-process dedupe forgot them,
 * asks the warehouse which ids it has, so each is stored once.
 */
export async function createJournalQueue(options: JournalQueueOptions): Promise<EventQueue> {
  const { dir, prefetch } = options;
  const segmentBytes = options.segmentBytes ?? 64 << 20;
  const maxPendingBytes = options.maxPendingBytes ?? 256 << 20;
  const maxHeldBytes = options.maxHeldBytes ?? 16 << 20;
  const retryDelayMs = options.retryDelayMs ?? 200;
  const maxLentRows = options.maxLentRows ?? Number.POSITIVE_INFINITY;
  mkdirSync(dir, { recursive: true });
  const checkpointFile = join(dir, "checkpoint");

  /** Every batch not yet answered for good, in log order. */
  const kept: Entry[] = [];
  /** Batches to hand to the consumer. */
  const ready: Entry[] = [];
  let pendingBytes = 0;
  let heldBytes = 0;
  let inFlight = 0;
  let lentRows = 0;
  let handler: BatchHandler | undefined;
  let closed = false;

  // Recovery: the batches after the checkpoint, from every segment on disk.
  const segments = readdirSync(dir)
    .filter((f) => /^\d{10}\.log$/.test(f))
    .map((f) => Number(f.slice(0, 10)))
    .sort((a, b) => a - b);
  const checkpoint = readCheckpoint(checkpointFile);
  for (const n of segments) {
    if (n < checkpoint.segment) {
      rmSync(join(dir, segmentName(n)), { force: true });
      continue;
    }
    const path = join(dir, segmentName(n));
    const data = readFileSync(path);
    const from = n === checkpoint.segment ? checkpoint.offset : 0;
    const { entries, end } = readRecords(data, n, from);
    if (end < data.length) {
      options.onError(
        new Error(`${path}: ${data.length - end} bytes after offset ${end} are not a whole record`),
        "journal: a write cut short by a crash (never acknowledged); dropped",
      );
      writeFileSync(path, data.subarray(0, end));
    }
    // Not held: each is read back when delivered, since the backlog may be more than memory should hold.
    for (const e of entries) {
      kept.push(e);
      ready.push(e);
      pendingBytes += e.bytes;
    }
  }

  if (kept.length > 0) {
    options.onRecover?.(
      kept.length,
      kept.reduce((n, e) => n + e.rows, 0),
    );
  }
  let segment = segments.at(-1) ?? checkpoint.segment;
  let file: FileHandle = await open(join(dir, segmentName(segment)), "a");
  let size = (await file.stat()).size;
  /** Publishes waiting for the next write and sync. */
  let waiting: { record: Buffer; entry: Entry; resolve: () => void; reject: (e: Error) => void }[] =
    [];
  let writing: Promise<void> | undefined;

  async function writeWaiting() {
    while (waiting.length > 0) {
      const group = waiting;
      waiting = [];
      const bytes = group.reduce((n, g) => n + g.record.length, 0);
      if (size > 0 && size + bytes > segmentBytes) {
        await file.close();
        segment++;
        file = await open(join(dir, segmentName(segment)), "a");
        size = 0;
      }
      try {
        let offset = size;
        for (const g of group) {
          g.entry.segment = segment;
          g.entry.offset = offset;
          offset += g.record.length;
        }
        await file.writev(group.map((g) => g.record));
        await file.datasync();
        size += bytes;
      } catch (err) {
        // Cut what may have been written, so the next record follows a whole one.
        await file.truncate(size).catch(() => {});
        options.onError(err, "journal: writing a batch");
        for (const g of group) {
          g.reject(new QueueUnavailableError(`the local log could not be written: ${String(err)}`));
        }
        continue;
      }
      for (const g of group) {
        kept.push(g.entry);
        ready.push(g.entry);
        pendingBytes += g.entry.bytes;
        if (heldBytes + g.entry.bytes <= maxHeldBytes) heldBytes += g.entry.bytes;
        else g.entry.batch = undefined;
        g.resolve();
      }
      deliver();
    }
  }

  /** One writer at a time; one that ends with publishes waiting (they came as it finished) starts again. */
  function startWriting() {
    writing ??= writeWaiting().finally(() => {
      writing = undefined;
      if (waiting.length > 0) startWriting();
    });
  }

  function deliver() {
    while (
      handler !== undefined &&
      !closed &&
      inFlight < prefetch &&
      (inFlight === 0 || lentRows < maxLentRows) &&
      ready.length > 0
    ) {
      const entry = ready.shift() as Entry;
      inFlight++;
      lentRows += entry.rows;
      let batch: EventBatch;
      try {
        batch = load(entry);
      } catch (err) {
        options.onError(err, "journal: reading a batch back");
        inFlight--;
        lentRows -= entry.rows;
        setTimeout(() => {
          ready.unshift(entry);
          deliver();
        }, retryDelayMs).unref();
        return;
      }
      void handler(batch)
        .catch((err: unknown) => outcome.requeue(String(err)))
        .then((result) => {
          inFlight--;
          lentRows -= entry.rows;
          if (result.action === "requeue") {
            setTimeout(() => {
              ready.unshift(entry);
              deliver();
            }, retryDelayMs).unref();
            return;
          }
          if (result.action === "dead-letter") setAside(batch, result.reason);
          entry.done = true;
          pendingBytes -= entry.bytes;
          if (entry.batch) heldBytes -= entry.bytes;
          entry.batch = undefined;
          advance();
          deliver();
        });
    }
  }

  /** Segments read back from (file descriptors by number); closed once the checkpoint passes them. */
  const readers = new Map<number, number>();
  /**
   * The batch, from memory or read back from its record. Read at once (from
   * the page cache, tens of µs): batches go to the consumer in log order,
   * as they were accepted.
   */
  function load(entry: Entry): EventBatch {
    if (entry.batch) return entry.batch;
    let fd = readers.get(entry.segment);
    if (fd === undefined) {
      fd = openSync(join(dir, segmentName(entry.segment)), "r");
      readers.set(entry.segment, fd);
    }
    const record = Buffer.allocUnsafe(entry.bytes);
    readSync(fd, record, 0, entry.bytes, entry.offset);
    return decodeRecord(record);
  }

  function setAside(batch: EventBatch, reason: string) {
    const line = {
      id: batch.id,
      rows: batch.rows,
      reason,
      acceptedAt: batch.acceptedAt,
      body: batch.body.toString("utf8"),
    };
    appendFileSync(join(dir, "dead-letters.jsonl"), `${JSON.stringify(line)}\n`);
  }

  let checkpointTimer: NodeJS.Timeout | undefined;
  /** Moves the checkpoint past the batches answered for good, and drops the segments behind it. */
  function advance() {
    let moved = false;
    while (kept.length > 0 && kept[0]?.done) {
      kept.shift();
      moved = true;
    }
    if (!moved || checkpointTimer !== undefined) return;
    // At most every 100 ms: a checkpoint a little behind only means more redelivered after a crash.
    checkpointTimer = setTimeout(() => {
      checkpointTimer = undefined;
      // Closed: close saved it; a batch answered since is delivered again, and stored once.
      if (!closed) saveCheckpoint();
    }, 100);
  }

  function saveCheckpoint() {
    const next = kept[0];
    const at = next === undefined ? { segment, offset: size } : next;
    // Not synced: a checkpoint lost to a crash means more batches redelivered, each stored once.
    writeFileSync(checkpointFile, JSON.stringify({ segment: at.segment, offset: at.offset }));
    for (const n of readdirSync(dir)) {
      if (/^\d{10}\.log$/.test(n) && Number(n.slice(0, 10)) < at.segment) rmSync(join(dir, n));
    }
    for (const [n, fd] of readers) {
      if (n >= at.segment) continue;
      readers.delete(n);
      closeSync(fd);
    }
  }

  return {
    kind: "local log",
    async publish(batch: EventBatch) {
      if (closed) throw new QueueUnavailableError("the local log is closed");
      if (pendingBytes > maxPendingBytes) {
        throw new QueueUnavailableError(
          `the consumer is behind: ${pendingBytes} bytes of batches wait to be stored`,
        );
      }
      const record = encodeRecord(batch);
      const entry: Entry = {
        batch,
        rows: batch.rows,
        bytes: record.length,
        segment: 0,
        offset: 0,
        done: false,
      };
      await new Promise<void>((resolve, reject) => {
        waiting.push({ record, entry, resolve, reject });
        startWriting();
      });
    },
    async consume(h) {
      handler = h;
      deliver();
    },
    async check() {
      if (closed) throw new QueueUnavailableError("the local log is closed");
    },
    async depth() {
      return ready.length;
    },
    async close() {
      closed = true;
      await writing;
      clearTimeout(checkpointTimer);
      checkpointTimer = undefined;
      saveCheckpoint();
      await file.close();
      for (const fd of readers.values()) closeSync(fd);
      readers.clear();
    },
  };
}

function encodeRecord(batch: EventBatch): Buffer {
  const meta = Buffer.from(
    JSON.stringify({
      id: batch.id,
      rows: batch.rows,
      acceptedAt: batch.acceptedAt,
      requestIds: batch.requestIds.slice(0, 20),
    }),
  );
  const record = Buffer.allocUnsafe(HEADER + 4 + meta.length + batch.body.length);
  record.writeUInt32LE(record.length - HEADER, 0);
  record.writeUInt32LE(meta.length, HEADER);
  meta.copy(record, HEADER + 4);
  batch.body.copy(record, HEADER + 4 + meta.length);
  record.writeUInt32LE(crc32(record.subarray(HEADER)), 4);
  return record;
}

/** The batch in a whole record, as {@link encodeRecord} made it. */
function decodeRecord(record: Buffer): EventBatch {
  const metaLength = record.readUInt32LE(HEADER);
  const meta = JSON.parse(record.toString("utf8", HEADER + 4, HEADER + 4 + metaLength)) as {
    id: string;
    rows: number;
    acceptedAt: number;
    requestIds: string[];
  };
  return { ...meta, body: record.subarray(HEADER + 4 + metaLength) };
}

/** The whole records in `data` from `from` (checked, not decoded), and where the last one ends. */
function readRecords(data: Buffer, segment: number, from: number) {
  const entries: Entry[] = [];
  let at = from;
  while (at + HEADER <= data.length) {
    const length = data.readUInt32LE(at);
    const end = at + HEADER + length;
    if (end > data.length) break;
    if (crc32(data.subarray(at + HEADER, end)) !== data.readUInt32LE(at + 4)) break;
    entries.push({
      batch: undefined,
      rows: decodeRecord(data.subarray(at, end)).rows,
      bytes: end - at,
      segment,
      offset: at,
      done: false,
    });
    at = end;
  }
  return { entries, end: at };
}

function readCheckpoint(file: string): { segment: number; offset: number } {
  try {
    const c = JSON.parse(readFileSync(file, "utf8")) as { segment: number; offset: number };
    if (Number.isInteger(c.segment) && Number.isInteger(c.offset)) return c;
  } catch {
    // none yet, or unreadable: start from the first segment
  }
  return { segment: 0, offset: 0 };
}

/** The batches set aside in `dir` (dead-lettered), as "id: reason". */
export function journalDeadLetters(dir: string): string[] {
  try {
    return readFileSync(join(dir, "dead-letters.jsonl"), "utf8")
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => {
        const d = JSON.parse(l) as { id: string; reason: string };
        return `${d.id}: ${d.reason}`;
      });
  } catch {
    return [];
  }
}
