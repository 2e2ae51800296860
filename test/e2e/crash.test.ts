import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
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
  REDIS_URL,
  uniqueNamespace,
  waitFor,
} from "../helpers.ts";

const MAIN = join(import.meta.dirname, "../../src/cli/main.ts");
const started = new Set<ChildProcess>();
afterEach(() => {
  for (const c of started) c.kill("SIGKILL");
  started.clear();
});

/** `tally serve` on RabbitMQ, Redis and chDB in `dataDir`, once ready. */
async function serve(port: number, dataDir: string, namespace: string) {
  const child = spawn(process.execPath, [MAIN, "serve"], {
    env: {
      PATH: process.env.PATH ?? "",
      PORT: String(port),
      HOST: "127.0.0.1",
      AMQP_URL,
      REDIS_URL,
      TALLY_DATA_DIR: dataDir,
      TALLY_NAMESPACE: namespace,
      TALLY_DEDUPE_TTL_SECONDS: "600",
      LOG_LEVEL: "warn",
    },
    stdio: "ignore",
  });
  started.add(child);
  await waitFor(
    () => rest(port, "/readyz").catch(() => ({ status: 0 })),
    (r) => r.status === 200,
  );
  return child;
}

function file(rows: number, seed: number, tag: string) {
  const path = join(mkdtempSync(join(tmpdir(), "tally-crash-")), "events.csv");
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
      const dataDir = mkdtempSync(join(tmpdir(), "tally-crash-data-"));
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
    const dataDir = mkdtempSync(join(tmpdir(), "tally-crash-data-"));
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
