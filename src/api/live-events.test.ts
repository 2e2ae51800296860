import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { type Event, EventSchema } from "../../gen/tally/v1/event_pb.js";
import { LiveEvents, type TailChunk } from "./live-events.ts";

const event = (i: number, eventType = "click", userId = "u1"): Event =>
  create(EventSchema, { eventId: `e${i}`, eventType, userId });
const ids = (chunk: TailChunk | undefined) => chunk?.events.map((e) => e.eventId);

describe("LiveEvents", () => {
  it("says it is live, then passes on only what the filter matches, in order", async () => {
    const live = new LiveEvents();
    const tail = live.subscribe({ eventType: "click", userId: "" }, new AbortController().signal);
    expect(await tail.next()).toEqual({ done: false, value: { events: [], skipped: 0 } });
    expect(live.listening).toBe(true);
    live.publish([event(1), event(2, "view"), event(3, "click", "u2")]);
    expect(ids((await tail.next()).value)).toEqual(["e1", "e3"]);

    const byUser = live.subscribe({ eventType: "", userId: "u2" }, new AbortController().signal);
    await byUser.next();
    live.publish([event(4), event(5, "view", "u2")]);
    expect(ids((await byUser.next()).value)).toEqual(["e5"]);
    expect(ids((await tail.next()).value)).toEqual(["e4"]);
  });

  it("skips a slow subscriber's oldest events, counted, and never blocks the publisher", async () => {
    const live = new LiveEvents(3);
    const tail = live.subscribe({ eventType: "", userId: "" }, new AbortController().signal);
    await tail.next();
    // Nobody reads while ten events are published: publish returns at once.
    for (let i = 0; i < 10; i++) live.publish([event(i)]);
    expect((await tail.next()).value).toMatchObject({ skipped: 7 });
    live.publish([event(10)]);
    expect((await tail.next()).value).toMatchObject({ skipped: 0, events: [{ eventId: "e10" }] });
  });

  it("ends a subscription when its caller goes away, and every one on close", async () => {
    const live = new LiveEvents();
    const gone = new AbortController();
    const a = live.subscribe({ eventType: "", userId: "" }, gone.signal);
    const b = live.subscribe({ eventType: "", userId: "" }, new AbortController().signal);
    await Promise.all([a.next(), b.next()]);
    const waitingA = a.next();
    gone.abort();
    expect(await waitingA).toEqual({ done: true, value: undefined });
    expect(live.listening).toBe(true);
    const waitingB = b.next();
    live.close();
    expect(await waitingB).toEqual({ done: true, value: undefined });
    expect(live.listening).toBe(false);
  });
});
