import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { dropNamespaces } from "../../test/cleanup.ts";
import { parseMetrics, sumOf } from "../../test/metrics-text.ts";
import { benchDir } from "./bench-dir.ts";

/** The Node.js flags `npm start` gives the service (package.json's start script), the same as the `tally` command's shebang: the bench runs both as users do. */
export const SERVICE_NODE_FLAGS: readonly string[] = (
  JSON.parse(readFileSync(join(import.meta.dirname, "../../package.json"), "utf8")) as {
    scripts: { start: string };
  }
).scripts.start
  .split(" ")
  .filter((word) => word.startsWith("--"));

/** The tally command, as users run it (with Node's compile cache on: src/cli/tally.js). */
export const TALLY = join(import.meta.dirname, "../../src/cli/tally.js");

/** A `tally serve` child process on the real services, in a fresh namespace. */
export interface BenchService {
  readonly port: number;
  readonly process: ChildProcess;
  /** CPU seconds the process has used so far (user + system). */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

export async function startService(
  port: number,
  env: Record<string, string> = {},
  serveArgs: readonly string[] = [],
  /** Another checkout's tally command and other Node.js flags (bench/ab.ts's variants). */
  {
    tally = TALLY,
    nodeFlags = SERVICE_NODE_FLAGS,
  }: { tally?: string; nodeFlags?: readonly string[] } = {},
): Promise<BenchService> {
  // Given in env by a scenario whose processes share one (an API and its consumer).
  const namespace = env.TALLY_NAMESPACE ?? `bench_${Date.now()}`;
  const amqpUrl = process.env.AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";
  const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
  const child = spawn(process.execPath, [...nodeFlags, tally, "serve", ...serveArgs], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: "127.0.0.1",
      AMQP_URL: amqpUrl,
      REDIS_URL: redisUrl,
      TALLY_DATA_DIR: benchDir("service-"),
      TALLY_NAMESPACE: namespace,
      // Bench keys need not outlive the run.
      TALLY_DEDUPE_TTL_SECONDS: "600",
      LOG_LEVEL: "warn",
      ...(process.env.SERVICE_NODE_OPTIONS
        ? { NODE_OPTIONS: process.env.SERVICE_NODE_OPTIONS }
        : {}),
      ...env,
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  for (let i = 0; ; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (i > 300) throw new Error("the service did not become ready");
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port,
    process: child,
    cpuSeconds() {
      // /proc/PID/stat fields 14 and 15: utime and stime in clock ticks (100 Hz).
      const fields =
        readFileSync(`/proc/${child.pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
      return (Number(fields[11]) + Number(fields[12])) / 100;
    },
    async stop() {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
      await dropNamespaces(new RegExp(`^${namespace}[.:]`), amqpUrl, redisUrl);
    },
  };
}

/** The service's Prometheus metrics as they are now, by series. */
export async function serviceMetrics(port: number): Promise<Map<string, number>> {
  return parseMetrics(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
}

/** The service's garbage collection so far, from its metrics: every pause's seconds summed, and the full collections. */
export function gcTotals(metrics: Map<string, number>) {
  return {
    seconds: sumOf(metrics, "nodejs_gc_duration_seconds_sum"),
    markCompacts: sumOf(metrics, "nodejs_gc_duration_seconds_count", { kind: "major" }),
  };
}
