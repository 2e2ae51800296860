import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { EventSchema } from "../../gen/tally/v1/event_pb.js";
import {
  nestingDepth,
  storedProperties,
  validateEvent,
  validateProperties,
} from "./validate-event.ts";

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

describe("storedProperties", () => {
  it("stores properties_json as the same Struct would be stored", () => {
    const props = { plan: "pro", n: 1.5, ok: true, none: null, tags: ["a", 2], d: { os: "ios" } };
    const struct = storedProperties({ ...valid(), properties: props });
    const text = storedProperties({
      ...valid(),
      propertiesJson: ` ${JSON.stringify(props, null, 2)} `,
    });
    expect(text).toEqual(struct);
    expect(text).toEqual({ json: JSON.stringify(props) });
    expect(storedProperties(valid())).toEqual({ json: "{}" });
  });

  it.each([
    ["{oops", "properties_json: not valid JSON"],
    ["[1]", "properties_json: must be a JSON object"],
    ["null", "properties_json: must be a JSON object"],
    ['"text"', "properties_json: must be a JSON object"],
    [`{"a":"${"x".repeat(33_000)}"}`, "properties_json: larger than 32 KiB"],
    [`${"[".repeat(100_000)}${"]".repeat(100_000)}`, "properties_json: nested deeper than 16"],
    [`{"a":${"[".repeat(16)}${"]".repeat(16)}}`, "properties_json: nested deeper than 16"],
  ])("refuses properties_json %s, naming the field", (text, reason) => {
    expect(storedProperties({ ...valid(), propertiesJson: text })).toEqual({ reason });
  });

  it("refuses both forms at once", () => {
    expect(
      storedProperties({ ...valid(), properties: { a: 1 }, propertiesJson: '{"a":1}' }),
    ).toEqual({
      reason: "properties_json: set properties or properties_json, not both",
    });
  });
});
