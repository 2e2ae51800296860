import { fork } from "node:child_process";
import { join } from "node:path";
import { sumOf } from "../../test/metrics-text.ts";
import { median, quantile } from "../lib/quantile.ts";
import { cpuSeconds, findPid, machineCpuSeconds } from "../lib/resources.ts";
import { serviceMetrics, startService } from "../lib/service.ts";
import type { Section } from "../lib/table.ts";
import { forkGenerator, runGenerator } from "../lib/unary-load.ts";

/**
 * Single-event calls at fixed rates, open loop: each call's latency runs
 * from when it was scheduled, so a stalled server cannot hide behind a
 * waiting generator. gRPC Ingest and REST POST /events, sent by
 * bench/lib/unary-generator.ts in a process of its own.
 */
export async function unary(scale: number, port: number): Promise<Section[]> {
  const rates =
    scale >= 1
      ? [500, 2000, 5000]
      : [Math.max(20, Math.round(500 * scale)), Math.max(50, Math.round(2000 * scale))];
  const seconds = scale >= 1 ? 5 : 2;
  // The rate the p99 goal is set at runs several windows back to back: one
  // window's p99 is its worst 1%, and one stall of the shared machine can
  // make it; their median says what a window usually holds.
  const windowedRate = rates[1] as number;
  const windowsAt = (rate: number) => (rate === windowedRate ? 3 : 1);
  // Unmeasured seconds at each rate first. The step from 500 to 2,000/s left
  // a burst 3-4 s later, in the floor too (its first window's p99 13.7 and
  // 45.5 ms against 2.5 and 5.7 in the next): the generator and the service
  // settling to the new rate. After 5 s, the windows are the steady state.
  const warmupSeconds = scale >= 1 ? 1 : 0.5;
  const windowedWarmupSeconds = scale >= 1 ? 5 : 0.5;
  const warmupAt = (rate: number) =>
    rate === windowedRate ? windowedWarmupSeconds : warmupSeconds;
  const service = await startService(port);
  const bare = await startBareServer(port + 100);
  const generator = forkGenerator();
  const broker = findPid("beam.smp");
  const redis = findPid("redis-server");
  /** CPU seconds so far of the machine, the broker and Redis. */
  const machineNow = () => ({
    machine: machineCpuSeconds(),
    broker: broker === undefined ? Number.NaN : cpuSeconds(broker),
    redis: redis === undefined ? Number.NaN : cpuSeconds(redis),
  });
  // Rate by rate, the floor just before the service at the same rate: the
  // machine's speed drifts within a run (the floor's p99 at 2,000/s was
  // 5.2 to 31.9 ms from one run to another), and a ratio's two sides should
  // see the same machine. The floor ran first at every rate before, up to
  // 90 s before the service's run it is compared with. The overloaded rate
  // comes last, so no floor runs beside a service still draining.
  const targets = [
    { name: "floor: gRPC to a bare HTTP/2 server", call: "grpc", server: bare },
    { name: "gRPC Ingest", call: "grpc", server: service },
    { name: "REST POST /events", call: "rest", server: service },
  ] as const;
  const rows: (string | number)[][] = [];
  const tailRows: (string | number)[][] = [];
  const errorKinds: string[] = [];
  try {
    for (const rate of rates) {
      for (const { name, call, server } of targets) {
        const windows = windowsAt(rate);
        let cpu0 = 0;
        let machine0 = machineNow();
        let figures0: Promise<ServiceFigures> | undefined;
        const outcome = await runGenerator(
          generator,
          { call, port: server.port, rate, seconds, warmupSeconds: warmupAt(rate), windows },
          () => {
            cpu0 = server.cpuSeconds();
            machine0 = machineNow();
            if (server === service) figures0 = serviceFigures(service.port);
          },
        );
        const calls = rate * seconds * windows;
        const cpu = server.cpuSeconds() - cpu0;
        const machine1 = machineNow();
        const before = await figures0;
        const after = before && (await serviceFigures(service.port));
        const measuredSeconds = seconds * windows;
        // Mean ms per message of each step, over the measured windows (and the calls still
        // in flight when they began or ended).
        const meanMs = (step: keyof Steps) =>
          before && after
            ? ((after[step].sum - before[step].sum) * 1000) /
              (after[step].count - before[step].count)
            : "";
        // The share of each over SLOW, in %.
        const slowShare = (step: keyof Steps) =>
          before && after
            ? (100 * (after[step].slow - before[step].slow)) /
              (after[step].count - before[step].count)
            : "";
        const errors = Object.values(outcome.errors).reduce((n, e) => n + e, 0);
        for (const [kind, n] of Object.entries(outcome.errors))
          errorKinds.push(`Errors: ${n} x ${name} at ${rate}/s: ${kind}`);
        const { latencies, windowP99s } = outcome;
        rows.push([
          name,
          rate,
          calls,
          quantile(latencies, 0.5),
          quantile(latencies, 0.99),
          windowP99s.length > 1 ? byWindow(windowP99s) : "",
          latencies.at(-1) ?? Number.NaN,
          errors,
          (cpu * 1000) / calls,
          meanMs("queue"),
          meanMs("claim"),
        ]);
        tailRows.push([
          name,
          rate,
          quantile(latencies, 0.99),
          outcome.sentLateP99,
          slowShare("queue"),
          slowShare("claim"),
          slowShare("rpc"),
          after ? after.loopDelayP99 * 1000 - LOOP_TICK_MS : "",
          after ? after.loopDelayMax * 1000 - LOOP_TICK_MS : "",
          before && after ? ((after.gc.sum - before.gc.sum) * 1000) / measuredSeconds : "",
          before && after ? (after.gc.long - before.gc.long) / measuredSeconds : "",
          before && after ? (after.gc.major - before.gc.major) / measuredSeconds : "",
          (machine1.machine - machine0.machine) / measuredSeconds,
          ((machine1.broker - machine0.broker) * 1000) / calls,
          ((machine1.redis - machine0.redis) * 1000) / calls,
          before && after ? calls / (after.queue.count - before.queue.count) : "",
        ]);
      }
    }
    // Tables per target, in rate order, as before.
    const byTarget = (a: (string | number)[], b: (string | number)[]) =>
      targets.findIndex((t) => t.name === a[0]) - targets.findIndex((t) => t.name === b[0]);
    rows.sort(byTarget);
    tailRows.sort(byTarget);
  } finally {
    generator.disconnect();
    await service.stop();
    await bare.stop();
  }
  return [
    {
      title: `Unary latency, open loop (${seconds} s per rate after ${warmupSeconds} s unmeasured; at ${windowedRate.toLocaleString("en-US")}/s, ${windowsAt(windowedRate)} x ${seconds} s after ${windowedWarmupSeconds} s)`,
      columns: [
        "call",
        "rate/s",
        "calls",
        "p50 ms",
        "p99 ms",
        "p99 ms by window (median)",
        "max ms",
        "errors",
        "server CPU ms/call",
        "broker confirm ms/msg (mean)",
        "Redis claim ms/msg (mean)",
      ],
      rows,
      notes: [
        `Each rate runs ${warmupSeconds} s unmeasured first (${windowedWarmupSeconds} s at ${windowedRate.toLocaleString("en-US")}/s), at the same rate: the figures are the steady state, not the service and the generator settling to a new rate.`,
        `At ${windowedRate.toLocaleString("en-US")}/s, ${windowsAt(windowedRate)} windows of ${seconds} s run back to back: p99 is over all their calls, and each window's p99 is given with their median (one window's worst 1% is ${(windowedRate * seconds) / 100} calls, and one stall of the shared machine can make it).`,
        "The load generator (@grpc/grpc-js for gRPC, node:http with 256 keep-alive connections for REST) is a process of its own and shares the 2 cores with the service, RabbitMQ and Redis.",
        "Each call waits, after its message is published, for the broker's confirm (a quorum queue confirms once its log is synced), then for its ids to be claimed in Redis: both means are from the service's tally_accept_step_seconds over the measured windows, per message (calls given in one turn of the event loop, or while others await their confirm, share one).",
        "The floor is the same gRPC generator against a bare HTTP/2 server (its own process, answering OK at once): what the generator and the machine cost before Tally does anything; its server CPU is the bare server's.",
        "The rates run in turn, and at each the floor runs just before gRPC Ingest and REST, so that the two sides of a ratio see the machine at the same speed (it drifts within a run).",
        ...errorKinds,
      ],
    },
    {
      title: "Where the unary tail goes (the same runs)",
      columns: [
        "call",
        "rate/s",
        "p99 ms",
        "sent late, p99 ms (generator)",
        `confirms over ${Number(SLOW) * 1000} ms (%)`,
        `claims over ${Number(SLOW) * 1000} ms (%)`,
        `calls over ${Number(SLOW) * 1000} ms in the service (%)`,
        "event loop late, p99 ms (service)",
        "event loop late, max ms",
        "GC ms a second (service)",
        "GC pauses over 10 ms a second",
        "mark-compacts a second",
        "machine cores busy (of 2)",
        "RabbitMQ CPU ms/call",
        "Redis CPU ms/call",
        "calls a broker message",
      ],
      rows: tailRows,
      notes: [
        `Over ${Number(SLOW) * 1000} ms: the share of the broker's confirms and of the Redis claims (per message), and of the calls as the service timed them (tally_rpc_duration_seconds, from its interceptor's start to its answer), that took longer, from the histograms' ${Number(SLOW) * 1000} ms bucket. Where the service's own share is past 1%, its p99 is past the bound: the confirm's and the claim's shares say how much of that is the wait for the broker and for Redis, one after the other (a call's message is published, confirmed, then its ids claimed). The calls' p99 past the service's is spent before its handler began or after it answered: in the event loop's queue (garbage collection, chDB's inserts in the same process), in HTTP/2, or in the generator.`,
        "Sent late: how long after its time the generator sent each call, at p99 (its own wait for a core; latencies count from the call's time, so it is part of them). Event loop late: how long after its time the service's 10 ms tick came, at p99 (prom-client's nodejs_eventloop_lag_p99_seconds, from perf_hooks' monitorEventLoopDelay, over the measured windows, less the tick itself), and at its worst. The service's GC time is every collection's pause, summed, a second of the windows (nodejs_gc_duration_seconds), and mark-compacts are its full collections.",
        "Machine cores busy: every process's CPU over the measured windows, a second (/proc/stat): the floor's is its generator and the bare server; the service's adds the broker, Redis and chDB. The nearer it is to 2, the longer a call that is ready waits for a core, at every step. RabbitMQ's and Redis's CPU a call are their processes' over the same windows. Calls a broker message: the calls answered over the windows, by the messages the service published (small batches share one, coalesce.ts).",
      ],
    },
  ];
}

type Count = { sum: number; count: number; slow: number };
/** prom-client's event loop sampling interval: a tick on time reads as this delay. */
const LOOP_TICK_MS = 10;
type Steps = Record<"queue" | "claim" | "rpc", Count>;
type ServiceFigures = Steps & {
  /** The event loop's delay p99 and max since the last scrape (prom-client resets it at each), in s. */
  loopDelayP99: number;
  loopDelayMax: number;
  /** Garbage collection so far: seconds in all, how many pauses over 10 ms, and how many full (mark-compact) ones. */
  gc: { sum: number; long: number; major: number };
};

/**
 * Where a step or a call is counted as slow: the histograms' bucket bound
 * nearest the p99 goal at 2,000/s (twice the floor's, 8-9 ms). At 25 ms,
 * the confirms and claims over it were 0-0.07%, yet calls the service
 * timed over 15 ms (a scratch trace of each call's steps) had waited 14 ms
 * for their confirm and 7.7 ms for their claim, on average.
 */
const SLOW = "0.01";

/**
 * The service's tally_accept_step_seconds so far (sum, count, and how many
 * took over {@link SLOW} s) per step, and the same of its Ingest calls'
 * tally_rpc_duration_seconds; its event loop's delay and its garbage
 * collection (prom-client's default metrics).
 */
async function serviceFigures(port: number): Promise<ServiceFigures> {
  const metrics = await serviceMetrics(port);
  const of = (name: string, labels: Record<string, string>) => {
    const count = sumOf(metrics, `${name}_count`, labels);
    return {
      sum: sumOf(metrics, `${name}_sum`, labels),
      count,
      slow: count - sumOf(metrics, `${name}_bucket`, { ...labels, le: SLOW }),
    };
  };
  return {
    queue: of("tally_accept_step_seconds", { step: "queue" }),
    claim: of("tally_accept_step_seconds", { step: "claim" }),
    rpc: of("tally_rpc_duration_seconds", { method: "Ingest" }),
    loopDelayP99: sumOf(metrics, "nodejs_eventloop_lag_p99_seconds"),
    loopDelayMax: sumOf(metrics, "nodejs_eventloop_lag_max_seconds"),
    gc: {
      sum: sumOf(metrics, "nodejs_gc_duration_seconds_sum"),
      long:
        sumOf(metrics, "nodejs_gc_duration_seconds_count") -
        sumOf(metrics, "nodejs_gc_duration_seconds_bucket", { le: "0.01" }),
      major: sumOf(metrics, "nodejs_gc_duration_seconds_count", { kind: "major" }),
    },
  };
}

/** Each window's p99, then their median: "12.1, 30.4, 14.0 (14.0)". */
function byWindow(p99s: readonly number[]): string {
  return `${p99s.map((p) => p.toFixed(1)).join(", ")} (${median(p99s).toFixed(1)})`;
}

/** bench/lib/bare-grpc-server.ts in a process of its own. */
async function startBareServer(port: number) {
  const child = fork(join(import.meta.dirname, "../lib/bare-grpc-server.ts"), [String(port)]);
  await new Promise((resolve, reject) => {
    child.once("message", resolve);
    child.once("exit", (code) => reject(new Error(`the bare gRPC server exited (${code})`)));
  });
  return {
    port,
    cpuSeconds: () => cpuSeconds(child.pid as number),
    async stop() {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    },
  };
}
