import type { Warehouse } from "../warehouse/warehouse.ts";
import { breakdownSql, NONE, OTHER, parseBreakdown } from "./breakdown.ts";
import {
  formatDay,
  InvalidParameterError,
  parseChoice,
  parseRange,
  parseTimeZone,
} from "./params.ts";
import { eventsByTimeSql, eventsWhere, type ReadOptions, timeBoundsSql } from "./source.ts";

/** Parameters of {@link funnel}, as in `GET /stats/funnel`. */
export interface FunnelQuery {
  from: string;
  to: string;
  /** The steps' event types, in order. */
  step: readonly string[];
  /** `<n>s|m|h|d`; default 14d. */
  window: string;
  /** ordered (default), strict or unordered. */
  mode: string;
  /** '', event_type or properties.<path>. */
  breakdown: string;
  tz: string;
  segment: readonly string[];
}

export interface FunnelStep {
  eventType: string;
  users: number;
  rate: number;
  rateFromPrevious: number;
  medianSecondsFromPrevious: number | undefined;
}

export type FunnelAnswer =
  | { steps: FunnelStep[]; breakdowns?: undefined }
  | { steps?: undefined; breakdowns: { value: string; steps: FunnelStep[] }[] };

const MAX_STEPS = 20;
const MAX_WINDOW_MS = 365 * 86_400_000;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
/** Breakdown values shown by name; the rest add up in $other. */
const TOP_VALUES = 10;

/** Parses `window=`: `<n>s|m|h|d`, default 14d, at most 365d; in ms. */
export function parseWindow(value: string): number {
  if (value === "") return 14 * UNIT_MS.d;
  const m = /^([1-9][0-9]{0,9})([smhd])$/.exec(value);
  if (m === null) {
    throw new InvalidParameterError(
      "window",
      `expected a whole number and a unit, like 30m, 12h or 14d, got "${value}"`,
    );
  }
  const ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  if (ms > MAX_WINDOW_MS) throw new InvalidParameterError("window", "at most 365d");
  return ms;
}

function parseSteps(steps: readonly string[]): string[] {
  if (steps.length < 2 || steps.length > MAX_STEPS) {
    throw new InvalidParameterError(
      "step",
      `give 2 to ${MAX_STEPS} steps (step=signup&step=purchase), got ${steps.length}`,
    );
  }
  const empty = steps.indexOf("");
  if (empty >= 0) throw new InvalidParameterError("step", `step ${empty + 1} is empty`);
  return [...steps];
}

/**
 * Per attempt starting at event `i` of a user's events (`t` times in ms,
 * `c` each event's type as its index in `types`, 0 for another type),
 * the positions of the events matched to the steps, in step order; its
 * length is how far the attempt got. Query parameters: `codes` (each
 * step's type index), `same` (the last earlier step of the same type, 0
 * for none), `window` (ms).
 */
const ATTEMPT = {
  // Each step: the earliest event of its type at or after the step before
  // (in time: ties count), within the window of the first, and past the
  // event an earlier step of the same type took (one event, one step). The
  // earliest choice at each step reaches furthest.
  ordered: `arrayFold((acc, j) -> if(length(acc) < j - 1, acc,
      arrayConcat(acc, arrayFilter(p -> p > 0, [toUInt64(arrayFirstIndex(
        (tt, cc, p) -> cc = {codes:Array(UInt8)}[j] AND tt >= t[acc[-1]] AND tt <= t[i] + {window:Int64}
          AND p > acc[{same:Array(UInt8)}[j]],
        t, c, arrayEnumerate(c)))]))),
    range(2, length({codes:Array(UInt8)}) + 1), [toUInt64(i)])`,
  // Each step: the very next event, if it is of the step's type and within the window.
  strict: `arrayFold((acc, j) -> if(length(acc) = j - 1 AND i + j - 1 <= length(c)
        AND c[i + j - 1] = {codes:Array(UInt8)}[j] AND t[i + j - 1] <= t[i] + {window:Int64},
      arrayPushBack(acc, toUInt64(i + j - 1)), acc),
    range(2, length({codes:Array(UInt8)}) + 1), [toUInt64(i)])`,
  // Each step: an unused event of its type between the start and the
  // window's end, whatever the order; as many steps as such events match.
  unordered: `arrayFilter(p -> p > 0, arrayFold((acc, j) -> arrayPushBack(acc, toUInt64(arrayFirstIndex(
        (tt, cc, p) -> cc = {codes:Array(UInt8)}[j] AND tt >= t[i] AND tt <= t[i] + {window:Int64}
          AND NOT has(acc, p),
        t, c, arrayEnumerate(c)))),
    range(1, length({codes:Array(UInt8)}) + 1), emptyArrayUInt64()))`,
} as const;

/**
 * How many users went through the steps within the window of their first
 * step, as CONTRACT.md defines it: a user enters with a first-step event
 * (any step's, when unordered) on a day of the range, counts once at the
 * furthest step any attempt reached, and the earliest attempt reaching it
 * gives their times and breakdown value. Each user's events in the range
 * and window are sorted by time, then event_id, and matched in one query.
 */
export async function funnel(
  warehouse: Warehouse,
  q: FunnelQuery,
  options: ReadOptions = {},
): Promise<FunnelAnswer> {
  const range = parseRange(q.from, q.to);
  const steps = parseSteps(q.step);
  const windowMs = parseWindow(q.window);
  const mode = parseChoice("mode", q.mode, ["ordered", "strict", "unordered"] as const);
  const breakdown = parseBreakdown(q.breakdown);
  const tz = parseTimeZone(q.tz);
  const types = [...new Set(steps)];
  const codes = steps.map((s) => types.indexOf(s) + 1);
  const same = steps.map((s, j) => steps.slice(0, j).lastIndexOf(s) + 1);
  const filter = eventsWhere(q.segment, types);
  const value = breakdownSql(breakdown, "bk");
  // Strict mode needs every event of the user (another type breaks a run); the others, the steps'.
  const onlySteps = mode === "strict" ? "" : "AND indexOf({types:Array(String)}, event_type) > 0";
  const startsAt =
    mode === "unordered" ? "c[i] > 0 AND r[i]" : "c[i] = {codes:Array(UInt8)}[1] AND r[i]";
  const users = `
    SELECT attempts, arrayMax(arrayMap(a -> length(a), attempts)) AS reach,
           arrayFirstIndex(a -> length(a) = reach, attempts) AS which,
           arrayMap(p -> t[p], attempts[which]) AS times, b[starts[which]] AS value
    FROM (
      SELECT t, b, arrayFilter(i -> ${startsAt}, arrayEnumerate(c)) AS starts,
             arrayMap(i -> ${ATTEMPT[mode]}, starts) AS attempts
      FROM (
        SELECT arraySort(groupArray((toUnixTimestamp64Milli(occurred_at), toString(event_id),
                 toUInt8(indexOf({types:Array(String)}, event_type)),
                 toDate(occurred_at, {tz:String}) BETWEEN toDate({from:String}) AND toDate({to:String}),
                 ${value.sql}))) AS ev,
               arrayMap(e -> e.1, ev) AS t, arrayMap(e -> e.3, ev) AS c,
               arrayMap(e -> e.4, ev) AS r, arrayMap(e -> e.5, ev) AS b
        FROM ${eventsByTimeSql(warehouse.db, options)}
        WHERE ${timeBoundsSql(range.from, range.to, windowMs)} ${onlySteps} AND ${filter.where}
        GROUP BY user_id
      )
    )
    WHERE length(starts) > 0`;
  // With a breakdown, each value is ranked by its users (each has reached step 1), ties by text.
  const labelled =
    breakdown.kind === "none"
      ? `SELECT reach, times, '' AS label FROM (${users})`
      : `SELECT reach, times,
           if(value IS NULL, '${NONE}', if(rank <= ${TOP_VALUES}, assumeNotNull(value), '${OTHER}')) AS label
         FROM (
           SELECT *, dense_rank() OVER (ORDER BY value IS NULL, entered DESC, value) AS rank
           FROM (SELECT *, count() OVER (PARTITION BY value) AS entered FROM (${users}))
         )`;
  const rows = await warehouse.query<{ label: string; k: number; users: string; median: number }>(
    `SELECT label, k, count() AS users,
            quantileExactInclusiveIf(0.5)(times[k] - times[k - 1], k > 1) AS median
     FROM (${labelled}) ARRAY JOIN range(1, reach + 1) AS k
     GROUP BY label, k`,
    {
      ...filter.params,
      ...value.params,
      tz,
      from: formatDay(range.from),
      to: formatDay(range.to),
      types,
      codes,
      same,
      window: windowMs,
    },
  );
  const byLabel = new Map<string, Map<number, { users: number; median: number }>>();
  for (const r of rows) {
    const steps = byLabel.get(r.label) ?? new Map();
    steps.set(Number(r.k), { users: Number(r.users), median: Number(r.median) });
    byLabel.set(r.label, steps);
  }
  const answer = (label: string): FunnelStep[] => {
    const reached = byLabel.get(label) ?? new Map();
    const usersAt = (k: number) => reached.get(k)?.users ?? 0;
    return steps.map((eventType, j) => {
      const users = usersAt(j + 1);
      const before = j === 0 ? users : usersAt(j);
      return {
        eventType,
        users,
        rate: usersAt(1) === 0 ? 0 : users / usersAt(1),
        rateFromPrevious: before === 0 ? 0 : users / before,
        medianSecondsFromPrevious:
          j === 0 || mode === "unordered" || users === 0
            ? undefined
            : (reached.get(j + 1)?.median ?? 0) / 1000,
      };
    });
  };
  if (breakdown.kind === "none") return { steps: answer("") };
  const entered = (label: string) => byLabel.get(label)?.get(1)?.users ?? 0;
  const named = [...byLabel.keys()]
    .filter((l) => l !== OTHER && l !== NONE)
    .sort((a, b) => entered(b) - entered(a) || (a < b ? -1 : a > b ? 1 : 0));
  const shown = [...named, ...[OTHER, NONE].filter((l) => byLabel.has(l))];
  return { breakdowns: shown.map((value) => ({ value, steps: answer(value) })) };
}
