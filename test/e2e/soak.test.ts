import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { rest } from "../clients.ts";
import {
  AMQP_URL,
  closeRabbitConnections,
  freePort,
  REDIS_URL,
  rng,
  spawnTally,
  uniqueNamespace,
  untilReady,
  uuidFrom,
  waitFor,
} from "../helpers.ts";
import { startTcpProxy } from "../tcp-proxy.ts";
import { tempDir } from "../temp-dirs.ts";

/** How long the steady load runs, and how often a batch goes out. */
const SECONDS = 40;
const EVERY_MS = 50;
const BATCH = 50; // 1,000 events/s

const rssMb = (pid: number) =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;

describe("soak: steady ingest with faults on a schedule (RabbitMQ, Redis, chDB)", () => {
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const c of children) c.kill("SIGKILL");
  });

  it(`holds ${(BATCH * 1000) / EVERY_MS} events/s for ${SECONDS} s through Redis and RabbitMQ faults: every acknowledged event counted once, memory flat`, async () => {
    const proxy = await startTcpProxy(Number(new URL(REDIS_URL).port));
    const port = await freePort();
    const namespace = uniqueNamespace();
    const { child } = spawnTally(["serve"], {
      PORT: String(port),
      HOST: "127.0.0.1",
      AMQP_URL,
      REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
      TALLY_DATA_DIR: tempDir("tally-soak-"),
      TALLY_NAMESPACE: namespace,
      TALLY_DEDUPE_TTL_SECONDS: "600",
      LOG_LEVEL: "error",
    });
    children.push(child);
    await untilReady(port);

    const random = rng(77);
    const acknowledged = new Set<string>();
    let closedConnections = 0;
    const send = async (batch: object[]) => {
      // Retry until acknowledged, as a client should: an UNAVAILABLE accepts nothing.
      for (;;) {
        const res = await rest(port, "/events", batch).catch(() => ({ status: 0 }));
        if (res.status === 202) return;
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const faults: [number, () => void][] = [
      [10, () => proxy.cut()],
      [13, () => proxy.restore()],
      [
        20,
        () => {
          // Publishing and consuming each lose their connection.
          const names = [`tally-${namespace}`, `tally-${namespace}-consumer`];
          closedConnections += closeRabbitConnections(names);
        },
      ],
      [28, () => proxy.cut()],
      [30, () => proxy.restore()],
    ];
    const rss: number[] = [];
    const started = Date.now();
    const inFlight: Promise<void>[] = [];
    for (let tick = 0; tick < (SECONDS * 1000) / EVERY_MS; tick++) {
      const due = started + tick * EVERY_MS;
      await new Promise((r) => setTimeout(r, Math.max(0, due - Date.now())));
      const second = (tick * EVERY_MS) / 1000;
      for (const [at, fault] of faults) if (Math.abs(second - at) < EVERY_MS / 2000) fault();
      if (tick % (1000 / EVERY_MS) === 0) rss.push(rssMb(child.pid as number));
      const batch = Array.from({ length: BATCH }, (_, i) => {
        // One in ten repeats an event already acknowledged.
        const repeat = acknowledged.size > 0 && random() < 0.1;
        const id = repeat
          ? [...acknowledged][Math.floor(random() * Math.min(acknowledged.size, 500))]
          : uuidFrom(random);
        return {
          event_id: id,
          occurred_at: "2025-10-28T12:00:00Z",
          user_id: `u${(tick * BATCH + i) % 997}`,
          event_type: "soak",
        };
      });
      inFlight.push(
        send(batch).then(() => {
          for (const e of batch) acknowledged.add(e.event_id as string);
        }),
      );
      if (inFlight.length > 50) await inFlight.shift();
    }
    await Promise.all(inFlight);
    proxy.restore();

    const counted = await waitFor(
      async () => {
        const res = await rest(
          port,
          "/stats/top-events?from=2025-10-28&to=2025-10-28&segment=event_type:soak",
        );
        return (res.body as { count: number }[] | undefined)?.[0]?.count ?? 0;
      },
      (n) => n >= acknowledged.size,
      60_000,
    );
    expect(counted).toBe(acknowledged.size);
    // The faults happened: the broker closed the service's connection. While Redis was away
    // the consumer asked the warehouse instead, so every event was stored at least once (a
    // batch redelivered after a lost ack is stored again, and counted once).
    expect(closedConnections).toBeGreaterThan(0);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const inserted = Number(/^tally_events_inserted_total (\d+)/m.exec(metrics)?.[1]);
    expect(inserted).toBeGreaterThanOrEqual(acknowledged.size);
    // Flat memory: the last readings stay near those after warm-up.
    const warm = Math.max(...rss.slice(5, 10));
    const late = Math.max(...rss.slice(-5));
    expect(late).toBeLessThan(warm * 1.5 + 50);
    await proxy.close();
  }, 180_000);
});
