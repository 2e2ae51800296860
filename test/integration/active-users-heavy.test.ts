import { afterAll, describe, expect, it } from "vitest";
import { activeUsers } from "../../src/analytics/active-users.ts";
import { migrate } from "../../src/warehouse/migrations.ts";
import { rng, storeEvents, testWarehouse, uuidFrom } from "../helpers.ts";

describe("active users of a user with very many events", () => {
  // Its queries capped at 100 MB each.
  const warehouse = testWarehouse().withQueryMemoryCap(100_000_000);
  afterAll(() => warehouse.close());

  it("sweeps each user's days in memory linear in their events (raw events, MAU)", async () => {
    await migrate(warehouse);
    // One user with 20,000 events over 40 days, and ten with one event each.
    // Comparing each day with days[i - 1] inside a lambda copied the whole
    // array per element: 20,000² days, past the cap below.
    const random = rng(9);
    const first = Date.parse("2025-05-01T00:00:00Z");
    const events = Array.from({ length: 20_000 }, () => ({
      user_id: "heavy",
      ms: first + Math.floor(random() * 40 * 86_400_000),
    }));
    for (let u = 0; u < 10; u++)
      events.push({ user_id: `light-${u}`, ms: first + u * 5 * 86_400_000 });
    await storeEvents(
      warehouse,
      events.map((e) => ({
        event_id: uuidFrom(random),
        occurred_at: new Date(e.ms).toISOString(),
        user_id: e.user_id,
        event_type: "page_view",
      })),
    );

    const answer = await activeUsers(
      warehouse,
      { from: "2025-05-01", to: "2025-06-30", window: "month", tz: "UTC", segment: [] },
      { rawOnly: true },
    );

    // Brute force: users with an event in the 30 days ending on each day.
    const DAY = 86_400_000;
    const expected = answer.map(({ date }) => {
      const end = Date.parse(date) + DAY;
      const users = new Set(
        events.filter((e) => e.ms < end && e.ms >= end - 30 * DAY).map((e) => e.user_id),
      );
      return { date, activeUsers: users.size };
    });
    expect(answer).toEqual(expected);
    expect(answer.length).toBe(61);
    expect(Math.max(...answer.map((a) => a.activeUsers))).toBe(7);
  });
});
