import { setTimeout } from "node:timers/promises";
import { parseMetrics, sumOf } from "../../test/metrics-text.ts";
import { makeBatches, streamBatches, untilCounted } from "../lib/events.ts";
import { statusBytes } from "../lib/resources.ts";
import { startService } from "../lib/service.ts";
import type { Section } from "../lib/table.ts";

/**
 * The embedded service's memory (no AMQP_URL, REDIS_URL or CLICKHOUSE_URL:
 * local log, in-process dedupe, chDB) while it takes in 3,000,000 events
 * over 4 gRPC streams and stores them: its peak RSS (the kernel's VmHWM)
 * and its RSS idle at the start and once every event is counted. The
 * events are made as they are sent, in this process, out of the service's
 * figures.
 */
export async function memory(scale: number, port: number): Promise<Section[]> {
  const total = Math.max(30_000, Math.round(3_000_000 * scale));
  const service = await startService(port, { AMQP_URL: "", REDIS_URL: "" });
  const pid = service.process.pid as number;
  const mib = (field: string) => statusBytes(pid, field) / 2 ** 20;
  const idle = mib("VmRSS");
  let seconds: number;
  let stored: number;
  let peak: number;
  let files: number;
  let heap: number;
  let cpu: number;
  let settled: number;
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
    seconds = (performance.now() - started) / 1000;
    cpu = service.cpuSeconds() - cpuAtStart;
    stored = mib("VmRSS");
    peak = mib("VmHWM");
    files = mib("RssFile");
    const metrics = parseMetrics(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
    heap = sumOf(metrics, "nodejs_heap_size_total_bytes") / 2 ** 20;
    await setTimeout(3000);
    settled = mib("VmRSS");
  } finally {
    await service.stop();
  }
  return [
    {
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
        "Peak RSS is the kernel's high-water mark (VmHWM). At the start, about two thirds of the RSS are chDB's library pages (file-backed, shared with any other process using it).",
      ],
    },
  ];
}
