import type { Warehouse } from "../warehouse/warehouse.ts";
import { formatDay, parseChoice, parseRange, parseTimeZone } from "./params.ts";
import { chooseSource, type ReadOptions } from "./source.ts";

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
  const pairs =
    source.kind === "rollups"
      ? `SELECT user_id, day FROM ${warehouse.db}.user_days
         WHERE event_type = {type:String} AND day BETWEEN toDate({first:String}) AND toDate({to:String})`
      : `SELECT DISTINCT user_id, toDate(occurred_at, {tz:String}) AS day
         FROM ${warehouse.db}.events FINAL
         WHERE day BETWEEN toDate({first:String}) AND toDate({to:String}) AND ${source.where}`;
  const query =
    windowDays === 1 && source.kind === "rollups"
      ? // One row per user and day once merged: counting rows is enough.
        `SELECT toString(day) AS date, count() AS users
         FROM ${warehouse.db}.user_days FINAL
         WHERE event_type = {type:String} AND day BETWEEN toDate({from:String}) AND toDate({to:String})
         GROUP BY day`
      : // Each pair counts towards every window that contains its day.
        `SELECT toString(d) AS date, uniqExact(user_id) AS users
         FROM (${pairs})
         ARRAY JOIN arrayMap(i -> day + i, range({window:UInt32})) AS d
         WHERE d BETWEEN toDate({from:String}) AND toDate({to:String})
         GROUP BY d`;
  const rows = await warehouse.rows<{ date: string; users: string }>(query, {
    ...params,
    ...source.params,
  });
  const byDate = new Map(rows.map((r) => [r.date, Number(r.users)]));
  const days = [];
  for (let day = range.from; day <= range.to; day++) {
    const date = formatDay(day);
    days.push({ date, activeUsers: byDate.get(date) ?? 0 });
  }
  return days;
}
