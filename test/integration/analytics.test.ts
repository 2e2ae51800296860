import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { activeUsers } from "../../src/analytics/active-users.ts";
import { dau } from "../../src/analytics/dau.ts";
import { lifecycle } from "../../src/analytics/lifecycle.ts";
import { retention } from "../../src/analytics/retention.ts";
import { chooseSource, type ReadOptions } from "../../src/analytics/source.ts";
import { stickiness } from "../../src/analytics/stickiness.ts";
import { topEvents } from "../../src/analytics/top-events.ts";
import type { Tally } from "../../src/app/tally.ts";
import { clickhouseTime, escapeTsv, ROW_COLUMNS } from "../../src/event/row-format.ts";
import { compactRollups } from "../../src/warehouse/compact.ts";
import { rest } from "../clients.ts";
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
  refLifecycle,
  refRetention,
  refStickiness,
  refTopEvents,
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
  return Array.from({ length: n }, () => ({
    event_id: uuidFrom(random),
    occurred_at: new Date(FIRST_DAY + Math.floor(random() * DAYS * 86_400_000)).toISOString(),
    // Squared: a few users are far more active than the rest, and some start late.
    user_id: `u${Math.floor(random() ** 2 * 90)}`,
    event_type: pick(TYPES),
    properties: {
      country: pick(COUNTRIES),
      device: { os: pick(OS) },
      beta: random() < 0.3,
      level: Math.floor(random() * 5),
    },
  }));
}

/** A day in the data's span, `offset` days from its start. */
function day(offset: number): string {
  return new Date(FIRST_DAY + offset * 86_400_000).toISOString().slice(0, 10);
}

/** One stats query drawn at random: its REST path, the brute-force answer, and both warehouse paths. */
type Draw = {
  path: string;
  tz: string;
  segment: string[];
  want: (events: JsonEvent[]) => unknown;
  run: (tally: Tally, options: ReadOptions) => Promise<unknown>;
};

function draw(random: () => number): Draw {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)] as T;
  const tz = pick(ZONES);
  const segment = pick(SEGMENTS);
  const from = Math.floor(random() * (DAYS - 5)) - 3; // may start before the first event
  const to = Math.min(DAYS + 2, from + 1 + Math.floor(random() * 40));
  const query = `tz=${tz}${segment.map((s) => `&segment=${encodeURIComponent(s)}`).join("")}`;
  const common = { tz, segment };
  switch (
    pick(["dau", "active-users", "top-events", "retention", "stickiness", "lifecycle"] as const)
  ) {
    case "dau":
      return {
        path: `/stats/dau?from=${day(from)}&to=${day(to)}&${query}`,
        ...common,
        want: (e) => refDau(e, day(from), day(to), tz, segment),
        run: (t, options) => dau(t.warehouse, { from: day(from), to: day(to), ...common }, options),
      };
    case "active-users": {
      const window = pick(["day", "week", "month"] as const);
      const windowDays = { day: 1, week: 7, month: 30 }[window];
      return {
        path: `/stats/active-users?from=${day(from)}&to=${day(to)}&window=${window}&${query}`,
        ...common,
        want: (e) => refActiveUsers(e, day(from), day(to), windowDays, tz, segment),
        run: (t, options) =>
          activeUsers(t.warehouse, { from: day(from), to: day(to), window, ...common }, options),
      };
    }
    case "top-events": {
      const limit = 1 + Math.floor(random() * 5);
      return {
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
        path: `/stats/retention?start_date=${day(from)}&end_date=${day(to)}&windows=${windows}&granularity=${granularity}&${query}`,
        ...common,
        want: (e) => refRetention(e, day(from), day(to), windows, tz, granularity, segment),
        run: (t, options) => retention(t.warehouse, q, options),
      };
    }
    case "lifecycle": {
      const interval = pick(["day", "week", "month"] as const);
      const q = { from: day(from), to: day(to), interval, ...common };
      return {
        path: `/stats/lifecycle?from=${day(from)}&to=${day(to)}&interval=${interval}&${query}`,
        ...common,
        want: (e) => refLifecycle(e, day(from), day(to), interval, tz, segment),
        run: (t, options) => lifecycle(t.warehouse, q, options),
      };
    }
    case "stickiness": {
      const interval = pick(["day", "week"] as const);
      // Half the draws narrow by a type (the route's event_type=), as a segment would.
      const eventType = random() < 0.5 ? "" : pick(["click", "$identify"]);
      const narrowed = eventType === "" ? segment : [...segment, `event_type:${eventType}`];
      const q = { from: day(from), to: day(to), interval, eventType, ...common };
      return {
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
    await waitFor(
      () => warehouseCounts(tally),
      (c) => c.ids === events.length,
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
    expect((await warehouseCounts(tally)).rows).toBe(events.length + copies.length);
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
    for (let i = 0; i < 240; i++) {
      const q = draw(random);
      const source = chooseSource(q.tz, q.segment, indexed);
      sources[source.kind === "rollups" ? source.prefix : "events"]++;
      const got = await rest(port, q.path);
      expect({ path: q.path, status: got.status, body: got.body }).toEqual({
        path: q.path,
        status: 200,
        body: q.want(unique),
      });
      // The same question asked of the raw events: the rollups must agree with them.
      expect({ path: q.path, answer: await q.run(tally, indexed) }).toEqual({
        path: q.path,
        answer: await q.run(tally, { rawOnly: true }),
      });
    }
    // The draw exercised every path: all events', a property's and a zone's rollups, and the events.
    expect(Math.min(...Object.values(sources)), JSON.stringify(sources)).toBeGreaterThan(15);
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
