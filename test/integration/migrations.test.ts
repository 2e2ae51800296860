import { afterAll, describe, expect, it } from "vitest";
import { activeUsers } from "../../src/analytics/active-users.ts";
import { retention } from "../../src/analytics/retention.ts";
import type { ReadOptions } from "../../src/analytics/source.ts";
import { ROW_COLUMNS } from "../../src/event/row-format.ts";
import { MIGRATIONS, migrate } from "../../src/warehouse/migrations.ts";
import { indexRollups } from "../../src/warehouse/rollup-index.ts";
import { rng, storeEvents, testWarehouse, uuidFrom } from "../helpers.ts";

describe("upgrading a warehouse made by an older release", () => {
  const warehouse = testWarehouse();
  afterAll(() => warehouse.close());

  it("gives the rollups written before user keys their keys, every answer unchanged", async () => {
    // Migrations 1-3: the rollups name users by user_id alone.
    expect(
      await migrate(
        warehouse,
        MIGRATIONS.filter((m) => m.version <= 3),
      ),
    ).toEqual([1, 2, 3]);
    await indexRollups(warehouse, { properties: ["country"], zones: ["Europe/Kyiv"] });
    const random = rng(4);
    const first = Date.parse("2025-03-01T00:00:00Z");
    await storeEvents(
      warehouse,
      Array.from({ length: 3000 }, (_, i) => ({
        event_id: uuidFrom(random),
        occurred_at: new Date(first + Math.floor(random() * 50 * 86_400_000)).toISOString(),
        user_id: `user-${Math.floor(random() * 200)}`,
        event_type: i % 4 === 0 ? "purchase" : "page_view",
        properties: { country: i % 3 === 0 ? "UA" : "PL" },
      })),
    );

    // Migration 4, and the user activity this release's retention reads (filled from the events).
    expect(
      await migrate(
        warehouse,
        MIGRATIONS.filter((m) => m.version <= 4 || m.name === "user activity"),
      ),
    ).toEqual([4, 9]);
    const fast: ReadOptions = { indexedProperties: ["country"], indexedTimeZones: ["Europe/Kyiv"] };
    for (const filter of [
      { tz: "UTC", segment: [] },
      { tz: "UTC", segment: ["event_type:purchase"] },
      { tz: "UTC", segment: ["properties.country:UA"] },
      { tz: "Europe/Kyiv", segment: [] },
    ]) {
      const ask = (options: ReadOptions) =>
        Promise.all([
          activeUsers(
            warehouse,
            { from: "2025-03-01", to: "2025-04-19", window: "week", ...filter },
            options,
          ),
          retention(
            warehouse,
            { startDate: "2025-03-03", endDate: "2025-04-07", granularity: "week", ...filter },
            options,
          ),
        ]);
      const [fromRollups, fromEvents] = [await ask(fast), await ask({ rawOnly: true })];
      expect(fromRollups).toEqual(fromEvents);
      expect(fromRollups[1][0]?.size).toBeGreaterThan(0);
    }
  });

  it("leaves identify, group and alias out of the activity rollups, those written before included", async () => {
    const older = testWarehouse();
    try {
      expect(
        await migrate(
          older,
          MIGRATIONS.filter((m) => m.version <= 4),
        ),
      ).toEqual([1, 2, 3, 4]);
      await indexRollups(older, { properties: ["country"], zones: ["Europe/Kyiv"] });
      const random = rng(5);
      const first = Date.parse("2025-03-01T00:00:00Z");
      const types = ["page_view", "$identify", "$create_alias", "$groupidentify"];
      await storeEvents(
        older,
        Array.from({ length: 2000 }, (_, i) => ({
          event_id: uuidFrom(random),
          occurred_at: new Date(first + Math.floor(random() * 40 * 86_400_000)).toISOString(),
          // Users 0-99 only ever identify themselves: no activity at all.
          user_id: `user-${i % 2 === 0 ? Math.floor(random() * 100) : 100 + Math.floor(random() * 100)}`,
          event_type: i % 2 === 0 ? (types[1 + (i % 3)] as string) : "page_view",
          properties: { country: i % 3 === 0 ? "UA" : "PL" },
        })),
      );
      expect(await migrate(older)).toEqual([5, 6, 7, 8, 9, 10, 11]);
      // Retention reads user_activity's days whole: they are kept uncompressed (migration 10).
      const [days] = await older.query<{ codec: string }>(
        `SELECT compression_codec AS codec FROM system.columns
         WHERE database = {db:String} AND table = 'user_activity' AND name = 'days'`,
        { db: older.database },
      );
      expect(days?.codec).toBe("CODEC(NONE)");
      // The events stored before are sorted by time too (migration 6), each once.
      const [copied] = await older.query<{ n: string; ids: string }>(
        `SELECT count() AS n, uniqExact(event_id) AS ids FROM ${older.db}.events_by_time FINAL`,
        {},
      );
      expect([Number(copied?.n), Number(copied?.ids)]).toEqual([2000, 2000]);
      const indexes = { properties: ["country"], zones: ["Europe/Kyiv"] };
      // The start after the migration backfills every index again.
      expect((await indexRollups(older, indexes)).added.sort()).toEqual([
        "property:country",
        "zone:Europe/Kyiv",
      ]);
      const fast: ReadOptions = {
        indexedProperties: ["country"],
        indexedTimeZones: ["Europe/Kyiv"],
      };
      for (const filter of [
        { tz: "UTC", segment: [] },
        { tz: "UTC", segment: ["event_type:$identify"] },
        { tz: "UTC", segment: ["properties.country:UA"] },
        { tz: "Europe/Kyiv", segment: [] },
      ]) {
        const ask = (options: ReadOptions) =>
          Promise.all([
            activeUsers(
              older,
              { from: "2025-03-01", to: "2025-04-09", window: "month", ...filter },
              options,
            ),
            retention(
              older,
              { startDate: "2025-03-03", endDate: "2025-04-07", granularity: "week", ...filter },
              options,
            ),
          ]);
        const [fromRollups, fromEvents] = [await ask(fast), await ask({ rawOnly: true })];
        expect(fromRollups, JSON.stringify(filter)).toEqual(fromEvents);
      }
      // Only users 100-199 are active: no month can count more.
      const [plain] = await Promise.all([
        activeUsers(
          older,
          { from: "2025-04-09", to: "2025-04-09", window: "month", tz: "UTC", segment: [] },
          fast,
        ),
      ]);
      expect(plain[0]?.activeUsers).toBeLessThanOrEqual(100);
      expect(plain[0]?.activeUsers).toBeGreaterThan(90);
    } finally {
      await older.close();
    }
  });
});

describe("merges", () => {
  const warehouse = testWarehouse();
  afterAll(() => warehouse.close());

  it("are vertical for every table with a row per event or per user, and keep the first accepted copy", async () => {
    await migrate(warehouse);
    // Every such table, found from the schema: one added without the setting fails here.
    const tables = await warehouse.query<{ name: string; engine_full: string }>(
      `SELECT name, engine_full FROM system.tables
       WHERE database = {db:String} AND engine = 'ReplacingMergeTree'
         AND name IN (SELECT table FROM system.columns
                      WHERE database = {db:String} AND name IN ('event_id', 'user_id'))`,
      { db: warehouse.database },
    );
    expect(tables.map((t) => t.name)).toContain("events");
    for (const t of tables) {
      expect(t.engine_full, t.name).toContain(
        "vertical_merge_algorithm_min_columns_to_activate = 1",
      );
    }
    // 140,000 rows: past the 131,072 a merge needs to go vertical. The same
    // 70,000 events twice, the copy accepted later inserted first.
    const ids = Array.from({ length: 70_000 }, () => crypto.randomUUID());
    const copy = (type: string, acceptedAt: string) =>
      ids
        .map(
          (id, i) =>
            `${id}\t2025-03-01 00:00:00.000\tuser-${i % 500}\t${type}\t{}\t${acceptedAt}\n`,
        )
        .join("");
    for (const [type, at] of [
      ["later", "2025-03-01 00:00:02.000000"],
      ["first", "2025-03-01 00:00:01.000000"],
    ] as const) {
      await warehouse.insert("events", {
        format: "TabSeparated",
        columns: ROW_COLUMNS,
        text: copy(type, at),
      });
    }
    await warehouse.command(`OPTIMIZE TABLE ${warehouse.db}.events FINAL`);
    const kept = await warehouse.query<{ event_type: string; rows: string; parts: string }>(
      `SELECT event_type, count() AS rows, uniqExact(_part) AS parts FROM ${warehouse.db}.events GROUP BY event_type`,
      {},
    );
    expect(kept.map((k) => [k.event_type, Number(k.rows), Number(k.parts)])).toEqual([
      ["first", 70_000, 1],
    ]);
  });
});
