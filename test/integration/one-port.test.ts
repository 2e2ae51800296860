import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ServerReflectionRequestSchema,
  type ServerReflectionResponse,
  ServerReflectionResponseSchema,
} from "../../gen/grpc/reflection/v1/reflection_pb.js";
import {
  HealthCheckRequestSchema,
  HealthCheckResponse_ServingStatus,
  HealthCheckResponseSchema,
} from "../../gen/health/v1/health_pb.js";
import type { Tally } from "../../src/app/tally.ts";
import { connectClients, grpcJsClient, rest } from "../clients.ts";
import { realServices, start, testConfig } from "../helpers.ts";

describe("one port, every protocol", () => {
  let tally: Tally;
  let port: number;
  beforeAll(async () => {
    tally = await start(testConfig(realServices()));
    port = tally.port as number;
  });
  afterAll(() => tally?.close());

  it("serves HTTP/1.1 and cleartext HTTP/2 on the same port", async () => {
    const clients = connectClients(port);
    const query = { from: "2025-10-01", to: "2025-10-02", tz: "", segment: [] };
    for (const name of ["connect", "connect-h2", "grpc-web", "grpc"] as const) {
      const res = await clients[name].analytics.getDau(query);
      expect(
        res.days.map((d) => d.date),
        name,
      ).toEqual(["2025-10-01", "2025-10-02"]);
    }
    expect(await rest(port, "/healthz")).toEqual(
      expect.objectContaining({ status: 200, body: { status: "ok" } }),
    );
    expect(await rest(port, "/nowhere")).toMatchObject({
      status: 404,
      body: { code: "not_found" },
    });
  });

  it("lets browsers on other origins call it (CORS)", async () => {
    const preflight = await fetch(`http://127.0.0.1:${port}/tally.v1.IngestService/Ingest`, {
      method: "OPTIONS",
      headers: {
        origin: "https://app.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,connect-protocol-version,authorization",
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("*");
    expect(preflight.headers.get("access-control-allow-headers")).toMatch(
      /Connect-Protocol-Version.*Authorization/i,
    );
    const res = await fetch(`http://127.0.0.1:${port}/stats/dau?from=2025-10-01&to=2025-10-01`, {
      headers: { origin: "https://app.example" },
    });
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(res.headers.get("access-control-expose-headers")).toMatch(/Grpc-Status/i);
  });

  it("answers grpc.health.v1 to an independent gRPC peer", async () => {
    const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const check = (service: string) =>
      new Promise<{ status: number } | grpc.ServiceError>((resolve) => {
        client.makeUnaryRequest(
          "/grpc.health.v1.Health/Check",
          (m: ReturnType<typeof create<typeof HealthCheckRequestSchema>>) =>
            Buffer.from(toBinary(HealthCheckRequestSchema, m)),
          (b: Buffer) => fromBinary(HealthCheckResponseSchema, b),
          create(HealthCheckRequestSchema, { service }),
          (err, value) => resolve(err ?? (value as { status: number })),
        );
      });
    try {
      expect(await check("")).toMatchObject({ status: HealthCheckResponse_ServingStatus.SERVING });
      expect(await check("tally.v1.IngestService")).toMatchObject({
        status: HealthCheckResponse_ServingStatus.SERVING,
      });
      expect(await check("no.Such")).toMatchObject({ code: grpc.status.NOT_FOUND });
    } finally {
      client.close();
    }
  });

  it("answers server reflection, so grpcurl and ghz need no .proto files", async () => {
    const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const call = client.makeBidiStreamRequest(
      "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
      (m: ReturnType<typeof create<typeof ServerReflectionRequestSchema>>) =>
        Buffer.from(toBinary(ServerReflectionRequestSchema, m)),
      (b: Buffer) => fromBinary(ServerReflectionResponseSchema, b),
    );
    const answers: ServerReflectionResponse[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on("data", (m: ServerReflectionResponse) => answers.push(m));
      call.on("end", resolve);
      call.on("error", reject);
    });
    call.write(
      create(ServerReflectionRequestSchema, {
        messageRequest: { case: "listServices", value: "" },
      }),
    );
    call.write(
      create(ServerReflectionRequestSchema, {
        messageRequest: {
          case: "fileContainingSymbol",
          value: "tally.v1.IngestService.IngestStream",
        },
      }),
    );
    call.end();
    await done;
    client.close();
    const [list, file] = answers;
    expect(list?.messageResponse.case).toBe("listServicesResponse");
    const names =
      list?.messageResponse.case === "listServicesResponse"
        ? list.messageResponse.value.service.map((s) => s.name)
        : [];
    expect(names).toEqual([
      "tally.v1.IngestService",
      "tally.v1.AnalyticsService",
      "tally.v1.UsersService",
      "tally.v1.ExportService",
      "grpc.health.v1.Health",
    ]);
    const files =
      file?.messageResponse.case === "fileDescriptorResponse"
        ? file.messageResponse.value.fileDescriptorProto
        : [];
    const fileNames = files.map((b) => fromBinary(FileDescriptorProtoSchema, b).name);
    expect(fileNames[0]).toBe("tally/v1/ingest.proto");
    expect(fileNames).toEqual(
      expect.arrayContaining([
        "tally/v1/event.proto",
        "google/api/annotations.proto",
        "google/protobuf/timestamp.proto",
      ]),
    );
  });
});

describe("when the broker cannot take events", () => {
  let tally: Tally;
  let port: number;
  beforeAll(async () => {
    // Nothing listens on port 1: the broker is unreachable.
    tally = await start(
      testConfig({ ...realServices(), AMQP_URL: "amqp://guest:guest@127.0.0.1:1" }),
      "api",
    );
    port = tally.port as number;
  });
  afterAll(() => tally?.close());

  it("answers UNAVAILABLE / 503 and accepts nothing", async () => {
    const event = {
      event_id: "2b1e7c1a-0f7e-4a8e-9d43-0c9f5b7e1a11",
      occurred_at: "2025-10-28T12:00:00Z",
      user_id: "u",
      event_type: "x",
    };
    const res = await rest(port, "/events", [event]);
    expect(res).toMatchObject({
      status: 503,
      body: { code: "unavailable", message: expect.stringContaining("none of them was accepted") },
    });
    const peer = grpcJsClient(port);
    try {
      const { toProto } = await import("../clients.ts");
      await expect(peer.ingest([toProto(event)])).rejects.toMatchObject({
        code: grpc.status.UNAVAILABLE,
      });
    } finally {
      peer.close();
    }
    const { connect } = connectClients(port);
    await expect(connect.ingest.ingest({ events: [] })).rejects.toMatchObject({
      code: Code.InvalidArgument,
    });
  });

  it("reports not ready, naming RabbitMQ", async () => {
    const res = await rest(port, "/readyz");
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({
      status: "unavailable",
      message: "not ready: rabbitmq unavailable",
      checks: { redis: "ok", chdb: "ok" },
    });
  });
});
