import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { EventSchema } from "../../gen/tally/v1/event_pb.js";
import { IngestService } from "../../gen/tally/v1/ingest_pb.js";
import { quantile, startService } from "../lib/service.ts";
import type { Section } from "../lib/table.ts";

/**
 * Single-event calls at fixed rates, open loop: each call's latency runs
 * from when it was scheduled, so a stalled server cannot hide behind a
 * waiting generator. gRPC Ingest and REST POST /events.
 */
export async function unary(scale: number, port: number): Promise<Section[]> {
  const rates =
    scale >= 1
      ? [500, 2000, 5000]
      : [Math.max(20, Math.round(500 * scale)), Math.max(50, Math.round(2000 * scale))];
  const seconds = scale >= 1 ? 5 : 2;
  const service = await startService(port);
  const base = `http://127.0.0.1:${port}`;
  const client = createClient(IngestService, createGrpcTransport({ baseUrl: base }));
  const json = () => ({
    event_id: crypto.randomUUID(),
    occurred_at: new Date().toISOString(),
    user_id: `u${Math.floor(Math.random() * 1000)}`,
    event_type: "page_view",
  });
  const transports: Record<string, () => Promise<unknown>> = {
    "gRPC Ingest": () =>
      client.ingest({
        events: [
          create(EventSchema, {
            eventId: crypto.randomUUID(),
            occurredAt: { seconds: BigInt(Math.floor(Date.now() / 1000)), nanos: 0 },
            userId: `u${Math.floor(Math.random() * 1000)}`,
            eventType: "page_view",
          }),
        ],
      }),
    "REST POST /events": async () => {
      const res = await fetch(`${base}/events`, { method: "POST", body: JSON.stringify([json()]) });
      await res.arrayBuffer();
      if (res.status !== 202) throw new Error(`HTTP ${res.status}`);
    },
  };
  const rows: (string | number)[][] = [];
  const errorKinds = new Map<string, number>();
  try {
    for (const [name, call] of Object.entries(transports)) {
      await Promise.all(Array.from({ length: 200 }, call)); // warm up connections and the JIT
      for (const rate of rates) {
        const total = rate * seconds;
        const latencies: number[] = [];
        let errors = 0;
        const cpu0 = service.cpuSeconds();
        const t0 = performance.now();
        const calls: Promise<void>[] = [];
        for (let i = 0; i < total; ) {
          const due = t0 + (i * 1000) / rate;
          const now = performance.now();
          if (now < due) {
            await new Promise((r) => setTimeout(r, Math.max(0, due - now - 0.5)));
            continue;
          }
          for (; i < total && t0 + (i * 1000) / rate <= performance.now(); i++) {
            const scheduled = t0 + (i * 1000) / rate;
            calls.push(
              call().then(
                () => void latencies.push(performance.now() - scheduled),
                (err: unknown) => {
                  errors++;
                  const kind = `${name} at ${rate}/s: ${String((err as Error).message).slice(0, 300)}`;
                  errorKinds.set(kind, (errorKinds.get(kind) ?? 0) + 1);
                },
              ),
            );
          }
        }
        await Promise.all(calls);
        const cpu = service.cpuSeconds() - cpu0;
        latencies.sort((a, b) => a - b);
        rows.push([
          name,
          rate,
          total,
          quantile(latencies, 0.5),
          quantile(latencies, 0.99),
          latencies.at(-1) ?? Number.NaN,
          errors,
          (cpu * 1000) / total,
        ]);
      }
    }
  } finally {
    await service.stop();
  }
  return [
    {
      title: `Unary latency, open loop (${seconds} s per rate)`,
      columns: [
        "call",
        "rate/s",
        "calls",
        "p50 ms",
        "p99 ms",
        "max ms",
        "errors",
        "server CPU ms/call",
      ],
      rows,
      notes: [
        "The load generator shares the 2 cores with the service, RabbitMQ and Redis.",
        ...[...errorKinds].map(([kind, n]) => `Errors: ${n} x ${kind}`),
      ],
    },
  ];
}
