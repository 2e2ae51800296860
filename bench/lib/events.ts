import * as http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { type Event, EventSchema } from "../../gen/tally/v1/event_pb.js";
import { IngestRequestSchema, IngestService } from "../../gen/tally/v1/ingest_pb.js";

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

/**
 * Each batch as the gRPC message of its IngestRequest (5 bytes of length
 * prefix, then the protobuf), made before any clock starts: a client's
 * encoding runs on the client's machine, not on the cores the service has.
 */
export function encodeFrames(batches: readonly Event[][]): Buffer[] {
  return batches.map((events) => {
    const bytes = toBinary(IngestRequestSchema, create(IngestRequestSchema, { events }));
    const frame = Buffer.allocUnsafe(5 + bytes.length);
    frame[0] = 0; // not compressed
    frame.writeUInt32BE(bytes.length, 1);
    frame.set(bytes, 5);
    return frame;
  });
}

/**
 * Sends the frames `next` gives (from {@link encodeFrames}), until it
 * gives none, over `streams` IngestStream calls on one HTTP/2 connection,
 * as {@link streamBatches} does with connect's client; rejects unless every
 * call ends with grpc-status 0.
 */
export async function streamFrames(port: number, next: () => Buffer | undefined, streams = 4) {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on("error", () => {}); // each call's own error says what failed
  const call = () =>
    new Promise<void>((resolve, reject) => {
      const req = session.request({
        ":method": "POST",
        ":path": `/${IngestService.typeName}/IngestStream`,
        "content-type": "application/grpc",
        te: "trailers",
      });
      let status: unknown;
      let message: unknown;
      // A trailers-only answer (an error at once) carries its status in the headers.
      req.on("response", (headers) => {
        status = headers["grpc-status"];
        message = headers["grpc-message"];
      });
      req.on("trailers", (trailers) => {
        status = trailers["grpc-status"];
        message = trailers["grpc-message"];
      });
      req.resume(); // the answer's message is not needed: the stats say what arrived
      req.on("error", reject);
      req.on("end", () =>
        status === "0"
          ? resolve()
          : reject(new Error(`IngestStream: grpc-status ${status}: ${message}`)),
      );
      const pump = () => {
        for (let frame = next(); frame !== undefined; frame = next()) {
          // The service stops reading while its batches wait for the broker: wait with it.
          if (!req.write(frame)) return void req.once("drain", pump);
        }
        req.end();
      };
      pump();
    });
  try {
    await Promise.all(Array.from({ length: streams }, call));
  } finally {
    session.close();
  }
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
