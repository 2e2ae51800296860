import { randomUUID } from "node:crypto";
import { gzipSync } from "node:zlib";
import { median } from "../lib/quantile.ts";
import { startService } from "../lib/service.ts";
import type { Section } from "../lib/table.ts";

/** How each source's SDK sends a batch: its route, its default batch size, and its body. */
interface Shape {
  name: string;
  path: string;
  /** Events per request: the SDK's own default. */
  batch: number;
  body(events: number, seed: number): { body: Buffer; headers: Record<string, string> };
}

const KEY = "bench-key";
const json = (v: unknown, gzip = false): { body: Buffer; headers: Record<string, string> } => {
  const text = Buffer.from(JSON.stringify(v));
  return gzip
    ? {
        body: gzipSync(text),
        headers: { "content-type": "application/json", "content-encoding": "gzip" },
      }
    : { body: text, headers: { "content-type": "application/json" } };
};
const at = (i: number) => new Date(Date.parse("2025-10-01T00:00:00Z") + i * 1000).toISOString();
const props = (i: number) => ({ plan: i % 3 === 0 ? "pro" : "free", amount: i % 97 });

const SOURCES: Shape[] = [
  {
    name: "Segment (analytics-node), POST /v1/batch",
    path: "/v1/batch",
    batch: 15,
    body: (n, seed) =>
      json({
        batch: Array.from({ length: n }, (_, i) => ({
          type: "track",
          event: "Order Completed",
          userId: `u${(seed + i) % 5000}`,
          properties: props(i),
          messageId: randomUUID(),
          timestamp: at(seed + i),
          context: { library: { name: "@segment/analytics-node", version: "3" } },
        })),
        writeKey: KEY,
        sentAt: new Date().toISOString(),
      }),
  },
  {
    name: "PostHog (posthog-node), POST /batch/, gzip",
    path: "/batch/",
    batch: 20,
    body: (n, seed) =>
      json(
        {
          api_key: KEY,
          batch: Array.from({ length: n }, (_, i) => ({
            event: "file uploaded",
            distinct_id: `u${(seed + i) % 5000}`,
            properties: { ...props(i), $lib: "posthog-node" },
            timestamp: at(seed + i),
            uuid: randomUUID(),
          })),
          sent_at: new Date().toISOString(),
        },
        true,
      ),
  },
  {
    name: "Amplitude (analytics-node), POST /2/httpapi",
    path: "/2/httpapi",
    batch: 200,
    body: (n, seed) =>
      json({
        api_key: KEY,
        events: Array.from({ length: n }, (_, i) => ({
          event_type: "Song Played",
          user_id: `u${(seed + i) % 5000}`,
          device_id: `d${(seed + i) % 7000}`,
          time: Date.parse(at(seed + i)),
          insert_id: randomUUID(),
          event_properties: props(i),
          platform: "Node.js",
          library: "amplitude-node-typescript/1",
        })),
      }),
  },
];

/** POST /events with the same events and batch size, for the ratio. */
const tallyShape = (batch: number): Shape => ({
  name: `POST /events, ${batch} a request`,
  path: "/events",
  batch,
  body: (n, seed) =>
    json({
      events: Array.from({ length: n }, (_, i) => ({
        event_id: randomUUID(),
        occurred_at: at(seed + i),
        user_id: `u${(seed + i) % 5000}`,
        event_type: "Order Completed",
        properties: props(i),
      })),
    }),
});

/** Events/s acknowledged when `total` events go out in the shape's batches, `inFlight` requests at a time. */
async function measure(
  base: string,
  shape: Shape,
  total: number,
  inFlight: number,
): Promise<number> {
  const requests = Math.ceil(total / shape.batch);
  // Bodies made before the clock starts: the generator's work is not the service's.
  const bodies = Array.from({ length: requests }, (_, r) =>
    shape.body(shape.batch, r * shape.batch),
  );
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < requests) {
        const { body, headers } = bodies[next++] as ReturnType<Shape["body"]>;
        const res = await fetch(`${base}${shape.path}`, { method: "POST", headers, body });
        if (res.status >= 300)
          throw new Error(`${shape.path} answered ${res.status}: ${await res.text()}`);
        await res.arrayBuffer();
      }
    }),
  );
  return (requests * shape.batch) / ((performance.now() - started) / 1000);
}

/**
 * Each SDK's route against POST /events with the same batch size, in the
 * same run, alternating, three rounds each (the median is reported): what
 * the adapters (decode, map, hand on) cost against Tally's own route.
 */
export async function sdk(scale: number, port: number): Promise<Section[]> {
  // 50,000 events a run, 18 runs. At 300,000 this scenario took 476 of the
  // default run's 1,235 s, and at 100,000 104-116 of 703-912 s, for the
  // same ratios within the noise.
  const total = Math.max(3000, Math.round(50_000 * scale));
  const service = await startService(port);
  const base = `http://127.0.0.1:${port}`;
  try {
    const rows: (string | number)[][] = [];
    for (const source of SOURCES) {
      const own = tallyShape(source.batch);
      await measure(base, source, Math.min(total, 2000), 8); // warm-up
      const theirs: number[] = [];
      const ours: number[] = [];
      for (let round = 0; round < 3; round++) {
        theirs.push(await measure(base, source, total, 8));
        ours.push(await measure(base, own, total, 8));
      }
      rows.push([
        source.name,
        source.batch,
        Math.round(median(theirs)),
        Math.round(median(ours)),
        median(theirs) / median(ours),
      ]);
    }
    return [
      {
        title: `SDK routes against POST /events (${total.toLocaleString("en-US")} events each, 8 requests in flight, median of 3 alternating rounds)`,
        columns: [
          "source and route",
          "events a request",
          "events/s",
          "POST /events, same batch",
          "ratio",
        ],
        rows,
        notes: [
          "Acknowledged events/s (the queue has them); bodies are made before the clock starts, in the shape each SDK sends (PostHog's gzipped, as posthog-node does).",
        ],
      },
    ];
  } finally {
    await service.stop();
  }
}
