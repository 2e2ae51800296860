import { encodeRow, ROW_COLUMNS } from "../../src/event/row-format.ts";
import { migrate } from "../../src/warehouse/migrations.ts";
import { createWarehouse } from "../../src/warehouse/warehouse.ts";
import { benchDir } from "../lib/bench-dir.ts";
import { encodeFrames, makeBatches, streamFrames, untilCounted } from "../lib/events.ts";
import { findPid, sampleResources } from "../lib/resources.ts";
import { startService } from "../lib/service.ts";
import type { Section } from "../lib/table.ts";

/**
 * End to end: N events over 4 gRPC client streams in batches of 500 (each
 * request encoded before the clock starts, as the limit's rows are), timed
 * until the stats show them all; then the limit: the same events inserted
 * straight into chDB as TabSeparated, 20,000 rows an insert.
 */
export async function throughput(scale: number, port: number): Promise<Section[]> {
  const total = Math.max(10_000, Math.round(1_000_000 * scale));
  const batches = makeBatches(total, 500);
  // Encoded now, as the limit's TabSeparated is made before its clock starts.
  const frames = encodeFrames(batches);
  // One process for the API and the consumer: the embedded chDB lives in one process.
  const service = await startService(port);
  const sampler = sampleResources({
    "tally serve (API + consumer + chDB)": service.process.pid,
    "RabbitMQ (beam.smp)": findPid("beam.smp"),
    "redis-server": findPid("redis-server"),
    "load generator (this process)": process.pid,
  });
  let pipelineSeconds: number;
  let resources: ReturnType<typeof sampler.stop> = [];
  let ackSeconds: number;
  try {
    const started = performance.now();
    let next = 0;
    await streamFrames(port, () => frames[next++]);
    ackSeconds = (performance.now() - started) / 1000;
    await untilCounted(port, total, 50);
    pipelineSeconds = (performance.now() - started) / 1000;
  } finally {
    resources = sampler.stop();
    await service.stop();
  }

  // The limit: the warehouse's own speed, with nothing else running.
  const warehouse = await createWarehouse({
    url: undefined,
    dataDir: benchDir("limit-"),
    database: "bench_limit",
  });
  await migrate(warehouse);
  const acceptedAt = "2025-10-28 12:00:00.000000";
  const bodies: string[] = [];
  let body = "";
  let rows = 0;
  for (const b of batches) {
    for (const e of b) {
      body += encodeRow(e, JSON.stringify(e.properties), acceptedAt);
      if (++rows % 20_000 === 0) {
        bodies.push(body);
        body = "";
      }
    }
  }
  if (body !== "") bodies.push(body);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage(); // chDB runs in this process: its threads are counted
  for (const b of bodies)
    await warehouse.insert("events", { format: "TabSeparated", columns: ROW_COLUMNS, text: b });
  const limitSeconds = (performance.now() - t0) / 1000;
  const { user, system } = process.cpuUsage(cpu0);
  const limitCpuSeconds = (user + system) / 1e6;
  await warehouse.close();

  const pipeline = total / pipelineSeconds;
  const limit = total / limitSeconds;
  // What bounds the headline when the cores are full: the machine's CPU per event, each side.
  const pipelineCpuSeconds = resources.reduce((sum, r) => sum + r.cpuSeconds, 0);
  const micros = (cpuSeconds: number) => ((cpuSeconds * 1e6) / total).toFixed(1);
  const pipelineCores = pipelineCpuSeconds / pipelineSeconds;
  const limitCores = limitCpuSeconds / limitSeconds;
  return [
    {
      title: `End-to-end throughput (${total.toLocaleString("en-US")} events)`,
      columns: ["measure", "seconds", "events/s"],
      rows: [
        [
          "pipeline: gRPC streams -> RabbitMQ -> Redis -> chDB, until the stats show all",
          pipelineSeconds,
          Math.round(pipeline),
        ],
        [
          "  of which: until every stream was acknowledged",
          ackSeconds,
          Math.round(total / ackSeconds),
        ],
        [
          "limit: the same events inserted straight into chDB (TabSeparated, 20k rows an insert)",
          limitSeconds,
          Math.round(limit),
        ],
        ["headline: pipeline / limit", "", `${(pipeline / limit).toFixed(2)}`],
      ],
      notes: [
        `CPU on the machine: the pipeline ${micros(pipelineCpuSeconds)} µs an event (every process below, ${pipelineCores.toFixed(2)} cores busy), the limit ${micros(limitCpuSeconds)} µs (${limitCores.toFixed(2)} cores). Since events/s = cores busy / CPU per event, the headline is (the limit's µs / the pipeline's) x (the pipeline's cores / the limit's) = ${(limitCpuSeconds / pipelineCpuSeconds).toFixed(2)} x ${(pipelineCores / limitCores).toFixed(2)}: with the cores full on both sides, only less CPU per event outside chDB's insert raises it.`,
      ],
    },
    {
      title: "Resources during the pipeline run",
      columns: ["process", "CPU seconds", "CPU cores (avg)", "peak RSS MB"],
      rows: resources.map((r) => [
        r.name,
        r.cpuSeconds,
        r.cpuSeconds / pipelineSeconds,
        Math.round(r.peakRssMb),
      ]),
    },
  ];
}
