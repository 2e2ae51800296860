import { randomBytes } from "node:crypto";
import { encodeRow } from "../src/event/row-format.ts";
import type { EventBatch } from "../src/queue/event-batch.ts";
import { toProto } from "./clients.ts";
import { rng, uuidFrom } from "./helpers.ts";

/** A queue batch of `n` events (page views unless named) on 2025-10-28, with event ids drawn from `seed`. */
export function batchOf(
  n: number,
  seed: number,
  acceptedAt = "2025-10-28 12:00:00.000000",
  eventType = "page_view",
): EventBatch {
  const random = rng(seed);
  let body = "";
  for (let i = 0; i < n; i++) {
    const event = toProto({
      event_id: uuidFrom(random),
      occurred_at: "2025-10-28T10:00:00Z",
      user_id: `u${i % 10}`,
      event_type: eventType,
    });
    body += encodeRow(event, "{}", acceptedAt);
  }
  return {
    id: randomBytes(12).toString("base64url"),
    body: Buffer.from(body),
    rows: n,
    acceptedAt: Date.now(),
    requestIds: [],
  };
}
