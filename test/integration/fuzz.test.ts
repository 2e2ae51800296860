import { connect } from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Tally } from "../../src/app/tally.ts";
import { rest } from "../clients.ts";
import {
  type JsonEvent,
  realServices,
  rng,
  start,
  testConfig,
  uuidFrom,
  waitFor,
} from "../helpers.ts";

const CASES = 3000;

/** Hostile values of every kind, drawn from a seeded stream. */
function hostile(random: () => number): unknown {
  const deep = (n: number): unknown =>
    n === 0 ? 1 : random() < 0.5 ? [deep(n - 1)] : { a: deep(n - 1) };
  const picks: (() => unknown)[] = [
    () => null,
    () => true,
    () => -1,
    () => 1e308,
    () => Number.MAX_SAFE_INTEGER + 2,
    () => "",
    () => "x".repeat(Math.floor(random() * 70_000)),
    () => "'; DROP TABLE events; --",
    () => '\u0000\u0001\ud800\udfff\\\t\n\r"',
    () => "2025-13-45T99:99:99Z",
    () => [],
    () => [1, "two", null],
    () => ({}),
    () => ({ nested: { "": { "\u0000": "x" } } }),
    () => deep(Math.floor(random() * 40)),
    () => uuidFrom(random),
  ];
  return (picks[Math.floor(random() * picks.length)] as () => unknown)();
}

function hostileEvent(random: () => number): unknown {
  const fields = ["event_id", "occurred_at", "user_id", "event_type", "properties", "extra"];
  const event: Record<string, unknown> = {};
  for (const f of fields) if (random() < 0.8) event[f] = hostile(random);
  return random() < 0.1 ? hostile(random) : event;
}

function randomBytes(random: () => number, n: number): Buffer {
  return Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256)));
}

describe("fuzz: hostile input at every route (RabbitMQ, Redis, chDB)", () => {
  let tally: Tally;
  let base: string;
  beforeAll(async () => {
    tally = await start(testConfig(realServices()));
    base = `http://127.0.0.1:${tally.port}`;
  });
  afterAll(() => tally?.close());

  it(`answers ${CASES} hostile requests with 4xx or a clean gRPC error, stays up, and loses no good event`, async () => {
    const random = rng(2025);
    const h2 = connect(base);
    h2.on("error", () => {});
    const statuses = new Map<string, number>();
    const note = (kind: string) => statuses.set(kind, (statuses.get(kind) ?? 0) + 1);
    const good: JsonEvent[] = [];
    const serverErrors: string[] = [];

    const grpcCall = (path: string, body: Buffer) =>
      new Promise<string>((resolve) => {
        const req = h2.request({
          ":method": "POST",
          ":path": path,
          "content-type": "application/grpc",
          te: "trailers",
        });
        let status = "none";
        req.on("response", (headers) => {
          if (headers["grpc-status"] !== undefined) status = String(headers["grpc-status"]);
        });
        req.on("trailers", (trailers) => {
          status = String(trailers["grpc-status"]);
        });
        req.on("close", () => resolve(status));
        req.on("error", () => resolve("stream-error"));
        req.end(body);
      });

    for (let i = 0; i < CASES; i++) {
      const kind = Math.floor(random() * 8);
      if (i % 50 === 0) {
        // Good events alongside, so losing any of them would show.
        const event = {
          event_id: uuidFrom(random),
          occurred_at: "2025-10-28T12:00:00Z",
          user_id: `u${i}`,
          event_type: "fuzz_good",
        };
        good.push(event);
        const res = await rest(tally.port as number, "/events", [event, hostileEvent(random)]);
        if (res.status !== 202) serverErrors.push(`good event answered ${res.status}`);
        continue;
      }
      let status: number | string;
      if (kind <= 2) {
        const body = JSON.stringify(
          random() < 0.5
            ? Array.from({ length: 1 + Math.floor(random() * 5) }, () => hostileEvent(random))
            : { events: hostileEvent(random) },
        );
        status = (await fetch(`${base}/events`, { method: "POST", body })).status;
      } else if (kind === 3) {
        const bytes = randomBytes(random, Math.floor(random() * 2000));
        const headers = random() < 0.3 ? { "content-encoding": "gzip" } : {};
        status = (await fetch(`${base}/events`, { method: "POST", body: bytes, headers })).status;
      } else if (kind === 4) {
        const routes = ["dau", "active-users", "top-events", "retention"];
        const params = new URLSearchParams();
        for (const p of [
          "from",
          "to",
          "tz",
          "limit",
          "window",
          "start_date",
          "end_date",
          "windows",
          "granularity",
          "segment",
          "segment",
          "nope",
        ]) {
          if (random() < 0.5) params.append(p, String(hostile(random)).slice(0, 500));
        }
        status = (await fetch(`${base}/stats/${routes[Math.floor(random() * 4)]}?${params}`))
          .status;
      } else if (kind === 5) {
        // A valid query with a hostile segment: parameters, never SQL.
        const seg = `properties.${String(hostile(random)).slice(0, 50)}:${String(hostile(random)).slice(0, 200)}`;
        status = (
          await fetch(
            `${base}/stats/dau?from=2025-10-01&to=2025-10-31&segment=${encodeURIComponent(seg)}`,
          )
        ).status;
      } else if (kind === 6) {
        // Connect unary with garbage as protobuf or JSON.
        const asJson = random() < 0.5;
        status = (
          await fetch(`${base}/tally.v1.IngestService/Ingest`, {
            method: "POST",
            headers: { "content-type": asJson ? "application/json" : "application/proto" },
            body: asJson
              ? JSON.stringify(hostileEvent(random))
              : randomBytes(random, Math.floor(random() * 500)),
          })
        ).status;
      } else {
        // Random bytes as gRPC frames, framed or not.
        const payload = randomBytes(random, Math.floor(random() * 300));
        const framed =
          random() < 0.5
            ? Buffer.concat([
                Buffer.from([0, 0, 0, payload.length >> 8, payload.length & 255]),
                payload,
              ])
            : payload;
        status = `grpc-${await grpcCall(random() < 0.5 ? "/tally.v1.IngestService/Ingest" : "/tally.v1.AnalyticsService/GetDau", framed)}`;
      }
      note(String(status));
      if (typeof status === "number" && status >= 500)
        serverErrors.push(`kind ${kind} answered ${status}`);
      // gRPC codes 2 (unknown) and 13 (internal) would mean the server failed, not the input.
      if (status === "grpc-2" || status === "grpc-13" || status === "grpc-none")
        serverErrors.push(`kind ${kind} answered ${status}`);
    }
    h2.close();
    expect(serverErrors).toEqual([]);
    expect(statuses.size).toBeGreaterThan(3); // the cases really did vary
    expect((await rest(tally.port as number, "/healthz")).status).toBe(200);
    const counted = await waitFor(
      async () => {
        const res = await rest(
          tally.port as number,
          "/stats/top-events?from=2025-10-28&to=2025-10-28&segment=event_type:fuzz_good",
        );
        return (res.body as { count: number }[])[0]?.count ?? 0;
      },
      (n) => n >= good.length,
    );
    expect(counted).toBe(good.length);
  });
});
