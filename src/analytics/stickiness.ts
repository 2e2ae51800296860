import type { Warehouse } from "../warehouse/warehouse.ts";
import { formatDay, mondayOf, parseChoice, parseRange, parseTimeZone } from "./params.ts";
import { chooseSource, type ReadOptions, userDaysSql } from "./source.ts";

/** Parameters of {@link stickiness}, as in `GET /stats/stickiness`. */
export interface StickinessQuery {
  from: string;
  to: string;
  /** day (default) or week. */
  interval: string;
  /** Only this type's events; empty: all activity. */
  eventType: string;
  tz: string;
  segment: readonly string[];
}

/**
 * How many users were active in exactly k periods of the range, for k from
 * 1 to the number of periods (zeros included). A week is Monday to Sunday
 * and counts only its days inside the range. Read from the user-day sets
 * where they hold the answer, else from the events.
 */
export async function stickiness(
  warehouse: Warehouse,
  q: StickinessQuery,
  options: ReadOptions = {},
) {
  const range = parseRange(q.from, q.to);
  const interval = parseChoice("interval", q.interval, ["day", "week"] as const);
  const tz = parseTimeZone(q.tz);
  const segment = q.eventType === "" ? q.segment : [...q.segment, `event_type:${q.eventType}`];
  const source = chooseSource(tz, segment, options);
  const params = { tz, from: formatDay(range.from), to: formatDay(range.to) };
  // Each user's active periods in the range. By day from the rollups, read
  // FINAL, each (user, day) is one row, and counting rows beats a set of days
  // per user: at 10M events, 30 days took 16.1 ms against 27.2.
  const perUser =
    source.kind === "rollups" && interval === "day"
      ? `SELECT user_key AS user, count() AS periods
         FROM ${warehouse.db}.${source.prefix}user_days FINAL
         WHERE event_type = {type:String} AND ${source.where}
           AND day BETWEEN toDate({from:String}) AND toDate({to:String})
         GROUP BY user`
      : `SELECT user, uniqExact(${interval === "day" ? "day" : "toMonday(day)"}) AS periods
         FROM (${userDaysSql(warehouse.db, source, "from", "to")}) GROUP BY user`;
  const rows = await warehouse.query<{ periods: number; users: string }>(
    `SELECT periods, count() AS users FROM (${perUser}) GROUP BY periods`,
    { ...params, ...source.params },
  );
  const users = new Map(rows.map((r) => [Number(r.periods), Number(r.users)]));
  const count =
    interval === "day"
      ? range.to - range.from + 1
      : (mondayOf(range.to) - mondayOf(range.from)) / 7 + 1;
  return Array.from({ length: count }, (_, i) => ({
    periods: i + 1,
    users: users.get(i + 1) ?? 0,
  }));
}
