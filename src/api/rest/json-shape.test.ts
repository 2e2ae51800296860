import { describe, expect, it } from "vitest";
import { GetRetentionResponseSchema } from "../../../gen/tally/v1/analytics_pb.js";
import { EventSchema } from "../../../gen/tally/v1/event_pb.js";
import { checkElement, restJson } from "./json-shape.ts";

describe("REST JSON shapes", () => {
  it("turns 64-bit counts into numbers, nested and repeated", () => {
    const json = {
      cohorts: [{ cohort: "2025-10-27", size: "3", retained: ["3", "1"], rates: [1, 0.333] }],
    };
    expect(restJson(GetRetentionResponseSchema, json)).toEqual({
      cohorts: [{ cohort: "2025-10-27", size: 3, retained: [3, 1], rates: [1, 0.333] }],
    });
  });

  it("accepts a non-negative integer user_id and names bad fields", () => {
    expect(checkElement(EventSchema, { user_id: 7 })).toEqual({ user_id: "7" });
    expect(checkElement(EventSchema, { user_id: -1 })).toBe(
      "user_id: expected a string or a non-negative integer",
    );
    expect(checkElement(EventSchema, { occurred_at: "yesterday" })).toMatch(
      /^occurred_at: expected an RFC 3339/,
    );
    expect(checkElement(EventSchema, { properties: [1] })).toBe(
      "properties: expected a JSON object",
    );
    expect(checkElement(EventSchema, { colour: "red" })).toBe("colour: unknown field");
    expect(checkElement(EventSchema, "event")).toBe("must be a JSON object");
  });
});
