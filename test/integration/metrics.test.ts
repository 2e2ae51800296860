import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Tally } from "../../src/app/tally.ts";
import { connectClients, grpcJsClient, rest, toProto } from "../clients.ts";
import {
  type JsonEvent,
  realServices,
  sameDayEvents,
  start,
  testConfig,
  waitFor,
} from "../helpers.ts";
import { parseMetrics, sumOf } from "../metrics-text.ts";

const events = (n: number, seed: number) => sameDayEvents(n, seed, "metrics_test", 17);

describe("/metrics after ingest traffic (RabbitMQ, Redis, chDB)", () => {
  let tally: Tally;
  let port: number;
  beforeAll(async () => {
    tally = await start(testConfig(realServices()));
    port = tally.port as number;
  });
  afterAll(() => tally?.close());

  const scrape = async () =>
    parseMetrics(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());

  it("counts what was sent, refused, repeated and stored, by transport and code", async () => {
    const viaGrpc = events(300, 1);
    const viaRest = events(100, 2);
    const repeats = viaGrpc.slice(0, 40);
    const badId = (e: JsonEvent) => ({ ...e, event_id: "nope" });
    const peer = grpcJsClient(port);
    try {
      await peer.ingest([...viaGrpc, badId(viaGrpc[0]!), badId(viaGrpc[1]!)].map(toProto));
    } finally {
      peer.close();
    }
    await rest(port, "/events", [...viaRest, { ...viaRest[0]!, occurred_at: "never" }]);
    expect((await rest(port, "/events", [badId(viaRest[0]!)])).status).toBe(400);
    const { connect } = connectClients(port);
    await connect.ingest.ingest(
      { events: repeats.map(toProto) },
      { headers: { "x-request-id": "trace-me-1" } },
    );

    const m = await waitFor(
      scrape,
      (m) =>
        sumOf(m, "tally_events_inserted_total") + sumOf(m, "tally_events_deduplicated_total") >=
        440,
    );
    expect(sumOf(m, "tally_events_accepted_total")).toBe(300 + 100 + 40);
    expect(sumOf(m, "tally_events_rejected_total", { field: "event_id" })).toBe(3);
    expect(sumOf(m, "tally_events_rejected_total", { field: "occurred_at" })).toBe(1);
    expect(sumOf(m, "tally_events_inserted_total")).toBe(400);
    expect(sumOf(m, "tally_events_deduplicated_total")).toBe(40);
    const ingest = { service: "tally.v1.IngestService", method: "Ingest" };
    expect(sumOf(m, "tally_rpc_requests_total", { ...ingest, transport: "grpc", code: "ok" })).toBe(
      1,
    );
    expect(sumOf(m, "tally_rpc_requests_total", { ...ingest, transport: "rest", code: "ok" })).toBe(
      1,
    );
    expect(
      sumOf(m, "tally_rpc_requests_total", {
        ...ingest,
        transport: "rest",
        code: "invalid_argument",
      }),
    ).toBe(1);
    expect(
      sumOf(m, "tally_rpc_requests_total", { ...ingest, transport: "connect", code: "ok" }),
    ).toBe(1);
    expect(sumOf(m, "tally_rpc_duration_seconds_count", { ...ingest, transport: "rest" })).toBe(2);
    // Every accepted request became one batch; each was timed from acceptance to insert.
    expect(sumOf(m, "tally_accepted_to_queryable_seconds_count")).toBe(3);
    expect(sumOf(m, "tally_flush_rows_sum")).toBe(400);
    expect(sumOf(m, "tally_redis_roundtrip_seconds_count")).toBeGreaterThanOrEqual(1);
    // Each message the broker confirmed had its ids claimed after it, each step timed.
    const published = sumOf(m, "tally_accept_step_seconds_count", { step: "queue" });
    expect(published).toBeGreaterThanOrEqual(1);
    expect(sumOf(m, "tally_accept_step_seconds_count", { step: "claim" })).toBe(published);
    expect(
      sumOf(m, "tally_clickhouse_roundtrip_seconds_count", { operation: "insert" }),
    ).toBeGreaterThanOrEqual(1);
    expect(m.get("tally_queue_depth_messages")).toBe(0);
    expect(m.has("tally_consumer_lag_seconds")).toBe(true);
    expect(sumOf(m, "process_cpu_seconds_total")).toBeGreaterThan(0);
  });

  it("echoes the request id, so a batch can be followed from the RPC to the consumer", async () => {
    const res = await fetch(`http://127.0.0.1:${port}/events`, {
      method: "POST",
      headers: { "x-request-id": "trace-me-2" },
      body: JSON.stringify(events(1, 3)),
    });
    expect(res.status).toBe(202);
    expect(res.headers.get("x-request-id")).toBe("trace-me-2");
    const generated = await fetch(
      `http://127.0.0.1:${port}/stats/dau?from=2025-10-28&to=2025-10-28`,
    );
    expect(generated.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });
});
