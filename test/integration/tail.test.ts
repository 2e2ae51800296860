import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  TailEventsRequestSchema,
  type TailEventsResponse,
  TailEventsResponseSchema,
} from "../../gen/tally/v1/ingest_pb.js";
import type { Tally } from "../../src/app/tally.ts";
import { createRabbitLiveFeed } from "../../src/queue/live-feed.ts";
import { connectClients, rest, toProto } from "../clients.ts";
import {
  AMQP_URL,
  freePort,
  realServices,
  reportErrors,
  rng,
  sameDayEvents,
  spawnTally,
  start,
  testConfig,
  uniqueNamespace,
  untilReady,
  uuidFrom,
  waitFor,
} from "../helpers.ts";
import { tempDir } from "../temp-dirs.ts";

/** The promise: an accepted event shows in a tail within a second. */
const LIVE_WITHIN_MS = 1000;

describe("TailEvents: events live as they are accepted", () => {
  let tally: Tally;
  let port: number;
  const env = { ...realServices(), TALLY_API_KEYS: "w:ingest,r:read" };
  const config = testConfig({ ...env, TALLY_TAIL_BUFFER_EVENTS: "1000" });
  const stops: AbortController[] = [];
  beforeAll(async () => {
    tally = await start(config);
    port = tally.port as number;
  });
  afterEach(() => {
    for (const s of stops.splice(0)) s.abort();
  });
  afterAll(() => tally?.close());
  const reader = { authorization: "Bearer r" };
  const writer = { authorization: "Bearer w" };

  /** A tail over `transport`, started and live; `next(n)` collects the next n events. */
  async function tail(transport: keyof ReturnType<typeof connectClients>, filter = {}) {
    const stop = new AbortController();
    stops.push(stop);
    const stream = connectClients(port)[transport].ingest.tailEvents(filter, {
      headers: reader,
      signal: stop.signal,
    });
    const it = stream[Symbol.asyncIterator]();
    expect((await it.next()).value).toMatchObject({ events: [], skipped: 0n });
    return {
      async next(n: number) {
        const events = [];
        while (events.length < n) {
          const r = await it.next();
          if (r.done) throw new Error("the tail ended");
          events.push(...r.value.events);
        }
        return events;
      },
    };
  }

  it("shows a POST /events within a second over gRPC, gRPC-Web and Connect (HTTP/1.1 and 2)", async () => {
    const tails = await Promise.all(
      (["grpc", "grpc-web", "connect", "connect-h2"] as const).map((t) =>
        tail(t, { eventType: "tail_signup" }),
      ),
    );
    const [wanted] = sameDayEvents(1, 801, "tail_signup");
    const [other] = sameDayEvents(1, 802, "tail_other");
    const posted = performance.now();
    expect((await rest(port, "/events", [other, wanted], { headers: writer })).status).toBe(202);
    const seen = await Promise.all(tails.map((t) => t.next(1)));
    expect(performance.now() - posted).toBeLessThan(LIVE_WITHIN_MS);
    for (const events of seen) {
      expect(events.map((e) => [e.eventId, e.userId, e.eventType])).toEqual([
        [wanted?.event_id, wanted?.user_id, "tail_signup"],
      ]);
    }
  });

  it("filters by user, and passes events from streams and every transport", async () => {
    const t = await tail("grpc", { userId: "tail-user-7" });
    const random = rng(803);
    const mine = (i: number) => ({
      event_id: uuidFrom(random),
      occurred_at: "2025-10-28T12:00:00Z",
      user_id: "tail-user-7",
      event_type: `step_${i}`,
    });
    const clients = connectClients(port);
    const noise = sameDayEvents(50, 804, "tail_noise", 5);
    await clients["grpc-web"].ingest.ingest(
      { events: [mine(1), ...noise.slice(0, 25)].map(toProto) },
      { headers: writer },
    );
    await clients.grpc.ingest.ingestStream(
      (async function* () {
        yield { events: [...noise.slice(25), mine(2)].map(toProto) };
        yield { events: [mine(3)].map(toProto) };
      })(),
      { headers: writer },
    );
    expect((await t.next(3)).map((e) => e.eventType)).toEqual(["step_1", "step_2", "step_3"]);
  });

  it("shows what another API process accepted (the live feed runs through RabbitMQ)", async () => {
    const t = await tail("connect", { eventType: "tail_elsewhere" });
    const otherPort = await freePort();
    const other = spawnTally(["serve"], {
      ...env,
      PORT: String(otherPort),
      HOST: "127.0.0.1",
      TALLY_NAMESPACE: config.namespace,
      TALLY_DATA_DIR: tempDir("tally-tail-"),
    });
    try {
      await untilReady(otherPort);
      const [event] = sameDayEvents(1, 808, "tail_elsewhere");
      const posted = performance.now();
      expect((await rest(otherPort, "/events", [event], { headers: writer })).status).toBe(202);
      expect((await t.next(1)).map((e) => e.eventId)).toEqual([event?.event_id]);
      expect(performance.now() - posted).toBeLessThan(LIVE_WITHIN_MS);
    } finally {
      other.child.kill("SIGTERM");
      await other.exit;
    }
  });

  it("needs the read scope", async () => {
    const stream = connectClients(port).grpc.ingest.tailEvents({}, { headers: writer });
    await expect(stream[Symbol.asyncIterator]().next()).rejects.toSatisfy(
      (e) => ConnectError.from(e).code === Code.PermissionDenied,
    );
  });

  it("never slows ingest for a subscriber that stops reading: it skips, and says how many", async () => {
    // An independent peer that stops reading: HTTP/2 flow control then holds the server's writes.
    const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const metadata = new grpc.Metadata();
    metadata.set("authorization", "Bearer r");
    const call = client.makeServerStreamRequest(
      "/tally.v1.IngestService/TailEvents",
      (m: ReturnType<typeof create<typeof TailEventsRequestSchema>>) =>
        Buffer.from(toBinary(TailEventsRequestSchema, m)),
      (b: Buffer) => fromBinary(TailEventsResponseSchema, b),
      create(TailEventsRequestSchema, { eventType: "tail_flood" }),
      metadata,
    );
    const received: TailEventsResponse[] = [];
    call.on("data", (m: TailEventsResponse) => received.push(m));
    const errors: grpc.ServiceError[] = [];
    call.on("error", (e: grpc.ServiceError) => errors.push(e));
    await waitFor(
      async () => received.length,
      (n) => n > 0,
    );
    call.pause();
    // 40,000 events with fat properties: far more than the socket and the 1,000-event buffer hold.
    const flood = sameDayEvents(40_000, 805, "tail_flood", 100).map((e) => ({
      ...e,
      properties: { pad: "x".repeat(200) },
    }));
    const clients = connectClients(port);
    for (let i = 0; i < flood.length; i += 2000) {
      const res = await clients.grpc.ingest.ingest(
        { events: flood.slice(i, i + 2000).map(toProto) },
        { headers: writer },
      );
      expect(res.accepted).toBe(2000n);
    }
    call.resume();
    const total = () => received.reduce((n, m) => n + m.events.length + Number(m.skipped), 0);
    await waitFor(
      async () => total(),
      (n) => n === flood.length,
    );
    const skipped = received.reduce((n, m) => n + Number(m.skipped), 0);
    expect(skipped).toBeGreaterThan(0);
    // What arrived is in order, and the newest event made it.
    const ids = received.flatMap((m) => m.events.map((e) => e.eventId));
    expect(ids.at(-1)).toBe(flood.at(-1)?.event_id);
    const order = new Map(flood.map((e, i) => [e.event_id, i]));
    const positions = ids.map((id) => order.get(id) ?? -1);
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
    expect(errors).toEqual([]);
    call.cancel();
    client.close();
  });

  it("tally tail prints matching events as JSON lines", async () => {
    const tail = spawnTally(
      ["tail", "--url", `http://127.0.0.1:${port}`, "--event-type", "tail_cli", "--json"],
      { TALLY_API_KEY: "r" },
    );
    try {
      await waitFor(
        async () => tail.stderr(),
        (e) => e.includes("live on"),
      );
      const [wanted] = sameDayEvents(1, 806, "tail_cli");
      const posted = performance.now();
      await rest(port, "/events", [...sameDayEvents(3, 807, "tail_not_cli"), wanted], {
        headers: writer,
      });
      await waitFor(
        async () => tail.stdout(),
        (o) => o.includes("\n"),
      );
      expect(performance.now() - posted).toBeLessThan(LIVE_WITHIN_MS);
      expect(
        tail
          .stdout()
          .trim()
          .split("\n")
          .map((l: string) => JSON.parse(l)),
      ).toEqual([
        {
          event_id: wanted?.event_id,
          occurred_at: "2025-10-28T12:00:00Z",
          user_id: wanted?.user_id,
          event_type: "tail_cli",
        },
      ]);
    } finally {
      tail.child.kill("SIGINT");
    }
    expect(await tail.exit).toBe(0);
  });
});

describe("the live feed over RabbitMQ", () => {
  it("carries every shared batch, many to a broker message", async () => {
    const feed = createRabbitLiveFeed({
      url: AMQP_URL,
      namespace: uniqueNamespace(),
      onError: reportErrors,
    });
    const received: Buffer[] = [];
    const stop = await feed.listen((body) => received.push(body));
    try {
      const rows = Array.from({ length: 200 }, (_, i) => Buffer.from(`row ${i}\n`));
      for (const row of rows) feed.share(row);
      await waitFor(
        async () => Buffer.concat(received).toString(),
        (text) => text.split("\n").length > 200,
      );
      expect(Buffer.concat(received).toString()).toBe(Buffer.concat(rows).toString());
      // One message per accepted batch cost the broker an eighth of its CPU at 1,000 calls/s.
      expect(received.length).toBeLessThan(10);
    } finally {
      await stop();
      await feed.close();
    }
  });
});
