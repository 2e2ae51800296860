import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { type Event, EventSchema } from "../../gen/tally/v1/event_pb.js";
import { IngestService } from "../../gen/tally/v1/ingest_pb.js";

const TYPES = ["page_view", "page_view", "page_view", "click", "click", "signup", "purchase"];
const BASE = Date.parse("2025-06-01T00:00:00Z");

/** `total` events as protobuf messages in batches of `batch`, made before any clock starts. */
export function makeBatches(total: number, batch: number): Event[][] {
  const batches: Event[][] = [];
  for (let i = 0; i < total; i += batch) {
    batches.push(
      Array.from({ length: Math.min(batch, total - i) }, (_, j) => {
        const n = i + j;
        return create(EventSchema, {
          eventId: crypto.randomUUID(),
          occurredAt: {
            seconds: BigInt(Math.floor((BASE + (n % 90) * 86_400_000) / 1000)),
            nanos: 0,
          },
          userId: `u${n % 50_000}`,
          eventType: TYPES[n % TYPES.length] as string,
          properties: { country: "UA", plan: n % 3 === 0 ? "pro" : "free" },
        });
      }),
    );
  }
  return batches;
}

/** The stats range that covers every event from {@link makeBatches}. */
export const STATS_RANGE = "from=2025-05-31&to=2025-09-01";

/** Sends the batches `next` gives, until it gives none, over `streams` gRPC client streams to the service at `port`. */
export async function streamBatches(port: number, next: () => Event[] | undefined, streams = 4) {
  const client = createClient(
    IngestService,
    createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }),
  );
  async function* mine() {
    for (let events = next(); events !== undefined; events = next()) yield { events };
  }
  await Promise.all(Array.from({ length: streams }, () => client.ingestStream(mine())));
}

/** Resolves once the service at `port` counts `total` events in `range` (`from=…&to=…`). */
export async function untilCounted(
  port: number,
  total: number,
  pollMs: number,
  range = STATS_RANGE,
) {
  for (;;) {
    const res = await fetch(`http://127.0.0.1:${port}/stats/top-events?${range}&limit=1000`);
    const counted = ((await res.json()) as { count: number }[]).reduce((n, r) => n + r.count, 0);
    if (counted >= total) return;
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
