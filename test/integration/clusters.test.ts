import { ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Tally } from "../../src/app/tally.ts";
import { connectClients, rest, toProto } from "../clients.ts";
import {
  type JsonEvent,
  REDIS_URL,
  rng,
  sameDayEvents,
  start,
  testConfig,
  uuidFrom,
  waitFor,
  warehouseCounts,
} from "../helpers.ts";
import { type RabbitClusterFixture, startRabbitCluster } from "../rabbitmq-cluster.ts";
import { type RedisClusterFixture, startRedisCluster } from "../redis-cluster.ts";
import { firstCopies, refDau, refTopEvents } from "../reference.ts";

const FROM = "2025-10-01";
const TO = "2025-10-11";

/** `n` events over ten days, among 150 users and three types. */
function eventsOverDays(n: number, seed: number): JsonEvent[] {
  const random = rng(seed);
  return Array.from({ length: n }, () => ({
    event_id: uuidFrom(random),
    occurred_at: new Date(Date.parse(FROM) + Math.floor(random() * 10 * 86_400_000)).toISOString(),
    user_id: `u${Math.floor(random() * 150)}`,
    event_type: ["page_view", "click", "purchase"][Math.floor(random() * 3)] as string,
  }));
}

/**
 * Sends until the service acknowledges, as a client does: while a broker
 * node fails over, a publish may be refused (503 / UNAVAILABLE: nothing of
 * it was taken), and the client sends it again.
 */
async function untilAccepted(send: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await send())) {
    if (Date.now() > deadline) throw new Error("not acknowledged within 60 s");
    await new Promise((r) => setTimeout(r, 200));
  }
}

const viaRest = (tally: Tally, events: JsonEvent[]) =>
  untilAccepted(async () => {
    const { status } = await rest(tally.port as number, "/events", events);
    if (status !== 202 && status !== 503) throw new Error(`POST /events answered ${status}`);
    return status === 202;
  });

const viaGrpc = (tally: Tally, events: JsonEvent[]) =>
  untilAccepted(async () => {
    try {
      await connectClients(tally.port as number).grpc.ingest.ingest({
        events: events.map(toProto),
      });
      return true;
    } catch (err) {
      if (err instanceof ConnectError && err.code === 14 /* UNAVAILABLE */) return false;
      throw err;
    }
  });

/** Top events and DAU from `tally` match the reference over `stored`. */
async function expectExactStats(tally: Tally, stored: JsonEvent[]) {
  const range = `from=${FROM}&to=${TO}`;
  const port = tally.port as number;
  const expected = refTopEvents(stored, FROM, TO, "UTC", 10);
  await waitFor(
    async () => (await rest(port, `/stats/top-events?${range}`)).body,
    (body) => JSON.stringify(body) === JSON.stringify(expected),
    30_000,
  );
  expect((await rest(port, `/stats/dau?${range}`)).body).toEqual(refDau(stored, FROM, TO, "UTC"));
}

/**
 * Real clusters on loopback, started here and torn down after: three
 * RabbitMQ nodes (their own node names, ports, cookie and data
 * directories) and a Redis Cluster of 3 masters and 3 replicas. The
 * machine's broker and Redis are not touched.
 */
describe("on a 3-node RabbitMQ cluster and a Redis Cluster (chDB)", () => {
  let rabbit: RabbitClusterFixture;
  let redis: RedisClusterFixture;
  beforeAll(async () => {
    [rabbit, redis] = await Promise.all([startRabbitCluster(3), startRedisCluster(3)]);
  }, 120_000);
  afterAll(async () => {
    await rabbit?.stop();
    await redis?.stop();
  });

  it("counts every acknowledged event once when the queue leader's node is killed mid-ingest", async () => {
    const tally = await start(testConfig({ AMQP_URL: rabbit.url, REDIS_URL }));
    try {
      const events = eventsOverDays(3000, 91);
      const queue = `${tally.warehouse.database}.events`;
      let killed: string | undefined;
      for (let i = 0; i < events.length; i += 300) {
        const batch = events.slice(i, i + 300);
        // Each batch over REST, and a fifth of it again over gRPC.
        await viaRest(tally, batch);
        await viaGrpc(tally, batch.slice(0, 60));
        if (i === 1200) {
          killed = await rabbit.leaderOf(queue);
          rabbit.kill(killed);
        }
      }
      // The queue lives on: a surviving node now leads it.
      expect(await rabbit.leaderOf(queue)).not.toBe(killed);
      await waitFor(
        () => warehouseCounts(tally),
        (c) => c.ids === events.length,
        60_000,
      );
      await expectExactStats(tally, events);
      // Back for the next test: it rejoins from its own data directory.
      await rabbit.restart(killed as string);
    } finally {
      await tally.close();
    }
  }, 180_000);

  it("two APIs and two consumers: a duplicate storm counts once; the first accepted of conflicting copies wins", async () => {
    const config = testConfig({ AMQP_URL: rabbit.url, REDIS_URL: redis.url });
    const apis = [await start(config, "api"), await start(config, "api")] as const;
    const consumers = [await start(config, "consumer"), await start(config, "consumer")];
    try {
      // Every event three times: over REST to one API, gRPC to the other, then REST to either, all at once.
      const storm = eventsOverDays(2000, 92);
      const sends: Promise<void>[] = [];
      for (let i = 0; i < storm.length; i += 200) {
        const batch = storm.slice(i, i + 200);
        const [a, b] = i % 400 === 0 ? apis : ([apis[1], apis[0]] as const);
        sends.push(viaRest(a, batch), viaGrpc(b, batch), viaRest(i % 600 === 0 ? a : b, batch));
      }
      // The same ids with other fields, to the other API once the first copy is acknowledged.
      const firsts = sameDayEvents(300, 93, "conflict_first", 20).map((e) => ({
        ...e,
        occurred_at: "2025-10-05T12:00:00Z",
      }));
      for (let i = 0; i < firsts.length; i += 30) {
        const chunk = firsts.slice(i, i + 30);
        await viaRest(apis[i % 60 === 0 ? 0 : 1], chunk);
        await viaGrpc(
          apis[i % 60 === 0 ? 1 : 0],
          chunk.map((e) => ({ ...e, event_type: "conflict_later", user_id: "someone_else" })),
        );
      }
      await Promise.all(sends);
      const stored = [...firstCopies(storm), ...firsts];
      const [one] = consumers;
      await waitFor(
        () => warehouseCounts(one as Tally),
        (c) => c.ids === stored.length,
        60_000,
      );
      await expectExactStats(apis[0], stored);
      await expectExactStats(apis[1], stored);
      // Each id stored once, as its first accepted copy.
      expect(await warehouseCounts(one as Tally)).toEqual({
        rows: stored.length,
        ids: stored.length,
      });
      // Both consumers took part.
      for (const c of consumers) {
        expect(
          await counterTotal(c),
          `consumers inserted ${await Promise.all(consumers.map(counterTotal))}`,
        ).toBeGreaterThan(0);
      }
    } finally {
      for (const t of [...apis, ...consumers]) await t.close();
    }
  }, 180_000);
});

async function counterTotal(tally: Tally): Promise<number> {
  return (await tally.metrics.eventsInserted.get()).values.reduce((n, v) => n + v.value, 0);
}
