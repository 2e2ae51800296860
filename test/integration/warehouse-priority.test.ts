import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { EventSchema } from "../../gen/tally/v1/event_pb.js";
import { clickhouseTime, encodeRow, ROW_COLUMNS } from "../../src/event/row-format.ts";
import { migrate } from "../../src/warehouse/migrations.ts";
import { testWarehouse } from "../helpers.ts";

/**
 * chDB runs inside the API's process, on its cores: a small insert (a
 * trickle of calls) runs its threads at nice 10, so the API's event loop
 * comes first; stats queries at the normal priority whatever the last
 * insert left on chDB's one session.
 */
describe("chDB's thread priority", () => {
  it("runs a small insert below the API's priority and stats at the normal one", async () => {
    const warehouse = testWarehouse();
    try {
      await migrate(warehouse);
      const event = create(EventSchema, {
        eventId: "0195f3c4-6f6e-7c3a-9d2b-1a2b3c4d5e6f",
        occurredAt: timestampFromMs(Date.parse("2026-11-01T10:00:00Z")),
        userId: "u1",
        eventType: "page_view",
      });
      const body = encodeRow(event, "{}", clickhouseTime(Date.now()));
      await warehouse.insertTsv("events", ROW_COLUMNS, body);

      // What the insert ran with stays on the session (chDB's connection sets it there).
      const session = await warehouse.client.query({
        query: "SELECT getSetting('os_thread_priority') AS priority",
        format: "JSONEachRow",
      });
      expect(await session.json()).toEqual([{ priority: 10 }]);
      const [stats] = await warehouse.rows<{ priority: number }>(
        "SELECT getSetting('os_thread_priority') AS priority",
        {},
      );
      expect(stats?.priority).toBe(0);
      const [stored] = await warehouse.rows<{ n: number | string }>(
        `SELECT count() AS n FROM ${warehouse.db}.events`,
        {},
      );
      expect(Number(stored?.n)).toBe(1);
    } finally {
      await warehouse.close();
    }
  });
});
