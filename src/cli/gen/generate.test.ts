import { describe, expect, it } from "vitest";
import { validateEvent } from "../../event/validate-event.ts";
import { readHeader, rowToEvent } from "../import/csv-events.ts";
import { csvRecords } from "../import/csv-records.ts";
import { type GenOptions, generateCsv } from "./generate.ts";

const options: GenOptions = {
  rows: 20_000,
  users: 300,
  fromMs: Date.parse("2025-10-01T00:00:00Z"),
  days: 14,
  eventTypes: 12,
  dupRate: 0.05,
  seed: 7,
};
const text = (o: GenOptions) => [...generateCsv(o)].join("");

describe("generateCsv", () => {
  it("is reproducible by seed", () => {
    expect(text({ ...options, rows: 500 })).toBe(text({ ...options, rows: 500 }));
    expect(text({ ...options, rows: 500, seed: 8 })).not.toBe(text({ ...options, rows: 500 }));
  });

  it("writes rows that Tally's import reads and accepts, with skew and repeats as asked", async () => {
    async function* one() {
      yield text(options);
    }
    const ids = new Map<string, number>();
    const types = new Map<string, number>();
    const users = new Set<string>();
    let header: ReturnType<typeof readHeader> | undefined;
    let rows = 0;
    for await (const record of csvRecords(one())) {
      expect(record.error).toBeUndefined();
      if (header === undefined) {
        header = readHeader(record.fields ?? []);
        continue;
      }
      const event = rowToEvent(record.fields ?? [], header);
      if (typeof event === "string") throw new Error(event);
      expect(
        validateEvent(event, { maxFutureSkewMs: 0 }, Date.parse("2025-10-15T00:00:00Z")),
      ).toBeUndefined();
      expect(JSON.parse(event.propertiesJson)).toMatchObject({
        device: { os: expect.any(String) },
      });
      ids.set(event.eventId, (ids.get(event.eventId) ?? 0) + 1);
      types.set(event.eventType, (types.get(event.eventType) ?? 0) + 1);
      users.add(event.userId);
      rows++;
    }
    expect(rows).toBe(options.rows);
    const repeats = rows - ids.size;
    expect(repeats / rows).toBeGreaterThan(0.04);
    expect(repeats / rows).toBeLessThan(0.06);
    const counts = [...types.values()].sort((a, b) => b - a);
    expect(types.size).toBe(12);
    expect((counts[0] ?? 0) + (counts[1] ?? 0)).toBeGreaterThan(rows * 0.4); // a few types dominate
    expect(users.size).toBeLessThanOrEqual(300);
  });
});
