import { describe, expect, it } from "vitest";
import { createBatchConsumer } from "../../src/consumer/batch-consumer.ts";
import { createMemoryDedupe } from "../../src/dedupe/memory-dedupe.ts";
import { encodeRow } from "../../src/event/row-format.ts";
import { createMetrics } from "../../src/observability/metrics.ts";
import { migrate } from "../../src/warehouse/migrations.ts";
import type { Warehouse } from "../../src/warehouse/warehouse.ts";
import { toProto } from "../clients.ts";
import { reportErrors, silentLog, testWarehouse } from "../helpers.ts";
import { closeAfterEach } from "../parts.ts";

const row = (id: string, user: string) =>
  encodeRow(
    toProto({
      event_id: id,
      occurred_at: "2025-10-28T10:00:00Z",
      user_id: user,
      event_type: "page_view",
    }),
    '{"city":"Львів"}',
    "2025-10-28 12:00:00.000000",
  );

const batch = (id: string, body: string) => ({
  id,
  body: Buffer.from(body),
  rows: body.split("\n").filter(Boolean).length,
  acceptedAt: Date.now(),
  requestIds: [],
});

describe("the consumer's rows (chDB)", () => {
  const track = closeAfterEach();

  it("inserts each batch's kept rows: less a repeat, a deleted user's rows, with every line break", async () => {
    const warehouse = track(testWarehouse());
    await migrate(warehouse);
    const bodies: string[] = [];
    const recording: Warehouse = {
      ...warehouse,
      insert: (table, rows) => {
        if ("text" in rows) bodies.push(rows.text);
        return warehouse.insert(table, rows);
      },
    };
    const consumer = track(
      createBatchConsumer({
        onDedupeError: reportErrors,
        dedupe: createMemoryDedupe({ ttlSeconds: 600 }),
        warehouse: recording,
        // Events of "gone" from before 2026 are dropped.
        tombstones: () => new Map([["gone", "2026-01-01 00:00:00.000"]]),
        metrics: createMetrics(),
        log: silentLog,
        flushRows: 10_000,
        flushBatches: 2,
        flushIntervalMs: 1000,
      }),
    );
    const ids = Array.from({ length: 7 }, (_, i) => `00000000-0000-4000-8000-00000000000${i}`);
    const [a, b, c, d, e, f, g] = ids.map((id, i) => row(id, i === 3 ? "gone" : `u${i}`));
    // The first batch repeats a, and its last row has no line break (a publisher other than Tally's API).
    const first = batch("first", `${a}${b}${a}${c}${d}${e}`.slice(0, -1));
    const second = batch("second", `${f}${g}`);
    const outcomes = await Promise.all([consumer.handle(first), consumer.handle(second)]);
    expect(outcomes).toEqual([{ action: "ack" }, { action: "ack" }]);
    expect(bodies).toEqual([`${a}${b}${c}${e}${f}${g}`]);
    const stored = await warehouse.query<{ id: string; props: string }>(
      `SELECT toString(event_id) AS id, properties AS props FROM ${warehouse.db}.events ORDER BY id`,
    );
    expect(stored.map((r) => r.id)).toEqual([ids[0], ids[1], ids[2], ids[4], ids[5], ids[6]]);
    expect(new Set(stored.map((r) => r.props))).toEqual(new Set(['{"city":"Львів"}']));
  });
});
