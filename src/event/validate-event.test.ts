import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { EventSchema } from "../../gen/tally/v1/event_pb.js";
import { nestingDepth, validateEvent, validateProperties } from "./validate-event.ts";

const NOW = Date.parse("2025-10-28T12:00:00Z");
const rules = { maxFutureSkewMs: 86_400_000 };
const valid = () =>
  create(EventSchema, {
    eventId: "8f14e45f-ceea-467f-a0e6-1d8f1e6b0b2a",
    occurredAt: timestampFromMs(NOW),
    userId: "u1",
    eventType: "page_view",
  });

describe("validateEvent", () => {
  it("accepts a valid event, upper-case UUIDs included", () => {
    expect(validateEvent(valid(), rules, NOW)).toBeUndefined();
    expect(
      validateEvent({ ...valid(), eventId: valid().eventId.toUpperCase() }, rules, NOW),
    ).toBeUndefined();
  });

  it.each([
    [{ eventId: "" }, "event_id: required"],
    [{ eventId: "not-a-uuid" }, "event_id: must be a UUID"],
    [{ eventId: "8f14e45f-ceea-467f-a0e6-1d8f1e6b0b2a0" }, "event_id: must be a UUID"],
    [{ occurredAt: undefined }, "occurred_at: required"],
    [
      { occurredAt: timestampFromMs(NOW + 86_400_001) },
      "occurred_at: more than 24 h in the future",
    ],
    [{ occurredAt: timestampFromMs(-1000) }, "occurred_at: must be after 1970-01-01T00:00:00Z"],
    [{ userId: "" }, "user_id: required"],
    [{ userId: "é".repeat(129) }, "user_id: longer than 256 bytes"],
    [{ eventType: "" }, "event_type: required"],
    [{ eventType: "x".repeat(257) }, "event_type: longer than 256 bytes"],
  ])("refuses %o with %s", (patch, reason) => {
    expect(validateEvent({ ...valid(), ...patch }, rules, NOW)).toBe(reason);
  });

  it("takes up to 256 bytes of user_id, and the future up to the skew", () => {
    expect(validateEvent({ ...valid(), userId: "é".repeat(128) }, rules, NOW)).toBeUndefined();
    expect(
      validateEvent({ ...valid(), occurredAt: timestampFromMs(NOW + 86_400_000) }, rules, NOW),
    ).toBeUndefined();
  });
});

describe("validateProperties", () => {
  it("bounds size and depth", () => {
    expect(validateProperties(JSON.stringify({ a: "x".repeat(32_000) }))).toBeUndefined();
    expect(validateProperties(JSON.stringify({ a: "x".repeat(33_000) }))).toBe(
      "properties: larger than 32 KiB",
    );
    let deep: unknown = 1;
    for (let i = 0; i < 16; i++) deep = { a: deep };
    expect(validateProperties(JSON.stringify(deep))).toBeUndefined();
    expect(validateProperties(JSON.stringify({ b: deep }))).toBe(
      "properties: nested deeper than 16",
    );
  });

  it("ignores brackets inside strings", () => {
    expect(nestingDepth(JSON.stringify({ a: '[[[[{{{{\\"' }))).toBe(1);
    expect(nestingDepth('{"a":[{"b":[]}]}')).toBe(4);
  });
});
