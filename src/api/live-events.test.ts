import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { EventSchema } from "../../gen/tally/v1/event_pb.js";
import { encodeRow } from "../event/row-format.ts";
import { createMemoryLiveFeed, type LiveFeed } from "../queue/live-feed.ts";
import { LiveEvents, type TailChunk } from "./live-events.ts";

/** A batch body as the queue carries it. */
const body = (...events: [id: number, type?: string, user?: string][]) =>
  Buffer.from(
    events
      .map(([i, eventType = "click", userId = "u1"]) =>
        encodeRow(
          create(EventSchema, {
            eventId: `e${i}`,
            occurredAt: timestampFromMs(0),
            eventType,
            userId,
          }),
          "{}",
          "1970-01-01 00:00:00.000000",
        ),
      )
      .join(""),
  );
const ids = (chunk: TailChunk | undefined) => chunk?.events.map((e) => e.eventId);

/** The in-process feed, counting who listens. */
function countingFeed() {
  const feed = createMemoryLiveFeed();
  let listening = 0;
  const counted: LiveFeed = {
    ...feed,
    async listen(onRows) {
      const stop = await feed.listen(onRows);
      listening++;
      return async () => {
        listening--;
        await stop();
      };
    },
  };
  return { feed: counted, listening: () => listening };
}

describe("LiveEvents", () => {
  it("says it is live, then passes on only what the filter matches, in order", async () => {
    const { feed } = countingFeed();
    const live = new LiveEvents(feed);
    const tail = live.subscribe({ eventType: "click", userId: "" }, new AbortController().signal);
    expect(await tail.next()).toEqual({ done: false, value: { events: [], skipped: 0 } });
    feed.share(body([1], [2, "view"], [3, "click", "u2"]));
    expect(ids((await tail.next()).value)).toEqual(["e1", "e3"]);

    const byUser = live.subscribe({ eventType: "", userId: "u2" }, new AbortController().signal);
    await byUser.next();
    feed.share(body([4], [5, "view", "u2"]));
    expect(ids((await byUser.next()).value)).toEqual(["e5"]);
    expect(ids((await tail.next()).value)).toEqual(["e4"]);
  });

  it("skips a slow subscriber's oldest events, counted, and never blocks the feed", async () => {
    const { feed } = countingFeed();
    const live = new LiveEvents(feed, 3);
    const tail = live.subscribe({ eventType: "", userId: "" }, new AbortController().signal);
    await tail.next();
    // Nobody reads while ten batches arrive: sharing returns at once.
    for (let i = 0; i < 10; i++) feed.share(body([i]));
    expect((await tail.next()).value).toMatchObject({ skipped: 7 });
    feed.share(body([10]));
    expect((await tail.next()).value).toMatchObject({ skipped: 0, events: [{ eventId: "e10" }] });
  });

  it("listens to the feed only while someone subscribes, and ends every tail on close", async () => {
    const { feed, listening } = countingFeed();
    const live = new LiveEvents(feed);
    expect(listening()).toBe(0);
    const gone = new AbortController();
    const a = live.subscribe({ eventType: "", userId: "" }, gone.signal);
    const b = live.subscribe({ eventType: "", userId: "" }, new AbortController().signal);
    await Promise.all([a.next(), b.next()]);
    expect(listening()).toBe(1);
    const waitingA = a.next();
    gone.abort();
    expect(await waitingA).toEqual({ done: true, value: undefined });
    expect(listening()).toBe(1);
    const waitingB = b.next();
    live.close();
    expect(await waitingB).toEqual({ done: true, value: undefined });
    expect(listening()).toBe(0);
  });

  it("refuses a tail past its bound of tails at once, and takes one again once another ends", async () => {
    const { feed } = countingFeed();
    const live = new LiveEvents(feed, 10, 2);
    const first = new AbortController();
    const a = live.subscribe({ eventType: "", userId: "" }, first.signal);
    const b = live.subscribe({ eventType: "", userId: "" }, new AbortController().signal);
    await Promise.all([a.next(), b.next()]);
    const c = live.subscribe({ eventType: "", userId: "" }, new AbortController().signal);
    await expect(c.next()).rejects.toMatchObject({ code: Code.ResourceExhausted });
    const ending = a.next();
    first.abort();
    await ending;
    const d = live.subscribe({ eventType: "", userId: "" }, new AbortController().signal);
    expect(await d.next()).toEqual({ done: false, value: { events: [], skipped: 0 } });
    live.close();
  });
});
