import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { activeUsers } from "../../src/analytics/active-users.ts";
import { retention } from "../../src/analytics/retention.ts";
import type { ReadOptions } from "../../src/analytics/source.ts";
import { topEvents } from "../../src/analytics/top-events.ts";
import type { Tally } from "../../src/app/tally.ts";
import { indexRollups } from "../../src/warehouse/rollup-index.ts";
import { rest } from "../clients.ts";
import {
  type JsonEvent,
  realServices,
  rng,
  start,
  testConfig,
  uniqueNamespace,
  uuidFrom,
  waitFor,
  warehouseCounts,
} from "../helpers.ts";

const FIRST_DAY = Date.parse("2025-03-01T00:00:00Z");
const COUNTRIES = ["UA", "PL", "US"];

function generate(n: number, seed: number): JsonEvent[] {
  const random = rng(seed);
  return Array.from({ length: n }, (_, i) => ({
    event_id: uuidFrom(random),
    occurred_at: new Date(FIRST_DAY + Math.floor(random() * 40 * 86_400_000)).toISOString(),
    user_id: `u${Math.floor(random() * 60)}`,
    event_type: i % 3 === 0 ? "purchase" : "page_view",
    properties: { country: COUNTRIES[i % 3], device: { os: i % 2 === 0 ? "ios" : "web" } },
  }));
}

/** Every stats answer about UA in UTC and about everyone in Kyiv, as read with `options`. */
async function stats(tally: Tally, options: ReadOptions) {
  const answers = [];
  for (const common of [
    { tz: "UTC", segment: ["properties.country:UA"] },
    { tz: "Europe/Kyiv", segment: [] },
    { tz: "Europe/Kyiv", segment: ["event_type:purchase"] },
  ]) {
    const range = { from: "2025-02-27", to: "2025-04-12", ...common };
    answers.push({
      dau: await activeUsers(tally.warehouse, { ...range, window: "day" }, options),
      mau: await activeUsers(tally.warehouse, { ...range, window: "month" }, options),
      top: await topEvents(tally.warehouse, range, options),
      retention: await retention(
        tally.warehouse,
        { startDate: "2025-03-01", endDate: "2025-04-06", granularity: "week", ...common },
        options,
      ),
    });
  }
  return answers;
}

/** How many rows the rollups of a property's values or a zone's days hold for it, per table. */
async function indexRows(tally: Tally, index: { path: string } | { zone: string }) {
  const { db } = tally.warehouse;
  const [prefix, where, key] =
    "path" in index ? ["prop", "path", index.path] : ["zone", "zone", index.zone];
  const [rows] = await tally.warehouse.query<Record<string, string>>(
    `SELECT (SELECT count() FROM ${db}.${prefix}_user_days WHERE ${where} = {key:String}) AS user_days,
            (SELECT count() FROM ${db}.${prefix}_day_events WHERE ${where} = {key:String}) AS day_events,
            (SELECT count() FROM ${db}.${prefix}_first_days WHERE ${where} = {key:String}) AS first_days`,
    { key },
  );
  return Object.values(rows ?? {}).map(Number);
}

describe("indexed properties and time zones", () => {
  const namespace = uniqueNamespace();
  let tally: Tally;
  let sent = 0;
  const wanted = { properties: ["country"], zones: ["Europe/Kyiv"] };
  const indexed: ReadOptions = {
    indexedProperties: ["country"],
    indexedTimeZones: ["Europe/Kyiv"],
  };
  const raw: ReadOptions = { rawOnly: true };
  const both = ["property:country", "zone:Europe/Kyiv"];

  async function send(events: JsonEvent[]) {
    expect((await rest(tally.port as number, "/events", { events })).status).toBe(202);
    sent += events.length;
    await waitFor(
      () => warehouseCounts(tally),
      (c) => c.ids === sent,
    );
  }

  beforeAll(async () => {
    // Events stored before anything is indexed.
    tally = await start(testConfig({ ...realServices(), TALLY_NAMESPACE: namespace }));
    await send(generate(1500, 1));
  }, 60_000);
  afterAll(async () => {
    await tally?.close();
  });

  it("backfills new indexes from the stored events, then keeps them as events arrive", async () => {
    expect(await indexRollups(tally.warehouse, wanted)).toEqual({ added: both, dropped: [] });
    expect(await stats(tally, indexed)).toEqual(await stats(tally, raw));
    await send(generate(500, 2));
    expect(await stats(tally, indexed)).toEqual(await stats(tally, raw));
    // Asked again, it has nothing to do.
    expect(await indexRollups(tally.warehouse, wanted)).toEqual({ added: [], dropped: [] });
  });

  it("rebuilds indexes whose views are gone, with the events stored meanwhile", async () => {
    const views = await tally.warehouse.query<{ name: string }>(
      `SELECT name FROM system.tables WHERE database = {db:String} AND name LIKE 'index\\_mv\\_%'`,
      { db: tally.warehouse.database },
    );
    expect(views).toHaveLength(2);
    for (const view of views) {
      await tally.warehouse.command(`DROP VIEW ${tally.warehouse.db}.${view.name}`);
    }
    await send(generate(300, 3));
    expect(await stats(tally, indexed)).not.toEqual(await stats(tally, raw));
    expect(await indexRollups(tally.warehouse, wanted)).toEqual({ added: both, dropped: [] });
    expect(await stats(tally, indexed)).toEqual(await stats(tally, raw));
  });

  it("re-runs a backfill that never recorded its end", async () => {
    const { db } = tally.warehouse;
    // As if the process died mid-backfill: the view exists, the record does not, rows are missing.
    await tally.warehouse.command(`DELETE FROM ${db}.rollup_indexes WHERE kind = 'zone'`);
    await tally.warehouse.command(`DELETE FROM ${db}.zone_user_days WHERE toDayOfMonth(day) < 10`);
    expect(await stats(tally, indexed)).not.toEqual(await stats(tally, raw));
    expect((await indexRollups(tally.warehouse, wanted)).added).toEqual(["zone:Europe/Kyiv"]);
    expect(await stats(tally, indexed)).toEqual(await stats(tally, raw));
  });

  it("drops indexes no longer asked for, rows and all", async () => {
    for (const index of [{ path: "country" }, { zone: "Europe/Kyiv" }]) {
      expect((await indexRows(tally, index)).every((n) => n > 0)).toBe(true);
    }
    expect(await indexRollups(tally.warehouse, { properties: [], zones: [] })).toEqual({
      added: [],
      dropped: both,
    });
    await send(generate(100, 4)); // no view left to fill them
    for (const index of [{ path: "country" }, { zone: "Europe/Kyiv" }]) {
      expect(await indexRows(tally, index)).toEqual([0, 0, 0]);
    }
  });

  it("builds them at start from the environment, and the stats routes read them", async () => {
    await tally.close();
    tally = await start(
      testConfig({
        ...realServices(),
        TALLY_NAMESPACE: namespace,
        TALLY_INDEXED_PROPERTIES: "country,device.os",
        TALLY_INDEXED_TIME_ZONES: "America/St_Johns",
      }),
    );
    expect((await indexRows(tally, { path: "device.os" })).every((n) => n > 0)).toBe(true);
    expect((await indexRows(tally, { zone: "America/St_Johns" })).every((n) => n > 0)).toBe(true);
    // A user only the rollups know of: the routes' answers show they read them.
    for (const [path, row] of [
      [
        "/stats/dau?from=2025-03-05&to=2025-03-05&segment=properties.device.os:ios",
        "'device.os', 'ios', '', '2025-03-05', 'only-in-the-index'",
      ],
      [
        "/stats/dau?from=2025-03-05&to=2025-03-05&tz=America/St_Johns",
        "'America/St_Johns', '', '2025-03-05', 'only-in-the-index'",
      ],
    ] as const) {
      const table = path.includes("tz=") ? "zone_user_days" : "prop_user_days";
      const before = (await rest(tally.port as number, path)).body as { unique_users: number }[];
      await tally.warehouse.command(`INSERT INTO ${tally.warehouse.db}.${table} VALUES (${row})`);
      const after = (await rest(tally.port as number, path)).body as { unique_users: number }[];
      expect(after[0]?.unique_users).toBe((before[0]?.unique_users ?? 0) + 1);
    }
  });
});
