import type { Warehouse } from "../warehouse/warehouse.ts";
import { breakdownSql, NONE, OTHER, parseBreakdown } from "./breakdown.ts";
import { funnelPlan, matchUser, type UserEvents } from "./funnel-match.ts";
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
/** Per step, the users who reached it and the ms each took from the step before. */
type Reached = { users: number[]; gaps: number[][] };

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
 * Encodes an event in one exact double: (ms from the read's start) * 64 +
 * type index * 2 + in range. Sorted by time, then event_id: a UUID as
 * UInt128 sorts as its text does.
 */
const PACKED = "toFloat64((x.1 - {lo:Int64}) * 64 + x.3 * 2 + x.4)";

/** One user's row: their events packed, and, as asked, each one's breakdown value and place. */
interface FunnelRow {
  events: UserEvents;
  values?: (string | null)[];
}

/**
 * The rows of the funnel's query, read from ClickHouse's RowBinary: per
 * user, `e` (Array(Float64)), then `b` (Array(Nullable(String))) with a
 * breakdown, then `p` (Array(UInt32)) when strict. Every user's events are
 * views of one set of arrays. Before, the rows came as JSON (every number
 * written as text and parsed back) and each user had three typed arrays of
 * their own: the bench's funnels at 10M events took 0.70-0.74 as long now
 * (ordered 278 ms against 375, strict 412 against 585), and at 1M 0.61-0.80
 * (9 and 15 alternating runs).
 */
function* funnelRows(
  data: Buffer,
  lo: number,
  has: { values: boolean; places: boolean },
): Generator<FunnelRow> {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  // Room for every event: each takes 8 bytes of the data at least.
  const most = Math.floor(data.length / 8);
  const times = new Float64Array(most);
  const types = new Uint8Array(most);
  const inRange = new Uint8Array(most);
  let at = 0;
  let used = 0;
  /** A LEB128 length, as RowBinary writes an array's or a string's. */
  const length = () => {
    let n = 0;
    for (let shift = 0; ; shift += 7) {
      const byte = data[at++] as number;
      n += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return n;
    }
  };
  while (at < data.length) {
    const n = length();
    const from = used;
    for (let i = 0; i < n; i++, at += 8, used++) {
      const v = view.getFloat64(at, true);
      // The low 6 bits as a small integer: % on a double this size is a call to fmod.
      const ms = Math.floor(v / 64);
      const low = v - ms * 64;
      times[used] = lo + ms;
      types[used] = low >> 1;
      inRange[used] = low & 1;
    }
    const row: FunnelRow = {
      events: {
        t: times.subarray(from, used),
        c: types.subarray(from, used),
        r: inRange.subarray(from, used),
      },
    };
    if (has.values) {
      const values: (string | null)[] = new Array(length());
      for (let i = 0; i < values.length; i++) {
        if (data[at++] === 1) values[i] = null;
        else {
          const bytes = length();
          values[i] = data.toString("utf8", at, at + bytes);
          at += bytes;
        }
      }
      row.values = values;
    }
    if (has.places) {
      const p = new Uint32Array(length());
      for (let i = 0; i < p.length; i++, at += 4) p[i] = view.getUint32(at, true);
      row.events.p = p;
    }
    yield row;
  }
}

/**
 * How many users went through the steps within the window of their first
 * step, as CONTRACT.md defines it: a user enters with a first-step event
 * (any step's, when unordered) on a day of the range, counts once at the
 * furthest step any attempt reached, and the earliest attempt reaching it
 * gives their times and breakdown value. The warehouse sorts each user's
 * events in the range and window (time, then event_id) and packs them; the
 * matching is done here, per user, by binary search (funnel-match.ts): in
 * SQL, a lambda per attempt copies the user's whole arrays for each one,
 * which cost 10 s at 10M events.
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
  const plan = funnelPlan(mode, steps, windowMs);
  const { types } = plan;
  const filter = eventsWhere(q.segment, types);
  const value = breakdownSql(breakdown, "bk");
  // Strict mode needs every event of the user (another type breaks a run); the others, the steps'.
  const onlySteps = mode === "strict" ? "" : "AND has({types:Array(String)}, event_type)";
  const entersOn =
    mode === "unordered" ? "has({types:Array(String)}, event_type)" : "event_type = {first:String}";
  const inRange =
    "toDate(occurred_at, {tz:String}) BETWEEN toDate({from:String}) AND toDate({to:String})";
  const lo = (range.from - 1) * 86_400_000;
  const byValue = breakdown.kind !== "none";
  // The breakdown's value only where an attempt may start, the one place an answer
  // takes it from: at 10M events, 0.84-0.90 as long by a property, 0.90-0.94 by the type.
  const entryValue = byValue ? `, if(${entersOn} AND ${inRange}, ${value.sql}, NULL)` : "";
  const strict = mode === "strict";
  const found = await warehouse.queryBytes(
    `SELECT arrayMap(x -> ${PACKED}, ev) AS e
            ${byValue ? ", CAST(arrayMap(x -> x.5, ev) AS Array(Nullable(String))) AS b" : ""}
            ${strict ? ", CAST(p AS Array(UInt32)) AS p" : ""}
     FROM (
       SELECT ${
         // Strict: the steps' events only, with their place among all the user's events.
         strict
           ? "arrayFilter(x -> x.3 > 0, sorted) AS ev, arrayFilter((p, x) -> x.3 > 0, arrayEnumerate(sorted), sorted) AS p"
           : "sorted AS ev"
       }
     FROM (
       SELECT arraySort(groupArray((toUnixTimestamp64Milli(occurred_at), toUInt128(event_id),
                toUInt8(indexOf({types:Array(String)}, event_type)), toUInt8(${inRange})
                ${entryValue}))) AS sorted
       FROM ${eventsByTimeSql(warehouse.db, options)}
       WHERE ${timeBoundsSql(range.from, range.to, windowMs)} ${onlySteps} AND ${filter.where}
       GROUP BY user_id
       HAVING countIf(${entersOn} AND ${inRange}) > 0
     ))`,
    {
      ...filter.params,
      ...value.params,
      tz,
      from: formatDay(range.from),
      to: formatDay(range.to),
      types,
      first: steps[0] as string,
      lo,
    },
    "RowBinary",
  );
  // Per breakdown value: users reaching each step, and the seconds each step took them.
  const groups = new Map<string, Reached>();
  for (const row of funnelRows(found, lo, { values: byValue, places: strict })) {
    const user = matchUser(row.events, plan);
    if (user === undefined) continue;
    const label = byValue ? (row.values?.[user.start] ?? NONE) : "";
    let group = groups.get(label);
    if (group === undefined) {
      group = { users: steps.map(() => 0), gaps: steps.map(() => []) };
      groups.set(label, group);
    }
    for (let k = 0; k < user.reach; k++) {
      group.users[k] = (group.users[k] as number) + 1;
      if (k > 0 && user.times.length > k) {
        group.gaps[k]?.push((user.times[k] as number) - (user.times[k - 1] as number));
      }
    }
  }
  const answer = (group: Reached | undefined): FunnelStep[] =>
    steps.map((eventType, k) => {
      const users = group?.users[k] ?? 0;
      const first = group?.users[0] ?? 0;
      const before = k === 0 ? users : (group?.users[k - 1] ?? 0);
      return {
        eventType,
        users,
        rate: first === 0 ? 0 : users / first,
        rateFromPrevious: before === 0 ? 0 : users / before,
        medianSecondsFromPrevious:
          k === 0 || mode === "unordered" || users === 0
            ? undefined
            : median(group?.gaps[k] ?? []) / 1000,
      };
    });
  if (breakdown.kind === "none") return { steps: answer(groups.get("")) };
  // The values with most users entering, ties by text; the rest add up in $other.
  const entered = (label: string) => groups.get(label)?.users[0] ?? 0;
  const named = [...groups.keys()]
    .filter((l) => l !== NONE)
    .sort((a, b) => entered(b) - entered(a) || (a < b ? -1 : a > b ? 1 : 0));
  const top = named.slice(0, TOP_VALUES);
  const other: Reached = { users: steps.map(() => 0), gaps: steps.map(() => []) };
  for (const label of named.slice(TOP_VALUES)) {
    const g = groups.get(label) as Reached;
    g.users.forEach((u, k) => {
      other.users[k] = (other.users[k] as number) + u;
      other.gaps[k]?.push(...(g.gaps[k] ?? []));
    });
  }
  const shown = top.map((v) => ({ value: v, steps: answer(groups.get(v)) }));
  if (named.length > TOP_VALUES) shown.push({ value: OTHER, steps: answer(other) });
  if (groups.has(NONE)) shown.push({ value: NONE, steps: answer(groups.get(NONE)) });
  return { breakdowns: shown };
}

/** The middle value, or the mean of the two middle ones. */
function median(xs: number[]): number {
  const sorted = Float64Array.from(xs).sort();
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
