import * as http2 from "node:http2";
import { gzipSync } from "node:zlib";
import { create, toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GetDauRequestSchema } from "../../gen/tally/v1/analytics_pb.js";
import { IngestRequestSchema } from "../../gen/tally/v1/ingest_pb.js";
import type { Tally } from "../../src/app/tally.ts";
import { toProto } from "../clients.ts";
import {
  realServices,
  sameDayEvents,
  start,
  testConfig,
  waitFor,
  warehouseCounts,
} from "../helpers.ts";

/** What a gRPC call answered, as a peer on the wire sees it. */
interface Answer {
  status: string | undefined;
  message: string | undefined;
  retryAfter: string | undefined;
  contentType: string | undefined;
  requestId: string | undefined;
  body: string;
  /** Every header and trailer name but the date. */
  names: string[];
}

/**
 * Plain gRPC unary calls (binary, uncompressed) are answered by a lean path
 * of their own (src/api/grpc-unary.ts); the same call gzip-compressed goes
 * through connect's router. Both must answer alike, byte for byte where it
 * counts: status, message, headers a client reads, and the response.
 */
describe("plain gRPC unary calls answer as connect's router does", () => {
  let tally: Tally;
  let session: http2.ClientHttp2Session;
  beforeAll(async () => {
    tally = await start(testConfig({ ...realServices(), TALLY_MAX_BODY_BYTES: "65536" }));
    session = http2.connect(`http://127.0.0.1:${tally.port}`);
  });
  afterAll(async () => {
    session?.close();
    await tally?.close();
  });

  function call(
    path: string,
    message: Uint8Array,
    gzip: boolean,
    headers: Record<string, string> = {},
  ): Promise<Answer> {
    const payload = gzip ? gzipSync(message) : Buffer.from(message);
    const frame = Buffer.alloc(5);
    frame[0] = gzip ? 1 : 0;
    frame.writeUInt32BE(payload.length, 1);
    return new Promise((resolve, reject) => {
      const stream = session.request({
        ":method": "POST",
        ":path": path,
        "content-type": "application/grpc",
        te: "trailers",
        ...(gzip ? { "grpc-encoding": "gzip" } : {}),
        ...headers,
      });
      let head: http2.IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      stream.on("response", (h) => {
        head = h;
      });
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("trailers", (t) => {
        // A trailers-only answer carries the status in the headers instead.
        head = { ...head, ...t };
      });
      stream.on("error", reject);
      stream.on("close", () => {
        const body = Buffer.concat(chunks);
        const text = (name: string) => head[name] as string | undefined;
        resolve({
          status: text("grpc-status"),
          message: text("grpc-message") && decodeURIComponent(text("grpc-message") as string),
          retryAfter: text("retry-after"),
          contentType: text("content-type"),
          requestId: text("x-request-id"),
          // The response message, whether or not its envelope was compressed.
          body: body.length > 0 ? body.subarray(5).toString("hex") : "",
          names: Object.keys(head)
            .filter((n) => n !== "date")
            .sort(),
        });
      });
      stream.end(Buffer.concat([frame, payload]));
    });
  }

  /** The same call both ways; the answers must match (the response message uncompressed). */
  async function both(path: string, message: Uint8Array, headers: Record<string, string> = {}) {
    const lean = await call(path, message, false, headers);
    const routed = await call(path, message, true, {
      ...headers,
      "grpc-accept-encoding": "identity",
    });
    // Each call gets its own request id, once it reaches the interceptors
    // (a message that cannot be read never does).
    expect(lean.requestId === undefined).toBe(routed.requestId === undefined);
    expect({ ...lean, requestId: "" }).toEqual({ ...routed, requestId: "" });
    return lean;
  }

  const ingest = (events: ReturnType<typeof sameDayEvents>) =>
    toBinary(IngestRequestSchema, create(IngestRequestSchema, { events: events.map(toProto) }));
  const INGEST = "/tally.v1.IngestService/Ingest";

  it("accepts events, echoes the caller's request id, and stores each exactly once", async () => {
    const events = sameDayEvents(3, 91, "grpc_unary_ok");
    const lean = await call(INGEST, ingest(events), false, { "x-request-id": "lean-1" });
    const routed = await call(INGEST, ingest(events), true, {
      "x-request-id": "routed-1",
      "grpc-accept-encoding": "identity",
    });
    expect(lean).toMatchObject({ status: "0", requestId: "lean-1" });
    expect(routed).toMatchObject({ status: "0", requestId: "routed-1" });
    expect({ ...lean, requestId: "" }).toEqual({ ...routed, requestId: "" });
    expect(lean.contentType).toBe("application/grpc+proto");
    // Both say which encodings a request may use.
    expect(lean.names).toContain("grpc-accept-encoding");
    // Both calls sent the same three events: stored once. A later event,
    // once stored, shows that both calls' messages were consumed.
    const marker = await call(INGEST, ingest(sameDayEvents(1, 95, "grpc_unary_marker")), false);
    expect(marker.status).toBe("0");
    const counts = await waitFor(
      () => warehouseCounts(tally),
      (c) => c.ids === 4,
    );
    expect(counts).toEqual({ rows: 4, ids: 4 });
  });

  it("stays up when clients reset their calls with an error code while they are handled", async () => {
    // A reset with an error code is an "error" on the server's stream: unheard, it ended the process.
    const message = ingest(sameDayEvents(1, 96, "grpc_unary_reset"));
    const frame = Buffer.alloc(5);
    frame.writeUInt32BE(message.length, 1);
    const resets = Array.from({ length: 20 }, (_, i) => {
      const stream = session.request({
        ":method": "POST",
        ":path": INGEST,
        "content-type": "application/grpc",
      });
      stream.on("error", () => {});
      stream.end(Buffer.concat([frame, message]));
      const closed = new Promise((r) => stream.once("close", r));
      setTimeout(() => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR), i % 5);
      return closed;
    });
    await Promise.all(resets);
    const after = await call(INGEST, ingest(sameDayEvents(1, 97, "grpc_unary_after")), false);
    expect(after.status).toBe("0");
  });

  it("answers the same errors: invalid events, no events, bad bytes, a bad deadline", async () => {
    const bad = sameDayEvents(2, 92, "grpc_unary_bad").map((e) => ({ ...e, user_id: "" }));
    const invalid = await both(INGEST, ingest(bad));
    expect(invalid).toMatchObject({ status: "3" });
    expect(invalid.message).toMatch(/^no event was accepted: events\[0\]\.user_id/);

    expect(await both(INGEST, ingest([]))).toMatchObject({
      status: "3",
      message: "events: at least one event is required",
    });
    const garbage = await both(INGEST, Buffer.from([0x0a, 0xff, 0xff, 0xff]));
    expect(garbage).toMatchObject({ status: "3" });
    expect(garbage.message).toMatch(/^parse binary: /);

    const timeout = await both(INGEST, ingest(sameDayEvents(1, 93, "grpc_unary_bad")), {
      "grpc-timeout": "soon",
    });
    expect(timeout.status).not.toBe("0");
  });

  it("refuses a message over the size limit with RESOURCE_EXHAUSTED", async () => {
    const heavy = sameDayEvents(3, 94, "grpc_unary_big").map((e) => ({
      ...e,
      properties: { pad: "x".repeat(30_000) },
    }));
    const message = ingest(heavy);
    const lean = await call(INGEST, message, false);
    expect(lean).toMatchObject({
      status: "8",
      message: `message size ${message.length} is larger than configured readMaxBytes 65536`,
    });
  });

  it("answers the analytics and health services the same way", async () => {
    const dau = toBinary(
      GetDauRequestSchema,
      create(GetDauRequestSchema, { from: "2025-10-01", to: "2025-10-02", tz: "Mars/Olympus" }),
    );
    const wrongZone = await both("/tally.v1.AnalyticsService/GetDau", dau);
    expect(wrongZone).toMatchObject({ status: "3" });
    expect(wrongZone.message).toMatch(/tz/);
    const ok = await both(
      "/tally.v1.AnalyticsService/GetDau",
      toBinary(
        GetDauRequestSchema,
        create(GetDauRequestSchema, { from: "2025-10-01", to: "2025-10-02" }),
      ),
    );
    expect(ok.status).toBe("0");
    expect(await both("/grpc.health.v1.Health/Check", new Uint8Array())).toMatchObject({
      status: "0",
      body: "0801", // SERVING
    });
  });
});
