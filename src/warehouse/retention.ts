import { DELETE_SETTINGS } from "./migrations.ts";
import { indexedRollupInserts } from "./rollup-index.ts";
import type { Warehouse } from "./warehouse.ts";

const DAY_MS = 86_400_000;

/**
 * Forgets every event on a UTC day before `firstDay` (days since 1970):
 * from the events, their copies and every rollup, so that no stat counts
 * it. Whole UTC days, so that the daily rollups are cut exactly where the
 * events are. A user's first day (cohorts, lifecycle's "new") becomes the
 * first day left of theirs, from the user-day rollups (a user with no day
 * left has none), and so does their activity; the rollups of an
 * indexed zone, whose local days straddle UTC's, are cut at the boundary
 * and refilled there from the events left. Returns the events forgotten.
 *
 * Not ClickHouse TTL: a TTL would drop a user's first-day row without
 * putting the next one in its place, and cut a zone's days in the wrong
 * place. Run again, it does nothing more.
 */
export async function applyRetention(warehouse: Warehouse, firstDay: number): Promise<number> {
  const { db } = warehouse;
  const params = { day: new Date(firstDay * DAY_MS).toISOString().slice(0, 10) };
  const cut = "toDate({day:String})";
  const [{ n } = { n: "0" }] = await warehouse.query<{ n: string }>(
    `SELECT count() AS n FROM ${db}.events FINAL WHERE occurred_at < toDateTime64(${cut}, 3, 'UTC')`,
    params,
  );
  const run = (sql: string) => warehouse.command(sql, params);
  // The events and their copies.
  for (const table of ["events", "events_by_time", "user_events"]) {
    await run(
      `DELETE FROM ${db}.${table} WHERE occurred_at < toDateTime64(${cut}, 3, 'UTC') ${DELETE_SETTINGS}`,
    );
  }
  // Days and events per day: UTC days, and indexed properties' (UTC too).
  for (const prefix of ["", "prop_"]) {
    await run(`DELETE FROM ${db}.${prefix}user_days WHERE day < ${cut} ${DELETE_SETTINGS}`);
    await run(`DELETE FROM ${db}.${prefix}day_events WHERE day < ${cut} ${DELETE_SETTINGS}`);
  }
  // An indexed zone's days: cut a day later, then refilled around the cut from the events left.
  await run(`DELETE FROM ${db}.zone_user_days WHERE day <= ${cut} ${DELETE_SETTINGS}`);
  await run(`DELETE FROM ${db}.zone_day_events WHERE day <= ${cut} ${DELETE_SETTINGS}`);
  const nearCut = `(SELECT * FROM ${db}.events FINAL
    WHERE occurred_at < toDateTime64(${cut} + 2, 3, 'UTC'))`;
  for (const insert of await indexedRollupInserts(warehouse, nearCut)) {
    if (insert.includes(`${db}.zone_events`)) await run(insert);
  }
  // First days at or before the cut become the first day left of each user.
  // The users are noted first, so that a crash part-way is finished next time.
  for (const [prefix, key] of [
    ["", ""],
    ["prop_", "path, value, "],
    ["zone_", "zone, "],
  ] as const) {
    const moving = `${db}.${prefix}first_days_moving`;
    const keys = `(${key}event_type, user_id) IN (SELECT ${key}event_type, user_id FROM ${moving})`;
    await run(
      `INSERT INTO ${moving} (${key}event_type, user_id, first_day)
       SELECT ${key}event_type, user_id, min(first_day) FROM ${db}.${prefix}first_days
       GROUP BY ${key}event_type, user_id HAVING min(first_day) <= ${cut}`,
    );
    await run(`DELETE FROM ${db}.${prefix}first_days WHERE ${keys} ${DELETE_SETTINGS}`);
    await run(
      `INSERT INTO ${db}.${prefix}first_days (${key}event_type, user_id, first_day)
       SELECT ${key}event_type, user_id, min(day) FROM ${db}.${prefix}user_days
       WHERE ${keys} GROUP BY ${key}event_type, user_id`,
    );
    if (prefix === "") {
      // Their activity too: its days are the user-days left.
      await run(`DELETE FROM ${db}.user_activity WHERE ${keys} ${DELETE_SETTINGS}`);
      await run(
        `INSERT INTO ${db}.user_activity (event_type, user_id, first_day, days)
         SELECT event_type, user_id, min(day), groupUniqArray(day) FROM ${db}.user_days
         WHERE ${keys} GROUP BY event_type, user_id`,
      );
    }
    await run(`TRUNCATE TABLE ${moving}`);
  }
  return Number(n);
}
