/**
 * The unary scenario's load generator, in a process of its own as ghz would
 * be: single-event calls at a fixed rate, open loop, each call's latency
 * counted from when it was scheduled, after an unmeasured warm-up at the
 * same rate. Forked by bench/scenarios/unary.ts with a 2 MB young
 * generation: with V8's default, this process's own scavenges (15-20 ms
 * each at 2,000 calls/s) showed up as server latency.
 *
 * Messages in: a {@link Run}. Out: "started" when the clock starts, then a
 * {@link Outcome}.
 */
import * as http from "node:http";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { IngestRequestSchema } from "../../gen/tally/v1/ingest_pb.js";
import { quantile } from "./quantile.ts";

/** Calls of one kind at `port`, `rate` a second for `seconds`. */
export interface Run {
  call: "grpc" | "rest";
  port: number;
  rate: number;
  /** Measured seconds, in each window. */
  seconds: number;
  /** Measured windows, back to back, each given its own p99. @default 1 */
  windows?: number;
  /** Seconds of the same schedule sent first and not measured. */
  warmupSeconds: number;
}

/** The answered calls' latencies (ms, sorted) and the failures, by message. */
export interface Outcome {
  latencies: number[];
  /** Each measured window's p99 (ms), in order. */
  windowP99s: number[];
  /**
   * p99 of how late this process sent the measured calls (ms after each
   * one's time): a share of their latencies that is this process's own,
   * waiting for a core on a shared machine, not the server's.
   */
  sentLateP99: number;
  errors: Record<string, number>;
}

type Done = (err?: Error) => void;

/** A new event each call: the payload of bench/ghz/ingest.json. */
const event = () => ({
  event_id: crypto.randomUUID(),
  occurred_at: new Date().toISOString(),
  user_id: `user_${Math.floor(Math.random() * 1000)}`,
  event_type: "page_view",
  properties: { country: "UA", plan: "free" },
});

const PREPARE = {
  grpc() {
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
  },
  rest: () => Buffer.from(JSON.stringify([event()])),
};

const grpcClients = new Map<number, grpc.Client>();
// A pool, as HTTP client libraries keep: fetch opened a socket per call in
// flight, and past the service's capacity ran out of file descriptors.
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const bytes = (b: Buffer) => b;

/** Sends one request; callbacks, not promises: fewer objects per call. */
function caller(run: Run): (payload: Buffer, done: Done) => void {
  if (run.call === "rest") {
    return (payload, done) => {
      const req = http.request(
        `http://127.0.0.1:${run.port}/events`,
        { method: "POST", agent },
        (res) => {
          res.resume();
          res.once("end", () =>
            done(res.statusCode === 202 ? undefined : new Error(`HTTP ${res.statusCode}`)),
          );
        },
      );
      req.once("error", done);
      req.end(payload);
    };
  }
  let client = grpcClients.get(run.port);
  if (client === undefined) {
    client = new grpc.Client(`127.0.0.1:${run.port}`, grpc.credentials.createInsecure());
    grpcClients.set(run.port, client);
  }
  const c = client;
  // The request's bytes as they are: grpc-js sends them in one uncompressed message.
  return (payload, done) =>
    void c.makeUnaryRequest("/tally.v1.IngestService/Ingest", bytes, bytes, payload, (err) =>
      done(err ?? undefined),
    );
}

async function runCalls(run: Run): Promise<Outcome> {
  const call = caller(run);
  // The same schedule runs for warmupSeconds first, unmeasured: a burst
  // of calls to warm up instead left the service (its JIT, its heap, the
  // broker's channels) out of step with a steady rate, and the first
  // 250 ms of a measured second at 2,000/s had a median of 8-36 ms.
  const warm = Math.round(run.rate * run.warmupSeconds);
  const perWindow = run.rate * run.seconds;
  const measured = perWindow * (run.windows ?? 1);
  const total = warm + measured;
  // Made before the clock starts, as ghz does with a data file.
  const payloads = Array.from({ length: total }, PREPARE[run.call]);
  const latencies = new Float64Array(measured).fill(Number.POSITIVE_INFINITY);
  const sentLate = new Float64Array(measured);
  const errors: Record<string, number> = {};
  let pending = total;
  let allAnswered: () => void = () => {};
  const answered = new Promise<void>((r) => {
    allAnswered = r;
  });
  const t0 = performance.now();
  for (let i = 0; i < total; ) {
    const due = t0 + (i * 1000) / run.rate;
    const now = performance.now();
    if (now < due) {
      await new Promise((r) => setTimeout(r, Math.max(0, due - now - 0.5)));
      continue;
    }
    for (; i < total && t0 + (i * 1000) / run.rate <= performance.now(); i++) {
      const n = i;
      if (n === warm) process.send?.("started");
      if (n >= warm) sentLate[n - warm] = performance.now() - (t0 + (n * 1000) / run.rate);
      call(payloads[n] as Buffer, (err) => {
        if (n >= warm) {
          if (err === undefined)
            latencies[n - warm] = performance.now() - (t0 + (n * 1000) / run.rate);
          else {
            const kind = String(err.message).slice(0, 300);
            errors[kind] = (errors[kind] ?? 0) + 1;
          }
        }
        if (--pending === 0) allAnswered();
      });
    }
  }
  await answered;
  // Sorts in place: each window's range first, then all of them together.
  const answeredIn = (from: number, to: number) =>
    [...latencies.subarray(from, to).sort()].filter(Number.isFinite);
  const windowP99s = [];
  for (let from = 0; from < measured; from += perWindow)
    windowP99s.push(quantile(answeredIn(from, from + perWindow), 0.99));
  return {
    latencies: answeredIn(0, measured),
    windowP99s,
    sentLateP99: quantile([...sentLate.sort()], 0.99),
    errors,
  };
}

process.on("message", (run: Run) => {
  runCalls(run).then(
    (outcome) => process.send?.(outcome),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
});
process.once("disconnect", () => {
  for (const client of grpcClients.values()) client.close();
  agent.destroy();
});
