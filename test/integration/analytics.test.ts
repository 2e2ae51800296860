import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { activeUsers } from "../../src/analytics/active-users.ts";
import { dau } from "../../src/analytics/dau.ts";
import { funnel } from "../../src/analytics/funnel.ts";
import { lifecycle } from "../../src/analytics/lifecycle.ts";
import { retention } from "../../src/analytics/retention.ts";
import { chooseSource, type ReadOptions } from "../../src/analytics/source.ts";
import { stickiness } from "../../src/analytics/stickiness.ts";
import { topEvents } from "../../src/analytics/top-events.ts";
import { trends } from "../../src/analytics/trends.ts";
import type { Tally } from "../../src/app/tally.ts";
import { clickhouseTime, escapeTsv, ROW_COLUMNS } from "../../src/event/row-format.ts";
import { compactRollups } from "../../src/warehouse/compact.ts";
import { connectClients, rest, toProto } from "../clients.ts";
import {
  type JsonEvent,
  realServices,
  rng,
  start,
  testConfig,
  uuidFrom,
  waitFor,
  warehouseCounts,
} from "../helpers.ts";
import {
  firstCopies,
  refActiveUsers,
  refDau,
  refFunnel,
  refLifecycle,
  refRetention,
  refStickiness,
  refTopEvents,
  refTrends,
} from "../reference.ts";

// With an SDK's identify and alias calls, which are stored but are not activity.
const TYPES = [
  "page_view",
  "page_view",
  "page_view",
  "click",
  "click",
  "signup",
  "purchase",
  "$identify",
  "$create_alias",
];
const COUNTRIES = ["UA", "PL", "US", "IN"];
const OS = ["ios", "android", "web"];
// UTC and zones with DST changes inside the data (Kyiv 10-26, New York 11-02) and half-hour offsets.
const ZONES = [
  "UTC",
  "UTC",
  "UTC",
  "Europe/Kyiv",
  "America/New_York",
  "Asia/Kolkata",
  "America/St_Johns",
];
const SEGMENTS: string[][] = [
  [],
  [],
  ["event_type:click"],
  ["event_type:purchase"],
  ["properties.country:UA"],
  ["properties.device.os:ios"],
  ["properties.beta:true"],
  ["properties.level:3"],
  ["event_type:page_view", "properties.country:PL"],
  ["event_type:click", "event_type:signup"],
  ["event_type:$identify"],
  ["event_type:$identify", "properties.country:UA"],
  ["properties.country:UA", "properties.device.os:web"],
  // Values compare as text: a string by its own, anything else by its JSON.
  ["properties.level:"],
  ['properties.country:"UA"'],
  ["properties.missing:x"],
];
// Every property the data has gets rollups of its own; `missing` none. Two
// zones do too (one with DST inside the data, one half an hour off); the others not.
const INDEXED = ["country", "device.os", "beta", "level"];
const INDEXED_ZONES = ["Europe/Kyiv", "America/St_Johns"];
const FIRST_DAY = Date.parse("2025-09-20T00:00:00Z");
const DAYS = 50; // to 2025-11-08

function generate(n: number, seed: number): JsonEvent[] {
  const random = rng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)] as T;
  // A third on the hour: ties (same occurred_at) within a user are common.
  const time = () => {
    const ms = FIRST_DAY + Math.floor(random() * DAYS * 86_400_000);
    return new Date(random() < 0.3 ? ms - (ms % 3_600_000) : ms).toISOString();
  };
  return Array.from({ length: n }, () => ({
    event_id: uuidFrom(random),
    occurred_at: time(),
    // Squared: a few users are far more active than the rest, and some start late.
    user_id: `u${Math.floor(random() ** 2 * 90)}`,
    event_type: pick(TYPES),
    properties: {
      country: pick(COUNTRIES),
      device: { os: pick(OS) },
      beta: random() < 0.3,
      level: Math.floor(random() * 5),
      plan: pick(["free", "pro", "team"]),
      // Numbers, numbers as text, and values sum: and avg: ignore.
      ...(random() < 0.8 ? { amount: pick([1, 5, 20, "7", "12.5", "n/a", true, 2.5]) } : {}),
    },
  }));
}

/**
 * Funnel cases made on purpose, per user: ties with the first step, later
 * steps exactly on the window's end (1h, 1d, 7d, 14d), identify calls in
 * between (not activity: a strict run goes on past them), a repeated first
 * step, and a start just after Kyiv's DST change.
 */
function funnelCases(seed: number): JsonEvent[] {
  const random = rng(seed);
  const out: JsonEvent[] = [];
  for (let u = 0; u < 12; u++) {
    const start =
      u === 11
        ? Date.parse("2025-10-25T21:30:00Z")
        : FIRST_DAY + (3 + u * 3) * 86_400_000 + 10 * 3_600_000;
    const at = (ms: number, event_type: string) =>
      out.push({
        event_id: uuidFrom(random),
        occurred_at: new Date(start + ms).toISOString(),
        user_id: `f${u}`,
        event_type,
        properties: { country: COUNTRIES[u % 4] as string, amount: u },
      });
    at(0, "signup");
    if (u % 3 === 0) at(0, "signup");
    at(0, "page_view");
    at(30 * 60_000, "$identify");
    at(3_600_000, "click");
    if (u % 2 === 0) at(86_400_000, "page_view");
    at(86_400_000, "purchase");
    at(7 * 86_400_000, "purchase");
    if (u % 4 === 1) at(7 * 86_400_000 + 1, "click");
    at(14 * 86_400_000, "click");
  }
  return out;
}

/** Whether a funnel got anyone past its first step with a time, or a trend anything above zero. */
function hasSubstance(kind: string, answer: unknown): boolean {
  type Steps = { users: number; median_seconds_from_previous: number | null }[];
  if (kind === "funnel") {
    const a = answer as { steps: Steps; breakdowns: { steps: Steps }[] };
    return [a.steps, ...a.breakdowns.map((b) => b.steps)].some((steps) =>
      steps.slice(1).some((s) => s.users > 0),
    );
  }
  if (kind === "trends") {
    return (answer as { series: { total: number }[] }).series.some((s) => s.total > 0);
  }
  return true;
}

/** Sums and averages to 12 significant digits: adding in another order may change the last bits. */
function rounded(value: unknown): unknown {
  if (typeof value === "number")
    return Number.isInteger(value) ? value : Number(value.toPrecision(12));
  if (Array.isArray(value)) return value.map(rounded);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, rounded(v)]));
  }
  return value;
}

/** A day in the data's span, `offset` days from its start. */
function day(offset: number): string {
  return new Date(FIRST_DAY + offset * 86_400_000).toISOString().slice(0, 10);
}

/** One stats query drawn at random: its REST path, the brute-force answer, and both warehouse paths. */
type Draw = {
  kind: string;
  path: string;
  tz: string;
  segment: string[];
  want: (events: JsonEvent[]) => unknown;
  run: (tally: Tally, options: ReadOptions) => Promise<unknown>;
};

type FunnelCase = {
  steps: string[];
  window: string;
  mode: "ordered" | "strict" | "unordered";
  breakdown?: string;
  tz?: string;
  segment?: string[];
};

/** Funnels on the made cases' edges, in every mode: each step exactly on the window's end, ties, repeats. */
const EDGES: FunnelCase[] = (["ordered", "strict", "unordered"] as const).flatMap((mode) => [
  { steps: ["page_view", "click"], window: "1h", mode },
  { steps: ["page_view", "click"], window: "59m", mode },
  { steps: ["signup", "purchase"], window: "1d", mode },
  { steps: ["signup", "page_view", "purchase"], window: "1d", mode },
  { steps: ["signup", "purchase", "purchase"], window: "7d", mode },
  { steps: ["signup", "purchase", "purchase"], window: "6d", mode },
  { steps: ["signup", "signup", "page_view"], window: "1h", mode },
  { steps: ["signup", "$identify", "click"], window: "1h", mode },
  { steps: ["signup", "click", "click"], window: "14d", mode, breakdown: "properties.country" },
  { steps: ["purchase", "click"], window: "1h", mode, tz: "Europe/Kyiv" },
  {
    steps: ["signup", "page_view"],
    window: "2h",
    mode,
    tz: "Europe/Kyiv",
    segment: ["properties.country:UA"],
  },
]);

function funnelDraw(c: FunnelCase): Draw {
  const [from, to] = [day(0), day(DAYS)];
  const tz = c.tz ?? "UTC";
  const segment = c.segment ?? [];
  const breakdown = c.breakdown ?? "";
  const q = { from, to, step: c.steps, window: c.window, mode: c.mode, breakdown, tz, segment };
  return {
    kind: "funnel",
    path: `/stats/funnel?from=${from}&to=${to}${c.steps.map((x) => `&step=${encodeURIComponent(x)}`).join("")}&window=${c.window}&mode=${c.mode}&breakdown=${breakdown}&tz=${tz}${segment.map((x) => `&segment=${encodeURIComponent(x)}`).join("")}`,
    tz,
    segment,
    want: (e) => refFunnel(e, { ...q, steps: c.steps }),
    run: (t, options) => funnel(t.warehouse, q, options),
  };
}

/** Every measure by every kind of breakdown, with and without a type, from each kind of source. */
const TREND_SWEEP = ["events", "users", "sum:properties.amount", "avg:properties.amount"].flatMap(
  (measure) =>
    ["", "event_type", "properties.country", "properties.plan"].flatMap((breakdown) =>
      ["", "click"].flatMap((eventType) =>
        ["UTC", "Europe/Kyiv", "Asia/Kolkata"].map((tz) => ({ measure, breakdown, eventType, tz })),
      ),
    ),
);

function trendDraw(c: (typeof TREND_SWEEP)[number]): Draw {
  const [from, to] = [day(0), day(DAYS)];
  const q = { from, to, interval: "week" as const, limit: 2, segment: [], ...c };
  return {
    kind: "trends",
    path: `/stats/trends?from=${from}&to=${to}&event_type=${c.eventType}&interval=week&measure=${c.measure}&breakdown=${c.breakdown}&limit=2&tz=${c.tz}`,
    tz: c.tz,
    segment: c.eventType === "" ? [] : [`event_type:${c.eventType}`],
    want: (e) => ({ series: refTrends(e, q) }),
    run: (t, options) => trends(t.warehouse, q, options),
  };
}

/** The tz and segment parameters of a stats route. */
function filterQuery(tz: string, segment: readonly string[]): string {
  return `tz=${tz}${segment.map((s) => `&segment=${encodeURIComponent(s)}`).join("")}`;
}

function lifecycleDraw(
  from: number,
  to: number,
  interval: "day" | "week" | "month",
  tz: string,
  segment: string[],
): Draw {
  const q = { from: day(from), to: day(to), interval, tz, segment };
  return {
    kind: "lifecycle",
    path: `/stats/lifecycle?from=${day(from)}&to=${day(to)}&interval=${interval}&${filterQuery(tz, segment)}`,
    tz,
    segment,
    want: (e) => refLifecycle(e, day(from), day(to), interval, tz, segment),
    run: (t, options) => lifecycle(t.warehouse, q, options),
  };
}

function activeUsersDraw(
  from: number,
  to: number,
  window: "day" | "week" | "month",
  tz: string,
  segment: string[],
): Draw {
  const q = { from: day(from), to: day(to), window, tz, segment };
  const windowDays = { day: 1, week: 7, month: 30 }[window];
  return {
    kind: "active-users",
    path: `/stats/active-users?from=${day(from)}&to=${day(to)}&window=${window}&${filterQuery(tz, segment)}`,
    tz,
    segment,
    want: (e) => refActiveUsers(e, day(from), day(to), windowDays, tz, segment),
    run: (t, options) => activeUsers(t.warehouse, q, options),
  };
}

/**
 * Daily lifecycles and rolling windows over more days than a drawn range
 * spans (which is at most 41), so more than one 64-day word of a user's
 * days: from the user rollup, an indexed property's and zone's rollups and
 * the events.
 */
const LONG_RANGES = [
  [-20, DAYS + 20, "UTC", []],
  [-70, DAYS + 70, "UTC", []],
  [0, 63, "UTC", []],
  [-20, DAYS + 20, "UTC", ["properties.country:UA"]],
  [-20, DAYS + 20, "Europe/Kyiv", []],
  [-20, DAYS + 20, "Asia/Kolkata", ["event_type:click"]],
] as const;

function draw(random: () => number): Draw {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)] as T;
  const tz = pick(ZONES);
  const segment = pick(SEGMENTS);
  const from = Math.floor(random() * (DAYS - 5)) - 3; // may start before the first event
  const to = Math.min(DAYS + 2, from + 1 + Math.floor(random() * 40));
  const query = filterQuery(tz, segment);
  const common = { tz, segment };
  switch (
    pick([
      "dau",
      "active-users",
      "top-events",
      "retention",
      "stickiness",
      "lifecycle",
      "funnel",
      "funnel",
      "trends",
      "trends",
    ] as const)
  ) {
    case "funnel": {
      const steps = Array.from({ length: 2 + Math.floor(random() * 3) }, () =>
        pick(["signup", "page_view", "click", "purchase", "signup", "$identify"]),
      );
      const window = pick(["30m", "1h", "1d", "2d", "7d", "14d"]);
      const mode = pick(["ordered", "strict", "unordered"] as const);
      const breakdown = pick(["", "", "properties.country", "event_type", "properties.missing"]);
      const q = { from: day(from), to: day(to), step: steps, window, mode, breakdown, ...common };
      return {
        kind: "funnel",
        path: `/stats/funnel?from=${day(from)}&to=${day(to)}${steps.map((x) => `&step=${encodeURIComponent(x)}`).join("")}&window=${window}&mode=${mode}&breakdown=${breakdown}&${query}`,
        ...common,
        want: (e) => refFunnel(e, { ...q, steps }),
        run: (t, options) => funnel(t.warehouse, q, options),
      };
    }
    case "trends": {
      const interval = pick(["day", "week", "month"] as const);
      const measure = pick([
        "events",
        "events",
        "users",
        "sum:properties.amount",
        "avg:properties.amount",
      ]);
      // country and device.os are indexed, plan is not.
      const breakdown = pick([
        "",
        "",
        "event_type",
        "properties.country",
        "properties.device.os",
        "properties.plan",
      ]);
      const eventType = random() < 0.7 ? "" : pick(["click", "$identify"]);
      const limit = 1 + Math.floor(random() * 4);
      const q = {
        from: day(from),
        to: day(to),
        eventType,
        interval,
        measure,
        breakdown,
        limit,
        ...common,
      };
      return {
        kind: "trends",
        path: `/stats/trends?from=${day(from)}&to=${day(to)}&event_type=${encodeURIComponent(eventType)}&interval=${interval}&measure=${measure}&breakdown=${breakdown}&limit=${limit}&${query}`,
        tz,
        segment: eventType === "" ? segment : [...segment, `event_type:${eventType}`],
        want: (e) => ({ series: refTrends(e, q) }),
        run: (t, options) => trends(t.warehouse, q, options),
      };
    }
    case "dau":
      return {
        kind: "dau",
        path: `/stats/dau?from=${day(from)}&to=${day(to)}&${query}`,
        ...common,
        want: (e) => refDau(e, day(from), day(to), tz, segment),
        run: (t, options) => dau(t.warehouse, { from: day(from), to: day(to), ...common }, options),
      };
    case "active-users":
      return activeUsersDraw(from, to, pick(["day", "week", "month"] as const), tz, segment);
    case "top-events": {
      const limit = 1 + Math.floor(random() * 5);
      return {
        kind: "top-events",
        path: `/stats/top-events?from=${day(from)}&to=${day(to)}&limit=${limit}&${query}`,
        ...common,
        want: (e) => refTopEvents(e, day(from), day(to), tz, limit, segment),
        run: (t, options) =>
          topEvents(t.warehouse, { from: day(from), to: day(to), limit, ...common }, options),
      };
    }
    case "retention": {
      const granularity = pick(["day", "week"] as const);
      const windows = 1 + Math.floor(random() * (granularity === "day" ? 10 : 4));
      const q = { startDate: day(from), endDate: day(to), windows, granularity, ...common };
      return {
        kind: "retention",
        path: `/stats/retention?start_date=${day(from)}&end_date=${day(to)}&windows=${windows}&granularity=${granularity}&${query}`,
        ...common,
        want: (e) => refRetention(e, day(from), day(to), windows, tz, granularity, segment),
        run: (t, options) => retention(t.warehouse, q, options),
      };
    }
    case "lifecycle":
      return lifecycleDraw(from, to, pick(["day", "week", "month"] as const), tz, segment);
    case "stickiness": {
      const interval = pick(["day", "week"] as const);
      // Half the draws narrow by a type (the route's event_type=), as a segment would.
      const eventType = random() < 0.5 ? "" : pick(["click", "$identify"]);
      const narrowed = eventType === "" ? segment : [...segment, `event_type:${eventType}`];
      const q = { from: day(from), to: day(to), interval, eventType, ...common };
      return {
        kind: "stickiness",
        path: `/stats/stickiness?from=${day(from)}&to=${day(to)}&interval=${interval}&event_type=${encodeURIComponent(eventType)}&${query}`,
        tz,
        segment: narrowed,
        want: (e) => refStickiness(e, day(from), day(to), interval, tz, narrowed),
        run: (t, options) => stickiness(t.warehouse, q, options),
      };
    }
  }
}

describe("analytics against a brute-force reference", () => {
  let tally: Tally;
  let port: number;
  const sent: JsonEvent[] = [];

  beforeAll(async () => {
    tally = await start(
      testConfig({
        ...realServices(),
        TALLY_INDEXED_PROPERTIES: INDEXED.join(","),
        TALLY_INDEXED_TIME_ZONES: INDEXED_ZONES.join(","),
      }),
    );
    port = tally.port as number;
    const events = generate(3000, 11);
    for (let i = 0; i < events.length; i += 500) {
      const batch = events.slice(i, i + 500);
      expect((await rest(port, "/events", { events: batch })).status).toBe(202);
      sent.push(...batch);
    }
    // Repeats through the API, some with other fields: the first copy must win.
    const random = rng(12);
    const repeats = events
      .filter(() => random() < 0.05)
      .map((e, i) =>
        i % 2 === 0 ? e : { ...e, event_type: "changed", user_id: "intruder", occurred_at: day(1) },
      );
    expect((await rest(port, "/events", { events: repeats })).status).toBe(202);
    sent.push(...repeats);
    // The funnel cases over gRPC, repeated over REST: the first copy counts once.
    const cases = funnelCases(13);
    const grpc = connectClients(port).grpc.ingest;
    expect(Number((await grpc.ingest({ events: cases.map(toProto) })).accepted)).toBe(cases.length);
    expect((await rest(port, "/events", { events: cases.slice(0, 20) })).status).toBe(202);
    sent.push(...cases, ...cases.slice(0, 20));
    await waitFor(
      () => warehouseCounts(tally),
      (c) => c.ids === events.length + cases.length,
    );
    // Copies that reached the warehouse anyway, as when an insert succeeded but its ack was
    // lost: stored twice, to be counted once by the events table and by every rollup.
    const copies = events.filter((_, i) => i % 10 === 0);
    // Held apart from merges until counted: a merge would collapse them at once.
    const eventsTable = `${tally.warehouse.db}.events`;
    await tally.warehouse.command(`SYSTEM STOP MERGES ${eventsTable}`);
    await tally.warehouse.insert("events", {
      format: "TabSeparated",
      columns: ROW_COLUMNS,
      text: copies
        .map(
          (e) =>
            `${e.event_id}\t${clickhouseTime(Date.parse(e.occurred_at))}\t${escapeTsv(e.user_id)}\t${e.event_type}\t${escapeTsv(JSON.stringify(e.properties))}\t${clickhouseTime(Date.now())}\n`,
        )
        .join(""),
    });
    expect((await warehouseCounts(tally)).rows).toBe(events.length + cases.length + copies.length);
    await tally.warehouse.command(`SYSTEM START MERGES ${eventsTable}`);
  }, 60_000);
  afterAll(async () => {
    await tally?.close();
  });

  it("answers every drawn query as the reference does, from the rollups and from the events alike", async () => {
    const unique = firstCopies(sent);
    const random = rng(2025);
    const indexed = { indexedProperties: INDEXED, indexedTimeZones: INDEXED_ZONES };
    const sources = { "": 0, prop_: 0, zone_: 0, events: 0 };
    // Draws whose answer has substance (someone past a funnel's first step, a trend above zero), per kind.
    const substantial: Record<string, number> = {};
    const fixed = [
      ...EDGES.map(funnelDraw),
      ...TREND_SWEEP.map(trendDraw),
      ...LONG_RANGES.flatMap(([from, to, tz, segment]) => [
        lifecycleDraw(from, to, "day", tz, [...segment]),
        activeUsersDraw(from, to, "month", tz, [...segment]),
        activeUsersDraw(from, to, "week", tz, [...segment]),
      ]),
    ];
    for (let i = 0; i < 400 + fixed.length; i++) {
      const q = fixed[i] ?? draw(random);
      const source = chooseSource(q.tz, q.segment, indexed);
      sources[source.kind === "rollups" ? source.prefix : "events"]++;
      const got = await rest(port, q.path);
      const want = q.want(unique);
      expect({ path: q.path, status: got.status, body: rounded(got.body) }).toEqual({
        path: q.path,
        status: 200,
        body: rounded(want),
      });
      if (hasSubstance(q.kind, want)) substantial[q.kind] = (substantial[q.kind] ?? 0) + 1;
      // The same question asked of the raw events: the rollups must agree with them.
      expect({ path: q.path, answer: rounded(await q.run(tally, indexed)) }).toEqual({
        path: q.path,
        answer: rounded(await q.run(tally, { rawOnly: true })),
      });
    }
    // The draw exercised every path: all events', a property's and a zone's rollups, and the events.
    expect(Math.min(...Object.values(sources)), JSON.stringify(sources)).toBeGreaterThan(15);
    expect(substantial.funnel, JSON.stringify(substantial)).toBeGreaterThan(20);
    expect(substantial.trends, JSON.stringify(substantial)).toBeGreaterThan(30);
    // About 1,350 queries one after another: 48 s alone in a slow hour here, past the
    // default 60 s in CI beside other files; the bound only stops a hang.
  }, 240_000);

  it("holds the identities between funnels, trends, lifecycle, stickiness and DAU", async () => {
    const random = rng(77);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)] as T;
    type Row = Record<string, number>;
    const get = async (path: string) => {
      const res = await rest(port, path);
      expect(res.status, `${path}: ${JSON.stringify(res.body)}`).toBe(200);
      return res.body as never;
    };
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    for (let i = 0; i < 25; i++) {
      const tz = pick(ZONES);
      const segment = pick(SEGMENTS.slice(0, 9));
      const extra = `tz=${tz}${segment.map((x) => `&segment=${encodeURIComponent(x)}`).join("")}`;
      // Monday to Sunday, so that a week of the lifecycle is a week of the trends.
      const from = 2 + 7 * Math.floor(random() * 5); // 2025-09-22 is a Monday
      const to = from + 7 * (1 + Math.floor(random() * 2)) - 1;
      const range = `from=${day(from)}&to=${day(to)}`;
      const steps = [
        pick(["signup", "page_view", "click"]),
        pick(["click", "purchase"]),
        "purchase",
      ];
      for (const mode of ["ordered", "strict", "unordered"]) {
        const f = (await get(
          `/stats/funnel?${range}&${steps.map((x) => `step=${x}`).join("&")}&window=3d&mode=${mode}&${extra}`,
        )) as { steps: Row[] };
        // Each step at most the one before.
        for (let k = 1; k < steps.length; k++) {
          expect(f.steps[k]?.users).toBeLessThanOrEqual(f.steps[k - 1]?.users as number);
        }
        if (mode === "unordered") continue;
        // Step 1: the users with a first-step event in the range, as stickiness counts them.
        const sticky = (await get(
          `/stats/stickiness?${range}&event_type=${steps[0]}&${extra}`,
        )) as Row[];
        expect(f.steps[0]?.users).toBe(sum(sticky.map((r) => r.users as number)));
      }
      // Breakdowns add up to the whole, for events and sums.
      const measure = pick(["events", "sum:properties.amount"]);
      const trend = `/stats/trends?${range}&interval=${pick(["day", "week"])}&measure=${measure}&${extra}`;
      const whole = (await get(trend)) as { series: { points: Row[] }[] };
      for (const breakdown of ["event_type", "properties.country", "properties.plan"]) {
        const split = (await get(`${trend}&breakdown=${breakdown}&limit=1`)) as {
          series: { points: Row[] }[];
        };
        const added = whole.series[0]?.points.map((_, k) =>
          rounded(sum(split.series.map((s) => s.points[k]?.value as number))),
        );
        expect(added).toEqual(whole.series[0]?.points.map((p) => rounded(p.value)));
      }
      // Lifecycle by day: new + returning + resurrecting = DAU; dormant = -(DAU before - returning).
      const life = (await get(`/stats/lifecycle?${range}&interval=day&${extra}`)) as Row[];
      const dau = (
        (await get(`/stats/dau?from=${day(from - 1)}&to=${day(to)}&${extra}`)) as Row[]
      ).map((r) => r.unique_users as number);
      life.forEach((row, k) => {
        expect((row.new as number) + (row.returning as number) + (row.resurrecting as number)).toBe(
          dau[k + 1],
        );
        expect(row.dormant).toBe(-((dau[k] as number) - (row.returning as number)));
      });
      // By week: the same with the users of each week, as trends counts them.
      const weeks = (await get(`/stats/lifecycle?${range}&interval=week&${extra}`)) as Row[];
      const users = (
        (await get(
          `/stats/trends?from=${day(from - 7)}&to=${day(to)}&interval=week&measure=users&${extra}`,
        )) as { series: { points: Row[] }[] }
      ).series[0]?.points.map((p) => p.value as number) as number[];
      weeks.forEach((row, k) => {
        expect((row.new as number) + (row.returning as number) + (row.resurrecting as number)).toBe(
          users[k + 1],
        );
        expect(row.dormant).toBe(-((users[k] as number) - (row.returning as number)));
      });
      // Stickiness by day: the sum of k x users(k) is the sum of DAU.
      const sticky = (await get(`/stats/stickiness?${range}&interval=day&${extra}`)) as Row[];
      expect(sum(sticky.map((r) => (r.periods as number) * (r.users as number)))).toBe(
        sum(dau.slice(1)),
      );
    }
  });

  it("refuses bad parameters of the new questions with 400, naming the parameter", async () => {
    const range = `from=${day(0)}&to=${day(10)}`;
    const cases: [string, string][] = [
      [`/stats/funnel?${range}&step=signup`, "step"],
      [`/stats/funnel?${range}${"&step=a".repeat(21)}`, "step"],
      [`/stats/funnel?${range}&step=a&step=`, "step"],
      [`/stats/funnel?${range}&step=a&step=b&window=2w`, "window"],
      [`/stats/funnel?${range}&step=a&step=b&window=366d`, "window"],
      [`/stats/funnel?${range}&step=a&step=b&window=0d`, "window"],
      [`/stats/funnel?${range}&step=a&step=b&mode=loose`, "mode"],
      [`/stats/funnel?${range}&step=a&step=b&breakdown=country`, "breakdown"],
      [`/stats/trends?${range}&measure=median:properties.amount`, "measure"],
      [`/stats/trends?${range}&measure=sum:amount`, "measure"],
      [`/stats/trends?${range}&breakdown=properties.`, "breakdown"],
      [`/stats/trends?${range}&interval=year`, "interval"],
      [`/stats/trends?${range}&breakdown=event_type&limit=0`, "limit"],
      [`/stats/trends?${range}&limit=101`, "limit"],
      [`/stats/trends?from=${day(3)}&to=${day(1)}`, "from"],
      [`/stats/lifecycle?${range}&interval=quarter`, "interval"],
      [`/stats/stickiness?${range}&interval=month`, "interval"],
    ];
    for (const [path, param] of cases) {
      const res = await rest(port, path);
      expect({ path, status: res.status, body: res.body }).toMatchObject({
        path,
        status: 400,
        body: {
          code: "invalid_argument",
          message: expect.stringMatching(new RegExp(`^${param}: `)),
        },
      });
    }
  });

  it("compacts the rollups' closed months, and the first days whole, into one part each, answers unchanged", async () => {
    const path = `/stats/dau?from=${day(0)}&to=${day(DAYS)}`;
    const before = await rest(port, path);
    // A second part in October for certain: a row already there, which the
    // set absorbs, added with background merges held so that it stays apart.
    const db = tally.warehouse.db;
    const { warehouse } = tally;
    await warehouse.command(`SYSTEM STOP MERGES ${db}.user_days`);
    await warehouse.command(
      `INSERT INTO ${db}.user_days SELECT * FROM ${db}.user_days WHERE toYYYYMM(day) = 202510 LIMIT 1`,
    );
    // And a second part of the first days, which are merged whole.
    await warehouse.command(`SYSTEM STOP MERGES ${db}.first_days`);
    await warehouse.command(`INSERT INTO ${db}.first_days SELECT * FROM ${db}.first_days LIMIT 1`);
    const [october] = await tally.warehouse.query<{ n: number }>(
      `SELECT count() AS n FROM system.parts
       WHERE database = {db:String} AND table = 'user_days' AND partition = '202510' AND active`,
      { db: tally.warehouse.database },
    );
    expect(Number(october?.n)).toBeGreaterThan(1);
    // OPTIMIZE needs merges on; a background merge may now beat it to a partition.
    await warehouse.command(`SYSTEM START MERGES ${db}.user_days`);
    await warehouse.command(`SYSTEM START MERGES ${db}.first_days`);
    await compactRollups(tally.warehouse);
    const parts = await tally.warehouse.query<{ table: string; most: number }>(
      `SELECT table, max(n) AS most FROM (SELECT table, count() AS n FROM system.parts
       WHERE database = {db:String} AND table IN ('user_days', 'first_days') AND active
       GROUP BY table, partition) GROUP BY table ORDER BY table`,
      { db: tally.warehouse.database },
    );
    expect(parts.map((p) => [p.table, Number(p.most)])).toEqual([
      ["first_days", 1],
      ["user_days", 1],
    ]);
    expect((await rest(port, path)).body).toEqual(before.body);
  });

  it("lets the first copy win in the rollups too", async () => {
    const top = (await rest(port, `/stats/top-events?from=${day(0)}&to=${day(DAYS)}&limit=100`))
      .body as { event_type: string }[];
    expect(top.map((t) => t.event_type)).not.toContain("changed");
    const intruder = await rest(
      port,
      `/stats/retention?start_date=${day(0)}&end_date=${day(DAYS)}&segment=event_type:changed`,
    );
    expect((intruder.body as { size: number }[]).every((c) => c.size === 0)).toBe(true);
  });
});
