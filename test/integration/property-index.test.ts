import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { activeUsers } from "../../src/analytics/active-users.ts";
import { retention } from "../../src/analytics/retention.ts";
import type { ReadOptions } from "../../src/analytics/source.ts";
import { topEvents } from "../../src/analytics/top-events.ts";
import type { Tally } from "../../src/app/tally.ts";
import { indexProperties } from "../../src/warehouse/property-index.ts";
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

/** Every stats answer about UA, as read with `options`. */
async function uaStats(tally: Tally, options: ReadOptions) {
  const common = { tz: "UTC", segment: ["properties.country:UA"] };
  const range = { from: "2025-02-27", to: "2025-04-12", ...common };
  return {
    dau: await activeUsers(tally.warehouse, { ...range, window: "day" }, options),
    mau: await activeUsers(tally.warehouse, { ...range, window: "month" }, options),
    top: await topEvents(tally.warehouse, range, options),
    retention: await retention(
      tally.warehouse,
      { startDate: "2025-03-01", endDate: "2025-04-06", granularity: "week", ...common },
      options,
    ),
  };
}

/** How many rows the property rollups hold for `path`, per table. */
async function indexRows(tally: Tally, path: string) {
  const { db } = tally.warehouse;
  const [rows] = await tally.warehouse.rows<Record<string, string>>(
    `SELECT (SELECT count() FROM ${db}.prop_user_days WHERE path = {path:String}) AS user_days,
            (SELECT count() FROM ${db}.prop_day_events WHERE path = {path:String}) AS day_events,
            (SELECT count() FROM ${db}.prop_first_days WHERE path = {path:String}) AS first_days`,
    { path },
  );
  return Object.values(rows ?? {}).map(Number);
}

describe("indexed properties", () => {
  const namespace = uniqueNamespace();
  let tally: Tally;
  let sent = 0;
  const indexed: ReadOptions = { indexedProperties: ["country"] };
  const raw: ReadOptions = { rawOnly: true };

  async function send(events: JsonEvent[]) {
    expect((await rest(tally.port as number, "/events", { events })).status).toBe(202);
    sent += events.length;
    await waitFor(
      () => warehouseCounts(tally),
      (c) => c.ids === sent,
    );
  }

  beforeAll(async () => {
    // Events stored before any property is indexed.
    tally = await start(testConfig({ ...realServices(), TALLY_NAMESPACE: namespace }));
    await send(generate(1500, 1));
  }, 60_000);
  afterAll(async () => {
    await tally?.close();
  });

  it("backfills a new index from the stored events, then keeps it as events arrive", async () => {
    expect(await indexProperties(tally.warehouse, ["country"])).toEqual({
      added: ["country"],
      dropped: [],
    });
    expect(await uaStats(tally, indexed)).toEqual(await uaStats(tally, raw));
    await send(generate(500, 2));
    expect(await uaStats(tally, indexed)).toEqual(await uaStats(tally, raw));
    // Asked again, it has nothing to do.
    expect(await indexProperties(tally.warehouse, ["country"])).toEqual({ added: [], dropped: [] });
  });

  it("rebuilds an index whose view is gone, with the events stored meanwhile", async () => {
    const [view] = await tally.warehouse.rows<{ name: string }>(
      `SELECT name FROM system.tables WHERE database = {db:String} AND name LIKE 'prop\\_mv\\_%'`,
      { db: tally.warehouse.database },
    );
    await tally.warehouse.client.command({
      query: `DROP VIEW ${tally.warehouse.db}.${view?.name}`,
    });
    await send(generate(300, 3));
    expect(await uaStats(tally, indexed)).not.toEqual(await uaStats(tally, raw));
    expect(await indexProperties(tally.warehouse, ["country"])).toEqual({
      added: ["country"],
      dropped: [],
    });
    expect(await uaStats(tally, indexed)).toEqual(await uaStats(tally, raw));
  });

  it("re-runs a backfill that never recorded its end", async () => {
    const { db } = tally.warehouse;
    // As if the process died mid-backfill: the view exists, the record does not, rows are missing.
    await tally.warehouse.client.command({
      query: `DELETE FROM ${db}.property_indexes WHERE path = 'country'`,
    });
    await tally.warehouse.client.command({
      query: `DELETE FROM ${db}.prop_user_days WHERE path = 'country' AND toDayOfMonth(day) < 10`,
    });
    expect(await uaStats(tally, indexed)).not.toEqual(await uaStats(tally, raw));
    expect((await indexProperties(tally.warehouse, ["country"])).added).toEqual(["country"]);
    expect(await uaStats(tally, indexed)).toEqual(await uaStats(tally, raw));
  });

  it("drops an index no longer asked for, rows and all", async () => {
    expect((await indexRows(tally, "country")).every((n) => n > 0)).toBe(true);
    expect(await indexProperties(tally.warehouse, [])).toEqual({ added: [], dropped: ["country"] });
    expect(await indexRows(tally, "country")).toEqual([0, 0, 0]);
    await send(generate(100, 4)); // no view left to fill them
    expect(await indexRows(tally, "country")).toEqual([0, 0, 0]);
  });

  it("is built at start from TALLY_INDEXED_PROPERTIES, and the stats routes read it", async () => {
    await tally.close();
    tally = await start(
      testConfig({
        ...realServices(),
        TALLY_NAMESPACE: namespace,
        TALLY_INDEXED_PROPERTIES: "country,device.os",
      }),
    );
    expect((await indexRows(tally, "device.os")).every((n) => n > 0)).toBe(true);
    const path = "/stats/dau?from=2025-03-05&to=2025-03-05&segment=properties.device.os:ios";
    const before = (await rest(tally.port as number, path)).body as { unique_users: number }[];
    // A user only the index knows of: the route's answer shows it reads the index.
    await tally.warehouse.client.command({
      query: `INSERT INTO ${tally.warehouse.db}.prop_user_days
              VALUES ('device.os', 'ios', '', '2025-03-05', 'only-in-the-index')`,
    });
    const after = (await rest(tally.port as number, path)).body as { unique_users: number }[];
    expect(after[0]?.unique_users).toBe((before[0]?.unique_users ?? 0) + 1);
  });
});
