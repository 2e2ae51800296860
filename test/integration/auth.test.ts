import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  HealthCheckRequestSchema,
  HealthCheckResponse_ServingStatus,
  HealthCheckResponseSchema,
} from "../../gen/health/v1/health_pb.js";
import type { Tally } from "../../src/app/tally.ts";
import { connectClients, grpcJsClient, rest, toProto } from "../clients.ts";
import { realServices, start, testConfig } from "../helpers.ts";

const event = {
  event_id: "1f0e3dad-9990-4a8d-b44b-9b8d6d7c2e11",
  occurred_at: "2025-10-28T12:00:00Z",
  user_id: "u1",
  event_type: "signup",
};

describe("with TALLY_API_KEYS set", () => {
  let tally: Tally;
  let port: number;
  beforeAll(async () => {
    tally = await start(testConfig({ ...realServices(), TALLY_API_KEYS: "k-one, k-two" }));
    port = tally.port as number;
  });
  afterAll(() => tally?.close());

  it("refuses REST without a key or with a wrong one, and takes either key", async () => {
    expect(await rest(port, "/events", [event])).toMatchObject({
      status: 401,
      body: {
        code: "unauthenticated",
        message: expect.stringContaining("Authorization: Bearer KEY"),
      },
    });
    expect(
      await rest(port, "/stats/dau?from=2025-10-28&to=2025-10-28", undefined, {
        headers: { authorization: "Bearer nope" },
      }),
    ).toMatchObject({ status: 401, body: { message: "the API key is not valid" } });
    expect(
      await rest(port, "/events", [event], { headers: { authorization: "Bearer k-two" } }),
    ).toMatchObject({
      status: 202,
    });
    expect(
      await rest(port, "/stats/dau?from=2025-10-28&to=2025-10-28", undefined, {
        headers: { "x-api-key": "k-one" },
      }),
    ).toMatchObject({ status: 200 });
  });

  it("refuses Connect, gRPC-Web and gRPC without a key", async () => {
    const clients = connectClients(port);
    for (const name of ["connect", "grpc-web", "grpc"] as const) {
      await expect(
        clients[name].ingest.ingest({ events: [toProto(event)] }),
        name,
      ).rejects.toMatchObject({
        code: Code.Unauthenticated,
      });
      const ok = await clients[name].analytics.getDau(
        { from: "2025-10-28", to: "2025-10-28", tz: "", segment: [] },
        { headers: { authorization: "Bearer k-one" } },
      );
      expect(ok.days).toHaveLength(1);
    }
    const peer = grpcJsClient(port);
    try {
      await expect(peer.ingest([toProto(event)])).rejects.toMatchObject({
        code: grpc.status.UNAUTHENTICATED,
      });
      const md = new grpc.Metadata();
      md.set("x-api-key", "k-two");
      expect(Number((await peer.ingest([toProto(event)], md)).accepted)).toBe(1);
    } finally {
      peer.close();
    }
  });

  it("leaves health checks open", async () => {
    expect(await rest(port, "/healthz")).toMatchObject({ status: 200 });
    expect(await rest(port, "/readyz")).toMatchObject({ status: 200 });
    const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const status = await new Promise<number>((resolve, reject) =>
      client.makeUnaryRequest(
        "/grpc.health.v1.Health/Check",
        (m: ReturnType<typeof create<typeof HealthCheckRequestSchema>>) =>
          Buffer.from(toBinary(HealthCheckRequestSchema, m)),
        (b: Buffer) => fromBinary(HealthCheckResponseSchema, b),
        create(HealthCheckRequestSchema, { service: "" }),
        (err, v) => (err ? reject(err) : resolve((v as { status: number }).status)),
      ),
    );
    client.close();
    expect(status).toBe(HealthCheckResponse_ServingStatus.SERVING);
  });

  describe("scoped keys", () => {
    let scoped: Tally;
    beforeAll(async () => {
      scoped = await start(
        testConfig({ ...realServices(), TALLY_API_KEYS: "writer:ingest,reader:read,both" }),
      );
    });
    afterAll(() => scoped?.close());

    it("lets an ingest key send but not read, a read key read but not send, a bare key do both", async () => {
      const p = scoped.port as number;
      const as = (key: string) => ({ headers: { authorization: `Bearer ${key}` } });
      const stats = "/stats/dau?from=2025-10-28&to=2025-10-28";
      expect((await rest(p, "/events", [event], as("writer"))).status).toBe(202);
      expect(await rest(p, stats, undefined, as("writer"))).toMatchObject({
        status: 403,
        body: { code: "permission_denied", message: expect.stringContaining('scope "read"') },
      });
      expect((await rest(p, stats, undefined, as("reader"))).status).toBe(200);
      expect((await rest(p, "/events", [event], as("reader"))).status).toBe(403);
      expect((await rest(p, "/events", [event], as("both"))).status).toBe(202);
      expect((await rest(p, stats, undefined, as("both"))).status).toBe(200);
      // A scope name is not a key.
      expect((await rest(p, stats, undefined, as("read"))).status).toBe(401);
    });
  });
});
