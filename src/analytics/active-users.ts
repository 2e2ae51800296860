import type { Warehouse } from "../warehouse/warehouse.ts";
import { formatDay, parseChoice, parseRange, parseTimeZone } from "./params.ts";
import { chooseSource, type ReadOptions, userDaysSql } from "./source.ts";

/** Parameters of {@link activeUsers}, as in `GET /stats/active-users`. */
export interface ActiveUsersQuery {
  from: string;
  to: string;
  /** day, week (7 days) or month (30 days). */
  window: string;
  tz: string;
  segment: readonly string[];
}

const WINDOW_DAYS = { day: 1, week: 7, month: 30 } as const;

/**
 * Distinct users in the rolling window ending on each day of the range,
 * zeros included; each event_id counts once.
 */
export async function activeUsers(
  warehouse: Warehouse,
  q: ActiveUsersQuery,
  options: ReadOptions = {},
) {
  const range = parseRange(q.from, q.to);
  const windowDays =
    WINDOW_DAYS[parseChoice("window", q.window, ["day", "week", "month"] as const)];
  const tz = parseTimeZone(q.tz);
  const source = chooseSource(tz, q.segment, options);
  const params = {
    tz,
    first: formatDay(range.from - windowDays + 1),
    from: formatDay(range.from),
    to: formatDay(range.to),
    window: windowDays,
  };
  // The (user, day) pairs that can fall in some window of the range.
  const pairs = userDaysSql(warehouse.db, source, "first", "to");
  if (windowDays === 1 && source.kind === "rollups") {
    // One row per user and day once merged: counting rows is enough.
    const rows = await warehouse.query<{ date: string; users: string }>(
      `SELECT toString(day) AS date, count() AS users
       FROM ${warehouse.db}.${source.prefix}user_days FINAL
       WHERE event_type = {type:String} AND ${source.where}
         AND day BETWEEN toDate({from:String}) AND toDate({to:String})
       GROUP BY day`,
      { ...params, ...source.params },
    );
    const byDate = new Map(rows.map((r) => [r.date, Number(r.users)]));
    return eachDay(range.from, range.to, (date) => byDate.get(date) ?? 0);
  }
  // A sweep, not an expansion: a user is in the window ending on d while some
  // active day lies in [d - window + 1, d], so each user's active days merge
  // into runs (gaps shorter than the window), and each run adds +1 on its
  // first day and -1 a window after its last. Summing the changes day by day
  // gives every window's count from one row per user and run, not one per
  // (user, day, window day) as spelling each window out would. A day listed
  // twice (several events, or rollup rows not yet merged) is a gap of 0: it
  // starts and ends nothing, so the days need no de-duplicating first. Each
  // day meets its neighbour by zipping the array with itself shifted (i and j
  // count from each end), never by indexing it inside the lambda: ClickHouse
  // copies a captured array once per element, n² for a user with n events.
  const changes = await warehouse.query<{ date: string; delta: string }>(
    `SELECT toString(change.1) AS date, sum(change.2) AS delta
     FROM (
       SELECT arraySort(groupArray(day)) AS days
       FROM (${pairs})
       GROUP BY user
     )
     ARRAY JOIN arrayConcat(
       arrayMap(d -> (d, 1), arrayFilter((d, prev, i) -> i = 1 OR d - prev >= {window:UInt32}, days, arrayPushFront(arrayPopBack(days), days[1]), arrayEnumerate(days))),
       arrayMap(d -> (d + {window:UInt32}, -1), arrayFilter((d, next, j) -> j = 1 OR next - d >= {window:UInt32}, days, arrayPushBack(arrayPopFront(days), days[1]), arrayReverse(arrayEnumerate(days))))
     ) AS change
     GROUP BY change.1`,
    { ...params, ...source.params },
  );
  const change = new Map(changes.map((r) => [r.date, Number(r.delta)]));
  let active = 0;
  for (let day = range.from - windowDays + 1; day < range.from; day++) {
    active += change.get(formatDay(day)) ?? 0;
  }
  return eachDay(range.from, range.to, (date) => {
    active += change.get(date) ?? 0;
    return active;
  });
}

/** One row per day from `from` to `to`, in order. */
function eachDay(from: number, to: number, count: (date: string) => number) {
  const days = [];
  for (let day = from; day <= to; day++) {
    const date = formatDay(day);
    days.push({ date, activeUsers: count(date) });
  }
  return days;
}
