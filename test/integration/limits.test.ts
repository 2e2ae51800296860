import { gzipSync } from "node:zlib";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Tally } from "../../src/app/tally.ts";
import { connectClients, rest, toProto } from "../clients.ts";
import {
  realServices,
  sameDayEvents,
  start,
  testConfig,
  waitFor,
  warehouseCounts,
} from "../helpers.ts";

const events = (n: number) => sameDayEvents(n, n, "limits_test");

describe("limits, with the limit in the message", () => {
  let tally: Tally;
  let port: number;
  beforeAll(async () => {
    tally = await start(
      testConfig({
        ...realServices(),
        TALLY_MAX_EVENTS_PER_REQUEST: "100",
        TALLY_MAX_BODY_BYTES: "65536",
      }),
    );
    port = tally.port as number;
  });
  afterAll(() => tally?.close());

  it("refuses more events per request than allowed: 413 on REST, RESOURCE_EXHAUSTED on gRPC", async () => {
    expect((await rest(port, "/events", events(100))).status).toBe(202);
    expect(await rest(port, "/events", events(101))).toMatchObject({
      status: 413,
      body: {
        code: "resource_exhausted",
        message: "events: at most 100 events per request, got 101",
      },
    });
    const { grpc } = connectClients(port);
    await expect(grpc.ingest.ingest({ events: events(101).map(toProto) })).rejects.toMatchObject({
      code: Code.ResourceExhausted,
    });
    // Streams: each message is a request.
    async function* batches() {
      yield { events: events(101).map(toProto) };
    }
    await expect(grpc.ingest.ingestStream(batches())).rejects.toMatchObject({
      code: Code.ResourceExhausted,
    });
  });

  it("refuses an RPC message over the size limit with RESOURCE_EXHAUSTED, on gRPC and Connect", async () => {
    // Three events of 30 KB properties each: a message over the 64 KiB limit.
    const heavy = events(3).map((e) => toProto({ ...e, properties: { pad: "x".repeat(30_000) } }));
    const clients = connectClients(port);
    for (const name of ["grpc", "connect"] as const) {
      await expect(clients[name].ingest.ingest({ events: heavy }), name).rejects.toMatchObject({
        code: Code.ResourceExhausted,
        rawMessage: expect.stringMatching(/65536/),
      });
    }
  });

  it("refuses a body over the size limit, compressed or not", async () => {
    const big = JSON.stringify([{ ...events(1)[0], properties: { pad: "x".repeat(70_000) } }]);
    expect(await rest(port, "/events", big)).toMatchObject({
      status: 413,
      body: { message: "body: larger than 65536 bytes" },
    });
    // A small gzip body that inflates far past the limit.
    const bomb = gzipSync(Buffer.from(`[${" ".repeat(2_000_000)}]`));
    const res = await fetch(`http://127.0.0.1:${port}/events`, {
      method: "POST",
      body: bomb,
      headers: { "content-encoding": "gzip" },
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { message: string }).message).toMatch(
      /^body: larger than \d+ bytes once decompressed/,
    );
  });
});

describe("a stats query past its memory cap (TALLY_MAX_QUERY_MEMORY_BYTES)", () => {
  let tally: Tally;
  let port: number;
  beforeAll(async () => {
    tally = await start(testConfig({ ...realServices(), TALLY_MAX_QUERY_MEMORY_BYTES: "1000" }));
    port = tally.port as number;
  });
  afterAll(() => tally?.close());

  it("fails alone with RESOURCE_EXHAUSTED naming the cap, while ingest goes on", async () => {
    expect((await rest(port, "/events", events(50))).status).toBe(202);
    await waitFor(
      () => warehouseCounts(tally),
      (c) => c.ids === 50,
    );
    const query = "/stats/top-events?from=2025-10-28&to=2025-10-28";
    expect(await rest(port, query)).toMatchObject({
      status: 413,
      body: {
        code: "resource_exhausted",
        message: expect.stringMatching(/more than 1000 bytes .*TALLY_MAX_QUERY_MEMORY_BYTES/),
      },
    });
    const { grpc } = connectClients(port);
    await expect(
      grpc.analytics.getTopEvents({ from: "2025-10-28", to: "2025-10-28" }),
    ).rejects.toMatchObject({ code: Code.ResourceExhausted });
    expect((await rest(port, "/events", events(60))).status).toBe(202);
    await waitFor(
      () => warehouseCounts(tally),
      (c) => c.ids === 110,
    );
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
  });
});
