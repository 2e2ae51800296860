import { describe, expect, it } from "vitest";
import { amplitudeEvents } from "./amplitude.ts";
import { type SourceEvent, toWireEvent } from "./map-event.ts";
import { posthogEvents } from "./posthog.ts";
import { segmentEvents } from "./segment.ts";

const now = Date.parse("2025-10-28T12:00:00.000Z");
const options = { nowMs: now, maxFutureSkewMs: 86_400_000 };
const base: SourceEvent = {
  source: "segment",
  id: undefined,
  users: ["u1"],
  eventType: "e",
  occurredAtMs: now,
  properties: {},
};

describe("the one mapping step", () => {
  it("keeps a UUID id, maps any other to a stable UUIDv5 of '<source>:<id>', and makes a UUIDv7 for none", () => {
    const uuid = "0B3F5F0E-9A55-4D8C-8D5E-2A1F6C3B7E91";
    expect(toWireEvent({ ...base, id: uuid }, options)).toMatchObject({
      event_id: uuid.toLowerCase(),
      properties: { $source: "segment", $source_id: uuid },
    });
    const a = toWireEvent({ ...base, id: "msg-1" }, options);
    expect(a.event_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-/);
    expect(toWireEvent({ ...base, id: "msg-1" }, options).event_id).toBe(a.event_id); // a retry
    expect(toWireEvent({ ...base, source: "posthog", id: "msg-1" }, options).event_id).not.toBe(
      a.event_id,
    );
    expect(toWireEvent(base, options).event_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
  });

  it("takes the first user id given (numbers as text), keeps the anonymous one, and leaves none empty", () => {
    expect(
      toWireEvent({ ...base, users: [undefined, 42], anonymousId: 42 }, options),
    ).toMatchObject({
      user_id: "42",
      properties: {},
    });
    expect(
      toWireEvent({ ...base, users: ["u9", "anon"], anonymousId: "anon" }, options).properties,
    ).toMatchObject({
      $anonymous_id: "anon",
    });
    expect(toWireEvent({ ...base, users: ["", null] }, options).user_id).toBe("");
  });

  it("clamps a time past the allowed skew to now, keeping the raw value", () => {
    const ahead = toWireEvent(
      {
        ...base,
        occurredAtMs: Date.parse("2099-01-01T00:00:00Z"),
        rawTime: "2099-01-01T00:00:00Z",
      },
      options,
    );
    expect(ahead.occurred_at).toBe("2025-10-28T12:00:00.000Z");
    expect(ahead.properties.$source_timestamp).toBe("2099-01-01T00:00:00Z");
  });
});

describe("each source's fields", () => {
  it("Segment: types, traits, context, and the sender's clock corrected by sentAt", () => {
    const { events, key } = segmentEvents(
      "batch",
      {
        writeKey: "wk",
        sentAt: "2025-10-28T12:00:10.000Z",
        batch: [
          {
            type: "track",
            event: "Buy",
            userId: "u",
            timestamp: "2025-10-28T12:00:05.000Z",
            context: { ip: "1" },
            integrations: { x: 1 },
          },
          { type: "identify", userId: "u", traits: { plan: "pro" } },
          { type: "page", anonymousId: "a", name: "Home" },
        ],
      },
      now,
    );
    expect(key).toBe("wk");
    const [track, identify, page] = events.map((e) => toWireEvent(e, options));
    // 5 s before the sender's sentAt: 5 s before we received it.
    expect(track).toMatchObject({
      event_type: "Buy",
      occurred_at: "2025-10-28T11:59:55.000Z",
      properties: { $context: { ip: "1" } },
    });
    expect(JSON.stringify(track)).not.toContain("integrations");
    expect(identify).toMatchObject({
      event_type: "$identify",
      properties: { $set: { plan: "pro" } },
    });
    expect(page).toMatchObject({
      event_type: "$pageview",
      user_id: "a",
      properties: { $name: "Home" },
    });
  });

  it("PostHog: the distinct id wherever it is, keys left out, offset times", () => {
    const { events, key } = posthogEvents(
      [
        {
          event: "$pageview",
          properties: { token: "tk", $distinct_id: "d1", $current_url: "/" },
          offset: 2000,
        },
      ],
      now,
    );
    expect(key).toBe("tk");
    const [view] = events.map((e) => toWireEvent(e, options));
    expect(view).toMatchObject({ user_id: "d1", occurred_at: "2025-10-28T11:59:58.000Z" });
    expect(view?.properties).not.toHaveProperty("token");
  });

  it("Amplitude: user or device, event and user properties, device fields as context", () => {
    const { events, key } = amplitudeEvents({
      api_key: "ak",
      events: [
        {
          device_id: "dev",
          event_type: "Play",
          time: now - 1000,
          event_properties: { s: 1 },
          user_properties: { p: 2 },
          platform: "iOS",
          insert_id: "ins-1",
        },
      ],
    });
    expect(key).toBe("ak");
    expect(toWireEvent(events[0] as SourceEvent, options)).toMatchObject({
      user_id: "dev",
      event_type: "Play",
      occurred_at: "2025-10-28T11:59:59.000Z",
      properties: {
        s: 1,
        $set: { p: 2 },
        $context: { platform: "iOS" },
        $source: "amplitude",
        $source_id: "ins-1",
      },
    });
  });
});
