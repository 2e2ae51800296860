import { describe, expect, it } from "vitest";
import { rest } from "../clients.ts";
import {
  chdbLibraryPages,
  counterValue,
  type JsonEvent,
  rng,
  start,
  testConfig,
  uuidFrom,
  waitFor,
  warehouseCounts,
} from "../helpers.ts";

function events(n: number, type: string): JsonEvent[] {
  const random = rng(99);
  return Array.from({ length: n }, (_, i) => ({
    event_id: uuidFrom(random),
    occurred_at: `2025-10-${String(20 + (i % 5)).padStart(2, "0")}T08:00:00Z`,
    user_id: `u${i % 25}`,
    event_type: type,
  }));
}

/**
 * Sends `n` one-event requests to a fresh embedded service with a 3 s flush
 * interval, waits until all are stored, and answers how many flushes (each
 * one insert) stored them.
 */
async function flushesForTrickle(n: number, type: string, env: Record<string, string> = {}) {
  const tally = await start(testConfig({ TALLY_FLUSH_INTERVAL_MS: "3000", ...env }));
  try {
    const port = tally.port as number;
    for (const event of events(n, type)) {
      expect(await rest(port, "/events", [event])).toMatchObject({ status: 202 });
    }
    await waitFor(
      () => warehouseCounts(tally),
      (c) => c.ids === n,
    );
    const count = (await tally.metrics.flushRows.get()).values.find(
      (v) => v.metricName === "tally_flush_rows_count",
    );
    return count?.value;
  } finally {
    await tally.close();
  }
}

describe("the embedded default (local log, in-process dedupe, chDB on disk)", () => {
  // First in this file's process, so that this start is the one that loads chDB.
  it("gives back the pages of chDB's library that only its start touched", async () => {
    const tally = await start(testConfig());
    try {
      // Loading chDB and starting its engine touch about 185 MiB of them.
      expect(chdbLibraryPages().releasableKiB).toBeLessThan(96 << 10);
      const [answer] = await tally.warehouse.query<{ n: string }>(
        "SELECT count() AS n FROM numbers(10)",
      );
      expect(Number(answer?.n)).toBe(10);
    } finally {
      await tally.close();
    }
  });

  it("acknowledges events once its local log has them, and keeps stats exact across a restart that forgets the dedupe store", async () => {
    const config = testConfig();
    expect(config).toMatchObject({
      amqpUrl: undefined,
      redisUrl: undefined,
      clickhouseUrl: undefined,
    });
    const first = await start(config);
    expect(first.queue.kind).toBe("local log");
    const sent = events(300, "page_view");
    const res = await rest(first.port as number, "/events", sent);
    expect(res).toMatchObject({ status: 202, body: { accepted: 300 } });
    // Acknowledged once synced to the local log; in chDB a moment later.
    expect(
      await waitFor(
        () => warehouseCounts(first),
        (c) => c.ids === 300,
      ),
    ).toEqual({ rows: 300, ids: 300 });
    await first.close();

    // Same data, same namespace; the in-process dedupe store starts empty.
    const second = await start(config);
    const port = second.port as number;
    const repeats = sent.slice(0, 100).map((e) => ({ ...e, event_type: "changed" }));
    expect(await rest(port, "/events", repeats)).toMatchObject({
      status: 202,
      body: { accepted: 100 },
    });
    // The forgetful dedupe store let the repeats through, and the warehouse stopped them:
    // the rollups would count a stored repeat under its other type.
    await waitFor(
      () => counterValue(second.metrics.eventsDeduplicated),
      (n) => n === 100,
    );
    expect(await counterValue(second.metrics.eventsInserted)).toBe(0);
    const top = await rest(port, "/stats/top-events?from=2025-10-01&to=2025-10-31");
    expect(top.body).toEqual([{ event_type: "page_view", count: 300 }]);
    const dau = (await rest(port, "/stats/dau?from=2025-10-20&to=2025-10-24")).body as {
      unique_users: number;
    }[];
    expect(dau.map((d) => d.unique_users)).toEqual(
      [25, 25, 25, 25, 25].map(
        (_, day) => new Set(sent.filter((_, i) => i % 5 === day).map((e) => e.user_id)).size,
      ),
    );
    expect(await rest(port, "/readyz")).toMatchObject({
      status: 200,
      body: { checks: { queue: "ok", dedupe: "ok", chdb: "ok" } },
    });
    await second.close();
  });

  it("inserts a trickle of requests together, once a flush interval, not once a request", async () => {
    // An insert costs chDB tens of ms of CPU however few its rows: at a
    // trickle, one a request kept 1.4 cores busy at 100 requests/s.
    expect(await flushesForTrickle(5, "trickle")).toBe(1);
  });

  it("gathers a trickle into one insert however many requests carry it: the local log lends by rows, not by a count of batches", async () => {
    // TALLY_PREFETCH counts RabbitMQ's messages. Applied to the local log
    // too, 4 made the consumer flush every 2 batches: 6 inserts here, and
    // at 800 one-event requests a second (then the default 256) 6 a second.
    expect(await flushesForTrickle(12, "many-requests", { TALLY_PREFETCH: "4" })).toBe(1);
  });
});
