import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Tally } from "../../src/app/tally.ts";
import { MAX_MESSAGE_ROWS } from "../../src/queue/coalesce.ts";
import { connectClients, rest, toProto } from "../clients.ts";
import {
  rabbitQueue,
  realServices,
  sameDayEvents,
  start,
  testConfig,
  uniqueNamespace,
  waitFor,
  warehouseCounts,
} from "../helpers.ts";

const events = (n: number, seed: number) => sameDayEvents(n, seed, "backpressure_test");

describe("backpressure: a queue over its depth limit", () => {
  let tally: Tally;
  let port: number;
  beforeAll(async () => {
    // The API alone: nothing consumes, so every accepted request stays queued.
    tally = await start(testConfig({ ...realServices(), TALLY_MAX_QUEUE_DEPTH: "5" }), "api");
    port = tally.port as number;
  });
  afterAll(() => tally?.close());

  it("answers UNAVAILABLE / 503 with Retry-After once the queue is deeper than the limit", async () => {
    for (let i = 0; i < 6; i++)
      expect((await rest(port, "/events", events(1, i))).status).toBe(202);
    const refused = await waitFor(
      () => rest(port, "/events", events(1, 100)),
      (r) => r.status === 503,
    );
    expect(refused.body).toMatchObject({
      code: "unavailable",
      message: expect.stringContaining("more than 5 batches wait in the queue"),
    });
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    const { grpc } = connectClients(port);
    await expect(grpc.ingest.ingest({ events: events(1, 101).map(toProto) })).rejects.toMatchObject(
      {
        code: Code.Unavailable,
      },
    );
  });

  it("reads the depth of a queue nothing has published to yet, as right after a start", async () => {
    // The guard's first probe can run before the publisher's first declare:
    // it found no queue, and refused every publish until the next probe.
    const queue = rabbitQueue(uniqueNamespace());
    try {
      expect(await queue.depth()).toBe(0);
    } finally {
      await queue.close();
    }
  });
});

describe("a request of more rows than a message holds (RabbitMQ)", () => {
  it("leaves as messages of at most MAX_MESSAGE_ROWS rows, each event stored once", async () => {
    // A consumer holds up to its prefetch in messages: their size bounds its memory.
    const config = testConfig(realServices());
    const api = await start(config, "api");
    const queue = rabbitQueue(config.namespace);
    const n = 2 * MAX_MESSAGE_ROWS + 200;
    try {
      const port = api.port as number;
      expect((await rest(port, "/events", events(n, 7))).status).toBe(202);
      // Nothing consumes yet: the queue holds the request, as three messages.
      expect(await queue.depth()).toBe(3);
      const consumer = await start(config, "consumer");
      try {
        await waitFor(
          () => warehouseCounts(consumer),
          (c) => c.ids === n,
        );
        const top = await rest(port, "/stats/top-events?from=2025-10-28&to=2025-10-28");
        expect(top.body).toEqual([{ event_type: "backpressure_test", count: n }]);
      } finally {
        await consumer.close();
      }
    } finally {
      await queue.close();
      await api.close();
    }
  });
});
