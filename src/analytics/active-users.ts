import type { Warehouse } from "../warehouse/warehouse.ts";
import { formatDay, parseChoice, parseRange, parseTimeZone } from "./params.ts";
import { parseSegments, segmentsSql } from "./segments.ts";

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
 * zeros included. Reads the events `FINAL`, so each event_id counts once.
 */
export async function activeUsers(warehouse: Warehouse, q: ActiveUsersQuery) {
  const range = parseRange(q.from, q.to);
  const windowDays =
    WINDOW_DAYS[parseChoice("window", q.window, ["day", "week", "month"] as const)];
  const tz = parseTimeZone(q.tz);
  const segments = segmentsSql(parseSegments(q.segment));
  // Each (user, day) pair counts towards every window that contains its day.
  const rows = await warehouse.rows<{ date: string; users: string }>(
    `SELECT toString(d) AS date, uniqExact(user_id) AS users
     FROM (
       SELECT DISTINCT user_id, toDate(occurred_at, {tz:String}) AS day
       FROM ${warehouse.db}.events FINAL
       WHERE day BETWEEN toDate({first:String}) AND toDate({to:String}) AND ${segments.sql}
     )
     ARRAY JOIN arrayMap(i -> day + i, range({window:UInt32})) AS d
     WHERE d BETWEEN toDate({from:String}) AND toDate({to:String})
     GROUP BY d`,
    {
      ...segments.params,
      tz,
      first: formatDay(range.from - windowDays + 1),
      from: formatDay(range.from),
      to: formatDay(range.to),
      window: windowDays,
    },
  );
  const byDate = new Map(rows.map((r) => [r.date, Number(r.users)]));
  const days = [];
  for (let day = range.from; day <= range.to; day++) {
    const date = formatDay(day);
    days.push({ date, activeUsers: byDate.get(date) ?? 0 });
  }
  return days;
}
