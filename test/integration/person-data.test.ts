import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Tally } from "../../src/app/tally.ts";
import { connectClients, rest, toProto } from "../clients.ts";
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
import {
  firstCopies,
  refDau,
  refFunnel,
  refLifecycle,
  refRetention,
  refStickiness,
  refTopEvents,
  refTrends,
} from "../reference.ts";

const ADMIN = { headers: { authorization: "Bearer admin-key" } };
const READER = { headers: { authorization: "Bearer reader-key" } };
const FIRST_DAY = Date.parse("2025-10-01T00:00:00Z");
const DAYS = 30;
const TYPES = ["page_view", "page_view", "click", "signup", "purchase", "$identify"];
const INDEXED = { TALLY_INDEXED_PROPERTIES: "country", TALLY_INDEXED_TIME_ZONES: "Europe/Kyiv" };

function generate(n: number, seed: number): JsonEvent[] {
  const random = rng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)] as T;
  return Array.from({ length: n }, () => {
    const ms = FIRST_DAY + Math.floor(random() * DAYS * 86_400_000);
    return {
      event_id: uuidFrom(random),
      // A third on the hour: ties within a user.
      occurred_at: new Date(random() < 0.3 ? ms - (ms % 3_600_000) : ms).toISOString(),
      user_id: `u${Math.floor(random() ** 2 * 20)}`,
      event_type: pick(TYPES),
      properties: { country: pick(["UA", "PL", "US"]), amount: pick([1, 5, "7"]) },
    };
  });
}

const day = (offset: number) =>
  new Date(FIRST_DAY + offset * 86_400_000).toISOString().slice(0, 10);

describe("a person's data: timeline, and deletion with a receipt (RabbitMQ, Redis, chDB)", () => {
  let tally: Tally;
  let port: number;
  const sent: JsonEvent[] = [];
  const get = async (path: string, auth = READER) => {
    const res = await rest(port, path, undefined, auth);
    expect(res.status, `${path}: ${JSON.stringify(res.body)}`).toBe(200);
    return res.body as never;
  };
  const send = async (events: JsonEvent[]) => {
    expect((await rest(port, "/events", events, ADMIN)).status).toBe(202);
    sent.push(...events);
  };

  beforeAll(async () => {
    tally = await start(
      testConfig({
        ...realServices(),
        ...INDEXED,
        TALLY_API_KEYS: "admin-key,reader-key:read",
        TALLY_DELETION_SETTLE_MS: "1000",
      }),
    );
    port = tally.port as number;
    const events = generate(1500, 31);
    // Half over gRPC, half over REST, and some of each again over the other.
    const grpc = connectClients(port).grpc.ingest;
    const half = events.slice(0, 750);
    await grpc.ingest({ events: half.map(toProto) }, ADMIN);
    sent.push(...half);
    await send(events.slice(750));
    await send(half.slice(0, 100));
    await grpc.ingest({ events: events.slice(750, 850).map(toProto) }, ADMIN);
    sent.push(...events.slice(750, 850));
    await waitFor(
      () => warehouseCounts(tally),
      (c) => c.ids === events.length,
    );
  }, 60_000);
  afterAll(async () => {
    await tally?.close();
  });

  it("answers what is stored about a user, and their events newest first, page by page", async () => {
    const unique = firstCopies(sent);
    const theirs = unique.filter((e) => e.user_id === "u1");
    const times = theirs.map((e) => Date.parse(e.occurred_at));
    const activeDays = new Set(
      theirs.filter((e) => e.event_type !== "$identify").map((e) => e.occurred_at.slice(0, 10)),
    );
    expect(await get("/users/u1")).toEqual({
      user_id: "u1",
      first_seen: new Date(Math.min(...times)).toISOString(),
      last_seen: new Date(Math.max(...times)).toISOString(),
      events: theirs.length,
      active_days: activeDays.size,
    });
    const unknown = await rest(port, "/users/nobody", undefined, READER);
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({
      code: "not_found",
      message: 'no event of user "nobody" is stored',
    });
    // Pages of 7, newest first, ties by event_id: together, every event once.
    const pages: JsonEvent[] = [];
    let before = "";
    for (let i = 0; i < 100; i++) {
      const page = (await get(
        `/users/u1/events?limit=7${before === "" ? "" : `&before=${before}`}`,
      )) as { events: JsonEvent[]; next: string | null };
      expect(page.events.length).toBeLessThanOrEqual(7);
      pages.push(...page.events);
      if (page.next === null) break;
      before = page.next;
    }
    const newestFirst = [...theirs].sort(
      (a, b) =>
        Date.parse(b.occurred_at) - Date.parse(a.occurred_at) || (a.event_id < b.event_id ? 1 : -1),
    );
    expect(
      pages.map((e) => [e.event_id, Date.parse(e.occurred_at), e.event_type, e.properties]),
    ).toEqual(
      newestFirst.map((e) => [e.event_id, Date.parse(e.occurred_at), e.event_type, e.properties]),
    );
    expect(
      (await rest(port, "/users/u1/events?before=nonsense", undefined, READER)).body,
    ).toMatchObject({ code: "invalid_argument", message: expect.stringMatching(/^before: /) });
  });

  it("deletes a user's events from before the request everywhere, drops them when sent again, and keeps later ones", async () => {
    const victim = "u2";
    // A reader may not delete.
    const refused = await rest(port, `/users/${victim}`, undefined, {
      method: "DELETE",
      ...READER,
    });
    expect(refused.status).toBe(403);
    const asked = await rest(port, `/users/${victim}`, undefined, { method: "DELETE", ...ADMIN });
    expect(asked.status).toBe(202);
    const receipt = asked.body as { deletion_id: string; status: string };
    expect(receipt.status).toBe("pending");
    // Asked again while pending: the same receipt.
    const again = await rest(port, `/users/${victim}`, undefined, { method: "DELETE", ...ADMIN });
    expect(again.body).toEqual(receipt);
    const pending = (await get(`/deletions/${receipt.deletion_id}`)) as {
      requested_at: string;
      completed_at: string | null;
    };
    expect(pending).toMatchObject({ status: "pending", events_deleted: 0, completed_at: null });
    const requestedAt = Date.parse(pending.requested_at);

    // Their old events sent again (same ids, and new ids with old times), and a new one after the request.
    const random = rng(77);
    const old = firstCopies(sent).filter((e) => e.user_id === victim);
    const reimported = old.slice(0, 20).map((e) => ({ ...e, event_id: uuidFrom(random) }));
    const later: JsonEvent = {
      event_id: uuidFrom(random),
      occurred_at: new Date(requestedAt + 2000).toISOString(),
      user_id: victim,
      event_type: "purchase",
      properties: { country: "UA", amount: 5 },
    };
    await send([...old.slice(0, 20), ...reimported, later]);

    const done = await waitFor(
      () => get(`/deletions/${receipt.deletion_id}`),
      (d: { status: string; events_deleted: number }) => d.status === "done",
      30_000,
    );
    expect(done).toMatchObject({
      deletion_id: receipt.deletion_id,
      user_id: victim,
      status: "done",
      requested_at: pending.requested_at,
    });
    // Their stored events, and the re-imported ones that were stored before the consumer knew.
    const deleted = done.events_deleted;
    expect(deleted).toBeGreaterThanOrEqual(old.length);
    expect(deleted).toBeLessThanOrEqual(old.length + reimported.length);
    // Sent again once done: still dropped.
    const lateCopies = old.slice(20, 30).map((e) => ({ ...e, event_id: uuidFrom(random) }));
    await send([...old.slice(20, 30), ...lateCopies]);
    await waitFor(
      async () => (await tally.metrics.eventsDroppedDeleted.get()).values[0]?.value ?? 0,
      (n) => n >= lateCopies.length,
    );
    await waitFor(
      () => get(`/users/${victim}`),
      (u: { events: number }) => u.events === 1,
    );

    // Every stat as if their events from before the request had never been sent.
    const kept = firstCopies(sent).filter(
      (e) => e.user_id !== victim || Date.parse(e.occurred_at) >= requestedAt,
    );
    const today = new Date(requestedAt + 2000).toISOString().slice(0, 10);
    for (const tz of ["UTC", "Europe/Kyiv", "America/New_York"]) {
      for (const segment of [[], ["properties.country:UA"], ["event_type:purchase"]]) {
        const q = `tz=${tz}${segment.map((s) => `&segment=${encodeURIComponent(s)}`).join("")}`;
        const range = `from=${day(0)}&to=${day(DAYS)}`;
        expect(await get(`/stats/dau?${range}&${q}`)).toEqual(
          refDau(kept, day(0), day(DAYS), tz, segment),
        );
        expect(await get(`/stats/dau?from=${today}&to=${today}&${q}`)).toEqual(
          refDau(kept, today, today, tz, segment),
        );
        expect(await get(`/stats/top-events?${range}&limit=10&${q}`)).toEqual(
          refTopEvents(kept, day(0), day(DAYS), tz, 10, segment),
        );
        expect(
          await get(
            `/stats/retention?start_date=${day(0)}&end_date=${day(DAYS)}&windows=5&granularity=week&${q}`,
          ),
        ).toEqual(refRetention(kept, day(0), day(DAYS), 5, tz, "week", segment));
        expect(await get(`/stats/lifecycle?${range}&interval=week&${q}`)).toEqual(
          refLifecycle(kept, day(0), day(DAYS), "week", tz, segment),
        );
        expect(await get(`/stats/stickiness?${range}&interval=day&${q}`)).toEqual(
          refStickiness(kept, day(0), day(DAYS), "day", tz, segment),
        );
        const trends = { from: day(0), to: day(DAYS), eventType: "", interval: "week" as const };
        expect(
          await get(`/stats/trends?${range}&interval=week&measure=users&breakdown=event_type&${q}`),
        ).toEqual({
          series: refTrends(kept, {
            ...trends,
            measure: "users",
            breakdown: "event_type",
            limit: 5,
            tz,
            segment,
          }),
        });
        const steps = ["page_view", "click", "purchase"];
        expect(
          await get(`/stats/funnel?${range}&${steps.map((s) => `step=${s}`).join("&")}&${q}`),
        ).toEqual(
          refFunnel(kept, {
            from: day(0),
            to: day(DAYS),
            steps,
            window: "14d",
            mode: "ordered",
            breakdown: "",
            tz,
            segment,
          }),
        );
      }
    }
    // Nothing of theirs from before the request in the events or any table kept from them.
    const { db } = tally.warehouse;
    const params = {
      user: victim,
      at: new Date(requestedAt).toISOString().replace("T", " ").slice(0, 23),
    };
    const before = `user_id = {user:String} AND occurred_at < toDateTime64({at:String}, 3, 'UTC')`;
    const onDays = `user_id = {user:String} AND day < toDate({at:String})`;
    const ids = `event_id IN {ids:Array(UUID)}`;
    const counts: Record<string, number> = {};
    for (const [table, where] of [
      ["events FINAL", before],
      ["events", before],
      ["events_by_time", before],
      ["user_events", before],
      ["user_days", onDays],
      ["prop_user_days", onDays],
      ["zone_user_days", onDays],
      ["first_days", `user_id = {user:String} AND first_day < toDate({at:String})`],
      ["prop_first_days", `user_id = {user:String} AND first_day < toDate({at:String})`],
      ["zone_first_days", `user_id = {user:String} AND first_day < toDate({at:String})`],
      ["day_events", ids],
      ["prop_day_events", ids],
      ["zone_day_events", ids],
    ] as const) {
      const [row] = await tally.warehouse.query<{ n: string }>(
        `SELECT count() AS n FROM ${db}.${table} WHERE ${where}`,
        { ...params, ids: [...old, ...reimported, ...lateCopies].map((e) => e.event_id) },
      );
      counts[table] = Number(row?.n);
    }
    expect(
      Object.values(counts).every((n) => n === 0),
      JSON.stringify(counts),
    ).toBe(true);
    // Their event after the request counts, in the rollups too.
    const [rolled] = await tally.warehouse.query<{ n: string }>(
      `SELECT count() AS n FROM ${db}.user_days WHERE user_id = {user:String} AND day = toDate({today:String})`,
      { user: victim, today },
    );
    expect(Number(rolled?.n)).toBeGreaterThan(0);

    // A second deletion once done: nothing more to delete, and nothing changes.
    const second = (await rest(port, `/users/${victim}`, undefined, { method: "DELETE", ...ADMIN }))
      .body as { deletion_id: string };
    expect(second.deletion_id).not.toBe(receipt.deletion_id);
    const unknown = await rest(
      port,
      "/deletions/00000000-0000-4000-8000-000000000000",
      undefined,
      READER,
    );
    expect(unknown.status).toBe(404);
  }, 90_000);
});
