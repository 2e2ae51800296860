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
  if (windowDays === 1 && source.kind === "rollups") {
    // One row per user and day once merged: counting rows is enough.
    const rows = await warehouse.query<{ date: string; users: string }>(
      `SELECT toString(day) AS date, count() AS users
       FROM ${warehouse.db}.${source.prefix}user_days FINAL
       WHERE event_type = {type:String} AND ${source.where}
         AND day BETWEEN toDate({from:String}) AND toDate({to:String})
       GROUP BY day`,
      { ...source.params, from: formatDay(range.from), to: formatDay(range.to) },
    );
    const byDate = new Map(rows.map((r) => [r.date, Number(r.users)]));
    return eachDay(range.from, range.to, (date) => byDate.get(date) ?? 0);
  }
  // The (user, day) pairs that can fall in some window of a part of the
  // range. Each query spans at most SPAN days, windows included; a longer
  // range is asked in parts, each from the day a window before its first.
  const pairs = userDaysSql(warehouse.db, source, "first", "to");
  const perQuery = SPAN - windowDays + 1;
  const parts = [];
  for (let from = range.from; from <= range.to; from += perQuery) {
    const to = Math.min(range.to, from + perQuery - 1);
    const first = from - windowDays + 1;
    parts.push(
      warehouse
        .query<{ position: number; delta: string }>(sweepSql(pairs, windowDays), {
          ...source.params,
          tz,
          first: formatDay(first),
          to: formatDay(to),
        })
        .then((rows) => {
          const change = new Map(rows.map((r) => [Number(r.position), Number(r.delta)]));
          let active = 0;
          const counts = [];
          for (let position = 0; position <= to - first; position++) {
            active += change.get(position) ?? 0;
            if (position >= windowDays - 1) counts.push(active);
          }
          return counts;
        }),
    );
  }
  const counts = (await Promise.all(parts)).flat();
  let day = 0;
  return eachDay(range.from, range.to, () => counts[day++] ?? 0);
}

/** Days one sweep covers: a user's days in it are two 64-bit words. */
const SPAN = 128;

/**
 * A sweep over bits, not an expansion. Each user's active days from {first}
 * become the bits of two UInt64 words, lo (days 0-63) and hi (64-127): an OR
 * per (user, day) pair, with no array to collect or sort, and a day listed
 * twice (several events, rollup rows not yet merged) sets its bit twice.
 * A user is in the window ending on day d while some active day lies in
 * [d - window + 1, d], so the days are smeared forward: c = m | m << 1 | ...
 * | m << (window - 1), in log2(window) shift-ORs of the pair (the spans
 * double, the last one tops up). Each run of c's set bits adds +1 on its
 * first day and -1 on the day after its last: found with one more shift,
 * their positions sent as one Int16 each (p + 1 for a start, -(p + 2) for an
 * end, so that every value is non-zero) and summed per position. Summing the
 * changes day by day (the caller) gives every window's count.
 */
function sweepSql(pairs: string, windowDays: number): string {
  // Level n holds lo{n} and hi{n}; each shift is a subquery of its own
  // (as aliases of one SELECT, the same shifts ran a fifth slower).
  let level = 0;
  let words = `SELECT groupBitOr(bitShiftLeft(toUInt64(i < 64), i % 64)) AS lo0,
      groupBitOr(bitShiftLeft(toUInt64(i >= 64), i % 64)) AS hi0
    FROM (SELECT user, toUInt8(day - toDate({first:String})) AS i FROM (${pairs}))
    GROUP BY user`;
  let span = 1;
  const shift = (k: number) => {
    const [lo, hi, n] = [`lo${level}`, `hi${level}`, ++level];
    words = `SELECT bitOr(${lo}, bitShiftLeft(${lo}, ${k})) AS lo${n},
        bitOr(${hi}, bitOr(bitShiftLeft(${hi}, ${k}), bitShiftRight(${lo}, ${64 - k}))) AS hi${n}
      FROM (${words})`;
    span += k;
  };
  while (span * 2 <= windowDays) shift(span);
  if (span < windowDays) shift(windowDays - span);
  const [lo, hi] = [`lo${level}`, `hi${level}`];
  const starts = [
    `bitAnd(${lo}, bitNot(bitShiftLeft(${lo}, 1)))`,
    `bitAnd(${hi}, bitNot(bitOr(bitShiftLeft(${hi}, 1), bitShiftRight(${lo}, 63))))`,
  ];
  const ends = [
    `bitAnd(${lo}, bitNot(bitOr(bitShiftRight(${lo}, 1), bitShiftLeft(${hi}, 63))))`,
    `bitAnd(${hi}, bitNot(bitShiftRight(${hi}, 1)))`,
  ];
  return `SELECT abs(change) - 1 AS position, sum(sign(change)) AS delta
    FROM (
      SELECT arrayConcat(
        arrayMap(p -> toInt16(p + 1), bitPositionsToArray(${starts[0]})),
        arrayMap(p -> toInt16(p + 65), bitPositionsToArray(${starts[1]})),
        arrayMap(p -> toInt16(-p - 2), bitPositionsToArray(${ends[0]})),
        arrayMap(p -> toInt16(-p - 66), bitPositionsToArray(${ends[1]}))) AS changes
      FROM (${words})
    )
    ARRAY JOIN changes AS change
    GROUP BY position`;
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
