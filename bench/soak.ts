/**
 * One service under a steady unary load for a long while, a line a
 * minute: whether it holds steady. Memory that only grows is a leak, or
 * (the service runs with --no-compact) the old generation's holes that a
 * full collection no longer closes up; latency that drifts is either's
 * cost. A bench run's minutes cannot show either. Figures only.
 *
 *   node bench/soak.ts --minutes 60
 *   node bench/soak.ts --minutes 60 --flags='--max-semi-space-size=8 --heap-growing-percent=50'
 */

import { parseArgs } from "node:util";
import { sumOf } from "../test/metrics-text.ts";
import { quantile } from "./lib/quantile.ts";
import { statusBytes } from "./lib/resources.ts";
import { gcTotals, SERVICE_NODE_FLAGS, serviceMetrics, startService } from "./lib/service.ts";
import { forkGenerator, runGenerator } from "./lib/unary-load.ts";

const HELP = `node bench/soak.ts [options]
  --minutes N   how long, a line each minute (default 60)
  --rate N      calls a second (default 2000)
  --call KIND   grpc or rest (default grpc)
  --flags=F     the service's Node.js flags, given with = (default npm start's)
  --port N      the service's port (default 47900)`;

const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: "60" },
    rate: { type: "string", default: "2000" },
    call: { type: "string", default: "grpc" },
    flags: { type: "string" },
    port: { type: "string", default: "47900" },
    help: { type: "boolean" },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const [minutes, rate] = [Number(values.minutes), Number(values.rate)];
const call = values.call === "rest" ? "rest" : "grpc";
const nodeFlags = values.flags?.split(" ").filter(Boolean) ?? SERVICE_NODE_FLAGS;

const COLUMNS = [
  "minute",
  "p50 ms",
  "p99 ms",
  "errors",
  "V8 heap MiB",
  "of it used",
  "old space MiB",
  "of it used",
  "external MiB",
  "RSS MiB",
  "GC ms/s",
  "mark-compacts",
];
const MiB = 2 ** 20;

console.log(
  `${call} at ${rate}/s for ${minutes} min, the service's flags: ${nodeFlags.join(" ")}\n`,
);
console.log(`| ${COLUMNS.join(" | ")} |`);
console.log(`| ${COLUMNS.map(() => "---").join(" | ")} |`);
const service = await startService(Number(values.port), {}, [], { nodeFlags });
const generator = forkGenerator();
try {
  let before = { seconds: 0, markCompacts: 0 };
  for (let minute = 1; minute <= minutes; minute++) {
    // A run a minute: the generator makes each run's requests before its clock starts.
    const outcome = await runGenerator(
      generator,
      { call, port: service.port, rate, seconds: 60, windows: 1, warmupSeconds: 1 },
      () => {},
    );
    const metrics = await serviceMetrics(service.port);
    const of = (name: string, labels: Record<string, string> = {}) => sumOf(metrics, name, labels);
    const now = gcTotals(metrics);
    const row = [
      minute,
      quantile(outcome.latencies, 0.5).toFixed(2),
      quantile(outcome.latencies, 0.99).toFixed(1),
      Object.values(outcome.errors).reduce((n, e) => n + e, 0),
      (of("nodejs_heap_size_total_bytes") / MiB).toFixed(1),
      (of("nodejs_heap_size_used_bytes") / MiB).toFixed(1),
      (of("nodejs_heap_space_size_total_bytes", { space: "old" }) / MiB).toFixed(1),
      (of("nodejs_heap_space_size_used_bytes", { space: "old" }) / MiB).toFixed(1),
      (of("nodejs_external_memory_bytes") / MiB).toFixed(1),
      (statusBytes(service.process.pid ?? 0, "VmRSS") / MiB).toFixed(0),
      (((now.seconds - before.seconds) * 1000) / 60).toFixed(1),
      now.markCompacts - before.markCompacts,
    ];
    console.log(`| ${row.join(" | ")} |`);
    before = now;
  }
} finally {
  generator.disconnect();
  await service.stop();
}
