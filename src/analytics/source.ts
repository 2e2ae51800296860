import { NOT_ACTIVITY, NOT_ACTIVITY_SQL } from "../event/activity.ts";
import { parseSegments, type Segment, segmentsSql } from "./segments.ts";

/** How a stats query may read the warehouse. */
export interface ReadOptions {
  /** Read the raw events even where a rollup could answer (for checking one against the other). */
  rawOnly?: boolean;
  /** The properties with rollups of their own (`TALLY_INDEXED_PROPERTIES`), dotted. */
  indexedProperties?: readonly string[];
  /** The time zones with rollups of their own (`TALLY_INDEXED_TIME_ZONES`). */
  indexedTimeZones?: readonly string[];
}

/**
 * Where a query reads from. The rollups (see warehouse/migrations.ts) hold
 * days per event type: UTC days for all events and per indexed property's
 * value, and local days per indexed zone. So they answer queries filtered by
 * at most one event type, and in UTC also by one indexed property; anything
 * else reads the events `FINAL`.
 */
export type Source =
  | {
      readonly kind: "rollups";
      /** '' for the rollups of all events, 'prop_' for one property's value, 'zone_' for one zone's days. */
      readonly prefix: "" | "prop_" | "zone_";
      /** Picks the property's or the zone's rows out of their rollups ('1' for the others). */
      readonly where: string;
      /** `type` is the event type ('' for any); `path` and `value` the property's, `zone` the zone. */
      readonly params: Record<string, string>;
    }
  /** Read the events, `where` holding. */
  | { readonly kind: "events"; readonly where: string; readonly params: Record<string, string> };

/** The rollups' event_type for "any type". */
const ANY_TYPE = "";

export function chooseSource(tz: string, segment: readonly string[], options: ReadOptions): Source {
  const segments = parseSegments(segment);
  const rollup = options.rawOnly ? undefined : rollupKey(tz, segments, options);
  if (rollup !== undefined) return rollup;
  const { sql, params } = segmentsSql(segments);
  // Without a type named, the events are the activity (identify and the like are not).
  const activity = segments.some((s) => s.field === "event_type")
    ? ""
    : ` AND event_type NOT IN ${NOT_ACTIVITY_SQL}`;
  return { kind: "events", where: `${sql}${activity}`, params };
}

/** The rollups that hold exactly the segments' events on the zone's days, if any do. */
function rollupKey(tz: string, segments: readonly Segment[], options: ReadOptions) {
  const types = new Set<string>();
  const properties: { path: string; value: string }[] = [];
  for (const s of segments) {
    if (s.field === "event_type") {
      if (s.value === ANY_TYPE) return undefined;
      types.add(s.value);
    } else {
      const path = s.path.join(".");
      if (!(options.indexedProperties ?? []).includes(path)) return undefined;
      if (!properties.some((p) => p.path === path && p.value === s.value)) {
        properties.push({ path, value: s.value });
      }
    }
  }
  // Two types (or two properties) at once: no rollup holds such a key; the events say what matches.
  if (types.size > 1 || properties.length > 1) return undefined;
  const type = types.size === 0 ? ANY_TYPE : ([...types][0] as string);
  const [property] = properties;
  if (tz === "UTC") {
    if (property === undefined) return rollups("", "1", { type });
    return rollups("prop_", "path = {path:String} AND value = {value:String}", {
      type,
      ...property,
    });
  }
  if (property === undefined && (options.indexedTimeZones ?? []).includes(tz)) {
    return rollups("zone_", "zone = {zone:String}", { type, zone: tz });
  }
  return undefined;
}

/**
 * A rollup's rows of the source's event type or, for any type, of every
 * activity type ('' rows, which stand for any type in user_days, left out).
 * Chosen here, not by the parameter in SQL: with `{type} = '' AND … OR
 * event_type = {type}`, top events over 30 days of 100k events took
 * 1.06-1.15 as long, trends 1.05-1.14 (two runs of 60 alternating asks).
 */
export function rollupTypesSql(source: Extract<Source, { kind: "rollups" }>): string {
  return anyType(source)
    ? `event_type != '' AND event_type NOT IN ${NOT_ACTIVITY_SQL}`
    : "event_type = {type:String}";
}

/** Whether `source` is of any event type (its rollups' rows of every type, '' rows included). */
export function anyType(source: Extract<Source, { kind: "rollups" }>): boolean {
  return source.params.type === ANY_TYPE;
}

/** The types that {@link rollupTypesSql} leaves out of any type's rollup rows. */
export const NOT_ACTIVITY_ROWS: readonly string[] = [ANY_TYPE, ...NOT_ACTIVITY];

function rollups(prefix: "" | "prop_" | "zone_", where: string, params: Record<string, string>) {
  return { kind: "rollups", prefix, where, params } as const;
}

/**
 * The (user, day) pairs of `source` whose day lies between the query
 * parameters named `from` and `to`: from the user-day rollups (users by
 * user_key) or from the events (by user_id, local days in `{tz}`). A pair
 * may come more than once.
 */
export function userDaysSql(db: string, source: Source, from: string, to: string): string {
  return source.kind === "rollups"
    ? `SELECT user_key AS user, day FROM ${db}.${source.prefix}user_days
       WHERE event_type = {type:String} AND ${source.where}
         AND day BETWEEN toDate({${from}:String}) AND toDate({${to}:String})`
    : `SELECT user_id AS user, toDate(occurred_at, {tz:String}) AS day
       FROM ${db}.events FINAL
       WHERE day BETWEEN toDate({${from}:String}) AND toDate({${to}:String}) AND ${source.where}`;
}

/**
 * The events sorted by time (migration 6), which a range reads without a
 * full scan; with `rawOnly`, the events table itself (for checking one
 * against the other). Both FINAL: each event once.
 */
export function eventsByTimeSql(db: string, options: ReadOptions): string {
  return options.rawOnly ? `${db}.events FINAL` : `${db}.events_by_time FINAL`;
}

/**
 * A condition holding for every event whose local day in any zone lies
 * between the days `from` and `to` (whole days since 1970), `laterMs` more
 * at the end: UTC offsets are within a day, so a day's margin each side
 * does. Callers pick the exact days themselves; this bounds what is read.
 */
export function timeBoundsSql(from: number, to: number, laterMs = 0): string {
  const lo = (from - 1) * 86_400_000;
  const hi = (to + 2) * 86_400_000 + laterMs;
  return `occurred_at >= fromUnixTimestamp64Milli(toInt64(${lo}), 'UTC')
      AND occurred_at < fromUnixTimestamp64Milli(toInt64(${hi}), 'UTC')`;
}

/**
 * The filter on the events a query reads beyond its range: the segments,
 * and, without a type named in them, activity only, plus the types in
 * `alsoTypes` (the steps of a funnel may name identify and the like).
 */
export function eventsWhere(
  segment: readonly string[],
  alsoTypes: readonly string[] = [],
): { where: string; params: Record<string, string> } {
  const segments = parseSegments(segment);
  const { sql, params } = segmentsSql(segments);
  if (segments.some((s) => s.field === "event_type")) return { where: sql, params };
  const also =
    alsoTypes.length === 0
      ? ""
      : ` OR event_type IN (${alsoTypes.map((_, i) => `{also${i}:String}`).join(", ")})`;
  const alsoParams = Object.fromEntries(alsoTypes.map((t, i) => [`also${i}`, t]));
  return {
    where: `${sql} AND (event_type NOT IN ${NOT_ACTIVITY_SQL}${also})`,
    params: { ...params, ...alsoParams },
  };
}
