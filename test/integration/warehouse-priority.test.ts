import { readdirSync, readFileSync } from "node:fs";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { EventSchema } from "../../gen/tally/v1/event_pb.js";
import { clickhouseTime, encodeRow, ROW_COLUMNS } from "../../src/event/row-format.ts";
import { insertPriority } from "../../src/warehouse/chdb-warehouse.ts";
import { migrate } from "../../src/warehouse/migrations.ts";
import { testWarehouse, waitFor } from "../helpers.ts";

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

  it("runs chDB's merges at the priority of the last insert", async () => {
    const warehouse = testWarehouse();
    try {
      await migrate(warehouse);
      const insert = (count: number, pad: number) => {
        const text = Array.from({ length: count }, () =>
          encodeRow(
            create(EventSchema, {
              eventId: crypto.randomUUID(),
              occurredAt: timestampFromMs(Date.parse("2026-11-01T10:00:00Z")),
              userId: "u1",
              eventType: "page_view",
            }),
            JSON.stringify({ pad: "x".repeat(pad) }),
            clickhouseTime(Date.now()),
          ),
        ).join("");
        return warehouse.insert("events", { format: "TabSeparated", columns: ROW_COLUMNS, text });
      };
      // Small inserts make small parts, which chDB merges on threads of its own.
      await waitFor(
        async () => {
          await insert(1, 0);
          return mergeThreadNices();
        },
        (nices) => nices.length > 0,
        30_000,
      );
      await insert(1, 0);
      expect(new Set(mergeThreadNices())).toEqual(new Set([10]));
      // A flood's insert (1 MiB and more): they go back to the normal
      // priority, where this process may raise a thread's (root can).
      await insert(1100, 1000);
      const raised = process.getuid?.() === 0 ? 0 : 10;
      expect(new Set(mergeThreadNices())).toEqual(new Set([raised]));
    } finally {
      await warehouse.close();
    }
  });
});

/** The nice value of each of this process's threads named as chDB's merge threads. */
function mergeThreadNices(): number[] {
  const nices: number[] = [];
  for (const task of readdirSync("/proc/self/task")) {
    try {
      if (readFileSync(`/proc/self/task/${task}/comm`, "utf8") !== "MergeMutate\n") continue;
      // Field 19 of stat is nice; the fields after the command's ") " start at field 3.
      const fields = readFileSync(`/proc/self/task/${task}/stat`, "utf8")
        .split(") ")[1]
        ?.split(" ");
      nices.push(Number(fields?.[16]));
    } catch {
      // the thread ended meanwhile
    }
  }
  return nices;
}
