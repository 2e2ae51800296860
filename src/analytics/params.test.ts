import { describe, expect, it } from "vitest";
import {
  formatDay,
  mondayOf,
  parseBounded,
  parseDay,
  parseRange,
  parseTimeZone,
  today,
} from "./params.ts";
import { parseSegments, segmentsSql } from "./segments.ts";

describe("analytics parameters", () => {
  it("parses calendar dates only", () => {
    expect(formatDay(parseDay("from", "2024-02-29"))).toBe("2024-02-29");
    expect(() => parseDay("from", "2025-02-29")).toThrow(
      'from: "2025-02-29" is not a calendar date',
    );
    expect(() => parseDay("to", "28.10.2025")).toThrow(/^to: expected a date as YYYY-MM-DD/);
  });

  it("checks ranges, naming the parameter", () => {
    expect(parseRange("2025-01-01", "2025-01-01")).toEqual({ from: 20089, to: 20089 });
    expect(() => parseRange("", "2025-01-01")).toThrow(/^from: required/);
    expect(() => parseRange("2025-01-02", "2025-01-01")).toThrow(/^from: 2025-01-02 is after to/);
    expect(() => parseRange("2015-01-01", "2025-01-01")).toThrow(/^to: the range may span at most/);
  });

  it("finds ISO Mondays", () => {
    expect(formatDay(mondayOf(parseDay("d", "2025-10-26")))).toBe("2025-10-20"); // a Sunday
    expect(formatDay(mondayOf(parseDay("d", "2025-10-27")))).toBe("2025-10-27");
  });

  it("checks zones and bounds", () => {
    expect(parseTimeZone("")).toBe("UTC");
    expect(parseTimeZone("Europe/Kyiv")).toBe("Europe/Kyiv");
    expect(() => parseTimeZone("Mars/Base")).toThrow(/^tz: "Mars\/Base" is not an IANA time zone/);
    expect(parseBounded("limit", undefined, 1, 1000, 10)).toBe(10);
    expect(() => parseBounded("limit", 0, 1, 1000, 10)).toThrow(
      /^limit: must be a whole number from 1 to 1000/,
    );
    expect(formatDay(today("Pacific/Kiritimati", new Date("2025-10-28T12:00:00Z")))).toBe(
      "2025-10-29",
    );
  });
});

describe("segments", () => {
  it("parses event_type and nested properties", () => {
    expect(
      parseSegments(["event_type:purchase", "properties.plan.tier:pro", "properties.n:"]),
    ).toEqual([
      { field: "event_type", value: "purchase" },
      { field: "properties", path: ["plan", "tier"], value: "pro" },
      { field: "properties", path: ["n"], value: "" },
    ]);
  });

  it.each(["country:UA", "properties:UA", "properties.:UA", "properties.a..b:1", "event_type"])(
    "refuses %s naming segment",
    (raw) => {
      expect(() => parseSegments([raw])).toThrow(
        /^segment: .*expected event_type:VALUE or properties\.KEY:VALUE/,
      );
    },
  );

  it("never splices values or keys into SQL", () => {
    const { sql, params } = segmentsSql(
      parseSegments(["properties.x');DROP TABLE t;--:1' OR 1=1"]),
    );
    expect(sql).not.toContain("DROP");
    expect(sql).not.toContain("OR 1=1");
    expect(Object.values(params)).toEqual(["1' OR 1=1", "x');DROP TABLE t;--"]);
  });
});
