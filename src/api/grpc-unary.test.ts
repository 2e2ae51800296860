import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { createContextValues, createServiceImplSpec } from "@connectrpc/connect";
import { describe, expect, it, vi } from "vitest";
import { IngestService } from "../../gen/tally/v1/ingest_pb.js";
import { createGrpcUnaryHandlers } from "./grpc-unary.ts";

describe("createGrpcUnaryHandlers", () => {
  const lean = createGrpcUnaryHandlers({
    services: [
      createServiceImplSpec<typeof IngestService>(IngestService, {
        ingest: async () => ({ $typeName: "tally.v1.IngestResponse", accepted: 0n, rejected: [] }),
      }),
    ],
    interceptors: [],
    readMaxBytes: 1024,
  });
  const request = (headers: Record<string, string>, httpVersion = "2.0", method = "POST") => ({
    httpVersion,
    method,
    headers,
  });
  const INGEST = "/tally.v1.IngestService/Ingest";

  it("takes plain binary gRPC calls of unary methods", () => {
    expect(lean.for(INGEST, request({ "content-type": "application/grpc" }))).toBeTypeOf(
      "function",
    );
    const proto = request({
      "content-type": "application/grpc+proto",
      "grpc-encoding": "identity",
    });
    expect(lean.for(INGEST, proto)).toBeTypeOf("function");
  });

  it("leaves everything else to connect's router", () => {
    const grpc = { "content-type": "application/grpc" };
    for (const [path, req] of [
      [INGEST, request({ ...grpc, "grpc-encoding": "gzip" })],
      [INGEST, request({ "content-type": "application/grpc+json" })],
      [INGEST, request({ "content-type": "application/grpc-web+proto" })],
      [INGEST, request({ "content-type": "application/proto" })],
      [INGEST, request(grpc, "1.1")],
      [INGEST, request(grpc, "2.0", "GET")],
      // Streams, and methods without an implementation here.
      ["/tally.v1.IngestService/IngestStream", request(grpc)],
      ["/tally.v1.IngestService/TailEvents", request(grpc)],
      ["/tally.v1.AnalyticsService/GetDau", request(grpc)],
    ] as const) {
      expect(lean.for(path, req), `${path} ${JSON.stringify(req)}`).toBeUndefined();
    }
  });

  it("lets go of a call whose client resets the stream mid-message, calling nothing", async () => {
    let called = false;
    const handlers = createGrpcUnaryHandlers({
      services: [
        createServiceImplSpec<typeof IngestService>(IngestService, {
          ingest: async () => {
            called = true;
            return { $typeName: "tally.v1.IngestResponse", accepted: 0n, rejected: [] };
          },
        }),
      ],
      interceptors: [],
      readMaxBytes: 1024,
    });
    let answered: Promise<void> | undefined;
    const server = http2.createServer((req, res) => {
      answered = handlers.for(INGEST, req)?.(req, res, createContextValues());
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    try {
      const stream = session.request({
        ":method": "POST",
        ":path": INGEST,
        "content-type": "application/grpc",
      });
      stream.on("error", () => {});
      // An envelope that promises 100 bytes, and 10 of them.
      const head = Buffer.alloc(5);
      head.writeUInt32BE(100, 1);
      stream.write(Buffer.concat([head, Buffer.alloc(10)]));
      await vi.waitFor(() => expect(answered).toBeDefined());
      stream.close(http2.constants.NGHTTP2_CANCEL);
      // A handler still waiting for the rest would hold this (and the test) forever.
      await answered;
      expect(called).toBe(false);
    } finally {
      session.destroy();
      await new Promise((r) => server.close(r));
    }
  });
});
