import type { ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { generateCsv } from "../../src/cli/gen/generate.ts";
import { runImport } from "../../src/cli/import/importer.ts";
import type { ImportProgress } from "../../src/cli/import/progress.ts";
import { rest } from "../clients.ts";
import {
  AMQP_URL,
  closeRabbitConnections,
  freePort,
  type JsonEvent,
  REDIS_URL,
  rng,
  spawnTally,
  uniqueNamespace,
  untilReady,
  uuidFrom,
  waitFor,
} from "../helpers.ts";
import { refDau, refRetention, refTopEvents } from "../reference.ts";
import { tempDir } from "../temp-dirs.ts";

const started = new Set<ChildProcess>();
afterEach(() => {
  for (const c of started) c.kill("SIGKILL");
  started.clear();
});

/** `tally serve` on RabbitMQ, Redis and chDB in `dataDir`, once ready. */
async function serve(port: number, dataDir: string, namespace: string) {
  const { child } = spawnTally(["serve"], {
    PORT: String(port),
    HOST: "127.0.0.1",
    AMQP_URL,
    REDIS_URL,
    TALLY_DATA_DIR: dataDir,
    TALLY_NAMESPACE: namespace,
    TALLY_DEDUPE_TTL_SECONDS: "600",
    LOG_LEVEL: "warn",
  });
  started.add(child);
  await untilReady(port);
  return child;
}

function file(rows: number, seed: number, tag: string) {
  const path = join(tempDir("tally-crash-"), "events.csv");
  const csv = [
    ...generateCsv({
      rows,
      users: 500,
      fromMs: Date.parse("2024-05-01"),
      days: 10,
      eventTypes: 3,
      dupRate: 0.02,
      seed,
    }),
  ]
    .join("")
    .replace(/,(page_view|click|search),/g, `,${tag}_$1,`);
  writeFileSync(path, csv);
  return {
    path,
    unique: new Set(
      csv
        .split("\n")
        .slice(1, -1)
        .map((l) => l.slice(0, 36)),
    ).size,
  };
}

/**
 * tally import as a patient client (retrying for a long while, noting each
 * failed send), started and awaited until 8,000 rows are acknowledged.
 */
async function importUnderway(path: string, port: number) {
  const notices: string[] = [];
  const progress: ImportProgress = {
    bytesRead: 0,
    totalBytes: undefined,
    rowsRead: 0,
    rowsDone: 0,
  };
  const importing = runImport(
    {
      input: path,
      url: `http://127.0.0.1:${port}`,
      batchSize: 250,
      segmentRows: 2000,
      dryRun: false,
      restart: false,
      attempts: 60,
      retryDelayMs: 100,
      onNotice: (m) => notices.push(m),
    },
    progress,
  );
  await waitFor(
    async () => progress.rowsDone,
    (n) => n >= 8000,
  );
  return { importing, notices };
}

async function counted(port: number, tag: string): Promise<number> {
  const res = await rest(port, "/stats/top-events?from=2024-05-01&to=2024-05-11");
  return (res.body as { event_type: string; count: number }[])
    .filter((r) => r.event_type.startsWith(`${tag}_`))
    .reduce((n, r) => n + r.count, 0);
}

describe("the service killed mid-import (RabbitMQ, Redis, chDB)", () => {
  for (const signal of ["SIGKILL", "SIGTERM"] as const) {
    it(`counts every event exactly once after ${signal} and a restart, the importer retrying`, async () => {
      const port = await freePort();
      const dataDir = tempDir("tally-crash-data-");
      const namespace = uniqueNamespace();
      const tag = signal.toLowerCase();
      const { path, unique } = file(40_000, signal === "SIGKILL" ? 31 : 32, tag);
      let service = await serve(port, dataDir, namespace);
      const { importing, notices } = await importUnderway(path, port);
      const exited = new Promise((r) => service.once("exit", r));
      service.kill(signal);
      await exited;
      service = await serve(port, dataDir, namespace);
      const summary = await importing;
      expect(summary).toMatchObject({ rowsRead: 40_000, accepted: 40_000, rejected: 0 });
      expect(notices.some((n) => n.startsWith("send failed"))).toBe(true); // the fault hit the import
      expect(
        await waitFor(
          () => counted(port, tag),
          (n) => n >= unique,
        ),
      ).toBe(unique);
      // Nothing more arrives later: still exactly once after the queue has drained.
      await new Promise((r) => setTimeout(r, 1000));
      expect(await counted(port, tag)).toBe(unique);
    });
  }

  it("counts every event exactly once when RabbitMQ closes the service's connections mid-import", async () => {
    const port = await freePort();
    const dataDir = tempDir("tally-crash-data-");
    const namespace = uniqueNamespace();
    const { path, unique } = file(40_000, 33, "amqpcut");
    await serve(port, dataDir, namespace);
    const { importing } = await importUnderway(path, port);
    // The consumer's connection opens on its own time: up once it has stored something.
    await waitFor(
      () => counted(port, "amqpcut"),
      (n) => n > 0,
    );
    // The broker drops the service's connections (their client-given names carry the namespace).
    const names = [`tally-${namespace}`, `tally-${namespace}-consumer`];
    expect(closeRabbitConnections(names)).toBe(2);
    const summary = await importing;
    expect(summary).toMatchObject({ rowsRead: 40_000, accepted: 40_000, rejected: 0 });
    expect(
      await waitFor(
        () => counted(port, "amqpcut"),
        (n) => n >= unique,
      ),
    ).toBe(unique);
    await new Promise((r) => setTimeout(r, 1000));
    expect(await counted(port, "amqpcut")).toBe(unique);
  });
});

describe("the embedded service killed while it acknowledges (local log, in-process dedupe, chDB)", () => {
  it("stores every acknowledged event, once, after SIGKILL and a restart", async () => {
    const port = await freePort();
    const env = {
      PORT: String(port),
      HOST: "127.0.0.1",
      TALLY_DATA_DIR: tempDir("tally-embedded-crash-"),
      LOG_LEVEL: "info",
    };
    const first = spawnTally(["serve"], env);
    started.add(first.child);
    await untilReady(port);
    // Many clients, one event per request, each its own user so that each can be looked up.
    const random = rng(800);
    const acknowledged: string[] = [];
    const sent: string[] = [];
    let killed = false;
    const client = async () => {
      while (!killed) {
        const user = `emb-${uuidFrom(random)}`;
        sent.push(user);
        const event = {
          event_id: uuidFrom(random),
          occurred_at: "2025-10-03T12:00:00Z",
          user_id: user,
          event_type: "embedded_crash",
        };
        const res = await rest(port, "/events", [event]).catch(() => undefined);
        if (res?.status === 202 && !killed) acknowledged.push(user);
      }
    };
    const clients = Array.from({ length: 16 }, client);
    await waitFor(
      async () => acknowledged.length,
      (n) => n >= 1500,
    );
    first.child.kill("SIGKILL");
    killed = true;
    await first.exit;
    await Promise.all(clients);

    const second = spawnTally(["serve"], env);
    started.add(second.child);
    await untilReady(port);
    // Acknowledged just before the kill, not yet in chDB: kept in the log, delivered again.
    expect(second.stderr()).toMatch(/delivering again the batches kept in the local log/);
    const count = async () =>
      (
        (await rest(port, "/stats/top-events?from=2025-10-03&to=2025-10-03")).body as {
          count: number;
        }[]
      ).reduce((n, r) => n + r.count, 0);
    const stored = await waitFor(count, (n) => n >= acknowledged.length, 30_000);
    expect(stored).toBeLessThanOrEqual(sent.length);
    const missing: string[] = [];
    for (const user of acknowledged) {
      const res = await rest(port, `/users/${user}`);
      if (res.status !== 200 || (res.body as { events: number }).events !== 1) missing.push(user);
    }
    expect(missing).toEqual([]);
    // Nothing more arrives later: still once each.
    await new Promise((r) => setTimeout(r, 1000));
    expect(await count()).toBe(stored);
    expect((await rest(port, "/stats/dau?from=2025-10-03&to=2025-10-03")).body).toEqual([
      { date: "2025-10-03", unique_users: stored },
    ]);
    second.child.kill("SIGTERM");
    await second.exit;
  }, 120_000);
});

describe("a deletion killed halfway (RabbitMQ, Redis, chDB)", () => {
  it.each(["captured", "events", "rollups"])(
    "finishes after a restart when killed after the step '%s', every stat as if the user's events were never sent",
    async (step) => {
      const port = await freePort();
      const dataDir = tempDir("tally-deletion-");
      const env = {
        PORT: String(port),
        HOST: "127.0.0.1",
        AMQP_URL,
        REDIS_URL,
        TALLY_DATA_DIR: dataDir,
        TALLY_NAMESPACE: uniqueNamespace(),
        TALLY_DEDUPE_TTL_SECONDS: "600",
        TALLY_DELETION_SETTLE_MS: "1000",
        TALLY_INDEXED_PROPERTIES: "country",
        LOG_LEVEL: "warn",
      };
      const first = spawnTally(["serve"], { ...env, TALLY_TEST_DELETION_STOP_AFTER: step });
      started.add(first.child);
      await untilReady(port);
      const random = rng(500);
      const events: JsonEvent[] = Array.from({ length: 400 }, (_, i) => ({
        event_id: uuidFrom(random),
        occurred_at: new Date(
          Date.parse("2025-10-01") + Math.floor(random() * 10 * 86_400_000),
        ).toISOString(),
        user_id: `u${i % 7}`,
        event_type: ["page_view", "click", "purchase"][i % 3] as string,
        properties: { country: i % 2 === 0 ? "UA" : "PL" },
      }));
      expect((await rest(port, "/events", events)).status).toBe(202);
      await waitFor(
        () => rest(port, "/stats/top-events?from=2025-10-01&to=2025-10-11"),
        (r) => (r.body as { count: number }[]).reduce((n, e) => n + e.count, 0) === events.length,
      );
      const receipt = (await rest(port, "/users/u3", undefined, { method: "DELETE" })).body as {
        deletion_id: string;
      };
      await waitFor(
        async () => first.stderr(),
        (out) => out.includes("deletion stopped on purpose"),
      );
      first.child.kill("SIGKILL");
      await first.exit;

      const second = spawnTally(["serve"], env);
      started.add(second.child);
      await untilReady(port);
      const done = await waitFor(
        () => rest(port, `/deletions/${receipt.deletion_id}`),
        (r) => (r.body as { status: string }).status === "done",
        30_000,
      );
      const kept = events.filter((e) => e.user_id !== "u3");
      expect((done.body as { events_deleted: number }).events_deleted).toBe(
        events.length - kept.length,
      );
      for (const segment of ["", "&segment=properties.country:UA"]) {
        const range = `from=2025-10-01&to=2025-10-11${segment}`;
        const wanted = segment === "" ? [] : ["properties.country:UA"];
        expect((await rest(port, `/stats/dau?${range}`)).body).toEqual(
          refDau(kept, "2025-10-01", "2025-10-11", "UTC", wanted),
        );
        expect((await rest(port, `/stats/top-events?${range}`)).body).toEqual(
          refTopEvents(kept, "2025-10-01", "2025-10-11", "UTC", 10, wanted),
        );
        expect(
          (await rest(port, `/stats/retention?start_date=2025-10-01&end_date=2025-10-11${segment}`))
            .body,
        ).toEqual(refRetention(kept, "2025-10-01", "2025-10-11", 7, "UTC", "day", wanted));
      }
      expect((await rest(port, "/users/u3")).status).toBe(404);
      second.child.kill("SIGTERM");
      await second.exit;
    },
    90_000,
  );
});
