import { createServiceImplSpec } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
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
});
