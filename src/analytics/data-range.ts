import type { Warehouse } from "../warehouse/warehouse.ts";

/**
 * The first and last UTC days holding events ('' while there are none), read
 * from the daily rollup: every event adds its day there under the "any type"
 * key, which the table is sorted by, so each end is read in order, one row.
 */
export async function dataRange(warehouse: Warehouse) {
  const end = async (order: "ASC" | "DESC") => {
    const [row] = await warehouse.query<{ day: string }>(
      `SELECT toString(day) AS day FROM ${warehouse.db}.user_days
       WHERE event_type = '' ORDER BY day ${order} LIMIT 1`,
      {},
    );
    return row?.day ?? "";
  };
  const [firstDate, lastDate] = await Promise.all([end("ASC"), end("DESC")]);
  return { firstDate, lastDate };
}
