import type { RawFormat, Warehouse } from "../warehouse/warehouse.ts";
import { formatDay, parseChoice, parseRange } from "./params.ts";

/** What an export is written as. */
export type ExportFormat = "csv" | "jsonl" | "parquet";

/** One chunk of an export: its bytes, the events in them, and the last day they cover. */
export interface ExportChunk {
  data: Buffer;
  events: number;
  through: string;
}

/** occurred_at as the import reads it: RFC 3339 in UTC, with milliseconds. */
const ISO = "concat(replaceOne(toString(at), ' ', 'T'), 'Z')";

/** Each format's columns (the import's, for CSV) and ClickHouse's name for it. */
const FORMATS: Record<ExportFormat, { columns: string; first: RawFormat; rest: RawFormat }> = {
  csv: {
    columns: `toString(id) AS event_id, ${ISO} AS occurred_at, user AS user_id, toString(type) AS event_type, props AS properties`,
    first: "CSVWithNames",
    rest: "CSV",
  },
  // One JSON object a line, the properties as the object they are (stored as valid JSON text).
  jsonl: {
    columns: `concat('{"event_id":', toJSONString(toString(id)), ',"occurred_at":', toJSONString(${ISO}),
      ',"user_id":', toJSONString(user), ',"event_type":', toJSONString(toString(type)),
      ',"properties":', props, '}')`,
    first: "TabSeparatedRaw",
    rest: "TabSeparatedRaw",
  },
  parquet: {
    columns:
      "toString(id) AS event_id, at AS occurred_at, user AS user_id, toString(type) AS event_type, props AS properties",
    first: "Parquet",
    rest: "Parquet",
  },
};

/**
 * The stored events of the UTC days `from`..`to`, each event_id once (its
 * first copy), oldest first (then by event_id), a day a chunk so that
 * neither side holds the whole export; Parquet is one file, so one chunk.
 * The day's events are found in `events_by_time` and read from the events
 * table by event_id, its sorting key.
 */
export async function* exportEvents(
  warehouse: Warehouse,
  q: { from: string; to: string; format: string },
): AsyncGenerator<ExportChunk> {
  const { from, to } = parseRange(q.from, q.to);
  const format = parseChoice("format", q.format, ["csv", "jsonl", "parquet"] as const);
  const { columns, first, rest } = FORMATS[format];
  const { db } = warehouse;
  const read = async (lo: number, hi: number, as: RawFormat) => {
    const params = { lo: formatDay(lo), hi: formatDay(hi + 1) };
    const inDays = `occurred_at >= toDateTime64({lo:String}, 3, 'UTC') AND occurred_at < toDateTime64({hi:String}, 3, 'UTC')`;
    const where = `event_id IN (SELECT event_id FROM ${db}.events_by_time WHERE ${inDays}) AND ${inDays}`;
    const [{ n } = { n: "0" }] = await warehouse.query<{ n: string }>(
      `SELECT count() AS n FROM ${db}.events FINAL WHERE ${where}`,
      params,
    );
    // Read under other names: an output column named like a stored one would stand for it.
    const data = await warehouse.queryBytes(
      `SELECT ${columns} FROM (
         SELECT event_id AS id, occurred_at AS at, user_id AS user, event_type AS type, properties AS props
         FROM ${db}.events FINAL WHERE ${where})
       ORDER BY at, toUInt128(id)`,
      params,
      as,
    );
    return { data, events: Number(n), through: formatDay(hi) };
  };
  if (format === "parquet") {
    yield await read(from, to, first);
    return;
  }
  for (let day = from; day <= to; day++) {
    const chunk = await read(day, day, day === from ? first : rest);
    if (chunk.events > 0 || day === from) yield chunk;
  }
}
