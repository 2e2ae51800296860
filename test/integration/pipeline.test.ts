import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Tally } from "../../src/app/tally.ts";
import { connectClients, grpcJsClient, rest, toProto } from "../clients.ts";
import {
  type JsonEvent,
  realServices,
  rng,
  start,
  testConfig,
  uuidFrom,
  waitFor,
  warehouseCounts,
} from "../helpers.ts";
import { firstCopies, refActiveUsers, refDau, refRetention, refTopEvents } from "../reference.ts";

const TYPES = ["page_view", "page_view", "page_view", "click", "click", "signup", "purchase"];
const COUNTRIES = ["UA", "PL", "US"];

function generate(n: number, seed: number): JsonEvent[] {
  const random = rng(seed);
  return Array.from({ length: n }, () => {
    const day = 20 + Math.floor(random() * 10);
    const ms = Date.parse(`2025-10-${day}T00:00:00Z`) + Math.floor(random() * 86_400_000);
    return {
      event_id: uuidFrom(random),
      occurred_at: new Date(ms).toISOString(),
      user_id: `u${Math.floor(random() * 40)}`,
      event_type: TYPES[Math.floor(random() * TYPES.length)] as string,
      properties: {
        country: COUNTRIES[Math.floor(random() * 3)],
        device: { os: random() < 0.5 ? "ios" : "web" },
      },
    };
  });
}

describe("the pipeline on RabbitMQ, Redis and chDB", () => {
  let tally: Tally;
  let port: number;
  const sent: JsonEvent[] = [];

  beforeAll(async () => {
    tally = await start(testConfig(realServices()));
    port = tally.port as number;
  });
  afterAll(async () => {
    await tally?.close();
  });

  it("counts every event from every transport exactly once, repeats across transports included", async () => {
    const events = generate(1200, 42);
    const parts = Array.from({ length: 6 }, (_, i) => events.slice(i * 200, (i + 1) * 200));
    // Repeats: the same event_ids again over another transport, some with other fields.
    const repeats = events
      .filter((_, i) => i % 7 === 0)
      .map((e, i) => (i % 2 ? { ...e, event_type: "changed" } : e));
    const clients = connectClients(port);
    const peer = grpcJsClient(port);
    try {
      const answers = await Promise.all([
        peer.ingest(parts[0]!.map(toProto)),
        peer.ingestStream([
          parts[1]!.slice(0, 100).map(toProto),
          parts[1]!.slice(100).map(toProto),
        ]),
        clients.connect.ingest.ingest({ events: parts[2]!.map(toProto) }),
        clients["grpc-web"].ingest.ingest({ events: parts[3]!.map(toProto) }),
        clients.grpc.ingest.ingest({ events: parts[4]!.map(toProto) }),
        rest(port, "/events", { events: parts[5] }),
      ]);
      expect(answers.slice(0, 5).map((a) => ("accepted" in a ? Number(a.accepted) : -1))).toEqual([
        200, 200, 200, 200, 200,
      ]);
      expect(answers[5]).toMatchObject({ status: 202, body: { accepted: 200, rejected: [] } });
      sent.push(...events);
      // Repeats go out after the originals were acknowledged, so the originals are the first copies.
      const again = await clients["connect-h2"].ingest.ingest({ events: repeats.map(toProto) });
      expect(Number(again.accepted)).toBe(repeats.length);
      sent.push(...repeats);
    } finally {
      peer.close();
    }

    const unique = firstCopies(sent);
    const expected = refDau(unique, "2025-10-19", "2025-10-30", "UTC");
    const total = (rows: { unique_users: number }[]) =>
      rows.reduce((n, r) => n + r.unique_users, 0);
    await waitFor(
      async () =>
        (await rest(port, "/stats/dau?from=2025-10-19&to=2025-10-30")).body as {
          unique_users: number;
        }[],
      (rows) => total(rows) === total(expected),
    );
    await waitFor(
      () => warehouseCounts(tally),
      (c) => c.ids === unique.length,
    );
    expect((await warehouseCounts(tally)).rows).toBe(unique.length); // Redis kept the repeats out
  });

  it("answers every stat exactly as a brute-force count over the first copies", async () => {
    const unique = firstCopies(sent);
    expect(unique.length).toBe(1200);
    const cases: [string, unknown][] = [
      [
        "/stats/dau?from=2025-10-19&to=2025-10-30",
        refDau(unique, "2025-10-19", "2025-10-30", "UTC"),
      ],
      [
        "/stats/dau?from=2025-10-19&to=2025-10-30&tz=Europe/Kyiv",
        refDau(unique, "2025-10-19", "2025-10-30", "Europe/Kyiv"),
      ],
      [
        "/stats/dau?from=2025-10-20&to=2025-10-29&tz=America/Los_Angeles&segment=properties.country:UA",
        refDau(unique, "2025-10-20", "2025-10-29", "America/Los_Angeles", { country: "UA" }),
      ],
      [
        "/stats/top-events?from=2025-10-20&to=2025-10-29",
        refTopEvents(unique, "2025-10-20", "2025-10-29", "UTC", 10),
      ],
      [
        "/stats/top-events?from=2025-10-22&to=2025-10-25&limit=2&tz=Asia/Tokyo&segment=properties.country:PL",
        refTopEvents(unique, "2025-10-22", "2025-10-25", "Asia/Tokyo", 2, { country: "PL" }),
      ],
      [
        "/stats/retention?start_date=2025-10-20&end_date=2025-10-25&windows=4",
        refRetention(unique, "2025-10-20", "2025-10-25", 4, "UTC", "day"),
      ],
      [
        "/stats/retention?start_date=2025-10-20&end_date=2025-10-29&windows=3&granularity=day&segment=event_type:click&tz=Europe/Kyiv",
        refRetention(unique, "2025-10-20", "2025-10-29", 3, "Europe/Kyiv", "day", {
          type: "click",
        }),
      ],
    ];
    // Active users over rolling windows, and ISO-week cohorts; Europe/Kyiv left DST on 2025-10-26.
    cases.push(
      [
        "/stats/active-users?from=2025-10-20&to=2025-10-30&window=week&tz=Europe/Kyiv",
        refActiveUsers(unique, "2025-10-20", "2025-10-30", 7, "Europe/Kyiv"),
      ],
      [
        "/stats/active-users?from=2025-10-21&to=2025-10-29&window=month&segment=event_type:click",
        refActiveUsers(unique, "2025-10-21", "2025-10-29", 30, "UTC", { type: "click" }),
      ],
      [
        "/stats/active-users?from=2025-10-20&to=2025-10-29",
        refActiveUsers(unique, "2025-10-20", "2025-10-29", 1, "UTC"),
      ],
      [
        "/stats/retention?start_date=2025-10-15&end_date=2025-10-29&windows=2&granularity=week&tz=Europe/Kyiv&segment=properties.country:UA",
        refRetention(unique, "2025-10-15", "2025-10-29", 2, "Europe/Kyiv", "week", {
          country: "UA",
        }),
      ],
    );
    for (const [path, want] of cases) {
      const got = await rest(port, path);
      expect({ path, status: got.status, body: got.body }).toEqual({
        path,
        status: 200,
        body: want,
      });
    }
    // The first copy won: the repeats typed "changed" count nowhere.
    const top = (await rest(port, "/stats/top-events?from=2025-10-01&to=2025-10-31")).body as {
      event_type: string;
    }[];
    expect(top.map((t) => t.event_type)).not.toContain("changed");
  });

  it("answers the same over gRPC as over REST", async () => {
    const { grpc } = connectClients(port);
    const dau = await grpc.analytics.getDau({
      from: "2025-10-20",
      to: "2025-10-29",
      tz: "Europe/Kyiv",
      segment: [],
    });
    const viaRest = (await rest(port, "/stats/dau?from=2025-10-20&to=2025-10-29&tz=Europe/Kyiv"))
      .body;
    expect(dau.days.map((d) => ({ date: d.date, unique_users: Number(d.uniqueUsers) }))).toEqual(
      viaRest,
    );
    const weekly = await grpc.analytics.getRetention({
      startDate: "2025-10-20",
      endDate: "2025-10-27",
      windows: 1,
      granularity: "week",
      tz: "",
      segment: [],
    });
    expect(weekly.cohorts.map((c) => c.cohort)).toEqual(["2025-10-20", "2025-10-27"]);
    expect(Number(weekly.cohorts[0]!.size)).toBe(Number(weekly.cohorts[0]!.retained[0]));
  });

  it("stores properties_json as it stores the same properties sent as a Struct, on every transport", async () => {
    const properties = {
      plan: "pro",
      seats: 3,
      trial: false,
      tags: ["a", 1, null],
      device: { os: "ios" },
    };
    const [struct, text, overRest, both] = generate(4, 99).map((e) => ({
      ...e,
      event_type: "json_props",
    }));
    const { grpc } = connectClients(port);
    const sentOverGrpc = await grpc.ingest.ingest({
      events: [
        toProto({ ...struct!, properties }),
        {
          ...toProto({ ...text!, properties: undefined }),
          propertiesJson: JSON.stringify(properties, null, 2),
        },
        {
          ...toProto({ ...both!, properties }),
          propertiesJson: JSON.stringify(properties),
        },
      ],
    });
    expect(Number(sentOverGrpc.accepted)).toBe(2);
    expect(sentOverGrpc.rejected.map((r) => [Number(r.index), r.reason])).toEqual([
      [2, "properties_json: set properties or properties_json, not both"],
    ]);
    const { properties: _, ...plain } = overRest!;
    const res = await rest(port, "/events", [
      { ...plain, properties_json: ` ${JSON.stringify(properties)}` },
      { ...plain, event_id: "6f1c3a51-2f59-4a0f-9a55-2d8a3f1b7c20", properties_json: "[1]" },
    ]);
    expect(res.body).toEqual({
      accepted: 1,
      rejected: [
        {
          index: 1,
          event_id: "6f1c3a51-2f59-4a0f-9a55-2d8a3f1b7c20",
          reason: "properties_json: must be a JSON object",
        },
      ],
    });
    const stored = () =>
      tally.warehouse.query<{ event_id: string; properties: string }>(
        `SELECT toString(event_id) AS event_id, properties FROM ${tally.warehouse.db}.events
         WHERE event_type = 'json_props' ORDER BY event_id`,
      );
    const rows = await waitFor(stored, (r) => r.length === 3);
    expect(new Set(rows.map((r) => r.properties))).toEqual(new Set([JSON.stringify(properties)]));
  });

  it("rejects bad events by index and field, and still takes the good ones, on every transport", async () => {
    const good = generate(2, 7);
    const bad = { ...good[0]!, event_id: "nope" };
    const { connect, grpc } = connectClients(port);
    for (const client of [connect, grpc]) {
      const events = [bad, ...generate(1, Math.random() * 1e9)].map(toProto);
      const res = await client.ingest.ingest({ events });
      expect(Number(res.accepted)).toBe(1);
      expect(res.rejected.map((r) => [Number(r.index), r.eventId, r.reason])).toEqual([
        [0, "nope", "event_id: must be a UUID"],
      ]);
    }
    const res = await rest(port, "/events", [
      {
        event_id: "6f1c3a51-2f59-4a0f-9a55-2d8a3f1b7c10",
        occurred_at: "2025-10-28T12:00:00+02:00",
        user_id: 17,
        event_type: "x",
      },
      {
        event_id: "6f1c3a51-2f59-4a0f-9a55-2d8a3f1b7c11",
        occurred_at: "last tuesday",
        user_id: "u",
        event_type: "x",
      },
      {
        event_id: "6f1c3a51-2f59-4a0f-9a55-2d8a3f1b7c12",
        occurred_at: "2025-10-28T12:00:00Z",
        user_id: "",
        event_type: "x",
      },
      "not an object",
    ]);
    expect(res.status).toBe(202);
    expect(res.body).toEqual({
      accepted: 1,
      rejected: [
        {
          index: 1,
          event_id: "6f1c3a51-2f59-4a0f-9a55-2d8a3f1b7c11",
          reason: "occurred_at: expected an RFC 3339 time with a zone, like 2025-10-28T12:00:00Z",
        },
        { index: 2, event_id: "6f1c3a51-2f59-4a0f-9a55-2d8a3f1b7c12", reason: "user_id: required" },
        { index: 3, event_id: "", reason: "must be a JSON object" },
      ],
    });
  });

  it("answers 400 with Connect's error shape when nothing is accepted or the body is wrong", async () => {
    const none = await rest(port, "/events", [{ event_id: "x" }]);
    expect(none.status).toBe(400);
    expect(none.body).toMatchObject({
      code: "invalid_argument",
      message: expect.stringContaining("events[0].event_id: must be a UUID"),
    });
    const notJson = await rest(port, "/events", "{oops", {
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    expect(notJson).toMatchObject({
      status: 400,
      body: { code: "invalid_argument", message: expect.stringMatching(/^body: not valid JSON/) },
    });
    const wrongShape = await rest(port, "/events", { items: [] });
    expect(wrongShape).toMatchObject({
      status: 400,
      body: { message: 'body: expected a JSON array of events, or {"events": [...]}' },
    });
    const empty = await rest(port, "/events", []);
    expect(empty).toMatchObject({
      status: 400,
      body: { message: "events: at least one event is required" },
    });
    const { grpc } = connectClients(port);
    await expect(grpc.ingest.ingest({ events: [] })).rejects.toMatchObject({
      code: Code.InvalidArgument,
    });
  });

  it("answers 400 naming the parameter for bad stats parameters", async () => {
    const cases: [string, RegExp][] = [
      ["/stats/dau?from=2025-10-02&to=2025-10-01", /^from: /],
      ["/stats/dau?from=2025-10-01", /^to: required/],
      ["/stats/dau?from=2015-01-01&to=2025-01-01", /^to: the range may span/],
      ["/stats/dau?from=01.10.2025&to=2025-10-02", /^from: expected a date/],
      ["/stats/dau?from=2025-10-01&to=2025-10-02&tz=Nowhere/City", /^tz: /],
      ["/stats/top-events?from=2025-10-01&to=2025-10-02&limit=0", /^limit: /],
      ["/stats/top-events?from=2025-10-01&to=2025-10-02&limit=ten", /^limit: invalid value/],
      ["/stats/retention?start_date=2025-10-01&windows=366", /^windows: /],
      ["/stats/retention?start_date=2025-10-01&granularity=month", /^granularity: /],
      ["/stats/retention?windows=3", /^start_date: required/],
      ["/stats/stickiness?from=2025-10-01&to=2025-10-07&interval=month", /^interval: /],
      ["/stats/stickiness?to=2025-10-07", /^from: required/],
      ["/stats/lifecycle?from=2025-10-01&to=2025-10-07&interval=year", /^interval: /],
      ["/stats/dau?from=2025-10-01&to=2025-10-02&segment=country", /^segment: /],
      ["/stats/dau?from=2025-10-01&to=2025-10-02&colour=red", /^colour: unknown query parameter/],
    ];
    for (const [path, message] of cases) {
      const res = await rest(port, path);
      expect({ path, status: res.status }).toEqual({ path, status: 400 });
      expect((res.body as { message: string }).message).toMatch(message);
    }
    const { connect } = connectClients(port);
    const err = await connect.analytics
      .getTopEvents({ from: "2025-10-01", to: "2025-10-02", limit: 0, tz: "", segment: [] })
      .catch((e) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect(err).toMatchObject({
      code: Code.InvalidArgument,
      rawMessage: expect.stringMatching(/^limit: /),
    });
  });
});
