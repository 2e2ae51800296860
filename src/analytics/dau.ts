import type { Warehouse } from "../warehouse/warehouse.ts";
import { activeUsers } from "./active-users.ts";
import type { ReadOptions } from "./source.ts";

/** Parameters of {@link dau}, as in `GET /stats/dau`. */
export interface DauQuery {
  from: string;
  to: string;
  tz: string;
  segment: readonly string[];
}

/** Distinct users per day of the range, zeros included: the 1-day active users. */
export async function dau(warehouse: Warehouse, q: DauQuery, options: ReadOptions = {}) {
  const days = await activeUsers(warehouse, { ...q, window: "day" }, options);
  return days.map((d) => ({ date: d.date, uniqueUsers: d.activeUsers }));
}
