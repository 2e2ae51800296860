import { createReadStream, createWriteStream, existsSync, type WriteStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import { create } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { Event } from "../../../gen/tally/v1/event_pb.js";
import {
  type IngestRequest,
  IngestRequestSchema,
  IngestService,
} from "../../../gen/tally/v1/ingest_pb.js";
import { storedProperties, validateEvent } from "../../event/validate-event.ts";
import {
  type Checkpoint,
  clearCheckpoint,
  fileIdentity,
  loadCheckpoint,
  saveCheckpoint,
} from "./checkpoint.ts";
import {
  type Header,
  type RowEvent,
  readHeader,
  readRow,
  toEvent,
  writeEvent,
} from "./csv-events.ts";
import { csvRecords } from "./csv-records.ts";
import type { ImportProgress } from "./progress.ts";

/** Options of {@link runImport}. */
export interface ImportOptions {
  /** A CSV file (.csv or .csv.gz), or "-" for standard input. */
  input: string;
  /** The service, e.g. http://127.0.0.1:8080. */
  url: string;
  apiKey?: string | undefined;
  /** Events per stream message. @default 1000 */
  batchSize: number;
  /** Rows per stream, and so per checkpoint. @default 20000 */
  segmentRows: number;
  /** Streams in flight at once; the checkpoint still moves in line order. @default 4 */
  streams?: number;
  /** Parse and validate only; send nothing. */
  dryRun: boolean;
  /** Where rejected lines go. @default "<input>.rejects.csv" */
  rejectsPath?: string | undefined;
  /** Ignore a checkpoint and start from the first line. */
  restart: boolean;
  /** Stops the import; what the server answered for stays checkpointed. */
  signal?: AbortSignal;
  /** Tries per stream before giving up (dropped connection, UNAVAILABLE). @default 8 */
  attempts?: number;
  /** First retry delay, doubling (ms). @default 500 */
  retryDelayMs?: number;
  /** Told about a rejected line as it is found. */
  onReject?: (line: number, reason: string) => void;
  /** Told about retries and other notices. */
  onNotice?: (message: string) => void;
}

/** How an import went. */
export interface ImportSummary {
  rowsRead: number;
  accepted: number;
  rejected: number;
  durationMs: number;
  /** The line a resumed import continued after, if it resumed. */
  resumedAfterLine: number | undefined;
  /** Whether it was stopped before the end (a checkpoint remains). */
  interrupted: boolean;
  rejectsPath: string | undefined;
}

/** The import cannot go on: the message says why and what to do. */
export class ImportError extends Error {
  override name = "ImportError";
}

/**
 * Rows sent together as one stream, and what was refused among them before
 * sending. Its events are kept encoded, a request's bytes per batch, while
 * the segment waits for its stream and its answer (and any retry): Event
 * objects held that long cost the CLI a tenth of its CPU in garbage
 * collection and 70 MB of heap on 100,000 rows in flight.
 */
interface Segment {
  /** IngestRequests of up to batchSize events each, encoded. */
  requests: Uint8Array[];
  /** The request being written: the events read since the last one (`batched` of them). */
  batch: BinaryWriter;
  batched: number;
  /** The line of each event. */
  lines: number[];
  /** The text of each event's record, for the rejects file. */
  records: string[];
  /** The segment's last line, sent or not. */
  lastLine: number;
  rowsRead: number;
  rejected: Rejected[];
}

// Canceled too: a server shutting down cancels streams it cannot finish (ours are told apart by the signal).
const RETRYABLE = new Set([
  Code.Canceled,
  Code.Unavailable,
  Code.ResourceExhausted,
  Code.DeadlineExceeded,
  Code.Internal,
  Code.Unknown,
  Code.Aborted,
]);

/**
 * Streams a CSV file to IngestStream in segments of `segmentRows` rows, each
 * one client stream sent in batches. While one segment is in flight the next
 * is parsed. A segment whose stream fails in a retryable way is sent again
 * whole (event_ids make that harmless); once the server has answered it,
 * the checkpoint moves past its last line. Bad lines go to the rejects file
 * with their line number and reason, and never stop the import.
 */
export async function runImport(
  o: ImportOptions,
  progress: ImportProgress,
): Promise<ImportSummary> {
  const started = performance.now();
  const fromFile = o.input !== "-";
  let resumeAfter = 0;
  const totals = { rowsRead: 0, accepted: 0, rejected: 0 };
  let identity: Checkpoint["file"] | undefined;
  if (fromFile) {
    try {
      identity = await fileIdentity(o.input);
    } catch {
      throw new ImportError(`cannot read ${o.input}: no such file`);
    }
    progress.totalBytes = (await stat(o.input)).size;
    if (!o.dryRun && !o.restart) {
      const { checkpoint, stale } = await loadCheckpoint(o.input);
      if (stale) o.onNotice?.(`${o.input} changed since its last import stopped: starting over`);
      if (checkpoint !== undefined) {
        resumeAfter = checkpoint.linesDone;
        Object.assign(totals, {
          rowsRead: checkpoint.rowsRead,
          accepted: checkpoint.accepted,
          rejected: checkpoint.rejected,
        });
        o.onNotice?.(`resuming after line ${resumeAfter} (--restart to start over)`);
      }
    }
  }
  const rejectsPath =
    o.rejectsPath ??
    (fromFile
      ? `${o.input.replace(/\.csv(\.gz)?$/i, "")}.rejects.csv`
      : "tally-import.rejects.csv");
  let rejects: WriteStream | undefined;
  let rejectsWritten = 0;
  const writeRejects = (found: Rejected[]) => {
    if (found.length === 0) return;
    if (rejects === undefined) {
      const append = resumeAfter > 0 && existsSync(rejectsPath);
      rejects = createWriteStream(rejectsPath, { flags: append ? "a" : "w" });
      if (!append) rejects.write("line,reason,record\n");
    }
    for (const r of found.sort((a, b) => a.line - b.line)) {
      rejects.write(`${r.line},${csvField(r.reason)},${csvField(r.raw)}\n`);
    }
    rejectsWritten += found.length;
  };

  const client = createClient(IngestService, createGrpcTransport({ baseUrl: o.url }));
  const headers = o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : undefined;

  /** Sends a segment's events; answers how many the server accepted, and its rejections. */
  async function send(segment: Segment): Promise<{ accepted: number; rejected: Rejected[] }> {
    if (segment.lines.length === 0 || o.dryRun) {
      return { accepted: segment.lines.length, rejected: [] };
    }
    const attempts = o.attempts ?? 8;
    let delay = o.retryDelayMs ?? 500;
    for (let attempt = 1; ; attempt++) {
      try {
        const batches = async function* () {
          for (const request of segment.requests) yield encodedRequest(request);
        };
        const res = await client.ingestStream(batches(), { headers, signal: o.signal });
        return {
          accepted: Number(res.accepted),
          rejected: res.rejected.map((r) => {
            const i = Number(r.index);
            return {
              line: segment.lines[i] ?? 0,
              reason: asColumn(r.reason),
              raw: segment.records[i] ?? "",
            };
          }),
        };
      } catch (err) {
        const e = ConnectError.from(err);
        if (o.signal?.aborted) throw e;
        if (e.code === Code.Unauthenticated || e.code === Code.PermissionDenied) {
          throw new ImportError(
            `the server refused the API key (${e.rawMessage}): pass a valid one with --api-key KEY`,
          );
        }
        if (!RETRYABLE.has(e.code) || attempt >= attempts) {
          throw new ImportError(
            `could not send lines ${segment.lines[0]}-${segment.lastLine} to ${o.url} after ${attempt} tries: ${e.rawMessage}. ` +
              (fromFile
                ? "Check that the service is running, then run the same command again to resume."
                : "Check that the service is running."),
          );
        }
        // The server's Retry-After (rate limits, a full queue) wins over our own backoff.
        const retryAfterMs = Number(e.metadata.get("retry-after") ?? 0) * 1000;
        const wait = Math.max(delay, retryAfterMs);
        o.onNotice?.(
          `send failed (${e.rawMessage}); retrying in ${wait} ms (try ${attempt + 1} of ${attempts})`,
        );
        await new Promise((r) => setTimeout(r, wait));
        delay = Math.min(delay * 2, 15_000);
      }
    }
  }

  /** Once the server has answered a segment: count it, write its rejects, move the checkpoint. */
  async function commit(segment: Segment, answer: { accepted: number; rejected: Rejected[] }) {
    const found = [...segment.rejected, ...answer.rejected];
    writeRejects(found);
    for (const r of found) o.onReject?.(r.line, r.reason);
    totals.rowsRead += segment.rowsRead;
    totals.accepted += answer.accepted;
    totals.rejected += found.length;
    progress.rowsDone += answer.accepted + found.length;
    if (fromFile && identity !== undefined && !o.dryRun && segment.lastLine > 0) {
      await saveCheckpoint(o.input, {
        version: 1,
        file: identity,
        linesDone: segment.lastLine,
        ...totals,
      });
    }
  }

  // Up to `streams` segments are sent at once while the next is read (the
  // server's work on one overlaps the sending of another); each is committed
  // only after the one before it, so the checkpoint never passes a line
  // the server has not answered for.
  const streams = o.streams ?? 4;
  const sending: Promise<void>[] = [];
  const flush = async (segment: Segment) => {
    if (sending.length >= streams) await sending.shift();
    const answer = send(segment);
    answer.catch(() => {}); // awaited by its commit
    const previous = sending.at(-1) ?? Promise.resolve();
    const committed = previous.then(() => answer).then((a) => commit(segment, a));
    committed.catch(() => {}); // awaited by a later flush or at the end
    sending.push(committed);
  };

  let header: Header | undefined;
  let segment = newSegment();
  const now = Date.now();
  let interrupted = false;
  try {
    for await (const record of csvRecords(openText(o.input, progress))) {
      if (o.signal?.aborted) {
        interrupted = true;
        break;
      }
      if (header === undefined) {
        if (record.error !== undefined) {
          throw new ImportError(`line ${record.line}: ${record.error} in the header`);
        }
        try {
          header = readHeader(record.fields);
        } catch (err) {
          throw new ImportError(`line ${record.line}: ${(err as Error).message}`);
        }
        continue;
      }
      if (record.line <= resumeAfter) continue;
      progress.rowsRead++;
      segment.rowsRead++;
      segment.lastLine = record.line;
      if (record.error !== undefined) {
        segment.rejected.push({ line: record.line, reason: record.error, raw: record.raw });
        continue;
      }
      const event = readRow(record.fields, header);
      const reason =
        typeof event === "string" ? event : o.dryRun ? localReason(toEvent(event), now) : undefined;
      if (reason !== undefined) {
        segment.rejected.push({ line: record.line, reason, raw: record.raw });
        continue;
      }
      // A dry run sends nothing.
      if (!o.dryRun) {
        writeEvent(segment.batch, EVENTS_FIELD, event as RowEvent);
        segment.batched++;
      }
      segment.lines.push(record.line);
      segment.records.push(record.raw);
      if (segment.batched >= o.batchSize) encodeBatch(segment);
      if (segment.lines.length >= o.segmentRows) {
        encodeBatch(segment);
        await flush(segment);
        segment = newSegment();
      }
    }
    if (!interrupted) {
      encodeBatch(segment);
      await flush(segment);
    }
    // The last commit follows every other one: it settles once all are in, or with the first failure.
    await sending.at(-1);
  } catch (err) {
    await Promise.allSettled(sending);
    if (o.signal?.aborted) interrupted = true;
    else throw err;
  } finally {
    const stream = rejects;
    if (stream !== undefined) await new Promise((r) => stream.end(r));
  }
  if (interrupted && !fromFile)
    throw new ImportError("interrupted; standard input cannot be resumed");
  if (!interrupted && fromFile && !o.dryRun) await clearCheckpoint(o.input);
  return {
    ...totals,
    durationMs: performance.now() - started,
    resumedAfterLine: resumeAfter > 0 ? resumeAfter : undefined,
    interrupted,
    rejectsPath: rejectsWritten > 0 ? rejectsPath : undefined,
  };
}

interface Rejected {
  line: number;
  reason: string;
  raw: string;
}

function newSegment(): Segment {
  return {
    requests: [],
    batch: new BinaryWriter(),
    batched: 0,
    lines: [],
    records: [],
    lastLine: 0,
    rowsRead: 0,
    rejected: [],
  };
}

/** Encodes the segment's events read since its last request into a request of their own. */
function encodeBatch(segment: Segment) {
  if (segment.batched === 0) return;
  segment.requests.push(segment.batch.finish());
  segment.batched = 0;
}

/** IngestRequest's field of events, and its tag (length-delimited). */
const EVENTS_FIELD = 1;
const EVENTS_TAG = (EVENTS_FIELD << 3) | WireType.LengthDelimited;

/**
 * An IngestRequest whose bytes are `encoded` (as toBinary wrote them), sent
 * without decoding them: as the message's unknown fields, which toBinary
 * writes back as they are after their tag. The tag is the request's first
 * byte (field 1, events, length-delimited); the rest follows it unchanged.
 */
export function encodedRequest(encoded: Uint8Array): IngestRequest {
  if (encoded[0] !== EVENTS_TAG) throw new Error("not an encoded IngestRequest of events");
  const request = create(IngestRequestSchema);
  request.$unknown = [{ no: 1, wireType: WireType.LengthDelimited, data: encoded.subarray(1) }];
  return request;
}

/** What the server would say of an event, judged here for --dry-run (default rules). */
function localReason(event: Event, now: number): string | undefined {
  const stored = storedProperties(event);
  const reason =
    validateEvent(event, { maxFutureSkewMs: 86_400_000 }, now) ??
    ("reason" in stored ? stored.reason : undefined);
  return reason === undefined ? undefined : asColumn(reason);
}

/** A reason in the file's terms: the properties go as properties_json, and the column is properties. */
function asColumn(reason: string): string {
  const wire = "properties_json: ";
  return reason.startsWith(wire) ? `properties: ${reason.slice(wire.length)}` : reason;
}

/** The input as text chunks, counting bytes read; gunzipped when it ends in .gz. */
async function* openText(input: string, progress: ImportProgress): AsyncGenerator<string> {
  const raw: Readable =
    input === "-" ? process.stdin : createReadStream(input, { highWaterMark: 1 << 20 });
  raw.on("data", (chunk: Buffer) => {
    progress.bytesRead += chunk.length;
  });
  const text = input.endsWith(".gz") ? raw.pipe(createGunzip()) : raw;
  text.setEncoding("utf8");
  try {
    for await (const chunk of text) yield chunk as string;
  } catch (err) {
    throw new ImportError(`cannot read ${input}: ${(err as Error).message}`);
  }
}

/** A CSV field, quoted when it must be. */
function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}
