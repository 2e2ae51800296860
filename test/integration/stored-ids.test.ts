import { describe, expect, it } from "vitest";
import { createBatchConsumer } from "../../src/consumer/batch-consumer.ts";
import { createStoredIds, loadStoredIds } from "../../src/consumer/stored-ids.ts";
import { createMemoryDedupe } from "../../src/dedupe/memory-dedupe.ts";
import { ROW_COLUMNS, rowIds } from "../../src/event/row-format.ts";
import { createMetrics } from "../../src/observability/metrics.ts";
import { migrate } from "../../src/warehouse/migrations.ts";
import type { Warehouse } from "../../src/warehouse/warehouse.ts";
import { batchOf } from "../batches.ts";
import { reportErrors, silentLog, testWarehouse } from "../helpers.ts";
import { closeAfterEach } from "../parts.ts";

/** `warehouse`, counting the consumer's questions about stored ids. */
function counting(warehouse: Warehouse) {
  const asked = { queries: 0 };
  const wrapped: Warehouse = {
    ...warehouse,
    query: (sql, params) => {
      if (sql.includes("WHERE event_id IN")) asked.queries++;
      return warehouse.query(sql, params);
    },
  };
  return { wrapped, asked };
}

/**
 * The embedded consumer (in-process dedupe, chDB) asked the warehouse about
 * every id it let through: a read of the whole event_id column per flush,
 * growing with the table. With the filter of stored ids it asks about
 * those the table may hold only, and still drops a repeat it forgot.
 */
describe("the stored-ids filter in front of the warehouse (chDB)", () => {
  const track = closeAfterEach();

  it("loads every stored id, page by page", async () => {
    const warehouse = track(testWarehouse());
    await migrate(warehouse);
    const stored = [1, 2, 3].map((seed) => batchOf(400, seed));
    for (const b of stored) {
      await warehouse.insert("events", {
        format: "TabSeparated",
        columns: ROW_COLUMNS,
        text: b.body.toString(),
      });
    }
    const ids = loadStoredIds(warehouse, 150);
    // Until loaded, every id may be stored.
    expect(ids.mayHold(rowIds(batchOf(1, 99).body).ids[0] as string)).toBe(true);
    await ids.loaded;
    const all = stored.flatMap((b) => rowIds(b.body).ids);
    expect(all.filter((id) => !ids.mayHold(id))).toEqual([]);
    const fresh = rowIds(batchOf(400, 9).body).ids;
    expect(fresh.filter((id) => ids.mayHold(id)).length).toBeLessThan(20);
  });

  it("asks the warehouse about no new id, and still drops a repeat its dedupe store forgot", async () => {
    const warehouse = track(testWarehouse());
    await migrate(warehouse);
    const { wrapped, asked } = counting(warehouse);
    const consumer = track(
      createBatchConsumer({
        onDedupeError: reportErrors,
        // Remembers 2 ids: the repeat below is past it, as a repeat after a restart would be.
        dedupe: createMemoryDedupe({ ttlSeconds: 600, maxIds: 2 }),
        warehouse: wrapped,
        storedIds: createStoredIds(10_000),
        metrics: createMetrics(),
        log: silentLog,
        flushRows: 10_000,
        flushBatches: 1,
        flushIntervalMs: 10,
      }),
    );
    const first = batchOf(300, 5, "2025-10-28 12:00:00.000000", "first_copy");
    expect(await consumer.handle(first)).toEqual({ action: "ack" });
    expect(await consumer.handle(batchOf(300, 6))).toEqual({ action: "ack" });
    expect(asked.queries).toBe(0);
    // The same ids again, with other fields: asked about, found, dropped.
    const repeat = batchOf(300, 5, "2025-10-28 12:00:01.000000", "repeat");
    expect(await consumer.handle(repeat)).toEqual({ action: "ack" });
    expect(asked.queries).toBe(1);
    const rows = await warehouse.query<{ event_type: string; n: string }>(
      `SELECT event_type, count() AS n FROM ${warehouse.db}.events GROUP BY event_type ORDER BY event_type`,
    );
    expect(rows.map((r) => [r.event_type, Number(r.n)])).toEqual([
      ["first_copy", 300],
      ["page_view", 300],
    ]);
  });
});
