import { execFileSync, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { createServer } from "node:net";
import { join } from "node:path";
import { pino } from "pino";
import { type Role, startTally, type Tally } from "../src/app/tally.ts";
import { type Config, loadConfig } from "../src/config/config.ts";
import type { ErrorReporter } from "../src/observability/dependency-errors.ts";
import { createRabbitQueue } from "../src/queue/rabbitmq-queue.ts";
import { createChdbWarehouse } from "../src/warehouse/chdb-warehouse.ts";
import { CHDB_LIBRARY, parseSmaps, readSmaps, releasable } from "../src/warehouse/library-pages.ts";
import type { Warehouse } from "../src/warehouse/warehouse.ts";
import { tempDir } from "./temp-dirs.ts";

export const AMQP_URL = process.env.TEST_AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";
export const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

/** One chDB data directory for this test file's process (chDB binds one per process), removed after its tests. */
export const DATA_DIR = tempDir("tally-test-");

/** A namespace no other run shares: its own queues, Redis keys and database. */
export function uniqueNamespace(): string {
  return `t_${randomUUID().replaceAll("-", "").slice(0, 16)}`;
}

/** A config for tests: port 0, this process's data dir, a fresh namespace. */
export function testConfig(env: Record<string, string | undefined> = {}): Config {
  return loadConfig({
    PORT: "0",
    HOST: "127.0.0.1",
    TALLY_DATA_DIR: DATA_DIR,
    TALLY_NAMESPACE: uniqueNamespace(),
    TALLY_FLUSH_INTERVAL_MS: "20",
    // Test keys need not outlive the run.
    TALLY_DEDUPE_TTL_SECONDS: "600",
    ...env,
  });
}

/** The real services: RabbitMQ and Redis, chDB embedded. */
export function realServices(): Record<string, string> {
  return { AMQP_URL, REDIS_URL };
}

export const silentLog = pino({ level: "silent" });

/** Adapters' error reporter in tests, where faults are injected on purpose: the errors go to the silent log. */
export const reportErrors: ErrorReporter = (err, context) =>
  silentLog.warn({ err }, context ?? "client error");

/** A RabbitMQ queue of `namespace` on the test broker, as a test's own producer or consumer. */
export function rabbitQueue(namespace: string, prefetch = 1) {
  return createRabbitQueue({ url: AMQP_URL, namespace, prefetch, onError: reportErrors });
}

export async function start(config: Config, role: Role = "all"): Promise<Tally> {
  return startTally(config, role, silentLog);
}

/** The tally command, as users run it (src/cli/tally.js: Node's compile cache on). */
export const TALLY_COMMAND = join(import.meta.dirname, "../src/cli/tally.js");

/** `tally ARGS` as a child process, with only PATH and `env` set; its output is gathered. */
export function spawnTally(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, [TALLY_COMMAND, ...args], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on("data", (d: Buffer) => {
    err += d.toString();
  });
  // "close", not "exit": by then every line of output has arrived.
  const exit = new Promise<number | null>((resolve) =>
    child.once("close", (code) => resolve(code)),
  );
  return { child, exit, stdout: () => out, stderr: () => err };
}

/** Polls GET /readyz of a service on `port` until it answers 200 (a refused connection is a no). */
export function untilReady(port: number, timeoutMs?: number) {
  return waitFor(
    () =>
      fetch(`http://127.0.0.1:${port}/readyz`).then(
        (r) => r.status,
        () => 0,
      ),
    (status) => status === 200,
    timeoutMs,
  );
}

/** Polls `probe` until it returns a value `done` accepts; fails after `timeoutMs`. */
export async function waitFor<T>(
  probe: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await probe();
    if (done(last)) return last;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting; last value: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Seeded randomness for reproducible test data: the generator's own. */
import { seededRandom as rng, seededUuid as uuidFrom } from "../src/cli/gen/random.ts";

export { rng, uuidFrom };

/** A test event in the REST JSON shape. */
export interface JsonEvent {
  event_id: string;
  occurred_at: string;
  user_id: string;
  event_type: string;
  properties?: Record<string, unknown>;
}

/** The embedded warehouse alone (no service around it), in a database of its own. */
export function testWarehouse(): Warehouse {
  return createChdbWarehouse({ url: undefined, dataDir: DATA_DIR, database: uniqueNamespace() });
}

/** Stores events straight in the events table, as a flush would, past the pipeline. */
export async function storeEvents(warehouse: Warehouse, events: readonly JsonEvent[]) {
  const acceptedAt = new Date().toISOString();
  await warehouse.insert("events", {
    format: "JSONEachRow",
    rows: events.map((e) => ({
      ...e,
      properties: JSON.stringify(e.properties ?? {}),
      accepted_at: acceptedAt,
    })),
    bestEffortTimes: true,
  });
}

/** chDB's library in this process: resident KiB of what may be released, and the process's own pages in it. */
export function chdbLibraryPages() {
  const mappings = parseSmaps(readSmaps() ?? "").filter((m) => CHDB_LIBRARY(m.path));
  return {
    releasableKiB: releasable(mappings, CHDB_LIBRARY).reduce((kib, m) => kib + m.rssKiB, 0),
    ownKiB: mappings.reduce((kib, m) => kib + m.anonymousKiB, 0),
  };
}

/** Rows counted in the warehouse, once its writes have settled: physical rows and distinct event_ids. */
export async function warehouseCounts(tally: Tally) {
  // Only whole inserts: the events' table is written before its views' tables.
  await tally.warehouse.settled?.();
  const [row] = await tally.warehouse.query<{ rows: string; ids: string }>(
    `SELECT count() AS rows, uniqExact(event_id) AS ids FROM ${tally.warehouse.db}.events`,
    {},
  );
  return { rows: Number(row?.rows ?? 0), ids: Number(row?.ids ?? 0) };
}

/** A counter's current value (summed over its labels). */
export async function counterValue(metric: {
  get(): Promise<{ values: { value: number }[] }>;
}): Promise<number> {
  return (await metric.get()).values.reduce((n, v) => n + v.value, 0);
}

/**
 * Has RabbitMQ close every connection whose client-given name is one of
 * `names`, as a broker fault would; answers how many it closed.
 */
export function closeRabbitConnections(names: readonly string[]): number {
  const pids = execFileSync(
    "rabbitmqctl",
    ["list_connections", "pid", "client_properties", "-q", "--no-table-headers"],
    { encoding: "utf8" },
  )
    .split("\n")
    .filter((line) => names.some((name) => line.includes(`"${name}"`)))
    .map((line) => line.split(/\s+/)[0] as string);
  for (const pid of pids) execFileSync("rabbitmqctl", ["close_connection", pid, "test: a fault"]);
  return pids.length;
}

/** A port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

/** `n` events of one type on 2025-10-28, drawn from `seed`; user ids cycle through `users`. */
export function sameDayEvents(n: number, seed: number, eventType: string, users = 1): JsonEvent[] {
  const random = rng(seed);
  return Array.from({ length: n }, (_, i) => ({
    event_id: uuidFrom(random),
    occurred_at: "2025-10-28T12:00:00Z",
    user_id: `u${i % users}`,
    event_type: eventType,
  }));
}
