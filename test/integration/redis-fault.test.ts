import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Tally } from "../../src/app/tally.ts";
import { generateCsv } from "../../src/cli/gen/generate.ts";
import { runImport } from "../../src/cli/import/importer.ts";
import { rest } from "../clients.ts";
import { counterValue, REDIS_URL, realServices, start, testConfig, waitFor } from "../helpers.ts";
import { startTcpProxy } from "../tcp-proxy.ts";
import { tempDir } from "../temp-dirs.ts";

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
    const dir = tempDir("tally-redis-fault-");
    const lines = [
      ...generateCsv({
        rows: 20_000,
        users: 300,
        fromMs: Date.parse("2024-07-01"),
        days: 5,
        eventTypes: 3,
        dupRate: 0,
        seed: 41,
      }),
    ]
      .join("")
      .replace(/,(page_view|click|search),/g, ",redisfault_$1,")
      .split("\n");
    const [header, ...rows] = lines.filter((l) => l !== "");
    const write = (name: string, part: string[]) => {
      const path = join(dir, name);
      writeFileSync(path, `${header}\n${part.join("\n")}\n`);
      return path;
    };
    const importFile = (path: string) =>
      runImport(
        {
          input: path,
          url: `http://127.0.0.1:${tally.port}`,
          batchSize: 500,
          segmentRows: 2000,
          dryRun: false,
          restart: false,
        },
        { bytesRead: 0, totalBytes: undefined, rowsRead: 0, rowsDone: 0 },
      );
    const counted = async () => {
      const res = await rest(
        tally.port as number,
        "/stats/top-events?from=2024-07-01&to=2024-07-06",
      );
      return (res.body as { event_type: string; count: number }[])
        .filter((r) => r.event_type.startsWith("redisfault_"))
        .reduce((n, r) => n + r.count, 0);
    };

    // With Redis: the first half.
    expect(await importFile(write("first.csv", rows.slice(0, 10_000)))).toMatchObject({
      accepted: 10_000,
    });
    await waitFor(counted, (n) => n >= 10_000);
    // Without Redis: 5,000 repeats of the first half (1,000 of them with another type)
    // and 10,000 new events.
    proxy.cut();
    const changed = rows
      .slice(5_000, 6_000)
      .map((r) => r.replace(/,redisfault_\w+,/, ",redisfault_changed,"));
    const second = [...changed, ...rows.slice(6_000)];
    expect(await importFile(write("second.csv", second))).toMatchObject({ accepted: 15_000 });
    await waitFor(
      () => counterValue(tally.metrics.eventsInserted),
      (n) => n >= 20_000,
    );
    proxy.restore();
    // The consumer asked the warehouse instead, so the repeats never reached it: a changed
    // repeat would have counted in the rollups, which keep every stored copy's day and type.
    // (A pause, not a poll: this checks that nothing more arrives.)
    await new Promise((r) => setTimeout(r, 500));
    expect(await counterValue(tally.metrics.eventsInserted)).toBe(20_000);
    expect(await counted()).toBe(20_000);
    // With Redis back, repeats are stopped again before the warehouse.
    await waitFor(
      async () => (await rest(tally.port as number, "/readyz")).status,
      (s) => s === 200,
    );
    expect(await importFile(write("third.csv", rows.slice(0, 1_000)))).toMatchObject({
      accepted: 1_000,
    });
    await new Promise((r) => setTimeout(r, 1000));
    expect(await counted()).toBe(20_000);
  });
});
