/**
 * Writes bench/ghz/stream-payload.json: `--messages` IngestRequest messages
 * of `--batch` events each (proto JSON), for ghz's IngestStream config. ghz
 * sends the array's messages on each stream in turn.
 *
 *   node bench/ghz/make-payloads.ts --messages 50 --batch 500
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    messages: { type: "string", default: "50" },
    batch: { type: "string", default: "500" },
  },
});
const types = ["page_view", "page_view", "page_view", "click", "click", "signup", "purchase"];
const messages = Array.from({ length: Number(values.messages) }, (_, m) => ({
  events: Array.from({ length: Number(values.batch) }, (_, i) => ({
    event_id: crypto.randomUUID(),
    occurred_at: new Date(
      Date.parse("2025-06-01T00:00:00Z") + ((m * 500 + i) % 90) * 86_400_000,
    ).toISOString(),
    user_id: `u${(m * 500 + i) % 50_000}`,
    event_type: types[i % types.length],
    properties: { country: "UA", plan: i % 3 === 0 ? "pro" : "free" },
  })),
}));
const out = join(import.meta.dirname, "stream-payload.json");
writeFileSync(out, JSON.stringify(messages));
console.log(`wrote ${out}: ${messages.length} messages of ${values.batch} events`);
