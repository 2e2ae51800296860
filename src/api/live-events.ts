import { Code, ConnectError } from "@connectrpc/connect";
import type { Event } from "../../gen/tally/v1/event_pb.js";
import { decodeRows } from "../event/row-format.ts";
import type { LiveFeed } from "../queue/live-feed.ts";

/** Which events a subscriber wants; an empty field matches all. */
export interface TailFilter {
  eventType: string;
  userId: string;
}

/** Events in the order accepted, after `skipped` that the subscriber had no room for. */
export interface TailChunk {
  events: Event[];
  skipped: number;
}

/**
 * Accepted events, fanned out to live subscribers (TailEvents). They come
 * from the live feed, so a tail sees what every API process accepts; the
 * feed is listened to only while someone subscribes. Each subscriber has a
 * bounded buffer: one that reads too slowly loses its oldest events,
 * counted, so it never slows ingest and always sees the freshest ones; and
 * there are at most `maxSubscribers` at once, so that what tails hold in
 * memory is bounded too.
 */
export class LiveEvents {
  readonly #subscribers = new Set<Subscriber>();
  readonly #feed: LiveFeed;
  readonly #capacity: number;
  readonly #maxSubscribers: number;
  /** Listening to the feed, while anyone subscribes: resolves to its stop. */
  #listening: Promise<() => Promise<void>> | undefined;

  /**
   * @param capacity events buffered per subscriber
   * @param maxSubscribers tails at once; one more is refused with RESOURCE_EXHAUSTED
   */
  constructor(feed: LiveFeed, capacity = 10_000, maxSubscribers = 256) {
    this.#feed = feed;
    this.#capacity = capacity;
    this.#maxSubscribers = maxSubscribers;
  }

  /**
   * The events that `filter` matches from now on, until `signal` aborts or
   * {@link close}. The first chunk is empty: it says the subscription is live.
   */
  async *subscribe(filter: TailFilter, signal: AbortSignal): AsyncGenerator<TailChunk> {
    if (this.#subscribers.size >= this.#maxSubscribers) {
      throw new ConnectError(
        `at most ${this.#maxSubscribers} live tails at once; close one or retry later`,
        Code.ResourceExhausted,
      );
    }
    const s = new Subscriber(filter, this.#capacity);
    this.#subscribers.add(s);
    const stop = () => s.end();
    signal.addEventListener("abort", stop, { once: true });
    try {
      await this.#listen();
      yield { events: [], skipped: 0 };
      for (;;) {
        const chunk = await s.next();
        if (chunk === undefined) return;
        yield chunk;
      }
    } finally {
      signal.removeEventListener("abort", stop);
      this.#subscribers.delete(s);
      if (this.#subscribers.size === 0) await this.#unlisten();
    }
  }

  /** Ends every subscription (on shutdown, so no stream holds the drain). */
  close(): void {
    for (const s of this.#subscribers) s.end();
  }

  async #listen() {
    this.#listening ??= this.#feed.listen((body) => {
      if (this.#subscribers.size === 0) return;
      const events = decodeRows(body);
      for (const s of this.#subscribers) s.offer(events);
    });
    try {
      await this.#listening;
    } catch (err) {
      this.#listening = undefined;
      throw new ConnectError(
        `the live feed is unavailable; retry later (${err instanceof Error ? err.message : String(err)})`,
        Code.Unavailable,
      );
    }
  }

  async #unlisten() {
    const listening = this.#listening;
    this.#listening = undefined;
    await listening?.then((stop) => stop()).catch(() => {});
  }
}

class Subscriber {
  #pending: Event[] = [];
  #skipped = 0;
  #ended = false;
  #wake: (() => void) | undefined;
  readonly filter: TailFilter;
  readonly capacity: number;

  constructor(filter: TailFilter, capacity: number) {
    this.filter = filter;
    this.capacity = capacity;
  }

  offer(events: readonly Event[]) {
    const { eventType, userId } = this.filter;
    const before = this.#pending.length;
    for (const e of events) {
      if (eventType !== "" && e.eventType !== eventType) continue;
      if (userId !== "" && e.userId !== userId) continue;
      this.#pending.push(e);
    }
    if (this.#pending.length === before) return;
    const over = this.#pending.length - this.capacity;
    if (over > 0) {
      this.#pending = this.#pending.slice(over);
      this.#skipped += over;
    }
    this.#wake?.();
  }

  end() {
    this.#ended = true;
    this.#wake?.();
  }

  /** The next chunk once there is one; undefined once ended. */
  async next(): Promise<TailChunk | undefined> {
    while (this.#pending.length === 0 && !this.#ended) {
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
      this.#wake = undefined;
    }
    if (this.#ended) return undefined;
    const chunk = { events: this.#pending, skipped: this.#skipped };
    this.#pending = [];
    this.#skipped = 0;
    return chunk;
  }
}
