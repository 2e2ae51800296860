import { objectOr, type SourceEvent, timeMs } from "./map-event.ts";

/** PostHog's capture routes. */
export const POSTHOG_ROUTES = new Set(["/batch", "/capture", "/e", "/i/v0/e", "/track"]);

/** Where PostHog's SDKs put the project key: never stored among an event's properties. */
const KEY_FIELDS = ["api_key", "token", "$token"];

/**
 * The events of a PostHog capture request: `{api_key, batch: [...]}`
 * (posthog-node), an array of events (posthog-js), or one event. An event's
 * time is its `timestamp` corrected by the request's `sent_at`, else
 * now - `offset` (ms), else now.
 */
export function posthogEvents(payload: unknown, nowMs: number) {
  const body = Array.isArray(payload) ? {} : objectOr(payload);
  const list: unknown[] = Array.isArray(payload)
    ? payload
    : Array.isArray(body.batch)
      ? body.batch
      : [body];
  let key = firstKey(body);
  const sentAt = timeMs(body.sent_at);
  const events = list.map((raw): SourceEvent => {
    const e = objectOr(raw);
    const props = objectOr(e.properties);
    key ??= firstKey(props) ?? firstKey(e);
    const properties: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(props)) if (!KEY_FIELDS.includes(k)) properties[k] = v;
    if (e.$set !== undefined) properties.$set = e.$set;
    if (e.$set_once !== undefined) properties.$set_once = e.$set_once;
    const stamped = timeMs(e.timestamp);
    const sent = timeMs(e.sent_at) ?? sentAt;
    const offset = typeof e.offset === "number" ? e.offset : undefined;
    return {
      source: "posthog",
      id: e.uuid,
      users: [e.distinct_id, e.$distinct_id, props.distinct_id, props.$distinct_id],
      eventType: e.event,
      occurredAtMs:
        stamped !== undefined
          ? sent === undefined
            ? stamped
            : nowMs - (sent - stamped)
          : offset === undefined
            ? undefined
            : nowMs - offset,
      rawTime: e.timestamp,
      properties,
    };
  });
  return { events, key };
}

function firstKey(o: Record<string, unknown>): string | undefined {
  for (const f of KEY_FIELDS) if (typeof o[f] === "string" && o[f] !== "") return o[f] as string;
  return undefined;
}
