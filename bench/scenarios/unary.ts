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
    return (payload: Buffer, done: Done) =>
      void client.makeUnaryRequest("/tally.v1.IngestService/Ingest", bytes, bytes, payload, (err) =>
        done(err ?? undefined),
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
  const transports: Record<string, Transport> = {
    "floor: gRPC to a bare HTTP/2 server": {
      prepare: grpcRequest,
      call: grpcIngest(bare.port),
      cpuSeconds: bare.cpuSeconds,
    },
    "gRPC Ingest": {
      prepare: grpcRequest,
      call: grpcIngest(port),
      cpuSeconds: service.cpuSeconds,
    },
    "REST POST /events": {
      prepare: () => Buffer.from(JSON.stringify([event()])),
      call: (payload, done) => {
        const req = http.request(`${base}/events`, { method: "POST", agent }, (res) => {
          res.resume();
          res.once("end", () =>
            done(res.statusCode === 202 ? undefined : new Error(`HTTP ${res.statusCode}`)),
          );
        });
        req.once("error", done);
        req.end(payload);
      },
      cpuSeconds: service.cpuSeconds,
    },
  };
  const rows: (string | number)[][] = [];
  const errorKinds = new Map<string, number>();
  try {
    for (const [name, { prepare, call, cpuSeconds }] of Object.entries(transports)) {
      // Warm up connections and the JIT.
      await Promise.all(
        Array.from(
          { length: 200 },
          () => new Promise((r) => call(prepare(), (err) => (err ? r(err) : r(undefined)))),
        ),
      );
      for (const rate of rates) {
        const total = rate * seconds;
        const payloads = Array.from({ length: total }, prepare);
        // Lean on purpose: the generator's own garbage collections would show as latency.
        const latencies = new Float64Array(total).fill(Number.POSITIVE_INFINITY);
        let errors = 0;
        let pending = total;
        let allAnswered: () => void = () => {};
        const answered = new Promise<void>((r) => {
          allAnswered = r;
        });
        const cpu0 = cpuSeconds();
        const t0 = performance.now();
        for (let i = 0; i < total; ) {
          const due = t0 + (i * 1000) / rate;
          const now = performance.now();
          if (now < due) {
            await new Promise((r) => setTimeout(r, Math.max(0, due - now - 0.5)));
            continue;
          }
          for (; i < total && t0 + (i * 1000) / rate <= performance.now(); i++) {
            const n = i;
            call(payloads[n] as Buffer, (err) => {
              if (err === undefined) latencies[n] = performance.now() - (t0 + (n * 1000) / rate);
              else {
                errors++;
                const kind = `${name} at ${rate}/s: ${String(err.message).slice(0, 300)}`;
                errorKinds.set(kind, (errorKinds.get(kind) ?? 0) + 1);
              }
              if (--pending === 0) allAnswered();
            });
          }
        }
        await answered;
        const cpu = cpuSeconds() - cpu0;
        const sorted = [...latencies.sort()].filter(Number.isFinite);
        rows.push([
          name,
          rate,
          total,
          quantile(sorted, 0.5),
          quantile(sorted, 0.99),
          sorted.at(-1) ?? Number.NaN,
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

type Done = (err?: Error) => void;

/** A call, the request it sends (made before the clock starts), and its server's CPU. */
interface Transport {
  prepare(): Buffer;
  /** Callbacks, not promises: fewer objects per call in the generator. */
  call(payload: Buffer, done: Done): void;
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
