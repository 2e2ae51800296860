import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Tally } from "../../src/app/tally.ts";
import { firstKeptDay } from "../../src/event/validate-event.ts";
import { applyRetention } from "../../src/warehouse/retention.ts";
import { rest } from "../clients.ts";
import {
  type JsonEvent,
  realServices,
  rng,
  start,
  storeEvents,
  testConfig,
  uuidFrom,
  waitFor,
  warehouseCounts,
} from "../helpers.ts";
import {
  refDau,
  refFunnel,
  refLifecycle,
  refRetention,
  refStickiness,
  refTopEvents,
  refTrends,
} from "../reference.ts";

const DAY_MS = 86_400_000;
const KEEP = 30;
const TYPES = ["page_view", "page_view", "click", "signup", "purchase", "$identify"];

describe("TALLY_RETENTION_DAYS: older events leave every stat (RabbitMQ, Redis, chDB)", () => {
  let tally: Tally;
  let port: number;
  const now = Date.now();
  const today = Math.floor(now / DAY_MS);
  const day = (d: number) => new Date(d * DAY_MS).toISOString().slice(0, 10);
  let events: JsonEvent[];

  beforeAll(async () => {
    tally = await start(
      testConfig({
        ...realServices(),
        TALLY_RETENTION_DAYS: String(KEEP),
        TALLY_INDEXED_PROPERTIES: "country",
        TALLY_INDEXED_TIME_ZONES: "Europe/Kyiv,America/New_York",
      }),
    );
    port = tally.port as number;
    // 60 days of history stored as an import from before the setting would have.
    const random = rng(90);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)] as T;
    events = Array.from({ length: 2500 }, () => ({
      event_id: uuidFrom(random),
      occurred_at: new Date((today - 60) * DAY_MS + Math.floor(random() * 61 * DAY_MS))
        .toISOString()
        .replace(/\.\d+Z$/, ".000Z"),
      user_id: `u${Math.floor(random() ** 2 * 40)}`,
      event_type: pick(TYPES),
      properties: { country: pick(["UA", "PL"]) },
    }));
    // Some exactly at the cut's midnight, and just before it.
    const cut = firstKeptDay(KEEP, now) * DAY_MS;
    for (const [i, at] of [cut, cut - 1, cut + 3_600_000, cut - 3_600_000].entries()) {
      (events[i] as JsonEvent).occurred_at = new Date(at).toISOString();
    }
    await storeEvents(tally.warehouse, events);
  }, 60_000);
  afterAll(async () => {
    await tally?.close();
  });

  it("refuses an event older than the days kept, naming the setting", async () => {
    const random = rng(91);
    const onTime: JsonEvent = {
      event_id: uuidFrom(random),
      occurred_at: new Date(firstKeptDay(KEEP, now) * DAY_MS).toISOString(),
      user_id: "late",
      event_type: "click",
    };
    const res = await rest(port, "/events", [
      {
        event_id: uuidFrom(random),
        occurred_at: new Date((firstKeptDay(KEEP, now) - 1) * DAY_MS + 1000).toISOString(),
        user_id: "late",
        event_type: "click",
      },
      onTime,
    ]);
    // The first day kept is kept.
    events.push(onTime);
    await waitFor(
      () => warehouseCounts(tally),
      (c) => c.ids === events.length,
    );
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({
      accepted: 1,
      rejected: [
        {
          index: 0,
          reason: `occurred_at: older than the ${KEEP} days kept (TALLY_RETENTION_DAYS)`,
        },
      ],
    });
  });

  it("forgets events before the first day kept in every stat and every zone, and again does nothing", async () => {
    const firstDay = firstKeptDay(KEEP, now);
    const forgotten = await applyRetention(tally.warehouse, firstDay);
    const kept = events.filter((e) => Math.floor(Date.parse(e.occurred_at) / DAY_MS) >= firstDay);
    expect(forgotten).toBe(events.length - kept.length);
    expect(await applyRetention(tally.warehouse, firstDay)).toBe(0);
    const [from, to] = [day(today - 45), day(today)];
    for (const tz of ["UTC", "Europe/Kyiv", "America/New_York"]) {
      for (const segment of [[], ["properties.country:UA"], ["event_type:click"]]) {
        const q = `tz=${tz}${segment.map((s) => `&segment=${encodeURIComponent(s)}`).join("")}`;
        const get = async (path: string) => {
          const r = await rest(port, `${path}&${q}`);
          expect(r.status, `${path}: ${JSON.stringify(r.body)}`).toBe(200);
          return r.body;
        };
        const range = `from=${from}&to=${to}`;
        expect(await get(`/stats/dau?${range}`)).toEqual(refDau(kept, from, to, tz, segment));
        expect(await get(`/stats/top-events?${range}&limit=10`)).toEqual(
          refTopEvents(kept, from, to, tz, 10, segment),
        );
        expect(
          await get(
            `/stats/retention?start_date=${from}&end_date=${to}&windows=3&granularity=week`,
          ),
        ).toEqual(refRetention(kept, from, to, 3, tz, "week", segment));
        expect(await get(`/stats/lifecycle?${range}&interval=day`)).toEqual(
          refLifecycle(kept, from, to, "day", tz, segment),
        );
        expect(await get(`/stats/stickiness?${range}&interval=week`)).toEqual(
          refStickiness(kept, from, to, "week", tz, segment),
        );
        expect(await get(`/stats/trends?${range}&interval=day&measure=users`)).toEqual({
          series: refTrends(kept, {
            from,
            to,
            eventType: "",
            interval: "day",
            measure: "users",
            breakdown: "",
            limit: 5,
            tz,
            segment,
          }),
        });
        expect(await get(`/stats/funnel?${range}&step=page_view&step=purchase&window=7d`)).toEqual(
          refFunnel(kept, {
            from,
            to,
            steps: ["page_view", "purchase"],
            window: "7d",
            mode: "ordered",
            breakdown: "",
            tz,
            segment,
          }),
        );
      }
    }
  }, 60_000);
});
