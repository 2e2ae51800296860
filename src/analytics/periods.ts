import { type Day, mondayOf } from "./params.ts";

/** The periods a stat may group days by: weeks start on Monday, months on the 1st. */
export type Interval = "day" | "week" | "month";

/** The start of the period holding `day`. */
export function periodOf(interval: Interval, day: Day): Day {
  if (interval === "day") return day;
  if (interval === "week") return mondayOf(day);
  const d = new Date(day * 86_400_000);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1) / 86_400_000;
}

/** The start of the period after the one starting on `start`. */
export function nextPeriod(interval: Interval, start: Day): Day {
  if (interval === "day") return start + 1;
  if (interval === "week") return start + 7;
  const d = new Date(start * 86_400_000);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) / 86_400_000;
}

/** The start of the period holding a Date column or expression `day`, in SQL. */
export function periodSql(interval: Interval, day: string): string {
  return interval === "day"
    ? day
    : interval === "week"
      ? `toMonday(${day})`
      : `toStartOfMonth(${day})`;
}

/** The starts of the periods from the one holding `from` to the one holding `to`. */
export function periodsOf(interval: Interval, from: Day, to: Day): Day[] {
  const out: Day[] = [];
  for (let p = periodOf(interval, from); p <= to; p = nextPeriod(interval, p)) out.push(p);
  return out;
}
