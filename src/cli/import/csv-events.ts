import { create, fromJson } from "@bufbuild/protobuf";
import { TimestampSchema } from "@bufbuild/protobuf/wkt";
import { type Event, EventSchema } from "../../../gen/tally/v1/event_pb.js";

/** The columns of Tally's CSV, in the contract's order. */
export const CSV_COLUMNS = [
  "event_id",
  "occurred_at",
  "user_id",
  "event_type",
  "properties",
] as const;

/** The file's header: how many fields a row has, and where each column sits (-1: absent). */
export interface Header {
  readonly width: number;
  readonly at: Readonly<Record<(typeof CSV_COLUMNS)[number], number>>;
}

/**
 * Reads the header row. Columns may come in any order; `properties` may be
 * missing. Throws a message for the user when the header is not Tally's.
 */
export function readHeader(fields: readonly string[]): Header {
  const names = fields.map((f) => f.trim().toLowerCase());
  const unknown = names.filter((n) => !(CSV_COLUMNS as readonly string[]).includes(n));
  const missing = CSV_COLUMNS.filter((c) => c !== "properties" && !names.includes(c));
  if (unknown.length > 0 || missing.length > 0) {
    throw new Error(
      `the first line must be the header ${CSV_COLUMNS.join(",")}` +
        (missing.length > 0 ? `; missing: ${missing.join(", ")}` : "") +
        (unknown.length > 0 ? `; unknown: ${unknown.join(", ")}` : ""),
    );
  }
  const at = Object.fromEntries(CSV_COLUMNS.map((c) => [c, names.indexOf(c)])) as Header["at"];
  return { width: names.length, at };
}

/** The event a row describes, or the reason it cannot be one (naming the field). */
export function rowToEvent(fields: readonly string[], header: Header): Event | string {
  const columns = header.at;
  if (fields.length !== header.width)
    return `expected ${header.width} fields, found ${fields.length}`;
  const at = fields[columns.occurred_at] ?? "";
  let occurredAt: Event["occurredAt"];
  try {
    occurredAt = at === "" ? undefined : fromJson(TimestampSchema, at);
  } catch {
    return `occurred_at: expected an RFC 3339 time with a zone, like 2025-10-28T12:00:00Z, got "${at}"`;
  }
  // Sent as text (properties_json), which costs both sides less than a
  // Struct; the server judges it, as it judges the other fields.
  const json = columns.properties >= 0 ? (fields[columns.properties] ?? "") : "";
  return create(EventSchema, {
    eventId: fields[columns.event_id] ?? "",
    occurredAt,
    userId: fields[columns.user_id] ?? "",
    eventType: fields[columns.event_type] ?? "",
    propertiesJson: json,
  });
}
