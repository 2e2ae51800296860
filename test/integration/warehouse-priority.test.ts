import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { EventSchema } from "../../gen/tally/v1/event_pb.js";
import { clickhouseTime, encodeRow, ROW_COLUMNS } from "../../src/event/row-format.ts";
import { insertPriority } from "../../src/warehouse/chdb-warehouse.ts";
import { migrate } from "../../src/warehouse/migrations.ts";
import { testWarehouse } from "../helpers.ts";

/**
 * chDB runs inside the API's process, on its cores: a small insert (a
 * trickle of calls) runs its threads at nice 10, so the API's event loop
 * comes first; stats queries at the normal priority whatever the last
 * insert left on chDB's one session.
 */
describe("chDB's thread priority", () => {
  it("runs a small insert below the API's priority, a big one and stats at the normal one", async () => {
    expect(insertPriority(200)).toBe(10);
    expect(insertPriority(2 << 20)).toBe(0);
    const warehouse = testWarehouse();
    try {
      await migrate(warehouse);
      const event = create(EventSchema, {
        eventId: "0195f3c4-6f6e-7c3a-9d2b-1a2b3c4d5e6f",
        occurredAt: timestampFromMs(Date.parse("2026-11-01T10:00:00Z")),
        userId: "u1",
        eventType: "page_view",
      });
      const text = encodeRow(event, "{}", clickhouseTime(Date.now()));
      await warehouse.insert("events", { format: "TabSeparated", columns: ROW_COLUMNS, text });
      // The insert's priority stays on chDB's one session; a stats query sets its own.
      const [stats] = await warehouse.query<{ priority: number }>(
        "SELECT getSetting('os_thread_priority') AS priority",
      );
      expect(stats?.priority).toBe(0);
      const [stored] = await warehouse.query<{ n: number | string }>(
        `SELECT count() AS n FROM ${warehouse.db}.events`,
      );
      expect(Number(stored?.n)).toBe(1);
    } finally {
      await warehouse.close();
    }
  });
});
