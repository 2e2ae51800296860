/**
 * Tally's benchmarks: `npm run bench` runs every scenario at the default
 * scale (about ten minutes here), prints the tables and writes
 * bench/RESULTS.md. Figures only: nothing here asserts a time.
 */
import { execFileSync, fork } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { tuneChdbAllocator } from "../src/cli/chdb-allocator.js";
import { ratios } from "./lib/ratios.ts";
import { markdownTable, type Section, textTable } from "./lib/table.ts";
import { ack } from "./scenarios/ack.ts";
import { analytics } from "./scenarios/analytics.ts";
import { importCsv } from "./scenarios/import.ts";
import { memory } from "./scenarios/memory.ts";
import { sdk } from "./scenarios/sdk.ts";
import { stages } from "./scenarios/stages.ts";
import { throughput } from "./scenarios/throughput.ts";
import { unary } from "./scenarios/unary.ts";

const SCENARIOS = {
  throughput: (scale: number) => throughput(scale, 18_701),
  stages: (scale: number) => stages(scale),
  unary: (scale: number) => unary(scale, 18_702),
  import: (scale: number) => importCsv(scale, 18_703),
  analytics: (scale: number) => analytics(scale),
  sdk: (scale: number) => sdk(scale, 18_704),
  ack: (scale: number) => ack(scale, 18_705),
  memory: (scale: number) => memory(scale, 18_706),
} as const;
type Name = keyof typeof SCENARIOS;

const HELP = `npm run bench -- [--scale S] [--only a,b] [--out PATH]

  --scale S    size of every scenario: 1 (default) is 1,000,000 events end to end
               and 10,000,000 for the stats; 0.01 is a quick check that everything runs;
               10 with --only analytics: the stats on 100,000,000 events (39 minutes
               and 26 GB of disk or more on a 2-core machine); give it --out, or it
               replaces bench/RESULTS.md with that one scenario
  --only LIST  some of: ${Object.keys(SCENARIOS).join(", ")}
  --out PATH   where to write the results (default bench/RESULTS.md)
`;

const { values } = parseArgs({
  options: {
    scale: { type: "string", default: "1" },
    only: { type: "string" },
    out: { type: "string", default: join(import.meta.dirname, "RESULTS.md") },
    help: { type: "boolean", short: "h" },
    // Internal: run one scenario in this process and send its sections to the parent.
    scenario: { type: "string" },
  },
});
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const scale = Number(values.scale);
if (!(scale > 0)) throw new Error(`--scale: expected a positive number, got ${values.scale}`);
const names = (values.only?.split(",") ?? Object.keys(SCENARIOS)) as Name[];
for (const n of names)
  if (!(n in SCENARIOS))
    throw new Error(`--only: unknown scenario "${n}" (${Object.keys(SCENARIOS).join(", ")})`);

if (values.scenario !== undefined) {
  const sections = await SCENARIOS[values.scenario as Name](scale);
  process.send?.(sections, () => process.exit(0));
} else {
  await main();
}

/**
 * Each scenario runs in a process of its own, as JMH forks one per
 * benchmark: what one leaves in its process (the load generator's heap,
 * chDB's allocations and threads) must not weigh on the next one's figures.
 * Small-data retention, p50 (p95), in one process with the scenarios run
 * before it against in its own, three alternating pairs: 4.79 (10.3)
 * against 3.27 (3.51) and 3.78 (4.20) against 3.73 (4.33) after
 * throughput, stages and import; 4.04 (4.83) against 3.58 (4.10) after unary.
 * Its chDB (the limit, the stages, the stats) gets the allocator options
 * the tally command gives the service's, so both sides run the same engine.
 */
function runAlone(name: Name): Promise<Section[]> {
  const env = { ...process.env };
  tuneChdbAllocator(env);
  const child = fork(import.meta.filename, ["--scenario", name, "--scale", String(scale)], { env });
  return new Promise((resolve, reject) => {
    let sections: Section[] | undefined;
    child.on("message", (m) => {
      sections = m as Section[];
    });
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      if (sections !== undefined && code === 0) resolve(sections);
      else reject(new Error(`bench scenario ${name} exited with ${signal ?? code}`));
    });
  });
}

async function main() {
  const version = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] })
        .trim()
        .split("\n")[0];
    } catch {
      return "unknown";
    }
  };
  const pkg = (name: string) =>
    (
      JSON.parse(
        readFileSync(join(import.meta.dirname, "../node_modules", name, "package.json"), "utf8"),
      ) as { version: string }
    ).version;

  const sections: Section[] = [];
  const started = Date.now();
  // Each scenario's wall time: the default run should stay near ten minutes (issue 24).
  const took: string[] = [];
  for (const name of names) {
    process.stderr.write(`running ${name} (scale ${scale})...\n`);
    const scenarioStarted = Date.now();
    for (const s of await runAlone(name)) {
      sections.push(s);
      process.stdout.write(`${textTable(s)}\n`);
    }
    took.push(`${name} ${Math.round((Date.now() - scenarioStarted) / 1000)} s`);
  }
  for (const s of ratios(sections)) {
    sections.push(s);
    process.stdout.write(`${textTable(s)}\n`);
  }
  const command = `npm run bench -- --scale ${values.scale}${values.only ? ` --only ${values.only}` : ""}`;
  const header = [
    "# Benchmark results",
    "",
    `Made by \`${command}\` on ${new Date(started).toISOString().slice(0, 16).replace("T", " ")} UTC, in ${Math.round((Date.now() - started) / 1000)} s (${took.join(", ")}).`,
    "",
    `- Machine: ${cpus()[0]?.model ?? "?"}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB; everything (broker, Redis, chDB, service, load generator) shares it.`,
    `- Versions: Node.js ${process.version}, RabbitMQ ${version("rabbitmqctl", ["version"])}, ${version("redis-server", ["--version"])}, chdb ${pkg("chdb")}, @connectrpc/connect-node ${pkg("@connectrpc/connect-node")}, @clickhouse/client ${pkg("@clickhouse/client")}.`,
    "- Figures from one run; these machines are noisy (±15% run to run), so compare medians of several runs before concluding.",
    "",
  ].join("\n");
  writeFileSync(values.out, `${header}\n${sections.map(markdownTable).join("\n")}`);
  process.stderr.write(`\nwrote ${values.out}\n`);
  process.exit(0);
}
