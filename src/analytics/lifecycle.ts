import type { Warehouse } from "../warehouse/warehouse.ts";
import { formatDay, parseChoice, parseRange, parseTimeZone } from "./params.ts";
import { type Interval, nextPeriod, periodOf, periodSql, periodsOf } from "./periods.ts";
import { chooseSource, type ReadOptions, type Source, userDaysSql } from "./source.ts";

/** Parameters of {@link lifecycle}, as in `GET /stats/lifecycle`. */
export interface LifecycleQuery {
  from: string;
  to: string;
  /** day (default), week or month. */
  interval: string;
  tz: string;
  segment: readonly string[];
}

/** The period before the one starting on `p`, in SQL. */
const PREVIOUS: Record<Interval, (p: string) => string> = {
  day: (p) => `${p} - 1`,
  week: (p) => `${p} - 7`,
  month: (p) => `addMonths(${p}, -1)`,
};

/** What an active (user, period) is, by the number the query gives it. */
const KINDS = ["new", "returning", "resurrecting", "before"] as const;

/**
 * Per period of the range (whole periods: the one holding `from` to the one
 * holding `to`): users whose first event ever falls in it (new), active in
 * it and the one before (returning), active in it but not the one before
 * and not new (resurrecting), and active in the one before but not in it
 * (dormant, negative). The period before the range counts from the stored
 * data, and so does each user's first event. Segments filter the events
 * that count, for the first event and for activity alike, as retention's do.
 */
export async function lifecycle(
  warehouse: Warehouse,
  q: LifecycleQuery,
  options: ReadOptions = {},
) {
  const range = parseRange(q.from, q.to);
  const interval = parseChoice("interval", q.interval, ["day", "week", "month"] as const);
  const tz = parseTimeZone(q.tz);
  const source = chooseSource(tz, q.segment, options);
  const first = periodOf(interval, range.from);
  const last = periodOf(interval, range.to);
  const before = periodOf(interval, first - 1);
  const end = nextPeriod(interval, last) - 1;
  const params = {
    ...source.params,
    tz,
    first: formatDay(first),
    last: formatDay(last),
    before: formatDay(before),
    end: formatDay(end),
  };
  // A UInt64's bits hold the period before the range and up to 63 in it.
  const rows = await warehouse.query<{ date: string; kind: number; users: string }>(
    readsAllActivity(source) && periodsOf(interval, before, last).length <= 64
      ? activityBitsSql(warehouse.db, interval)
      : sortedPeriodsSql(warehouse.db, source, interval),
    params,
  );
  const counts = new Map(rows.map((r) => [`${r.date}/${KINDS[r.kind]}`, Number(r.users)]));
  const out = [];
  let activeBefore = counts.get(`${formatDay(before)}/before`) ?? 0;
  for (let p = first; p <= last; p = nextPeriod(interval, p)) {
    const date = formatDay(p);
    const n = (kind: (typeof KINDS)[number]) => counts.get(`${date}/${kind}`) ?? 0;
    const [born, returning, resurrecting] = [n("new"), n("returning"), n("resurrecting")];
    out.push({ date, new: born, returning, resurrecting, dormant: returning - activeBefore });
    activeBefore = born + returning + resurrecting;
  }
  return out;
}

/** Whether the source is every event's rollups: then `user_activity` holds each user's days. */
function readsAllActivity(source: Source): boolean {
  return source.kind === "rollups" && source.prefix === "";
}

/**
 * Each user's active periods from {before} to {end}, sorted, and the period
 * they were born in (their first event's), classified. Each active period p
 * of a user is new, returning or resurrecting: returning when q, the one
 * before p in their sorted periods (p itself for the first), is the period
 * before p. In the period before the range they are only counted. Dormant
 * in p are those active in the period before and not in p: all active then,
 * less p's returning. No array is searched (has() copies the array per
 * element) and the kinds are numbers (KINDS; as strings they cost a fifth
 * more).
 */
function sortedPeriodsSql(db: string, source: Source, interval: Interval): string {
  const period = (day: string) => periodSql(interval, day);
  let users: string;
  if (readsAllActivity(source)) {
    // One row a user, as retention reads it: no grouping, no join.
    users = `SELECT ${period("first_day")} AS born,
        arraySort(arrayDistinct(arrayMap(d -> ${period("d")},
          arrayFilter(d -> d BETWEEN toDate({before:String}) AND toDate({end:String}), days)))) AS periods
      FROM ${db}.user_activity FINAL
      WHERE event_type = {type:String} AND notEmpty(periods)`;
  } else {
    // Only the users born in the range: for the others, born is never a
    // period of the range (the join's default, 1970-01-01, is not either).
    // The first days are read FINAL, each user's rows merged before the
    // range is applied, as retention's are.
    const bornInRange = "born BETWEEN toDate({first:String}) AND toDate({last:String})";
    const firsts =
      source.kind === "rollups"
        ? `SELECT user_key AS user, ${period("first_day")} AS born
           FROM ${db}.${source.prefix}first_days FINAL
           WHERE event_type = {type:String} AND ${source.where} AND ${bornInRange}`
        : `SELECT user_id AS user, ${period("min(toDate(occurred_at, {tz:String}))")} AS born
           FROM ${db}.events FINAL WHERE ${source.where} GROUP BY user_id
           HAVING ${bornInRange}`;
    const days = userDaysSql(db, source, "before", "end");
    users = `SELECT a.periods AS periods, f.born AS born
      FROM (SELECT user, arraySort(groupUniqArray(${period("day")})) AS periods FROM (${days}) GROUP BY user) AS a
      LEFT JOIN (${firsts}) AS f ON f.user = a.user`;
  }
  return `SELECT toString(p) AS date,
            multiIf(p < toDate({first:String}), 3, p = born, 0, q = ${PREVIOUS[interval]("p")}, 1, 2) AS kind,
            count() AS users
     FROM (${users})
     ARRAY JOIN periods AS p, arrayPushFront(arrayPopBack(periods), periods[1]) AS q
     GROUP BY p, kind`;
}

/**
 * The same classification for all activity over up to 64 periods, the
 * sort replaced by bits: each user's periods from {before} become the bits
 * of a UInt64 (bit i: the i-th period after {before}), ORed from their days
 * in range, with no array of periods made distinct and sorted. A set bit i
 * is returning when bit i - 1 is set too. At 10M events, lifecycle by week
 * over 12 weeks took 31-37 ms against 37-53 with the sort (alternating),
 * and 17-18 ms either way at 1M. Over more periods, a word per part read
 * every user's days once per part (a year by day: 188 ms against 95), and
 * a segment's users have fewer days to sort (by week, purchases: 13-14 ms
 * against 10-11 at 1M): the arrays cost less there.
 */
function activityBitsSql(db: string, interval: Interval): string {
  const position = (day: string) => POSITION[interval](day);
  return `SELECT toString(${PERIOD_AT[interval]("i")}) AS date,
      multiIf(i = 0, 3, i = born, 0, bitTest(bitShiftLeft(periods, 1), i), 1, 2) AS kind,
      count() AS users
    FROM (
      SELECT ${position("first_day")} AS born,
        arrayReduce('groupBitOr', arrayMap(d -> bitShiftLeft(toUInt64(1), ${position("d")}),
          arrayFilter(d -> d BETWEEN toDate({before:String}) AND toDate({end:String}), days))) AS periods
      FROM ${db}.user_activity FINAL
      WHERE event_type = {type:String} AND periods != 0
    )
    ARRAY JOIN bitPositionsToArray(periods) AS i
    GROUP BY i, kind`;
}

/**
 * The position of a day's period among those from {before}, in SQL: 0 or
 * less for a day before it (only a match with a set bit counts).
 */
const POSITION: Record<Interval, (day: string) => string> = {
  day: (d) => `toInt32(${d} - toDate({before:String}))`,
  week: (d) => `toInt32(intDiv(${d} - toDate({before:String}), 7))`,
  month: (d) => `toInt32(toRelativeMonthNum(${d}) - toRelativeMonthNum(toDate({before:String})))`,
};

/** The first day of the period at position `i` from {before}, in SQL. */
const PERIOD_AT: Record<Interval, (i: string) => string> = {
  day: (i) => `toDate({before:String}) + ${i}`,
  week: (i) => `toDate({before:String}) + 7 * ${i}`,
  month: (i) => `addMonths(toDate({before:String}), ${i})`,
};
