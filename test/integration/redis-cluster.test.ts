import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Tally } from "../../src/app/tally.ts";
import type { DedupeStore } from "../../src/dedupe/dedupe-store.ts";
import { createRedisDedupe } from "../../src/dedupe/redis-dedupe.ts";
import { connectClients, rest, toProto } from "../clients.ts";
import {
  AMQP_URL,
  type JsonEvent,
  reportErrors,
  rng,
  start,
  testConfig,
  uniqueNamespace,
  uuidFrom,
  waitFor,
  warehouseCounts,
} from "../helpers.ts";
import { type RedisClusterFixture, startRedisCluster } from "../redis-cluster.ts";
import { firstCopies, refDau, refTopEvents } from "../reference.ts";

/**
 * A 6-node Redis Cluster (3 masters, 3 replicas) on loopback, started here
 * and torn down after; the machine's Redis is not touched.
 */
describe("on a Redis Cluster (3 masters, 3 replicas; RabbitMQ, chDB)", () => {
  let cluster: RedisClusterFixture;
  const stores: DedupeStore[] = [];
  beforeAll(async () => {
    cluster = await startRedisCluster(3);
  }, 90_000);
  afterAll(async () => {
    for (const s of stores) await s.close();
    await cluster?.stop();
  });

  it("claims ids spread over every slot in one call per node: new yes, same owner yes, another owner no", async () => {
    const dedupe = createRedisDedupe({
      url: cluster.url,
      namespace: uniqueNamespace(),
      ttlSeconds: 600,
      onError: reportErrors,
    });
    stores.push(dedupe);
    await dedupe.check();
    const random = rng(7);
    const ids = Array.from({ length: 12_000 }, () => uuidFrom(random));
    const owners = ids.map((_, i) => `batch-${Math.floor(i / 1000)}`);
    expect((await dedupe.claim(ids, owners)).every(Boolean)).toBe(true);
    // The same owners again: theirs still; others: refused; new ids among them: yes.
    const fresh = Array.from({ length: 500 }, () => uuidFrom(random));
    const mixed = [...ids.slice(0, 3000), ...fresh];
    const claimed = await dedupe.claim(mixed, [
      ...owners.slice(0, 1500),
      ...Array.from({ length: 1500 }, () => "someone-else"),
      ...fresh.map(() => "someone-else"),
    ]);
    expect(claimed.slice(0, 1500).every(Boolean)).toBe(true);
    expect(claimed.slice(1500, 3000).some(Boolean)).toBe(false);
    expect(claimed.slice(3000).every(Boolean)).toBe(true);
    // A batch's ids spread over slots, so no batch is marked whole: consumers claim each id.
    const batch = Array.from({ length: 300 }, () => uuidFrom(random));
    expect((await dedupe.claimBatch("accepted", batch)).every(Boolean)).toBe(true);
    expect(await dedupe.whole(["accepted"])).toEqual([false]);
  });

  it("counts every event once with repeats over REST and gRPC while a master is killed mid-way", async () => {
    const tally: Tally = await start(testConfig({ AMQP_URL, REDIS_URL: cluster.url }));
    try {
      const port = tally.port as number;
      const random = rng(42);
      const events: JsonEvent[] = Array.from({ length: 3000 }, () => ({
        event_id: uuidFrom(random),
        occurred_at: new Date(
          Date.parse("2025-10-01") + Math.floor(random() * 10 * 86_400_000),
        ).toISOString(),
        user_id: `u${Math.floor(random() * 200)}`,
        event_type: ["page_view", "click", "purchase"][Math.floor(random() * 3)] as string,
      }));
      const grpc = connectClients(port).grpc.ingest;
      const sent: JsonEvent[] = [];
      let killed = 0;
      for (let i = 0; i < events.length; i += 300) {
        const batch = events.slice(i, i + 300);
        // Each batch over REST, and a fifth of it again over gRPC.
        expect((await rest(port, "/events", batch)).status).toBe(202);
        await grpc.ingest({ events: batch.slice(0, 60).map(toProto) });
        sent.push(...batch, ...batch.slice(0, 60));
        if (i === 1500) {
          // A master goes away: its replica takes over its slots.
          killed = await cluster.killMasterOf(
            `{${tally.warehouse.database}:${batch[0]?.event_id.slice(0, 2)}}`,
          );
        }
      }
      // Repeats of everything, after the failover.
      expect((await rest(port, "/events", events.slice(0, 1000))).status).toBe(202);
      sent.push(...events.slice(0, 1000));
      await waitFor(
        () => warehouseCounts(tally),
        (c) => c.ids === events.length,
        60_000,
      );
      const unique = firstCopies(sent);
      const range = "from=2025-10-01&to=2025-10-11";
      await waitFor(
        async () => (await rest(port, `/stats/top-events?${range}`)).body,
        (body) =>
          JSON.stringify(body) ===
          JSON.stringify(refTopEvents(unique, "2025-10-01", "2025-10-11", "UTC", 10)),
        30_000,
      );
      expect((await rest(port, `/stats/dau?${range}`)).body).toEqual(
        refDau(unique, "2025-10-01", "2025-10-11", "UTC"),
      );
      // The claims are in the cluster, spread over its masters (the killed one's replica now one):
      // ids held in each master's claim buckets.
      const masters = async () => {
        const claims: number[] = [];
        for (const p of cluster.ports.filter((p) => p !== killed)) {
          const node = new Redis({ port: p });
          try {
            const role = await node.call("role");
            if ((role as string[])[0] !== "master") continue;
            let held = 0;
            for await (const keys of node.scanStream({ match: "*:claims:*", count: 10_000 })) {
              for (const key of keys as string[]) held += await node.hlen(key);
            }
            claims.push(held);
          } finally {
            node.disconnect();
          }
        }
        return claims;
      };
      const perMaster = await waitFor(masters, (claims) => claims.length === 3, 30_000);
      expect(perMaster.filter((n) => n > 0).length).toBe(3);
      expect(perMaster.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(events.length * 0.9);
      expect((await rest(port, "/readyz")).status).toBe(200);
    } finally {
      await tally.close();
    }
  }, 120_000);
});
