import { spawnSync } from "node:child_process";
import { setTimeout } from "node:timers/promises";
import { sumOf } from "../../test/metrics-text.ts";
import { startChdbHttp } from "../lib/chdb-http.ts";
import { makeBatches, streamBatches, untilCounted } from "../lib/events.ts";
import { quantile } from "../lib/quantile.ts";
import { statusBytes } from "../lib/resources.ts";
import { type BenchService, serviceMetrics, startService, TALLY } from "../lib/service.ts";
import type { Section } from "../lib/table.ts";
import { forkGenerator, runGenerator } from "../lib/unary-load.ts";

/**
 * Peak RSS of the service as users run it: embedded, taking in 3,000,000
 * events ({@link embedded}); an API-only process on RabbitMQ at 2,000
 * calls/s ({@link apiAlone}); and a consumer draining a backlog of big
 * requests and of small ones ({@link consumerBacklog}).
 */
export async function memory(scale: number, port: number): Promise<Section[]> {
  return [
    await embedded(scale, port),
    await apiAlone(scale, port + 1),
    await consumerBacklog(scale, port + 2),
  ];
}

/** A figure of the service's /proc/PID/status (VmRSS, VmHWM, RssFile), in MiB. */
function statusMiB(service: BenchService, field: string): number {
  return statusBytes(service.process.pid as number, field) / 2 ** 20;
}

/** The heap V8 has now (MiB), from the service's metrics. */
async function heapMiB(service: BenchService): Promise<number> {
  return sumOf(await serviceMetrics(service.port), "nodejs_heap_size_total_bytes") / 2 ** 20;
}

/**
 * The embedded service's memory (no AMQP_URL, REDIS_URL or CLICKHOUSE_URL:
 * local log, in-process dedupe, chDB) while it takes in 3,000,000 events
 * over 4 gRPC streams and stores them: its peak RSS (the kernel's VmHWM)
 * and its RSS idle at the start and once every event is counted. The
 * events are made as they are sent, in this process, out of the service's
 * figures.
 */
async function embedded(scale: number, port: number): Promise<Section> {
  const total = Math.max(30_000, Math.round(3_000_000 * scale));
  const service = await startService(port, { AMQP_URL: "", REDIS_URL: "" });
  const mib = (field: string) => statusMiB(service, field);
  const idle = mib("VmRSS");
  try {
    const cpuAtStart = service.cpuSeconds();
    const started = performance.now();
    let sent = 0;
    // Made as they are sent: 3M events made beforehand would be a gigabyte in this process.
    await streamBatches(port, () => {
      if (sent >= total) return undefined;
      const [events = []] = makeBatches(Math.min(500, total - sent), 500);
      sent += events.length;
      return events;
    });
    await untilCounted(port, total, 200);
    const seconds = (performance.now() - started) / 1000;
    const cpu = service.cpuSeconds() - cpuAtStart;
    const stored = mib("VmRSS");
    const peak = mib("VmHWM");
    const files = mib("RssFile");
    const heap = await heapMiB(service);
    await setTimeout(3000);
    const settled = mib("VmRSS");
    return {
      title: `Memory of the embedded service (${total.toLocaleString("en-US")} events)`,
      columns: ["what", "figure"],
      rows: [
        ["RSS idle, at the start (MiB)", Math.round(idle)],
        ["peak RSS while taking in and storing them (MiB)", Math.round(peak)],
        ["RSS once every event is counted (MiB)", Math.round(stored)],
        ["  of which files mapped (chDB's library, mostly) (MiB)", Math.round(files)],
        ["  of which V8's heap (MiB)", Math.round(heap)],
        [
          "  of which the rest: chDB's and Node's native memory (MiB)",
          Math.round(stored - files - heap),
        ],
        ["RSS 3 s later (MiB)", Math.round(settled)],
        ["events/s, until the stats show all", Math.round(total / seconds)],
        [
          "the service's CPU per event, start to all counted (µs)",
          Number(((cpu / total) * 1e6).toFixed(1)),
        ],
        ["goal for the peak (issue 24, at 3,000,000 events) (MiB)", 512],
      ],
      notes: [
        "`tally serve` with no AMQP_URL, REDIS_URL or CLICKHOUSE_URL, as `npm start` runs it (its Node.js flags too); 4 gRPC streams of 500-event batches.",
        "Peak RSS is the kernel's high-water mark (VmHWM). Once started, the service gives back the pages of chDB's library that only its start touched (src/warehouse/library-pages.ts); the files mapped are the library's pages touched since, and Node's own. chDB's own allocator (jemalloc) gives freed pages back after a second, not ClickHouse's 5 s (src/cli/chdb-allocator.js).",
      ],
    };
  } finally {
    await service.stop();
  }
}

/**
 * An API-only process (`tally serve --role api`) on RabbitMQ and Redis, as
 * a deployment with consumers of their own runs it, taking single-event gRPC
 * calls at 2,000 a second, open loop (bench/lib/unary-generator.ts), for
 * 15 s after 5 s unmeasured: its RSS idle and at its peak. Its ClickHouse
 * (only its migrations and readiness use it) is chDB behind HTTP in this
 * process, since no server runs here.
 */
async function apiAlone(scale: number, port: number): Promise<Section> {
  const rate = scale >= 1 ? 2000 : Math.max(50, Math.round(2000 * scale));
  const seconds = scale >= 1 ? 15 : 2;
  const clickhouse = await startChdbHttp(port + 100);
  // As at every start after a machine's first, Node's compile cache holds
  // the service's modules stripped of their types (src/cli/tally.js).
  spawnSync(process.execPath, [TALLY, "serve", "--help"]);
  const service = await startService(port, { CLICKHOUSE_URL: clickhouse.url }, ["--role", "api"]);
  const generator = forkGenerator();
  const mib = (field: string) => statusMiB(service, field);
  try {
    const idle = mib("VmRSS");
    // CPU from when the measured seconds start: taken from before the
    // warm-up, it counted the warm-up's calls too but divided by the others.
    let cpuAtStart = 0;
    const outcome = await runGenerator(
      generator,
      { call: "grpc", port, rate, seconds, warmupSeconds: scale >= 1 ? 5 : 0.5 },
      () => {
        cpuAtStart = service.cpuSeconds();
      },
    );
    const cpuMs = (service.cpuSeconds() - cpuAtStart) * 1000;
    const errors = Object.values(outcome.errors).reduce((n, e) => n + e, 0);
    return {
      title: `Memory of an API-only process (--role api, RabbitMQ and Redis, ${rate.toLocaleString("en-US")} gRPC calls/s)`,
      columns: ["what", "figure"],
      rows: [
        ["RSS idle, at the start (MiB)", Math.round(idle)],
        ["peak RSS (MiB)", Math.round(mib("VmHWM"))],
        ["  V8's heap at the end (MiB)", Math.round(await heapMiB(service))],
        ["calls answered", outcome.latencies.length],
        ["errors", errors],
        ["p99 ms", Number(quantile(outcome.latencies, 0.99).toFixed(1))],
        ["the process's CPU per call (ms)", Number((cpuMs / (rate * seconds)).toFixed(2))],
        ["goal for the peak (issue 24) (MiB)", 150],
      ],
      notes: [
        `\`tally serve --role api\` with its \`npm start\` flags; ${seconds} s of single-event gRPC Ingest calls at ${rate.toLocaleString("en-US")}/s after ${scale >= 1 ? 5 : 0.5} s unmeasured at the same rate; no consumer runs, so what it publishes waits in RabbitMQ.`,
        "Node's compile cache (src/cli/tally.js) holds its modules, as at every start after a machine's first: the first start also loads Node's TypeScript stripper, about 17 MiB more.",
        "Its CLICKHOUSE_URL is chDB in the bench's process behind ClickHouse's HTTP interface (bench/lib/chdb-http.ts): no ClickHouse server runs on these machines, and the API uses it only for its migrations at start and its readiness.",
        ...Object.entries(outcome.errors).map(([kind, n]) => `Errors: ${n} x ${kind}`),
      ],
    };
  } finally {
    generator.disconnect();
    await service.stop();
    await clickhouse.close();
  }
}

/**
 * A consumer (`tally serve --role consumer`) draining a backlog in RabbitMQ:
 * the same number of events queued by an API-only process first as
 * requests of 10,000 events (the request limit), then of 500, each backlog
 * drained by a fresh consumer: its peak RSS. RabbitMQ bounds a consumer's
 * unacknowledged messages (TALLY_PREFETCH), not their rows, so how big a
 * message may be bounds what a consumer holds. ClickHouse is chDB behind
 * HTTP in this process, so the consumer's figures are its own.
 */
async function consumerBacklog(scale: number, port: number): Promise<Section> {
  const total = Math.max(20_000, Math.round(500_000 * scale));
  const clickhouse = await startChdbHttp(port + 100);
  const drain = async (perRequest: number) => {
    const namespace = `bench_backlog_${perRequest}_${Date.now()}`;
    const env = { CLICKHOUSE_URL: clickhouse.url, TALLY_NAMESPACE: namespace };
    const api = await startService(port, env, ["--role", "api"]);
    try {
      let sent = 0;
      await streamBatches(port, () => {
        if (sent >= total) return undefined;
        const [events = []] = makeBatches(Math.min(perRequest, total - sent), perRequest);
        sent += events.length;
        return events;
      });
      const consumer = await startService(port + 1, env, ["--role", "consumer"]);
      try {
        const started = performance.now();
        await untilCounted(port, total, 200);
        return {
          peak: statusMiB(consumer, "VmHWM"),
          seconds: (performance.now() - started) / 1000,
        };
      } finally {
        await consumer.stop();
      }
    } finally {
      await api.stop();
    }
  };
  try {
    const small = await drain(500);
    const big = await drain(10_000);
    return {
      title: `Memory of a consumer draining a backlog (--role consumer, ${total.toLocaleString("en-US")} events queued)`,
      columns: ["events per request", "peak RSS (MiB)", "events/s, until the stats show all"],
      rows: [
        ["10,000 (the request limit)", Math.round(big.peak), Math.round(total / big.seconds)],
        ["500", Math.round(small.peak), Math.round(total / small.seconds)],
        ["ratio", Number((big.peak / small.peak).toFixed(2)), ""],
      ],
      notes: [
        "An API-only process queued the events in RabbitMQ over 4 gRPC streams while no consumer ran; then a fresh `tally serve --role consumer` (its `npm start` flags, the default TALLY_PREFETCH) drained them. Its CLICKHOUSE_URL is chDB behind HTTP in the bench's process.",
        "RabbitMQ bounds a consumer's unacknowledged messages, not their rows: a message carries at most 500 rows (src/queue/coalesce.ts), so bigger requests leave as several and the two peaks match (before, with a message a request, 3,000,000 events queued in requests of 10,000 made a consumer with chDB in process peak at 1,631 MiB, against 662 after).",
      ],
    };
  } finally {
    await clickhouse.close();
  }
}
