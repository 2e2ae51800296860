import type { Warehouse } from "./warehouse.ts";

/** The rollups read with FINAL: see migrations.ts. */
const FINAL_ROLLUPS = [
  "user_days",
  "day_events",
  "prop_user_days",
  "prop_day_events",
  "zone_user_days",
  "zone_day_events",
];

/**
 * Merges each closed month of the rollups (every month before the current
 * one) into one part. A FINAL query reads a one-part partition as it is and
 * merges only the months still being written, so stats over a year stay
 * fast after a history import leaves old months in many parts. Returns the
 * partitions merged.
 */
export async function compactRollups(warehouse: Warehouse): Promise<string[]> {
  const partitions = await warehouse.rows<{ table: string; partition: string }>(
    `SELECT table, partition FROM system.parts
     WHERE database = {database:String} AND table IN {tables:Array(String)} AND active
       AND partition < toString(toYYYYMM(now()))
     GROUP BY table, partition HAVING count() > 1
     ORDER BY table, partition`,
    { database: warehouse.database, tables: FINAL_ROLLUPS },
  );
  for (const { table, partition } of partitions) {
    // OPTIMIZE takes no query parameters; the id is a month's digits from system.parts.
    if (!/^\d+$/.test(partition)) continue;
    await warehouse.client.command({
      query: `OPTIMIZE TABLE ${warehouse.db}.${table} PARTITION ID '${partition}' FINAL`,
    });
  }
  return partitions.map((p) => `${p.table}/${p.partition}`);
}
