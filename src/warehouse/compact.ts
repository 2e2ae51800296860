import type { Warehouse } from "./warehouse.ts";

/** The rollups read with FINAL: see migrations.ts. */
const FINAL_ROLLUPS = [
  "user_days",
  "day_events",
  "prop_user_days",
  "prop_day_events",
  "zone_user_days",
  "zone_day_events",
  "events_by_time",
];

/** The rollups by user: one unpartitioned table each, a row per user per insert until merged. */
const BY_USER = ["first_days", "prop_first_days", "zone_first_days", "user_activity"];

/**
 * Merges each closed month of the rollups (every month before the current
 * one) into one part. A FINAL query reads a one-part partition as it is and
 * merges only the months still being written, so stats over a year stay
 * fast after a history import leaves old months in many parts. Each
 * table by user (first days, activity) in more than one part is merged whole: a bulk load or a
 * backfill leaves a row per user per insert block in it, which background
 * merges of large parts leave alone, and cohorts read every row (retention
 * in an indexed zone at 10M events: 247 ms before, 105 ms after). Returns
 * what it merged.
 */
export async function compactRollups(warehouse: Warehouse): Promise<string[]> {
  const partitions = await warehouse.query<{ table: string; partition: string }>(
    `SELECT table, partition FROM system.parts
     WHERE database = {database:String} AND active
       AND (table IN {final:Array(String)} AND partition < toString(toYYYYMM(now()))
            OR table IN {byUser:Array(String)})
     GROUP BY table, partition HAVING count() > 1
     ORDER BY table, partition`,
    { database: warehouse.database, final: FINAL_ROLLUPS, byUser: BY_USER },
  );
  // OPTIMIZE takes no query parameters: the table names are ours, a month's id is digits.
  for (const { table, partition } of partitions) {
    if (BY_USER.includes(table)) {
      await warehouse.command(`OPTIMIZE TABLE ${warehouse.db}.${table} FINAL`);
    } else if (/^\d+$/.test(partition)) {
      await warehouse.command(
        `OPTIMIZE TABLE ${warehouse.db}.${table} PARTITION ID '${partition}' FINAL`,
      );
    }
  }
  return partitions.map((p) => `${p.table}/${p.partition}`);
}
