/**
 * `tally import` end to end: generate N rows to a file, run the real CLI
 * against a `tally serve` child process on RabbitMQ + Redis + chDB, and time
 * until the stats show every unique event. Prints figures; asserts nothing.
 *
 *   node bench/import-throughput.ts --rows 1000000
 */
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { generateCsv } from "../src/cli/gen/generate.ts";
import { startService } from "./lib/service.ts";

const { values } = parseArgs({
  options: {
    rows: { type: "string", default: "1000000" },
    "batch-size": { type: "string", default: "1000" },
    port: { type: "string", default: "18383" },
  },
});
const rows = Number(values.rows);
const file = join(mkdtempSync(join(tmpdir(), "tally-import-bench-")), "events.csv");
const csv = [
  ...generateCsv({
    rows,
    users: 50_000,
    fromMs: Date.parse("2025-07-01"),
    days: 90,
    eventTypes: 12,
    dupRate: 0.01,
    seed: 7,
  }),
].join("");
writeFileSync(file, csv);
const unique = new Set(
  csv
    .split("\n")
    .slice(1, -1)
    .map((l) => l.slice(0, 36)),
).size;
const service = await startService(Number(values.port));
const url = `http://127.0.0.1:${service.port}`;

async function counted(): Promise<number> {
  const res = await fetch(`${url}/stats/top-events?from=2025-06-01&to=2025-12-31&limit=1000`);
  return ((await res.json()) as { count: number }[]).reduce((n, r) => n + r.count, 0);
}

try {
  const started = performance.now();
  const cli = spawn(
    process.execPath,
    [
      join(import.meta.dirname, "../src/cli/main.ts"),
      "import",
      file,
      "--url",
      url,
      "--batch-size",
      values["batch-size"],
    ],
    {
      stdio: ["ignore", "inherit", "ignore"],
    },
  );
  const code = await new Promise((r) => cli.once("exit", r));
  const acked = performance.now();
  while ((await counted()) < unique) await new Promise((r) => setTimeout(r, 100));
  const done = performance.now();
  const rate = (ms: number) => Math.round(rows / (ms / 1000)).toLocaleString("en-US");
  console.log(
    `rows ${rows.toLocaleString("en-US")} (${unique.toLocaleString("en-US")} unique), import exit ${code}`,
  );
  console.log(
    `import finished in ${((acked - started) / 1000).toFixed(2)} s: ${rate(acked - started)} rows/s`,
  );
  console.log(
    `stats complete in  ${((done - started) / 1000).toFixed(2)} s: ${rate(done - started)} rows/s end to end`,
  );
} finally {
  await service.stop();
}
