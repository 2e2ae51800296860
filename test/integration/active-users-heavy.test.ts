import { afterAll, describe, expect, it } from "vitest";
import { activeUsers } from "../../src/analytics/active-users.ts";
import { migrate } from "../../src/warehouse/migrations.ts";
import type { Warehouse } from "../../src/warehouse/warehouse.ts";
import { rng, storeEvents, testWarehouse, uuidFrom } from "../helpers.ts";

const DAY = 86_400_000;

/** A user's event at `ms`. */
type Visit = { user_id: string; ms: number };

/** The visits as page views, straight into the events table. */
function storeVisits(warehouse: Warehouse, visits: readonly Visit[], random: () => number) {
  return storeEvents(
    warehouse,
    visits.map((e) => ({
      event_id: uuidFrom(random),
      occurred_at: new Date(e.ms).toISOString(),
      user_id: e.user_id,
      event_type: "page_view",
    })),
  );
}

/** Brute force: the users with a visit in the `windowDays` days ending on `date`. */
function activeOn(visits: readonly Visit[], date: string, windowDays: number) {
  const end = Date.parse(date) + DAY;
  return new Set(
    visits.filter((e) => e.ms < end && e.ms >= end - windowDays * DAY).map((e) => e.user_id),
  ).size;
}

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
    const events: Visit[] = Array.from({ length: 20_000 }, () => ({
      user_id: "heavy",
      ms: first + Math.floor(random() * 40 * DAY),
    }));
    for (let u = 0; u < 10; u++) events.push({ user_id: `light-${u}`, ms: first + u * 5 * DAY });
    await storeVisits(warehouse, events, random);

    const answer = await activeUsers(
      warehouse,
      { from: "2025-05-01", to: "2025-06-30", window: "month", tz: "UTC", segment: [] },
      { rawOnly: true },
    );

    const expected = answer.map(({ date }) => ({ date, activeUsers: activeOn(events, date, 30) }));
    expect(answer).toEqual(expected);
    expect(answer.length).toBe(61);
    expect(Math.max(...answer.map((a) => a.activeUsers))).toBe(7);
  });
});

describe("active users over short and long ranges", () => {
  const warehouse = testWarehouse();
  afterAll(() => warehouse.close());

  it("agrees with a brute force, as bit words (up to 128 days) and as sorted arrays", async () => {
    await migrate(warehouse);
    // 40 users active on scattered days over 400 days, gaps short and long:
    // runs of a window's days start and end everywhere, bit 63 and 64 included.
    const random = rng(31);
    const first = Date.parse("2025-01-01T00:00:00Z");
    const events: Visit[] = Array.from({ length: 3_000 }, () => {
      const user = Math.floor(random() * 40);
      // Each user active in a few stretches of the 400 days only.
      const stretch = Math.floor(random() * 4);
      const day = (user * 37 + stretch * 101 + Math.floor(random() * 20 * (1 + (user % 3)))) % 400;
      return { user_id: `u${user}`, ms: first + day * DAY + Math.floor(random() * DAY) };
    });
    await storeVisits(warehouse, events, random);
    const day = (d: number) => new Date(first + d * DAY).toISOString().slice(0, 10);
    const brute = (from: number, to: number, windowDays: number) =>
      Array.from({ length: to - from + 1 }, (_, i) => ({
        date: day(from + i),
        activeUsers: activeOn(events, day(from + i), windowDays),
      }));
    const cases = [
      ["week", 7, 0, 0],
      ["month", 30, 0, 98], // bit words: the first window's first day is bit 0, the last day bit 127
      ["week", 7, 57, 120], // bit words: runs across bits 63 and 64
      ["month", 30, 0, 99], // 129 days: sorted arrays
      ["month", 30, 3, 399], // sorted arrays, the first window before the data
      ["week", 7, 57, 190],
      ["day", 1, 10, 300],
    ] as const;
    for (const [window, windowDays, from, to] of cases) {
      const want = brute(from, to, windowDays);
      const q = { from: day(from), to: day(to), window, tz: "UTC", segment: [] };
      expect({ q, answer: await activeUsers(warehouse, q) }).toEqual({ q, answer: want });
      const raw = await activeUsers(warehouse, q, { rawOnly: true });
      expect({ q, raw }).toEqual({ q, raw: want });
    }
    // The data has substance: windows with several users, and empty ones.
    const all = brute(0, 420, 30).map((a) => a.activeUsers);
    expect(Math.max(...all)).toBeGreaterThan(5);
  });
});
