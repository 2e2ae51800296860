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

/** A property's value as segments and breakdowns compare it; undefined where it is missing. */
function propertyText(e: JsonEvent, path: string): string | undefined {
  let v: unknown = e.properties;
  for (const k of path.split(".")) {
    if (v === null || typeof v !== "object" || !(k in v)) return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return typeof v === "string" ? v : JSON.stringify(v);
}

/** The median of numbers: the middle one, or the mean of the two middle ones. */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1
    ? (s[mid] as number)
    : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * The funnel as CONTRACT.md defines it, by brute force per user: every
 * attempt is searched exhaustively (depth first, candidates in time then
 * event_id order), and the first matching found at the furthest depth is
 * the attempt's.
 */
export function refFunnel(
  events: readonly JsonEvent[],
  q: {
    from: string;
    to: string;
    steps: readonly string[];
    window: string;
    mode: "ordered" | "strict" | "unordered";
    breakdown: string;
    tz: string;
    segment: readonly string[];
  },
) {
  const windowMs = Number(q.window.slice(0, -1)) * (UNIT_MS[q.window.slice(-1)] as number);
  // Steps' types count even when they are not activity (identify and the like).
  const counted = (e: JsonEvent) =>
    matches(e, q.segment) ||
    (q.steps.includes(e.event_type) && matches(e, [...q.segment, `event_type:${e.event_type}`]));
  const byUser = new Map<string, { t: number; id: string; e: JsonEvent }[]>();
  for (const e of events) {
    if (!counted(e)) continue;
    const list = byUser.get(e.user_id) ?? [];
    list.push({ t: Date.parse(e.occurred_at), id: e.event_id.toLowerCase(), e });
    byUser.set(e.user_id, list);
  }
  const n = q.steps.length;
  const inRange = (e: JsonEvent) => {
    const d = dayIn(q.tz, e.occurred_at);
    return d >= q.from && d <= q.to;
  };
  const results: { reach: number; times: number[]; value: string | undefined }[] = [];
  for (const list of byUser.values()) {
    list.sort((a, b) => a.t - b.t || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    let best: { reach: number; times: number[]; start: JsonEvent } | undefined;
    for (let i = 0; i < list.length; i++) {
      const start = list[i] as (typeof list)[number];
      if (!inRange(start.e)) continue;
      let path: number[] = [];
      if (q.mode === "unordered") {
        if (!q.steps.includes(start.e.event_type)) continue;
        // Distinct steps matched by distinct events: per type, as many as both have.
        const within = list.filter((x) => x.t >= start.t && x.t <= start.t + windowMs);
        let reach = 0;
        for (const type of new Set(q.steps)) {
          const wanted = q.steps.filter((s) => s === type).length;
          reach += Math.min(wanted, within.filter((x) => x.e.event_type === type).length);
        }
        path = Array.from({ length: reach }, () => i);
      } else {
        if (start.e.event_type !== q.steps[0]) continue;
        if (q.mode === "strict") {
          path = [i];
          for (let j = 1; j < n; j++) {
            const next = list[i + j];
            if (
              next === undefined ||
              next.e.event_type !== q.steps[j] ||
              next.t > start.t + windowMs
            )
              break;
            path.push(i + j);
          }
        } else {
          const search = (chosen: number[]) => {
            if (chosen.length > path.length) path = [...chosen];
            if (chosen.length === n || path.length === n) return;
            const last = list[chosen[chosen.length - 1] as number] as (typeof list)[number];
            for (let k = 0; k < list.length; k++) {
              const x = list[k] as (typeof list)[number];
              if (chosen.includes(k) || x.e.event_type !== q.steps[chosen.length]) continue;
              if (x.t < last.t || x.t > start.t + windowMs) continue;
              search([...chosen, k]);
              if (path.length === n) return;
            }
          };
          search([i]);
        }
      }
      if (best === undefined || path.length > best.reach) {
        best = {
          reach: path.length,
          times: path.map((k) => (list[k] as (typeof list)[number]).t),
          start: start.e,
        };
      }
    }
    if (best === undefined) continue;
    const value =
      q.breakdown === ""
        ? ""
        : q.breakdown === "event_type"
          ? best.start.event_type
          : propertyText(best.start, q.breakdown.slice("properties.".length));
    results.push({ reach: best.reach, times: best.times, value });
  }
  const rows = (group: typeof results) => {
    const at = (k: number) => group.filter((r) => r.reach >= k);
    return q.steps.map((eventType, j) => {
      const users = at(j + 1).length;
      const before = j === 0 ? users : at(j).length;
      const first = at(1).length;
      const gaps = at(j + 1).map((r) => (r.times[j] as number) - (r.times[j - 1] as number));
      return {
        event_type: eventType,
        users,
        rate: first === 0 ? 0 : users / first,
        rate_from_previous: before === 0 ? 0 : users / before,
        median_seconds_from_previous:
          j === 0 || q.mode === "unordered" || users === 0 ? null : median(gaps) / 1000,
      };
    });
  };
  if (q.breakdown === "") return { steps: rows(results), breakdowns: [] };
  const counts = new Map<string, number>();
  for (const r of results)
    if (r.value !== undefined) counts.set(r.value, (counts.get(r.value) ?? 0) + 1);
  const top = [...counts]
    .sort(([a, x], [b, y]) => y - x || (a < b ? -1 : a > b ? 1 : 0))
    .slice(0, 10)
    .map(([v]) => v);
  const label = (r: (typeof results)[number]) =>
    r.value === undefined ? "$none" : top.includes(r.value) ? r.value : "$other";
  const breakdowns = [...top, "$other", "$none"]
    .map((value) => ({ value, steps: rows(results.filter((r) => label(r) === value)) }))
    .filter((b) => b.steps[0]?.users !== 0);
  return { steps: [], breakdowns };
}

const NUMBER = /^-?(0|[1-9][0-9]*)([.][0-9]+)?([eE][-+]?[0-9]+)?$/;

/** Trends as CONTRACT.md defines them, by brute force over the events of the range. */
export function refTrends(
  events: readonly JsonEvent[],
  q: {
    from: string;
    to: string;
    eventType: string;
    interval: "day" | "week" | "month";
    measure: string;
    breakdown: string;
    limit: number;
    tz: string;
    segment: readonly string[];
  },
) {
  const periodOf = (d: string) =>
    q.interval === "day" ? d : q.interval === "week" ? mondayOfDay(d) : `${d.slice(0, 8)}01`;
  const segment = q.eventType === "" ? q.segment : [...q.segment, `event_type:${q.eventType}`];
  const [kind, property] = q.measure.includes(":") ? q.measure.split(":") : [q.measure, ""];
  const numberOf = (e: JsonEvent) => {
    const text = propertyText(e, (property as string).slice("properties.".length));
    return text !== undefined && NUMBER.test(text) ? Number(text) : undefined;
  };
  const rows = events.flatMap((e) => {
    const day = dayIn(q.tz, e.occurred_at);
    if (day < q.from || day > q.to || !matches(e, segment)) return [];
    const value =
      q.breakdown === ""
        ? ""
        : q.breakdown === "event_type"
          ? e.event_type
          : propertyText(e, q.breakdown.slice("properties.".length));
    return [{ e, period: periodOf(day), value }];
  });
  const measure = (group: typeof rows) => {
    if (kind === "users") return new Set(group.map((r) => r.e.user_id)).size;
    if (kind === "events" || kind === "") return group.length;
    const xs = group.map((r) => numberOf(r.e)).filter((x) => x !== undefined);
    const sum = xs.reduce((a, b) => a + b, 0);
    return kind === "sum" ? sum : xs.length === 0 ? 0 : sum / xs.length;
  };
  const periods: string[] = [];
  for (let d = q.from; d <= q.to; d = addDays(d, 1)) {
    if (!periods.includes(periodOf(d))) periods.push(periodOf(d));
  }
  const series = (group: typeof rows, breakdown: string | null) => ({
    breakdown,
    total: measure(group),
    points: periods.map((date) => ({
      date,
      value: measure(group.filter((r) => r.period === date)),
    })),
  });
  if (q.breakdown === "") return [series(rows, null)];
  const values = [...new Set(rows.map((r) => r.value).filter((v) => v !== undefined))];
  const totals = new Map(values.map((v) => [v, measure(rows.filter((r) => r.value === v))]));
  const top = values
    .sort((a, b) => (totals.get(b) as number) - (totals.get(a) as number) || (a < b ? -1 : 1))
    .slice(0, q.limit);
  const other = rows.filter((r) => r.value !== undefined && !top.includes(r.value));
  const none = rows.filter((r) => r.value === undefined);
  return [
    ...top.map((v) =>
      series(
        rows.filter((r) => r.value === v),
        v,
      ),
    ),
    ...(other.length > 0 ? [series(other, "$other")] : []),
    ...(none.length > 0 ? [series(none, "$none")] : []),
  ];
}
