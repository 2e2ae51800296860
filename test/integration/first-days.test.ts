import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lifecycle } from "../../src/analytics/lifecycle.ts";
import { retention } from "../../src/analytics/retention.ts";
import { migrate } from "../../src/warehouse/migrations.ts";
import { rng, storeEvents, testWarehouse, uuidFrom } from "../helpers.ts";

/**
 * A user's cohort (retention) or birth (lifecycle) is the period of their
 * first event ever, however their events arrived: an earlier event stored
 * after a later one, in a part of its own that no merge has joined yet,
 * still moves the user out of the later period.
 */
describe("a user's first day that comes in late", () => {
  const warehouse = testWarehouse();
  const event = (n: number, user: string, day: string) => ({
    event_id: uuidFrom(rng(n)),
    occurred_at: `${day}T12:00:00Z`,
    user_id: user,
    event_type: "page_view",
  });

  beforeAll(async () => {
    await migrate(warehouse);
    // Held apart: each insert below stays a part of its own.
    await warehouse.command(`SYSTEM STOP MERGES ${warehouse.db}.first_days`);
    await storeEvents(warehouse, [
      event(1, "late", "2025-10-08"),
      event(2, "new", "2025-10-09"),
      event(3, "new", "2025-10-10"),
    ]);
    // "late" was first seen in September; that event arrives after October's.
    await storeEvents(warehouse, [event(4, "late", "2025-09-20")]);
    const [parts] = await warehouse.query<{ n: string }>(
      `SELECT count() AS n FROM system.parts
       WHERE database = {db:String} AND table = 'first_days' AND active`,
      { db: warehouse.database },
    );
    expect(Number(parts?.n)).toBe(2);
  });
  afterAll(async () => {
    await warehouse.command(`DROP DATABASE IF EXISTS ${warehouse.db}`);
    await warehouse.close();
  });

  it.each(["day", "week"])(
    "sets the retention cohorts by %s, from the rollups and the events alike",
    async (granularity) => {
      const q = {
        startDate: "2025-10-06",
        endDate: "2025-10-12",
        windows: 1,
        granularity,
        tz: "UTC",
        segment: [],
      };
      const fromRollups = await retention(warehouse, q);
      const sizes = Object.fromEntries(fromRollups.map((c) => [c.cohort, c.size]));
      // Only "new" is new in the range: "late" belongs to September's cohort.
      expect(Object.values(sizes).reduce((n, s) => n + s, 0)).toBe(1);
      expect(sizes[granularity === "day" ? "2025-10-09" : "2025-10-06"]).toBe(1);
      expect(fromRollups).toEqual(await retention(warehouse, q, { rawOnly: true }));
    },
  );

  it.each(["day", "week"])(
    "sets who is new in the lifecycle by %s, from the rollups and the events alike",
    async (interval) => {
      const q = { from: "2025-10-06", to: "2025-10-12", interval, tz: "UTC", segment: [] };
      const periods = await lifecycle(warehouse, q);
      // "new" is new; "late" comes back after September, so it is resurrecting.
      expect(periods.reduce((n, p) => n + p.new, 0)).toBe(1);
      expect(periods.reduce((n, p) => n + p.resurrecting, 0)).toBe(1);
      expect(periods).toEqual(await lifecycle(warehouse, q, { rawOnly: true }));
    },
  );
});
