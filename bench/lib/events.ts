import { create } from "@bufbuild/protobuf";
import { type Event, EventSchema } from "../../gen/tally/v1/event_pb.js";

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
