import { afterAll, describe, expect, it } from "vitest";
import { type FunnelAnswer, type FunnelStep, funnel } from "../../src/analytics/funnel.ts";
import { migrate } from "../../src/warehouse/migrations.ts";
import { type JsonEvent, rng, storeEvents, testWarehouse, uuidFrom } from "../helpers.ts";
import { refFunnel } from "../reference.ts";

const STEPS = ["page_view", "add_to_cart", "purchase"];

/** An answer in the shape of GET /stats/funnel's, which the brute force gives. */
function asRest(answer: FunnelAnswer) {
  const step = (s: FunnelStep) => ({
    event_type: s.eventType,
    users: s.users,
    rate: s.rate,
    rate_from_previous: s.rateFromPrevious,
    median_seconds_from_previous: s.medianSecondsFromPrevious ?? null,
  });
  return {
    steps: (answer.steps ?? []).map(step),
    breakdowns: (answer.breakdowns ?? []).map((b) => ({
      value: b.value,
      steps: b.steps.map(step),
    })),
  };
}

describe("a funnel's rows as ClickHouse writes them (RowBinary)", () => {
  const warehouse = testWarehouse();
  afterAll(() => warehouse.close());

  it("reads long arrays, long and non-Latin breakdown values and missing ones, as the brute force counts", async () => {
    await migrate(warehouse);
    const random = rng(21);
    const start = Date.parse("2025-10-02T08:00:00Z");
    const events: JsonEvent[] = [];
    const at = (user: string, ms: number, type: string, country?: string) =>
      events.push({
        event_id: uuidFrom(random),
        occurred_at: new Date(start + ms).toISOString(),
        user_id: user,
        event_type: type,
        properties: country === undefined ? {} : { country },
      });
    // More than 127 events (an array's length takes two bytes), and a value
    // of more than 127 bytes (so does a string's).
    const long = "Q".repeat(300);
    for (let i = 0; i < 400; i++) {
      at("heavy", i * 600_000, STEPS[i % 3] as string, i % 2 === 0 ? long : "Україна");
    }
    // A value that is missing ($none), one each, and a user who stops at the first step.
    at("light", 0, "page_view");
    at("light", 60_000, "add_to_cart", "PL");
    at("first-only", 0, "page_view", "PL");
    await storeEvents(warehouse, events);

    const answers = new Map<string, FunnelAnswer>();
    for (const mode of ["ordered", "strict", "unordered"] as const) {
      for (const breakdown of ["", "properties.country"]) {
        const q = {
          from: "2025-10-01",
          to: "2025-10-30",
          window: "14d",
          mode,
          breakdown,
          tz: "UTC",
          segment: [],
        };
        const answer = await funnel(warehouse, { ...q, step: STEPS });
        expect(asRest(answer), `${mode} ${breakdown}`).toEqual(
          refFunnel(events, { ...q, steps: STEPS }),
        );
        answers.set(`${mode} ${breakdown}`, answer);
      }
    }
    const byCountry = answers.get("ordered properties.country");
    // The heavy user entered on a value of 300 bytes, the light one on none (ties by text).
    expect(byCountry?.breakdowns?.map((b) => [b.value, b.steps.map((s) => s.users)])).toEqual([
      ["PL", [1, 0, 0]],
      [long, [1, 1, 1]],
      ["$none", [1, 1, 0]],
    ]);
  });
});
