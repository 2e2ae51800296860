import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/health/v1/health_pb.js";
import type { Tally } from "../../src/app/tally.ts";
import { rest } from "../clients.ts";
import { REDIS_URL, realServices, start, testConfig, waitFor } from "../helpers.ts";
import { startTcpProxy } from "../tcp-proxy.ts";

describe("readiness follows the real dependencies", () => {
  let proxy: Awaited<ReturnType<typeof startTcpProxy>>;
  let tally: Tally;
  let consumer: Tally;

  beforeAll(async () => {
    proxy = await startTcpProxy(Number(new URL(REDIS_URL).port));
    const redisUrl = `redis://127.0.0.1:${proxy.port}`;
    const config = testConfig({ ...realServices(), REDIS_URL: redisUrl });
    tally = await start(config, "api");
    consumer = await start({ ...config, port: 0 }, "consumer");
  });
  afterAll(async () => {
    await tally?.close();
    await consumer?.close();
    await proxy?.close();
  });

  it("turns /readyz to 503 naming Redis while Redis is away, and back to 200 when it returns", async () => {
    // Ready once connected (right after start, Redis may still be connecting).
    for (const t of [tally, consumer]) {
      const up = await waitFor(
        () => rest(t.port as number, "/readyz"),
        (r) => r.status === 200,
      );
      expect(up.body).toMatchObject({ status: "ok", checks: { redis: "ok" } });
    }
    proxy.cut();
    for (const t of [tally, consumer]) {
      const down = await waitFor(
        () => rest(t.port as number, "/readyz"),
        (r) => r.status === 503,
      );
      expect(down.body).toMatchObject({
        status: "unavailable",
        message: "not ready: redis unavailable",
        checks: { rabbitmq: "ok", chdb: "ok" },
      });
    }
    const check = createClient(
      Health,
      createGrpcTransport({ baseUrl: `http://127.0.0.1:${tally.port}` }),
    );
    expect((await check.check({ service: "" })).status).toBe(
      HealthCheckResponse_ServingStatus.NOT_SERVING,
    );
    proxy.restore();
    for (const t of [tally, consumer]) {
      await waitFor(
        () => rest(t.port as number, "/readyz"),
        (r) => r.status === 200,
      );
    }
    expect((await check.check({ service: "" })).status).toBe(
      HealthCheckResponse_ServingStatus.SERVING,
    );
  });

  it("gives a consumer alone a port for health and metrics", async () => {
    expect(await rest(consumer.port as number, "/healthz")).toMatchObject({ status: 200 });
    const metrics = await fetch(`http://127.0.0.1:${consumer.port}/metrics`);
    expect(await metrics.text()).toContain("tally_events_inserted_total");
    expect((await rest(consumer.port as number, "/events", [])).status).toBe(404);
  });
});
