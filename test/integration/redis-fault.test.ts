import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Tally } from "../../src/app/tally.ts";
import { generateCsv } from "../../src/cli/gen/generate.ts";
import { runImport } from "../../src/cli/import/importer.ts";
import type { ImportProgress } from "../../src/cli/import/progress.ts";
import { rest } from "../clients.ts";
import { counterValue, REDIS_URL, realServices, start, testConfig, waitFor } from "../helpers.ts";
import { startTcpProxy } from "../tcp-proxy.ts";

describe("Redis unreachable mid-import (RabbitMQ, Redis behind a proxy, chDB)", () => {
  let proxy: Awaited<ReturnType<typeof startTcpProxy>>;
  let tally: Tally;
  beforeAll(async () => {
    proxy = await startTcpProxy(Number(new URL(REDIS_URL).port));
    tally = await start(
      testConfig({ ...realServices(), REDIS_URL: `redis://127.0.0.1:${proxy.port}` }),
    );
  });
  afterAll(async () => {
    await tally?.close();
    await proxy?.close();
  });

  it("keeps counting every event exactly once while Redis is away and after it returns", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tally-redis-fault-"));
    const path = join(dir, "events.csv");
    // Repeats inside the file: while Redis is away only the warehouse can collapse them.
    const csv = [
      ...generateCsv({
        rows: 30_000,
        users: 300,
        fromMs: Date.parse("2024-07-01"),
        days: 5,
        eventTypes: 3,
        dupRate: 0.1,
        seed: 41,
      }),
    ]
      .join("")
      .replace(/,(page_view|click|search),/g, ",redisfault_$1,");
    writeFileSync(path, csv);
    const unique = new Set(
      csv
        .split("\n")
        .slice(1, -1)
        .map((l) => l.slice(0, 36)),
    ).size;
    const progress: ImportProgress = {
      bytesRead: 0,
      totalBytes: undefined,
      rowsRead: 0,
      rowsDone: 0,
    };
    const importing = runImport(
      {
        input: path,
        url: `http://127.0.0.1:${tally.port}`,
        batchSize: 500,
        segmentRows: 2000,
        dryRun: false,
        restart: false,
      },
      progress,
    );
    await waitFor(
      async () => progress.rowsDone,
      (n) => n >= 6000,
    );
    proxy.cut();
    await waitFor(
      async () => progress.rowsDone,
      (n) => n >= 18_000,
    );
    proxy.restore();
    expect(await importing).toMatchObject({ accepted: 30_000, rejected: 0 });
    const counted = async () => {
      const res = await rest(
        tally.port as number,
        "/stats/top-events?from=2024-07-01&to=2024-07-06",
      );
      return (res.body as { event_type: string; count: number }[])
        .filter((r) => r.event_type.startsWith("redisfault_"))
        .reduce((n, r) => n + r.count, 0);
    };
    expect(await waitFor(counted, (n) => n >= unique)).toBe(unique);
    // Some repeats reached the warehouse while Redis was away: stats still count them once.
    const [row] = await tally.warehouse.rows<{ rows: string }>(
      `SELECT count() AS rows FROM ${tally.warehouse.db}.events WHERE startsWith(event_type, 'redisfault_')`,
      {},
    );
    expect(Number(row?.rows)).toBeGreaterThan(unique);
    expect(await counterValue(tally.metrics.eventsInserted)).toBeGreaterThan(unique);
  });
});
