import type { Warehouse } from "../warehouse/warehouse.ts";
import { type Day, formatDay, mondayOf, parseChoice, parseRange, parseTimeZone } from "./params.ts";
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

type Interval = "day" | "week" | "month";

/** The start of the period holding `day`. */
function periodOf(interval: Interval, day: Day): Day {
  if (interval === "day") return day;
  if (interval === "week") return mondayOf(day);
  const d = new Date(day * 86_400_000);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1) / 86_400_000;
}

/** The start of the period after the one starting on `start`. */
function nextPeriod(interval: Interval, start: Day): Day {
  if (interval === "day") return start + 1;
  if (interval === "week") return start + 7;
  const d = new Date(start * 86_400_000);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) / 86_400_000;
}

const SQL: Record<
  Interval,
  { period: (d: string) => string; shift: (p: string, n: 1 | -1) => string }
> = {
  day: { period: (d) => d, shift: (p, n) => `${p} + (${n})` },
  week: { period: (d) => `toMonday(${d})`, shift: (p, n) => `${p} + (${7 * n})` },
  month: { period: (d) => `toStartOfMonth(${d})`, shift: (p, n) => `addMonths(${p}, ${n})` },
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
  const { period, shift } = SQL[interval];
  const firsts =
    source.kind === "rollups"
      ? `SELECT user_key AS user, ${period("min(first_day)")} AS born
         FROM ${warehouse.db}.${source.prefix}first_days
         WHERE event_type = {type:String} AND ${source.where} GROUP BY user_key`
      : `SELECT user_id AS user, ${period("min(toDate(occurred_at, {tz:String}))")} AS born
         FROM ${warehouse.db}.events FINAL WHERE ${source.where} GROUP BY user_id`;
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
