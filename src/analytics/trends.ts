import { propertyValueSql } from "../warehouse/rollup-index.ts";
import type { Warehouse } from "../warehouse/warehouse.ts";
import {
  type Breakdown,
  breakdownSql,
  NONE,
  OTHER,
  parseBreakdown,
  parsePropertyPath,
  propertySql,
} from "./breakdown.ts";
import {
  formatDay,
  InvalidParameterError,
  parseBounded,
  parseChoice,
  parseRange,
  parseTimeZone,
} from "./params.ts";
import { periodSql, periodsOf } from "./periods.ts";
import {
  chooseSource,
  eventsByTimeSql,
  eventsWhere,
  type ReadOptions,
  rollupTypesSql,
  type Source,
  timeBoundsSql,
} from "./source.ts";

/** Parameters of {@link trends}, as in `GET /stats/trends`. */
export interface TrendsQuery {
  from: string;
  to: string;
  /** Only this type's events; empty: all activity. */
  eventType: string;
  /** day (default), week or month. */
  interval: string;
  /** events (default), users, sum:properties.<path> or avg:properties.<path>. */
  measure: string;
  /** '', event_type or properties.<path>. */
  breakdown: string;
  /** Series kept by a breakdown, 1..100; default 5. */
  limit?: number | undefined;
  tz: string;
  segment: readonly string[];
}

export interface TrendSeries {
  /** The breakdown's value; undefined without one. */
  breakdown: string | undefined;
  total: number;
  points: { date: string; value: number }[];
}

type Measure = { kind: "events" | "users" } | { kind: "sum" | "avg"; path: string[] };

function parseMeasure(value: string): Measure {
  if (value === "" || value === "events" || value === "users") {
    return { kind: value === "users" ? "users" : "events" };
  }
  const colon = value.indexOf(":");
  const kind = value.slice(0, colon);
  const path = parsePropertyPath(value.slice(colon + 1));
  if ((kind === "sum" || kind === "avg") && path !== undefined) return { kind, path };
  throw new InvalidParameterError(
    "measure",
    `expected events, users, sum:properties.KEY or avg:properties.KEY, got "${value}"`,
  );
}

/** A JSON number's text: what `sum:` and `avg:` read, as a number or as a string holding one. */
const NUMBER = "^-?(0|[1-9][0-9]*)([.][0-9]+)?([eE][-+]?[0-9]+)?$";

/**
 * Each measure as an aggregate state over rows of (value, day, user, x):
 * `a` what is summed or counted, `n` how many values an average divides by.
 */
const STATES = {
  events: { a: "countState()", merge: "countMerge" },
  users: { a: "uniqExactState(user)", merge: "uniqExactMerge" },
  sum: { a: "sumState(ifNull(x, 0))", merge: "sumMerge" },
  avg: { a: "sumState(ifNull(x, 0))", merge: "sumMerge" },
} as const;

/**
 * A measure per day, week or month of the range (only the range's days
 * count; a point's date is its period's start), zero-filled: events, users,
 * or a numeric property's sum or average; whole, or split by a property or
 * the event type into the `limit` values with the largest total, `$other`
 * and `$none`. Events and users come from the rollups where they hold the
 * answer; a sum, an average, or a breakdown they do not hold reads the
 * range of the events sorted by time.
 */
export async function trends(
  warehouse: Warehouse,
  q: TrendsQuery,
  options: ReadOptions = {},
): Promise<TrendSeries[]> {
  const range = parseRange(q.from, q.to);
  const interval = parseChoice("interval", q.interval, ["day", "week", "month"] as const);
  const measure = parseMeasure(q.measure);
  const breakdown = parseBreakdown(q.breakdown);
  const limit = parseBounded("limit", q.limit, 1, 100, 5);
  const tz = parseTimeZone(q.tz);
  const segment = q.eventType === "" ? q.segment : [...q.segment, `event_type:${q.eventType}`];
  const bounds = timeBoundsSql(range.from, range.to);
  const rows = rowsSql(warehouse.db, tz, segment, measure, breakdown, bounds, options);
  const params = {
    ...rows.params,
    tz,
    from: formatDay(range.from),
    to: formatDay(range.to),
  };
  const state = STATES[measure.kind];
  const count = measure.kind === "avg" ? "countState(x)" : "countState()";
  let label = "''";
  let top: string[] = [];
  if (breakdown.kind !== "none") {
    // The values with the largest totals, ties by text; the rest add up in $other.
    const ranked = await warehouse.query<{ value: string }>(
      `SELECT value FROM (
         SELECT value, ${state.merge}(sa) AS a, countMerge(sn) AS n FROM (
           SELECT assumeNotNull(split) AS value, ${state.a} AS sa, ${count} AS sn
           FROM (${rows.sql}) WHERE split IS NOT NULL GROUP BY value)
         GROUP BY value)
       ORDER BY ${measure.kind === "avg" ? "if(n = 0, 0, a / n)" : "a"} DESC, value LIMIT {limit:UInt32}`,
      { ...params, limit },
    );
    top = ranked.map((r) => r.value);
    label = `if(split IS NULL, '${NONE}', if(has({top:Array(String)}, split), split, '${OTHER}'))`;
  }
  const found = await warehouse.query<{
    label: string;
    points: [string, string | number, string | number][];
    a: string | number;
    n: string | number;
  }>(
    `SELECT label, groupArray((p, finalizeAggregation(sa), finalizeAggregation(sn))) AS points,
            ${state.merge}(sa) AS a, countMerge(sn) AS n
     FROM (
       SELECT ${label} AS label, toString(${periodSql(interval, "day")}) AS p,
              ${state.a} AS sa, ${count} AS sn
       FROM (${rows.sql}) GROUP BY label, p)
     GROUP BY label`,
    { ...params, top },
  );
  if (rows.noneFrom !== undefined)
    found.push(...(await noneByDifference(warehouse, rows.noneFrom, interval, params, found)));
  const dates = periodsOf(interval, range.from, range.to).map(formatDay);
  const measured = (a: number, n: number) => (measure.kind === "avg" ? (n === 0 ? 0 : a / n) : a);
  const series = found.map((r): TrendSeries => {
    const byDate = new Map(r.points.map(([p, a, n]) => [p, measured(Number(a), Number(n))]));
    return {
      breakdown: breakdown.kind === "none" ? undefined : r.label,
      total: measured(Number(r.a), Number(r.n)),
      points: dates.map((date) => ({ date, value: byDate.get(date) ?? 0 })),
    };
  });
  if (breakdown.kind === "none") {
    return series.length > 0
      ? series
      : [{ breakdown: undefined, total: 0, points: dates.map((date) => ({ date, value: 0 })) }];
  }
  const rank = (s: TrendSeries) => (s.breakdown === OTHER ? 1 : s.breakdown === NONE ? 2 : 0);
  return series.sort(
    (x, y) =>
      rank(x) - rank(y) ||
      y.total - x.total ||
      ((x.breakdown as string) < (y.breakdown as string) ? -1 : 1),
  );
}

/**
 * The rows a trend aggregates, as SQL with columns split (the breakdown's value,
 * NULL without the property), day (local), user and x (the measured
 * number, NULL where there is none), all within the days `{from}`..`{to}`.
 * `noneFrom`: where the rows come from a property's rollups, which hold
 * only events with the property, the unbroken rows to take them from.
 */
function rowsSql(
  db: string,
  tz: string,
  segment: readonly string[],
  measure: Measure,
  breakdown: Breakdown,
  bounds: string,
  options: ReadOptions,
): { sql: string; params: Record<string, unknown>; noneFrom?: string } {
  const source =
    measure.kind === "events" || measure.kind === "users"
      ? chooseSource(tz, segment, options)
      : undefined;
  if (source?.kind === "rollups") {
    const rollup = rollupRows(
      db,
      tz,
      source,
      measure.kind as "events" | "users",
      breakdown,
      options,
    );
    if (rollup !== undefined) return rollup;
  }
  const filter = eventsWhere(segment);
  const value = breakdownSql(breakdown, "bk");
  let x = "NULL";
  let params: Record<string, unknown> = { ...filter.params, ...value.params };
  if (measure.kind === "sum" || measure.kind === "avg") {
    // A property's text as segments compare it, read as a number when it is one.
    const property = propertySql(measure.path, "mk");
    params = { ...params, ...property.params };
    x = `if(match(${propertyValueSql(property.raw)} AS mtext, '${NUMBER}'), toFloat64(mtext), NULL)`;
  }
  return {
    sql: `SELECT ${value.sql} AS split, toDate(occurred_at, {tz:String}) AS day,
            user_id AS user, ${x} AS x
          FROM ${eventsByTimeSql(db, options)}
          WHERE ${bounds} AND day BETWEEN toDate({from:String}) AND toDate({to:String})
            AND ${filter.where}`,
    params,
  };
}

/**
 * The rows from the rollups, if they hold the answer: events (day_events)
 * or users (user_days), of all activity or one type, whole or by event type;
 * events by a property indexed in UTC (prop_day_events, `$none` then comes
 * from the difference with the whole).
 */
function rollupRows(
  db: string,
  tz: string,
  source: Extract<Source, { kind: "rollups" }>,
  measure: "events" | "users",
  breakdown: Breakdown,
  options: ReadOptions,
): { sql: string; params: Record<string, unknown>; noneFrom?: string } | undefined {
  const inRange = "day BETWEEN toDate({from:String}) AND toDate({to:String})";
  // Rows of one type, or of every activity type ('' in user_days means any type, once per user).
  const types = rollupTypesSql(source);
  const byType = breakdown.kind === "event_type";
  if (breakdown.kind === "none" || byType) {
    const value = byType ? "toNullable(toString(event_type))" : "toNullable('')";
    const sql =
      measure === "events"
        ? `SELECT ${value} AS split, day, '' AS user, NULL AS x
           FROM ${db}.${source.prefix}day_events FINAL
           WHERE ${source.where} AND ${inRange} AND ${types}`
        : `SELECT ${value} AS split, day, user_key AS user, NULL AS x
           FROM ${db}.${source.prefix}user_days
           WHERE ${source.where} AND ${inRange}
             AND ${byType ? types : "event_type = {type:String}"}`;
    return { sql, params: source.params };
  }
  const path = breakdown.path.join(".");
  if (
    measure !== "events" ||
    tz !== "UTC" ||
    source.prefix !== "" ||
    !(options.indexedProperties ?? []).includes(path)
  ) {
    return undefined;
  }
  const whole = `SELECT day FROM ${db}.day_events FINAL WHERE ${inRange} AND ${types}`;
  return {
    sql: `SELECT toNullable(value) AS split, day, '' AS user, NULL AS x
          FROM ${db}.prop_day_events FINAL
          WHERE path = {bpath:String} AND ${inRange} AND ${types}`,
    params: { ...source.params, bpath: path },
    noneFrom: whole,
  };
}

/** `$none` as the whole less the values, per period: for rows read from a property's rollups. */
async function noneByDifference(
  warehouse: Warehouse,
  whole: string,
  interval: "day" | "week" | "month",
  params: Record<string, unknown>,
  found: { label: string; points: [string, string | number, string | number][] }[],
) {
  const totals = await warehouse.query<{ p: string; a: string }>(
    `SELECT toString(${periodSql(interval, "day")}) AS p, count() AS a FROM (${whole}) GROUP BY p`,
    params,
  );
  const broken = new Map<string, number>();
  for (const r of found)
    for (const [p, a] of r.points) broken.set(p, (broken.get(p) ?? 0) + Number(a));
  const points = totals
    .map((t): [string, number, number] => [t.p, Number(t.a) - (broken.get(t.p) ?? 0), 0])
    .filter(([, a]) => a !== 0);
  if (points.length === 0) return [];
  const a = points.reduce((sum, [, v]) => sum + v, 0);
  return [{ label: NONE, points, a, n: 0 }];
}
