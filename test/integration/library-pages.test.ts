import { describe, expect, it } from "vitest";
import { migrate } from "../../src/warehouse/migrations.ts";
import { chdbLibraryPages, sameDayEvents, storeEvents, testWarehouse } from "../helpers.ts";

describe("chDB's load-time pages", () => {
  it("are given back once the engine has started, and the engine runs on from pages mapped back", async () => {
    const warehouse = testWarehouse();
    try {
      await migrate(warehouse);
      await storeEvents(warehouse, sameDayEvents(500, 1, "page_view", 50));
      const before = chdbLibraryPages();
      // Starting the engine touched tens of MiB of its code and constants.
      expect(before.releasableKiB).toBeGreaterThan(32 << 10);

      const released = (await warehouse.releaseStartPages?.()) ?? 0;
      const after = chdbLibraryPages();
      expect(released).toBeGreaterThan(before.releasableKiB * 1024 * 0.9);
      expect(after.releasableKiB).toBeLessThan(before.releasableKiB / 2);
      // The pages the process wrote (relocations, data) are all still there.
      expect(after.ownKiB).toBeGreaterThanOrEqual(before.ownKiB);

      await storeEvents(warehouse, sameDayEvents(300, 2, "purchase", 30));
      await warehouse.settled?.();
      const rows = await warehouse.query<{ event_type: string; n: string; users: string }>(
        `SELECT event_type, count() AS n, uniqExact(user_id) AS users
         FROM ${warehouse.db}.events GROUP BY event_type ORDER BY event_type`,
      );
      expect(rows.map((r) => [r.event_type, Number(r.n), Number(r.users)])).toEqual([
        ["page_view", 500, 50],
        ["purchase", 300, 30],
      ]);
    } finally {
      await warehouse.close();
    }
  });
});
