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
  // The (user, day) pairs that can fall in some window of the range, and
  // the changes in the count they make, by position: day first + position.
  const first = range.from - windowDays + 1;
  const days = range.to - first + 1;
  const pairs = userDaysSql(warehouse.db, source, "first", "to");
  const rows = await warehouse.query<{ position: string; delta: string }>(
    days <= MAX_BITS_DAYS && q.segment.length === 0
      ? bitsSweepSql(pairs, windowDays, Math.ceil(days / 64))
      : arraySweepSql(pairs),
    { ...source.params, tz, first: formatDay(first), to: formatDay(range.to), window: windowDays },
  );
  const change = new Map(rows.map((r) => [Number(r.position), Number(r.delta)]));
  let active = 0;
  for (let position = 0; position < windowDays - 1; position++) {
    active += change.get(position) ?? 0;
  }
  let position = windowDays - 1;
  return eachDay(range.from, range.to, () => {
    active += change.get(position++) ?? 0;
    return active;
  });
}

/**
 * Days (windows included) up to which a user's days are bit words, not a
 * sorted array. At 10M events, MAU over 90 days (two words) took 51-64 ms
 * against 70-92 as arrays; over 400 days (seven) 221 against 187, and over
 * 1,100 days (eighteen) 461 against 159: each word is an aggregate per
 * (user, day) pair and shifts per user, while a sort grows with a user's
 * days. So words pay where users have many days, and cost where they have
 * few: at 1M events, MAU of purchases over 90 days took 22-26 ms against
 * 14-16. All activity (no segment) is where users have the most days: only
 * it is read as words.
 */
const MAX_BITS_DAYS = 128;

/**
 * A sweep, not an expansion: a user is in the window ending on d while some
 * active day lies in [d - window + 1, d], so each user's active days merge
 * into runs (gaps shorter than the window), and each run adds +1 on its
 * first day and -1 a window after its last. Summing the changes day by day
 * gives every window's count from one row per user and run, not one per
 * (user, day, window day) as spelling each window out would. A day listed
 * twice (several events, or rollup rows not yet merged) is a gap of 0: it
 * starts and ends nothing, so the days need no de-duplicating first. Each
 * day meets its neighbour by zipping the array with itself shifted (i and j
 * count from each end), never by indexing it inside the lambda: ClickHouse
 * copies a captured array once per element, n² for a user with n events.
 */
function arraySweepSql(pairs: string): string {
  return `SELECT toUInt32(change.1 - toDate({first:String})) AS position, sum(change.2) AS delta
    FROM (
      SELECT arraySort(groupArray(day)) AS days
      FROM (${pairs})
      GROUP BY user
    )
    ARRAY JOIN arrayConcat(
      arrayMap(d -> (d, 1), arrayFilter((d, prev, i) -> i = 1 OR d - prev >= {window:UInt32}, days, arrayPushFront(arrayPopBack(days), days[1]), arrayEnumerate(days))),
      arrayMap(d -> (d + {window:UInt32}, -1), arrayFilter((d, next, j) -> j = 1 OR next - d >= {window:UInt32}, days, arrayPushBack(arrayPopFront(days), days[1]), arrayReverse(arrayEnumerate(days))))
    ) AS change
    GROUP BY position`;
}

/**
 * The same sweep over bits, for short ranges. Each user's active days from
 * {first} become the bits of `count` UInt64 words (w0: days 0-63, w1:
 * 64-127): an OR per (user, day) pair, with no array to collect or sort,
 * and a day listed twice sets its bit twice. The days are smeared forward
 * over the window, c = m | m << 1 | ... | m << (window - 1), as shifts
 * 0..s-1 (s about the window's square root), then shifts of that by
 * multiples of s. Each run of c's set bits is a run of the sweep: +1 on its
 * first day, -1 on the day after its last, found with one more shift each
 * way and sent as one Int16 each (p + 1 for a start, -(p + 2) for an end,
 * so that every value is non-zero).
 */
function bitsSweepSql(pairs: string, windowDays: number, count: number): string {
  const each = <T>(f: (w: number) => T) => Array.from({ length: count }, (_, w) => f(w));
  // Word w of the words named `name`, shifted left (k > 0) or right (k < 0) by |k| < 64.
  const shifted = (name: string, w: number, k: number) => {
    if (k === 0) return `${name}${w}`;
    const [into, from, carry] =
      k > 0 ? ["bitShiftLeft", w - 1, "bitShiftRight"] : ["bitShiftRight", w + 1, "bitShiftLeft"];
    const own = `${into}(${name}${w}, ${Math.abs(k)})`;
    return from < 0 || from >= count
      ? own
      : `bitOr(${own}, ${carry}(${name}${from}, ${64 - Math.abs(k)}))`;
  };
  const or = (terms: string[]) => terms.reduce((x, y) => `bitOr(${x}, ${y})`);
  let level = 0;
  // Each level a subquery of its own (as aliases of one SELECT, the same shifts ran a fifth slower).
  let words = `SELECT ${each((w) => `groupBitOr(bitShiftLeft(toUInt64(intDiv(i, 64) = ${w}), i % 64)) AS m0_${w}`).join(", ")}
    FROM (SELECT user, toUInt16(day - toDate({first:String})) AS i FROM (${pairs}))
    GROUP BY user`;
  const orShifted = (shifts: number[]) => {
    const [from, to] = [`m${level}_`, `m${++level}_`];
    words = `SELECT ${each((w) => `${or(shifts.map((k) => shifted(from, w, k)))} AS ${to}${w}`).join(", ")} FROM (${words})`;
  };
  const step = Math.ceil(Math.sqrt(windowDays));
  if (windowDays > 1) {
    orShifted(Array.from({ length: step }, (_, k) => k));
    const multiples = [];
    for (let k = 0; k + step < windowDays; k += step) multiples.push(k);
    orShifted([...multiples, windowDays - step]);
  }
  const c = `m${level}_`;
  const changes = each((w) => [
    `arrayMap(p -> toInt16(p + ${64 * w + 1}), bitPositionsToArray(bitAnd(${c}${w}, bitNot(${shifted(c, w, 1)}))))`,
    `arrayMap(p -> toInt16(-p - ${64 * w + 2}), bitPositionsToArray(bitAnd(${c}${w}, bitNot(${shifted(c, w, -1)}))))`,
  ]).flat();
  return `SELECT abs(change) - 1 AS position, sum(sign(change)) AS delta
    FROM (SELECT arrayConcat(${changes.join(", ")}) AS changes FROM (${words}))
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
