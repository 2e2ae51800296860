/**
 * Unary latency, open loop: single-event Ingest calls over gRPC at fixed
 * rates. Each call's latency runs from when it was scheduled, not sent, so
 * a stalled server cannot hide behind a waiting generator. Prints p50/p99,
 * max, errors and the service's CPU per call; asserts nothing.
 *
 *   node bench/unary-latency.ts --rates 500,2000 --seconds 5
 */
import { parseArgs } from "node:util";
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { EventSchema } from "../gen/tally/v1/event_pb.js";
import { IngestService } from "../gen/tally/v1/ingest_pb.js";
import { quantile, startService } from "./lib/service.ts";

const { values } = parseArgs({
  options: {
    rates: { type: "string", default: "500,2000" },
    seconds: { type: "string", default: "5" },
    port: { type: "string", default: "18282" },
  },
});
const rates = values.rates.split(",").map(Number);
const seconds = Number(values.seconds);
const service = await startService(Number(values.port));
const client = createClient(
  IngestService,
  createGrpcTransport({ baseUrl: `http://127.0.0.1:${service.port}` }),
);
const event = () =>
  create(EventSchema, {
    eventId: crypto.randomUUID(),
    occurredAt: { seconds: BigInt(Math.floor(Date.now() / 1000)), nanos: 0 },
    userId: `u${Math.floor(Math.random() * 1000)}`,
    eventType: "page_view",
  });

try {
  // Warm up connections and the JIT.
  await Promise.all(Array.from({ length: 200 }, () => client.ingest({ events: [event()] })));
  console.log("rate/s  calls   p50 ms  p99 ms  max ms  errors  server CPU ms/call");
  for (const rate of rates) {
    const total = rate * seconds;
    const latencies: number[] = [];
    let errors = 0;
    const errorKinds = new Map<string, number>();
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
          client.ingest({ events: [event()] }).then(
            () => void latencies.push(performance.now() - scheduled),
            (err: unknown) => {
              errors++;
              const key = String((err as { message?: string }).message).slice(0, 80);
              errorKinds.set(key, (errorKinds.get(key) ?? 0) + 1);
            },
          ),
        );
      }
    }
    await Promise.all(calls);
    const cpu = service.cpuSeconds() - cpu0;
    latencies.sort((a, b) => a - b);
    const f = (n: number) => n.toFixed(1).padStart(6);
    console.log(
      `${String(rate).padStart(6)}  ${String(total).padStart(5)}  ${f(quantile(latencies, 0.5))}  ${f(quantile(latencies, 0.99))}  ${f(latencies.at(-1) ?? Number.NaN)}  ${String(errors).padStart(6)}  ${((cpu * 1000) / total).toFixed(3)}`,
    );
    for (const [kind, n] of errorKinds) console.log(`        ${n} x ${kind}`);
  }
} finally {
  await service.stop();
}
