/**
 * Variants of the service against each other at one unary rate, run in
 * turn (A, B, A, B, ...), each on a fresh service: the way to tell a
 * change's effect from the machine's drift, which moves one run's p99 by
 * 2x. A full bench run compares nothing; this does. Figures only.
 *
 *   node bench/ab.ts --variant base --variant 'semi16;flags=--max-semi-space-size=16'
 *   node bench/ab.ts --variant base --variant 'before;dir=/tmp/before' --rate 5000 --pairs 5
 *
 * A variant is a name, then `;`-separated: `dir=PATH` (another checkout,
 * e.g. a `git worktree` of the commit before, with node_modules linked),
 * `flags=...` (the service's Node.js flags instead of npm start's), or
 * `NAME=VALUE` (an environment variable of the service).
 */

import { join } from "node:path";
import { parseArgs } from "node:util";
import { median, quantile } from "./lib/quantile.ts";
import { cpuSeconds, findPid, machineCpuSeconds } from "./lib/resources.ts";
import {
  gcTotals,
  SERVICE_NODE_FLAGS,
  serviceMetrics,
  startService,
  TALLY,
} from "./lib/service.ts";
import { forkGenerator, runGenerator } from "./lib/unary-load.ts";

const HELP = `node bench/ab.ts --variant SPEC --variant SPEC [...] [options]
  --variant SPEC  NAME[;dir=PATH][;flags=NODE FLAGS][;ENV=VALUE...], two or more
  --rate N        calls a second (default 2000)
  --call KIND     grpc or rest (default grpc)
  --seconds N     each measured window (default 5), after 5 s unmeasured
  --windows N     windows a run (default 3)
  --pairs N       rounds of every variant (default 3)
  --port N        the first service's port (default 47000)`;

const { values } = parseArgs({
  options: {
    variant: { type: "string", multiple: true },
    rate: { type: "string", default: "2000" },
    call: { type: "string", default: "grpc" },
    seconds: { type: "string", default: "5" },
    windows: { type: "string", default: "3" },
    pairs: { type: "string", default: "3" },
    port: { type: "string", default: "47000" },
    help: { type: "boolean" },
  },
});
if (values.help || (values.variant?.length ?? 0) < 2) {
  console.log(HELP);
  process.exit(values.help ? 0 : 2);
}
const call = values.call === "rest" ? "rest" : "grpc";
const [rate, seconds, windows, pairs] = [
  values.rate,
  values.seconds,
  values.windows,
  values.pairs,
].map(Number) as [number, number, number, number];

interface Variant {
  name: string;
  tally: string;
  nodeFlags: readonly string[];
  env: Record<string, string>;
}

function parseVariant(spec: string): Variant {
  const [name = "", ...parts] = spec.split(";");
  const variant: Variant = { name, tally: TALLY, nodeFlags: SERVICE_NODE_FLAGS, env: {} };
  for (const part of parts) {
    const at = part.indexOf("=");
    const [key, value] = [part.slice(0, at), part.slice(at + 1)];
    if (key === "dir") variant.tally = join(value, "src/cli/tally.js");
    else if (key === "flags") variant.nodeFlags = value.split(" ").filter(Boolean);
    else variant.env[key] = value;
  }
  return variant;
}

const variants = (values.variant ?? []).map(parseVariant);
const broker = findPid("beam.smp");
const generator = forkGenerator();
const figures = new Map<string, Record<string, number>[]>(variants.map((v) => [v.name, []]));
const COLUMNS = [
  "p50 ms",
  "p99 ms",
  "window p99 ms (median)",
  "service CPU ms/call",
  "machine cores",
  "broker CPU ms/call",
  "GC ms/s",
  "mark-compacts/s",
];
let port = Number(values.port);
try {
  for (let pair = 0; pair < pairs; pair++) {
    for (const v of variants) {
      const service = await startService(port++, v.env, [], v);
      try {
        /** CPU seconds so far (the service, the machine, the broker), and the service's GC figures. */
        const snapshot = () => ({
          cpu: service.cpuSeconds(),
          machine: machineCpuSeconds(),
          broker: broker === undefined ? Number.NaN : cpuSeconds(broker),
          gc: serviceMetrics(service.port).then(gcTotals),
        });
        let before: ReturnType<typeof snapshot> | undefined;
        const outcome = await runGenerator(
          generator,
          { call, port: service.port, rate, seconds, windows, warmupSeconds: 5 },
          () => {
            before = snapshot();
          },
        );
        if (before === undefined) throw new Error("the generator never started its clock");
        const after = snapshot();
        const calls = rate * seconds * windows;
        const measured = seconds * windows;
        const [gc0, gc1] = [await before.gc, await after.gc];
        const row = {
          "p50 ms": quantile(outcome.latencies, 0.5),
          "p99 ms": quantile(outcome.latencies, 0.99),
          "window p99 ms (median)": median(outcome.windowP99s),
          "service CPU ms/call": ((after.cpu - before.cpu) * 1000) / calls,
          "machine cores": (after.machine - before.machine) / measured,
          "broker CPU ms/call": ((after.broker - before.broker) * 1000) / calls,
          "GC ms/s": ((gc1.seconds - gc0.seconds) * 1000) / measured,
          "mark-compacts/s": (gc1.markCompacts - gc0.markCompacts) / measured,
        };
        figures.get(v.name)?.push(row);
        const errors = Object.values(outcome.errors).reduce((n, e) => n + e, 0);
        console.log(
          `${v.name}: ${COLUMNS.map((c) => `${c} ${row[c as keyof typeof row].toFixed(2)}`).join(", ")}${errors ? `, ${errors} errors` : ""}`,
        );
      } finally {
        await service.stop();
      }
    }
  }
} finally {
  generator.disconnect();
}

// Each variant against the first one's medians.
const first = figures.get(variants[0]?.name ?? "") ?? [];
console.log(
  `\n${call} at ${rate}/s, ${pairs} runs each (${windows} x ${seconds} s), medians; in brackets, / ${variants[0]?.name}'s`,
);
console.log(`| variant | ${COLUMNS.join(" | ")} |`);
console.log(`| --- | ${COLUMNS.map(() => "---").join(" | ")} |`);
for (const v of variants) {
  const rows = figures.get(v.name) ?? [];
  const cells = COLUMNS.map((c) => {
    const m = median(rows.map((r) => r[c] as number));
    const base = median(first.map((r) => r[c] as number));
    return v === variants[0] || base === 0
      ? m.toFixed(2)
      : `${m.toFixed(2)} (${(m / base).toFixed(2)})`;
  });
  console.log(`| ${v.name} | ${cells.join(" | ")} |`);
}
