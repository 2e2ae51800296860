import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { generateCsv } from "../../src/cli/gen/generate.ts";
import { cpuSeconds } from "../lib/resources.ts";
import { startService } from "../lib/service.ts";
import type { Section } from "../lib/table.ts";

/** `tally import` of a generated file, the real CLI, timed until the stats show every unique event. */
export async function importCsv(scale: number, port: number): Promise<Section[]> {
  const rows = Math.max(10_000, Math.round(1_000_000 * scale));
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
  const service = await startService(port);
  const url = `http://127.0.0.1:${port}`;
  try {
    const started = performance.now();
    const cli = spawn(
      process.execPath,
      [join(import.meta.dirname, "../../src/cli/main.ts"), "import", file, "--url", url],
      {
        stdio: "ignore",
      },
    );
    // CPU of each side while the import runs: the CLI's, sampled until it exits.
    const serviceCpu0 = service.cpuSeconds();
    let cliCpu = 0;
    const sampler = setInterval(() => {
      try {
        cliCpu = cpuSeconds(cli.pid as number);
      } catch {
        // it exited
      }
    }, 50);
    const code = await new Promise((r) => cli.once("exit", r));
    clearInterval(sampler);
    const serviceCpu = service.cpuSeconds() - serviceCpu0;
    if (code !== 0) throw new Error(`tally import exited ${code}`);
    const acked = performance.now();
    for (;;) {
      const res = await fetch(`${url}/stats/top-events?from=2025-06-01&to=2025-12-31&limit=1000`);
      if (((await res.json()) as { count: number }[]).reduce((n, r) => n + r.count, 0) >= unique)
        break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const done = performance.now();
    return [
      {
        title: `tally import of a generated CSV (${rows.toLocaleString("en-US")} rows, ${unique.toLocaleString("en-US")} unique)`,
        columns: ["measure", "seconds", "rows/s"],
        rows: [
          [
            "import finished (every segment acknowledged)",
            (acked - started) / 1000,
            Math.round(rows / ((acked - started) / 1000)),
          ],
          [
            "stats show every event (end to end)",
            (done - started) / 1000,
            Math.round(rows / ((done - started) / 1000)),
          ],
        ],
        notes: [
          `CPU while importing: the CLI ${cliCpu.toFixed(1)} s (${((cliCpu * 1e6) / rows).toFixed(1)} µs a row), the service ${serviceCpu.toFixed(1)} s (${((serviceCpu * 1e6) / rows).toFixed(1)} µs a row), over ${((acked - started) / 1000).toFixed(1)} s on ${availableParallelism()} cores shared with RabbitMQ and Redis.`,
        ],
      },
    ];
  } finally {
    await service.stop();
  }
}
