import { create, type JsonObject } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { type Event, EventSchema } from "../../gen/tally/v1/event_pb.js";

/**
 * The one row format of an accepted event, from the edge to the warehouse.
 * The API (and the CLI's dry run) turns each valid event into one
 * TabSeparated row, once; the consumer reads the event_id off the start of
 * each row and hands the surviving rows to ClickHouse untouched, so no stage
 * after the edge decodes or re-encodes an event.
 */

/** Columns of each row, in order: the names of the warehouse's columns. */
export const ROW_COLUMNS = [
  "event_id",
  "occurred_at",
  "user_id",
  "event_type",
  "properties",
  "accepted_at",
] as const;

/** A UUID is 36 characters; every row starts with its lower-cased event_id and a tab. */
const ID_LENGTH = 36;

const DAY_MS = 86_400_000;
/** "00".."99" and "000".."999", so that a time's fields need no padding per call. */
const TWO = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, "0"));
const THREE = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, "0"));
// Each day's date, formatted once: toISOString per event was 6% of the
// API's CPU under streaming load, and a batch of history (an import, the
// bench's events over 90 days) changes day from one event to the next.
const dates = new Map<number, string>();
/** Days kept formatted; past it the map starts again (a rare import spans more). */
const MAX_DATES = 4096;

/** ClickHouse's DateTime64 text form of a time in ms: "2025-10-28 12:00:00.123". */
export function clickhouseTime(ms: number): string {
  const day = Math.floor(ms / DAY_MS);
  let date = dates.get(day);
  if (date === undefined) {
    if (dates.size >= MAX_DATES) dates.clear();
    date = new Date(day * DAY_MS).toISOString().slice(0, 10);
    dates.set(day, date);
  }
  const t = ms - day * DAY_MS;
  const seconds = Math.floor(t / 1000);
  return `${date} ${TWO[Math.floor(seconds / 3600)]}:${TWO[Math.floor(seconds / 60) % 60]}:${TWO[seconds % 60]}.${THREE[t % 1000]}`;
}

/** Escapes a value for a TabSeparated field. */
export function escapeTsv(value: string): string {
  // Fast path: most ids and types need nothing.
  if (!/[\\\t\n\r\0]/.test(value)) return value;
  return value.replace(/[\\\t\n\r\0]/g, (c) =>
    c === "\\" ? "\\\\" : c === "\t" ? "\\t" : c === "\n" ? "\\n" : c === "\r" ? "\\r" : "\\0",
  );
}

/**
 * One TabSeparated row for a valid event. `propertiesJson` is the event's
 * properties already encoded (validated by the caller); `acceptedAt` is the
 * batch's acceptance time in ClickHouse's text form.
 */
export function encodeRow(event: Event, propertiesJson: string, acceptedAt: string): string {
  const at = event.occurredAt;
  const ms = at === undefined ? 0 : Number(at.seconds) * 1000 + Math.floor(at.nanos / 1e6);
  return `${event.eventId.toLowerCase()}\t${clickhouseTime(ms)}\t${escapeTsv(event.userId)}\t${escapeTsv(event.eventType)}\t${escapeTsv(propertiesJson)}\t${acceptedAt}\n`;
}

/**
 * The event_id of each row of a batch body, in order, and the rows. The ids
 * are strings of their own, read from the bytes: a slice of the body's text
 * would keep the whole text alive for as long as the dedupe keeps the id.
 */
export function rowIds(body: Buffer): { ids: string[]; rows: string[] } {
  const rows = body.toString("utf8").split("\n");
  if (rows.at(-1) === "") rows.pop();
  const ids = batchIds(body);
  for (let i = 0; i < rows.length; i++) {
    if ((rows[i] as string).charCodeAt(ID_LENGTH) !== 9 /* \t */ || ids[i]?.length !== ID_LENGTH) {
      throw new Error(`row ${i} does not start with an event_id`);
    }
  }
  return { ids, rows };
}

/**
 * The event_id of each row of a batch body, without making the rows: read
 * where each line starts (the API's claim, on the ingest path).
 */
export function batchIds(body: Buffer): string[] {
  const ids: string[] = [];
  for (let at = 0; at < body.length; ) {
    ids.push(body.toString("latin1", at, at + ID_LENGTH));
    const end = body.indexOf(10, at);
    if (end < 0) break;
    at = end + 1;
  }
  return ids;
}

/** A TabSeparated field's text. */
function unescapeTsv(field: string): string {
  if (!field.includes("\\")) return field;
  return field.replace(/\\(.)/g, (_, c: string) =>
    c === "t" ? "\t" : c === "n" ? "\n" : c === "r" ? "\r" : c === "0" ? "\0" : c,
  );
}

/** The events of a batch body, as {@link encodeRow} wrote them (for live tails). */
export function decodeRows(body: Buffer): Event[] {
  const events: Event[] = [];
  for (const row of body.toString("utf8").split("\n")) {
    if (row === "") continue;
    const [id = "", at = "", user = "", type = "", props = "{}"] = row.split("\t");
    const properties = JSON.parse(unescapeTsv(props)) as JsonObject;
    events.push(
      create(EventSchema, {
        eventId: id,
        occurredAt: timestampFromMs(Date.parse(`${at.replace(" ", "T")}Z`)),
        userId: unescapeTsv(user),
        eventType: unescapeTsv(type),
        ...(Object.keys(properties).length > 0 ? { properties } : {}),
      }),
    );
  }
  return events;
}
