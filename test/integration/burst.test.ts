import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Tally } from "../../src/app/tally.ts";
import { grpcJsClient, toProto } from "../clients.ts";
import {
  realServices,
  sameDayEvents,
  start,
  testConfig,
  waitFor,
  warehouseCounts,
} from "../helpers.ts";

describe("a burst of calls on one HTTP/2 connection (RabbitMQ, Redis, chDB)", () => {
  let tally: Tally;
  beforeAll(async () => {
    tally = await start(testConfig(realServices()));
  });
  afterAll(() => tally?.close());

  it("answers 10,000 concurrent unary calls, dropping neither the connection nor an event", async () => {
    // A backend flushing a backlog of single-event calls at once. Node's
    // HTTP/2 defaults (unlimited streams, 10 MB of session memory, then the
    // whole session closed after 100 refused streams) dropped the connection
    // and failed ~9,900 of them.
    const client = grpcJsClient(tally.port as number);
    const events = sameDayEvents(10_000, 77, "burst_test", 50).map(toProto);
    try {
      const results = await Promise.allSettled(events.map((e) => client.ingest([e])));
      const failures = results.flatMap((r) => (r.status === "rejected" ? [String(r.reason)] : []));
      expect(failures.length, failures[0]).toBe(0);
    } finally {
      client.close();
    }
    const counts = await waitFor(
      () => warehouseCounts(tally),
      (c) => c.ids >= 10_000,
    );
    expect(counts).toEqual({ rows: 10_000, ids: 10_000 });
  });
});
