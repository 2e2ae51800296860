import { fork } from "node:child_process";
import * as http from "node:http";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { IngestRequestSchema } from "../../gen/tally/v1/ingest_pb.js";
import { cpuSeconds } from "../lib/resources.ts";
import { quantile, startService } from "../lib/service.ts";
import type { Section } from "../lib/table.ts";

/**
 * Single-event calls at fixed rates, open loop: each call's latency runs
 * from when it was scheduled, so a stalled server cannot hide behind a
 * waiting generator. gRPC Ingest and REST POST /events.
 *
 * As ghz does with a data file, each call's request is made before the
 * clock starts (one new event each, the payload of bench/ghz/ingest.json),
 * so the generator, sharing the two cores, spends them on calls rather than
 * on building messages. gRPC calls go through @grpc/grpc-js, an independent
 * peer, with the bytes as they are; REST calls through node:http with a
 * pool of 256 keep-alive connections.
 */
export async function unary(scale: number, port: number): Promise<Section[]> {
  const rates =
    scale >= 1
      ? [500, 2000, 5000]
      : [Math.max(20, Math.round(500 * scale)), Math.max(50, Math.round(2000 * scale))];
  const seconds = scale >= 1 ? 5 : 2;
  const service = await startService(port);
  const bare = await startBareServer(port + 100);
  const base = `http://127.0.0.1:${port}`;
  // A pool, as HTTP client libraries keep: fetch opened a socket per call in
  // flight, and past the service's capacity ran out of file descriptors.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const grpcClients: grpc.Client[] = [];
  const bytes = (b: Buffer) => b;
  /** Calls Ingest at `port` with the request's bytes as they are. */
  const grpcIngest = (to: number) => {
    const client = new grpc.Client(`127.0.0.1:${to}`, grpc.credentials.createInsecure());
    grpcClients.push(client);
    return (payload: unknown) =>
      new Promise<void>((resolve, reject) =>
        client.makeUnaryRequest(
          "/tally.v1.IngestService/Ingest",
          bytes,
          bytes,
          payload as Buffer,
          (err) => (err ? reject(err) : resolve()),
        ),
      );
  };
  const event = () => ({
    event_id: crypto.randomUUID(),
    occurred_at: new Date().toISOString(),
    user_id: `user_${Math.floor(Math.random() * 1000)}`,
    event_type: "page_view",
    properties: { country: "UA", plan: "free" },
  });
  const grpcRequest = () => {
    const e = event();
    const request = create(IngestRequestSchema, {
      events: [
        {
          eventId: e.event_id,
          occurredAt: timestampFromMs(Date.parse(e.occurred_at)),
          userId: e.user_id,
          eventType: e.event_type,
          properties: e.properties,
        },
      ],
    });
    return Buffer.from(toBinary(IngestRequestSchema, request));
  };
  // The floor first, while the service is idle: after the overloaded rates it is still busy draining.
  const transports: Record<string, Transport<unknown>> = {
    "floor: gRPC to a bare HTTP/2 server": {
      prepare: grpcRequest,
      call: grpcIngest(bare.port),
      cpuSeconds: bare.cpuSeconds,
    },
    "gRPC Ingest": { prepare: grpcRequest, call: grpcIngest(port), cpuSeconds: service.cpuSeconds },
    "REST POST /events": {
      prepare: () => JSON.stringify([event()]),
      call: (payload) =>
        new Promise<void>((resolve, reject) => {
          const req = http.request(`${base}/events`, { method: "POST", agent }, (res) => {
            res.resume();
            res.once("end", () =>
              res.statusCode === 202 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`)),
            );
          });
          req.once("error", reject);
          req.end(payload as string);
        }),
      cpuSeconds: service.cpuSeconds,
    },
  };
  const rows: (string | number)[][] = [];
  const errorKinds = new Map<string, number>();
  try {
    for (const [name, { prepare, call, cpuSeconds }] of Object.entries(transports)) {
      // Warm up connections and the JIT.
      await Promise.all(Array.from({ length: 200 }, () => call(prepare())));
      for (const rate of rates) {
        const total = rate * seconds;
        const payloads = Array.from({ length: total }, prepare);
        const latencies: number[] = [];
        let errors = 0;
        const cpu0 = cpuSeconds();
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
              call(payloads[i]).then(
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
        const cpu = cpuSeconds() - cpu0;
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
    for (const client of grpcClients) client.close();
    agent.destroy();
    await service.stop();
    await bare.stop();
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
        "The floor is the same gRPC generator against a bare HTTP/2 server (its own process, answering OK at once): what the generator and the machine cost before Tally does anything; its server CPU is the bare server's.",
        ...[...errorKinds].map(([kind, n]) => `Errors: ${n} x ${kind}`),
      ],
    },
  ];
}

/** A call, the request it sends (made before the clock starts), and its server's CPU. */
interface Transport<P> {
  prepare(): P;
  call(payload: P): Promise<void>;
  cpuSeconds(): number;
}

/** bench/lib/bare-grpc-server.ts in a process of its own. */
async function startBareServer(port: number) {
  const child = fork(join(import.meta.dirname, "../lib/bare-grpc-server.ts"), [String(port)]);
  await new Promise((resolve, reject) => {
    child.once("message", resolve);
    child.once("exit", (code) => reject(new Error(`the bare gRPC server exited (${code})`)));
  });
  return {
    port,
    cpuSeconds: () => cpuSeconds(child.pid as number),
    async stop() {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    },
  };
}
