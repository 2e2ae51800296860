import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import type { Event } from "../../gen/tally/v1/event_pb.js";
import { generateCsv } from "../../src/cli/gen/generate.ts";
import { type Header, readHeader, rowToEvent } from "../../src/cli/import/csv-events.ts";
import { csvRecords } from "../../src/cli/import/csv-records.ts";
import { benchDir } from "../lib/bench-dir.ts";
import { streamBatches, untilCounted } from "../lib/events.ts";
import { cpuSeconds } from "../lib/resources.ts";
import { SERVICE_NODE_FLAGS, startService, TALLY } from "../lib/service.ts";
import type { Section } from "../lib/table.ts";

const RANGE = "from=2025-06-01&to=2025-12-31";

/**
 * `tally import` of a generated file, the real CLI, timed until the stats
 * show every unique event; then, against a fresh service, the same rows as
 * events made before the clock starts, streamed over gRPC as the throughput
 * scenario streams its own: what the pipeline does with these rows when no
 * CLI reads them, the import's bound. The two sides run twice, in the order
 * import, streamed, streamed, import, each on half the rows: the machine's
 * speed drifts within a run, and in this order a steady drift costs both
 * sides alike.
 */
export async function importCsv(scale: number, port: number): Promise<Section[]> {
  const rows = Math.max(10_000, Math.round(1_000_000 * scale));
  const half = Math.round(rows / 2);
  const file = join(benchDir("import-"), "events.csv");
  const csv = [
    ...generateCsv({
      rows: half,
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
  const events = await csvEvents(csv);
  const first = await runImport(file, unique, port);
  const streamedFirst = await streamRows(events, unique, port);
  const streamedSecond = await streamRows(events, unique, port);
  const second = await runImport(file, unique, port);
  const imported = {
    acked: first.acked + second.acked,
    done: first.done + second.done,
    cliCpu: first.cliCpu + second.cliCpu,
    serviceCpu: first.serviceCpu + second.serviceCpu,
  };
  const streamedSeconds = streamedFirst.seconds + streamedSecond.seconds;
  const each = (a: number, b: number) => `${a.toFixed(1)}, ${b.toFixed(1)}`;
  const total = 2 * half;
  const perRow = (seconds: number) => ((seconds * 1e6) / total).toFixed(1);
  return [
    {
      title: `tally import of a generated CSV (${half.toLocaleString("en-US")} rows, ${unique.toLocaleString("en-US")} unique; each side twice)`,
      columns: ["measure", "seconds", "each time", "rows/s"],
      rows: [
        [
          "import finished (every segment acknowledged)",
          imported.acked.toFixed(1),
          each(first.acked, second.acked),
          Math.round(total / imported.acked),
        ],
        [
          "stats show every event (end to end)",
          imported.done.toFixed(1),
          each(first.done, second.done),
          Math.round(total / imported.done),
        ],
        [
          "the same rows streamed over gRPC (4 streams of 500), until the stats show every event",
          streamedSeconds.toFixed(1),
          each(streamedFirst.seconds, streamedSecond.seconds),
          Math.round(total / streamedSeconds),
        ],
      ],
      notes: [
        "The sides ran in the order import, streamed, streamed, import, each to a fresh service: a drift of the machine's speed within the run falls on both alike. Seconds and rows/s are both times together.",
        `CPU of the import: the CLI ${imported.cliCpu.toFixed(1)} s (${perRow(imported.cliCpu)} µs a row), the service ${imported.serviceCpu.toFixed(1)} s until the stats showed every event (${perRow(imported.serviceCpu)} µs a row; ${perRow(streamedFirst.serviceCpu + streamedSecond.serviceCpu)} for the same rows streamed), on ${availableParallelism()} cores shared with RabbitMQ and Redis.`,
        "The same rows streamed: each row made an event before the clock starts, sent by this process to a fresh service: the pipeline's rate for these rows (their properties, types and days), which is what the import is measured against. The throughput scenario's events are simpler (two flat properties, four types), so its rate is not these rows'.",
        "Both send each row's properties as the CSV holds them, JSON text in properties_json (as tally import does), not as a google.protobuf.Struct.",
      ],
    },
  ];
}

/** The real CLI importing `file`; seconds until it is acknowledged and until the stats show all. */
async function runImport(file: string, unique: number, port: number) {
  const service = await startService(port);
  const url = `http://127.0.0.1:${port}`;
  try {
    const started = performance.now();
    // With the flags of the command's shebang, as `npx tally import` runs it.
    const cli = spawn(
      process.execPath,
      [...SERVICE_NODE_FLAGS, TALLY, "import", file, "--url", url],
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
    if (code !== 0) throw new Error(`tally import exited ${code}`);
    const acked = performance.now();
    await untilCounted(port, unique, 50, RANGE);
    const done = performance.now();
    const serviceCpu = service.cpuSeconds() - serviceCpu0;
    return {
      acked: (acked - started) / 1000,
      done: (done - started) / 1000,
      cliCpu,
      serviceCpu,
    };
  } finally {
    await service.stop();
  }
}

/** The rows of `csv` as events, as the service would take them. */
async function csvEvents(csv: string): Promise<Event[]> {
  const events: Event[] = [];
  let header: Header | undefined;
  const records = csvRecords(
    (async function* () {
      yield csv;
    })(),
  );
  for await (const record of records) {
    if (record.fields === undefined) continue;
    if (header === undefined) header = readHeader(record.fields);
    else {
      const event = rowToEvent(record.fields, header);
      if (typeof event !== "string") events.push(event);
    }
  }
  return events;
}

/** `events` in batches of 500, streamed to a fresh service: seconds until all are counted, and the service's CPU seconds. */
async function streamRows(events: readonly Event[], unique: number, port: number) {
  const service = await startService(port);
  try {
    const started = performance.now();
    const serviceCpu0 = service.cpuSeconds();
    let at = 0;
    await streamBatches(port, () => {
      if (at >= events.length) return undefined;
      at += 500;
      return events.slice(at - 500, at);
    });
    await untilCounted(port, unique, 50, RANGE);
    return {
      seconds: (performance.now() - started) / 1000,
      serviceCpu: service.cpuSeconds() - serviceCpu0,
    };
  } finally {
    await service.stop();
  }
}
