import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createStoredIds } from "./stored-ids.ts";

describe("the stored-ids filter", () => {
  it("never says no to an id it was given, across filters added as it fills", () => {
    const ids = createStoredIds(10_000);
    const added = Array.from({ length: 100_000 }, () => randomUUID());
    for (const id of added) ids.add(id);
    expect(added.filter((id) => !ids.mayHold(id))).toEqual([]);
    // It grew: ten times its first capacity went in.
    expect(ids.bytes).toBeGreaterThan(createStoredIds(10_000).bytes * 4);
  });

  it("says no to nearly every new id", () => {
    const ids = createStoredIds(50_000);
    for (let i = 0; i < 50_000; i++) ids.add(randomUUID());
    const fresh = Array.from({ length: 50_000 }, () => randomUUID());
    const maybe = fresh.filter((id) => ids.mayHold(id)).length;
    expect(maybe).toBeLessThan(fresh.length * 0.02);
  });

  it("reads an id the same whatever its spelling, and says maybe to text that is no UUID", () => {
    const ids = createStoredIds(1000);
    const id = "8f14e45f-ceea-467f-a0e6-1d8f1e6b0b2a";
    ids.add(id);
    expect(ids.mayHold(id.toUpperCase())).toBe(true);
    expect(ids.mayHold(`{${id}}`)).toBe(true);
    expect(ids.mayHold(id.replaceAll("-", ""))).toBe(true);
    expect(ids.mayHold("not-a-uuid")).toBe(true);
    expect(ids.mayHold("9f14e45f-ceea-467f-a0e6-1d8f1e6b0b2a")).toBe(false);
  });
});
