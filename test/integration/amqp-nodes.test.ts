import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Tally } from "../../src/app/tally.ts";
import { connectClients, rest, toProto } from "../clients.ts";
import {
  AMQP_URL,
  freePort,
  REDIS_URL,
  sameDayEvents,
  start,
  testConfig,
  waitFor,
  warehouseCounts,
} from "../helpers.ts";

/**
 * AMQP_URL listing several nodes (CONTRACT.md): tried in turn. Here the
 * first names a port where no broker answers, so every connection (the
 * queue's publisher and consumer, the live feed) must move on to the next.
 */
describe("AMQP_URL with several nodes, the first one down (RabbitMQ, Redis, chDB)", () => {
  let tally: Tally;
  beforeAll(async () => {
    const nowhere = new URL(AMQP_URL);
    nowhere.port = String(await freePort());
    tally = await start(testConfig({ AMQP_URL: `${nowhere},${AMQP_URL}`, REDIS_URL }));
  });
  afterAll(async () => {
    await tally?.close();
  });

  it("connects to the node that answers, takes events over REST and gRPC, and counts each once", async () => {
    const port = tally.port as number;
    await waitFor(
      () => rest(port, "/readyz"),
      (r) => r.status === 200,
    );
    const events = sameDayEvents(300, 611, "amqp_nodes", 30);
    expect((await rest(port, "/events", events.slice(0, 200))).status).toBe(202);
    const grpc = connectClients(port).grpc.ingest;
    expect(Number((await grpc.ingest({ events: events.slice(100).map(toProto) })).accepted)).toBe(
      200,
    );
    await waitFor(
      () => warehouseCounts(tally),
      (c) => c.ids === events.length,
    );
    const top = await rest(port, "/stats/top-events?from=2025-10-28&to=2025-10-28");
    expect(top.body).toEqual([{ event_type: "amqp_nodes", count: 300 }]);
  });
});
