import type { Warehouse } from "../warehouse/warehouse.ts";
import { formatDay, parseChoice, parseRange, parseTimeZone } from "./params.ts";
import { type Interval, nextPeriod, periodOf, periodSql } from "./periods.ts";
import { chooseSource, type ReadOptions, userDaysSql } from "./source.ts";

/** Parameters of {@link lifecycle}, as in `GET /stats/lifecycle`. */
export interface LifecycleQuery {
  from: string;
  to: string;
  /** day (default), week or month. */
  interval: string;
  tz: string;
  segment: readonly string[];
}

/** The period `n` after (or before) the one starting on `p`, in SQL. */
const SHIFT: Record<Interval, (p: string, n: 1 | -1) => string> = {
  day: (p, n) => `${p} + (${n})`,
  week: (p, n) => `${p} + (${7 * n})`,
  month: (p, n) => `addMonths(${p}, ${n})`,
};

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
  const period = (day: string) => periodSql(interval, day);
  const shift = SHIFT[interval];
  // Only the users born in the range: for the others, born is never a
  // period of the range (the join's default, 1970-01-01, is not either). The
  // first days are read FINAL, each user's rows merged before the range is
  // applied, as retention's are.
  const bornInRange = "born BETWEEN toDate({first:String}) AND toDate({last:String})";
  const firsts =
    source.kind === "rollups"
      ? `SELECT user_key AS user, ${period("first_day")} AS born
         FROM ${warehouse.db}.${source.prefix}first_days FINAL
         WHERE event_type = {type:String} AND ${source.where} AND ${bornInRange}`
      : `SELECT user_id AS user, ${period("min(toDate(occurred_at, {tz:String}))")} AS born
         FROM ${warehouse.db}.events FINAL WHERE ${source.where} GROUP BY user_id
         HAVING ${bornInRange}`;
  const days = userDaysSql(warehouse.db, source, "before", "end");
  // Each user's active periods, once: then each period is new, returning or
  // resurrecting for them, and the period after each is dormant if absent.
  const active = `SELECT user, groupUniqArray(${period("day")}) AS periods FROM (${days}) GROUP BY user`;
  const rows = await warehouse.query<{ date: string; kind: string; users: string }>(
    `SELECT toString(p) AS date,
            multiIf(p = f.born, 'new', has(a.periods, ${shift("p", -1)}), 'returning', 'resurrecting') AS kind,
            count() AS users
     FROM (${active}) AS a ARRAY JOIN a.periods AS p
     LEFT JOIN (${firsts}) AS f ON f.user = a.user
     WHERE p >= toDate({first:String})
     GROUP BY date, kind
     UNION ALL
     SELECT toString(${shift("p", 1)}) AS date, 'dormant' AS kind, count() AS users
     FROM (${active}) AS a ARRAY JOIN a.periods AS p
     WHERE ${shift("p", 1)} BETWEEN toDate({first:String}) AND toDate({last:String})
       AND NOT has(a.periods, ${shift("p", 1)})
     GROUP BY date`,
    {
      ...source.params,
      tz,
      first: formatDay(first),
      last: formatDay(last),
      before: formatDay(before),
      end: formatDay(end),
    },
  );
  const counts = new Map(rows.map((r) => [`${r.date}/${r.kind}`, Number(r.users)]));
  const out = [];
  for (let p = first; p <= last; p = nextPeriod(interval, p)) {
    const date = formatDay(p);
    const n = (kind: string) => counts.get(`${date}/${kind}`) ?? 0;
    out.push({
      date,
      new: n("new"),
      returning: n("returning"),
      resurrecting: n("resurrecting"),
      dormant: -n("dormant"),
    });
  }
  return out;
}
