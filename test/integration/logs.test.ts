import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/app/logger.ts";
import { startTally, type Tally } from "../../src/app/tally.ts";
import { grpcJsClient, rest, toProto } from "../clients.ts";
import { freePort, type JsonEvent, realServices, testConfig, waitFor } from "../helpers.ts";
import { parseMetrics } from "../metrics-text.ts";

const KEY = "s3cret-key-never-logged";
const event = (n: number): JsonEvent => ({
  event_id: `7c9e6679-7425-40de-944b-e07fc1f90a${String(n).padStart(2, "0")}`,
  occurred_at: "2025-10-28T12:00:00Z",
  user_id: "u1",
  event_type: "log_test",
});

describe("logs", () => {
  const lines: Record<string, unknown>[] = [];
  let raw = "";
  let tally: Tally;
  beforeAll(async () => {
    const out = new PassThrough();
    out.on("data", (chunk: Buffer) => {
      raw += chunk.toString();
      for (const l of chunk.toString().split("\n")) if (l !== "") lines.push(JSON.parse(l));
    });
    tally = await startTally(
      testConfig({ ...realServices(), TALLY_API_KEYS: KEY }),
      "all",
      createLogger("info", out),
    );
  });
  afterAll(() => tally?.close());

  it("say at start how much of Node's own binary the service gave back (src/warehouse/library-pages.ts)", () => {
    const gave = lines.find((l) => l.msg === "gave back Node's start-time pages");
    // Starting Node and loading the service touch tens of MiB of its binary.
    expect(gave?.mib).toBeGreaterThan(8);
  });

  it("writes one JSON access line per request, with the id that follows its batch into the consumer", async () => {
    const port = tally.port as number;
    const res = await rest(port, "/events", [event(1)], {
      headers: { authorization: `Bearer ${KEY}`, "x-request-id": "log-test-1" },
    });
    expect(res.status).toBe(202);
    expect((await rest(port, "/events", [event(2)])).status).toBe(401);
    const peer = grpcJsClient(port);
    const { Metadata } = await import("@grpc/grpc-js");
    const md = new Metadata();
    md.set("x-api-key", KEY);
    await peer.ingest([toProto(event(3))], md);
    peer.close();

    const access = lines.filter((l) => l.msg === "request");
    expect(access).toHaveLength(3);
    expect(access[0]).toMatchObject({
      level: 30,
      requestId: "log-test-1",
      route: "POST /events",
      transport: "rest",
      status: "ok",
      ms: expect.any(Number),
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    });
    expect(access[1]).toMatchObject({ route: "POST /events", status: "unauthenticated" });
    expect(access[2]).toMatchObject({
      route: "/tally.v1.IngestService/Ingest",
      transport: "grpc",
      status: "ok",
    });
    const flushed = await waitFor(
      async () => lines.filter((l) => l.msg === "flushed"),
      (f) => f.some((l) => (l.requestIds as string[]).includes("log-test-1")),
    );
    expect(flushed.length).toBeGreaterThan(0);
    expect(raw).not.toContain(KEY);
  });
});

describe("a dependency's errors while it is away", () => {
  it("are counted per dependency and logged once, not once per request (Redis down, rate limits on)", async () => {
    const lines: Record<string, unknown>[] = [];
    const out = new PassThrough();
    out.on("data", (chunk: Buffer) => {
      for (const l of chunk.toString().split("\n")) if (l !== "") lines.push(JSON.parse(l));
    });
    const tally = await startTally(
      testConfig({
        ...realServices(),
        REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
        TALLY_RATE_LIMIT_RPS: "1000",
      }),
      "all",
      createLogger("info", out),
    );
    try {
      const port = tally.port as number;
      for (let i = 0; i < 30; i++) {
        // The limiter cannot answer: each request is let in.
        expect((await rest(port, "/stats/dau?from=2025-10-28&to=2025-10-28")).status).toBe(200);
      }
      const counted = parseMetrics(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
      expect(
        counted.get('tally_dependency_errors_total{dependency="rate_limiter"}'),
      ).toBeGreaterThanOrEqual(30);
      expect(counted.get('tally_dependency_errors_total{dependency="redis"}')).toBeGreaterThan(0);
      const reported = lines.filter((l) => l.dependency === "rate_limiter");
      expect(reported).toHaveLength(1);
      expect(reported[0]).toMatchObject({
        level: 40,
        msg: expect.stringMatching(/^rate_limiter: /),
      });
    } finally {
      await tally.close();
    }
  });
});
