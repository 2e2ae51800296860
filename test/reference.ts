import { NOT_ACTIVITY } from "../src/event/activity.ts";
import type { JsonEvent } from "./helpers.ts";

/**
 * Slow, obviously correct stats over a list of sent events, for checking the
 * warehouse's answers. The first copy of each event_id wins.
 */
export function firstCopies(sent: readonly JsonEvent[]): JsonEvent[] {
  const seen = new Map<string, JsonEvent>();
  for (const e of sent)
    if (!seen.has(e.event_id.toLowerCase())) seen.set(e.event_id.toLowerCase(), e);
  return [...seen.values()];
}

const dayFormats = new Map<string, Intl.DateTimeFormat>();
const days = new Map<string, string>();

/** The calendar day (YYYY-MM-DD) of an instant in `tz`, by the platform's own zone rules. */
export function dayIn(tz: string, iso: string): string {
  const key = `${tz} ${iso}`;
  let day = days.get(key);
  if (day === undefined) {
    let format = dayFormats.get(tz);
    if (format === undefined) {
      format = new Intl.DateTimeFormat("en-CA", {
        timeZone: tz,
        year: "numeric",
        month: "2-digit",
        day: "2-digit",
      });
      dayFormats.set(tz, format);
    }
    day = format.format(new Date(iso));
    days.set(key, day);
  }
  return day;
}

function addDays(date: string, n: number): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10);
}

/** A segment: the API's `segment=` strings, or the shorthand { type, country }. */
export type RefSegment = readonly string[] | { type?: string; country?: string };

function matches(e: JsonEvent, segment: RefSegment): boolean {
  const wanted = Array.isArray(segment)
    ? segment
    : [
        ...("type" in segment && segment.type !== undefined ? [`event_type:${segment.type}`] : []),
        ...("country" in segment && segment.country !== undefined
          ? [`properties.country:${segment.country}`]
          : []),
      ];
  // Without a type named, only activity counts: identify and the like are not (CONTRACT.md).
  const typed = wanted.some((s) => s.startsWith("event_type:"));
  if (!typed && (NOT_ACTIVITY as readonly string[]).includes(e.event_type)) return false;
  return wanted.every((s) => {
    const colon = s.indexOf(":");
    const [key, value] = [s.slice(0, colon), s.slice(colon + 1)];
    if (key === "event_type") return e.event_type === value;
    let v: unknown = e.properties;
    for (const k of key.slice("properties.".length).split(".")) {
      if (v === null || typeof v !== "object" || !(k in v)) return false;
      v = (v as Record<string, unknown>)[k];
    }
    return (typeof v === "string" ? v : JSON.stringify(v)) === value;
  });
}

export function refDau(
  events: readonly JsonEvent[],
  from: string,
  to: string,
  tz: string,
  segment: RefSegment = {},
) {
  const out = [];
  for (let d = from; d <= to; d = addDays(d, 1)) {
    const users = new Set(
      events
        .filter((e) => matches(e, segment) && dayIn(tz, e.occurred_at) === d)
        .map((e) => e.user_id),
    );
    out.push({ date: d, unique_users: users.size });
  }
  return out;
}

export function refTopEvents(
  events: readonly JsonEvent[],
  from: string,
  to: string,
  tz: string,
  limit: number,
  segment: RefSegment = {},
) {
  const counts = new Map<string, number>();
  for (const e of events) {
    const d = dayIn(tz, e.occurred_at);
    if (d < from || d > to || !matches(e, segment)) continue;
    counts.set(e.event_type, (counts.get(e.event_type) ?? 0) + 1);
  }
  return [...counts]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, limit)
    .map(([event_type, count]) => ({ event_type, count }));
}

export function refActiveUsers(
  events: readonly JsonEvent[],
  from: string,
  to: string,
  windowDays: number,
  tz: string,
  segment: RefSegment = {},
) {
  const out = [];
  for (let d = from; d <= to; d = addDays(d, 1)) {
    const first = addDays(d, 1 - windowDays);
    const users = new Set(
      events
        .filter((e) => matches(e, segment))
        .filter((e) => {
          const day = dayIn(tz, e.occurred_at);
          return day >= first && day <= d;
        })
        .map((e) => e.user_id),
    );
    out.push({ date: d, active_users: users.size });
  }
  return out;
}

/** The Monday on or before a YYYY-MM-DD day. */
function mondayOf(day: string): string {
  const dow = new Date(`${day}T00:00:00Z`).getUTCDay(); // 0 = Sunday
  return addDays(day, -((dow + 6) % 7));
}

/**
 * Cohorts by the period (day, or ISO week) of each user's first event, and
 * how many were active k periods later.
 */
export function refRetention(
  events: readonly JsonEvent[],
  start: string,
  end: string,
  windows: number,
  tz: string,
  granularity: "day" | "week",
  segment: RefSegment = {},
) {
  const period = (day: string) => (granularity === "day" ? day : mondayOf(day));
  const step = granularity === "day" ? 1 : 7;
  const firsts = new Map<string, string>();
  const active = new Set<string>();
  for (const e of events) {
    if (!matches(e, segment)) continue;
    const p = period(dayIn(tz, e.occurred_at));
    const f = firsts.get(e.user_id);
    if (f === undefined || p < f) firsts.set(e.user_id, p);
    active.add(`${e.user_id}/${p}`);
  }
  const out = [];
  for (let c = period(start); c <= period(end); c = addDays(c, step)) {
    const members = [...firsts].filter(([, f]) => f === c).map(([u]) => u);
    const retained = Array.from(
      { length: windows + 1 },
      (_, k) => members.filter((u) => active.has(`${u}/${addDays(c, step * k)}`)).length,
    );
    out.push({
      cohort: c,
      size: members.length,
      retained,
      rates: retained.map((n) => (members.length === 0 ? 0 : n / members.length)),
    });
  }
  return out;
}

/** Users active in exactly k periods (days, or Monday weeks cut to the range) of [from, to], k = 1..periods. */
export function refStickiness(
  events: readonly JsonEvent[],
  from: string,
  to: string,
  interval: "day" | "week",
  tz: string,
  segment: RefSegment = {},
) {
  const periodOf = (d: string) => (interval === "day" ? d : mondayOfDay(d));
  const byUser = new Map<string, Set<string>>();
  for (const e of events) {
    const d = dayIn(tz, e.occurred_at);
    if (d < from || d > to || !matches(e, segment)) continue;
    const periods = byUser.get(e.user_id) ?? new Set<string>();
    periods.add(periodOf(d));
    byUser.set(e.user_id, periods);
  }
  const all = new Set<string>();
  for (let d = from; d <= to; d = addDays(d, 1)) all.add(periodOf(d));
  return Array.from({ length: all.size }, (_, i) => ({
    periods: i + 1,
    users: [...byUser.values()].filter((p) => p.size === i + 1).length,
  }));
}

/** The Monday on or before a YYYY-MM-DD day. */
function mondayOfDay(d: string): string {
  const weekday = (new Date(`${d}T00:00:00Z`).getUTCDay() + 6) % 7; // Monday 0
  return addDays(d, -weekday);
}

/** The lifecycle of whole periods (day, Monday week, month) from the one holding `from` to the one holding `to`. */
export function refLifecycle(
  events: readonly JsonEvent[],
  from: string,
  to: string,
  interval: "day" | "week" | "month",
  tz: string,
  segment: RefSegment = {},
) {
  const periodOf = (d: string) =>
    interval === "day" ? d : interval === "week" ? mondayOfDay(d) : `${d.slice(0, 8)}01`;
  const next = (p: string) =>
    interval === "day"
      ? addDays(p, 1)
      : interval === "week"
        ? addDays(p, 7)
        : periodOf(addDays(p, 31));
  const born = new Map<string, string>();
  const active = new Map<string, Set<string>>();
  for (const e of events) {
    if (!matches(e, segment)) continue;
    const p = periodOf(dayIn(tz, e.occurred_at));
    const b = born.get(e.user_id);
    if (b === undefined || p < b) born.set(e.user_id, p);
    const periods = active.get(e.user_id) ?? new Set<string>();
    periods.add(p);
    active.set(e.user_id, periods);
  }
  const out = [];
  let previous = periodOf(addDays(periodOf(from), -1));
  for (let p = periodOf(from); p <= periodOf(to); previous = p, p = next(p)) {
    const row = { date: p, new: 0, returning: 0, resurrecting: 0, dormant: 0 };
    for (const [user, periods] of active) {
      const now = periods.has(p);
      const before = periods.has(previous);
      if (now && born.get(user) === p) row.new++;
      else if (now && before) row.returning++;
      else if (now) row.resurrecting++;
      else if (before) row.dormant--;
    }
    out.push(row);
  }
  return out;
}
