/**
 * End-to-end ingest throughput: client streams of generated events over
 * gRPC into a `tally serve` child process on RabbitMQ + Redis + chDB, timed
 * until the stats show every event. Prints figures; asserts nothing.
 *
 *   node bench/pipeline-throughput.ts --events 200000 --batch 500 --streams 4
 */
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { type Event, EventSchema } from "../gen/tally/v1/event_pb.js";
import { IngestService } from "../gen/tally/v1/ingest_pb.js";

const { values } = parseArgs({
  options: {
    events: { type: "string", default: "200000" },
    batch: { type: "string", default: "500" },
    streams: { type: "string", default: "4" },
    port: { type: "string", default: "18181" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log(
    "usage: node bench/pipeline-throughput.ts [--events N] [--batch N] [--streams N] [--port P]",
  );
  process.exit(0);
}
const total = Number(values.events);
const batch = Number(values.batch);
const streams = Number(values.streams);
const port = Number(values.port);
const namespace = `bench_${Date.now()}`;

const service = spawn(
  process.execPath,
  [join(import.meta.dirname, "../src/cli/main.ts"), "serve"],
  {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: "127.0.0.1",
      AMQP_URL: process.env.AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672",
      REDIS_URL: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
      TALLY_DATA_DIR: mkdtempSync(join(tmpdir(), "tally-bench-")),
      TALLY_NAMESPACE: namespace,
      LOG_LEVEL: "warn",
    },
    stdio: ["ignore", "inherit", "inherit"],
  },
);

async function waitReady() {
  for (let i = 0; i < 200; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the service did not become ready");
}

async function counted(): Promise<number> {
  const res = await fetch(
    `http://127.0.0.1:${port}/stats/top-events?from=2025-01-01&to=2025-12-31&limit=1000`,
  );
  const rows = (await res.json()) as { count: number }[];
  return rows.reduce((n, r) => n + r.count, 0);
}

// Events are made before the clock starts: the generator is not what is measured.
const types = ["page_view", "page_view", "page_view", "click", "click", "signup", "purchase"];
const base = Date.parse("2025-06-01T00:00:00Z");
const batches: Event[][] = [];
for (let i = 0; i < total; i += batch) {
  batches.push(
    Array.from({ length: Math.min(batch, total - i) }, (_, j) =>
      create(EventSchema, {
        eventId: crypto.randomUUID(),
        occurredAt: {
          seconds: BigInt(Math.floor((base + ((i + j) % 90) * 86_400_000) / 1000)),
          nanos: 0,
        },
        userId: `u${(i + j) % 50_000}`,
        eventType: types[(i + j) % types.length] as string,
        properties: { country: "UA", plan: (i + j) % 3 === 0 ? "pro" : "free" },
      }),
    ),
  );
}

try {
  await waitReady();
  const client = createClient(
    IngestService,
    createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }),
  );
  const started = performance.now();
  let next = 0;
  const send = async () => {
    async function* mine() {
      while (next < batches.length) yield { events: batches[next++] };
    }
    return client.ingestStream(mine());
  };
  const answers = await Promise.all(Array.from({ length: streams }, send));
  const acked = performance.now();
  const accepted = answers.reduce((n, a) => n + Number(a.accepted), 0);
  let seen = 0;
  while (seen < total) {
    seen = await counted();
    if (seen < total) await new Promise((r) => setTimeout(r, 100));
  }
  const done = performance.now();
  const s = (ms: number) => (ms / 1000).toFixed(2);
  console.log(`events ${total}, batch ${batch}, streams ${streams}, accepted ${accepted}`);
  console.log(
    `acknowledged in ${s(acked - started)} s: ${Math.round(total / ((acked - started) / 1000))} events/s`,
  );
  console.log(
    `queryable in    ${s(done - started)} s: ${Math.round(total / ((done - started) / 1000))} events/s end to end`,
  );
} finally {
  service.kill("SIGTERM");
}
