import { objectOr, type SourceEvent, timeMs } from "./map-event.ts";

/** The message type each of analytics.js's short routes and the long ones stand for. */
const ROUTE_TYPES: Record<string, string> = {
  track: "track",
  t: "track",
  page: "page",
  p: "page",
  screen: "screen",
  s: "screen",
  identify: "identify",
  i: "identify",
  group: "group",
  g: "group",
  alias: "alias",
  a: "alias",
};

/** Tally's event type of each Segment message type but track (which names its own). */
const EVENT_TYPES: Record<string, string> = {
  page: "$pageview",
  screen: "$screen",
  identify: "$identify",
  group: "$groupidentify",
  alias: "$create_alias",
};

/** Segment's routes (RudderStack's too): `/v1/<name>`, the name after /v1/. */
export const SEGMENT_ROUTES = new Set(["batch", "b", ...Object.keys(ROUTE_TYPES)]);

/**
 * The events of a Segment (or RudderStack) request to `/v1/<route>`: a
 * `batch` of messages, or one message. Each message's time is its
 * `timestamp` corrected for the sender's clock as Segment does
 * (receivedAt - (sentAt - timestamp)), else `originalTimestamp` alike.
 */
export function segmentEvents(route: string, payload: unknown, nowMs: number) {
  const body = objectOr(payload);
  const batch = route === "batch" || route === "b";
  const messages: unknown[] = batch ? (Array.isArray(body.batch) ? body.batch : []) : [body];
  const events = messages.map((raw): SourceEvent => {
    const m = objectOr(raw);
    const type = typeof m.type === "string" ? m.type : (ROUTE_TYPES[route] ?? "track");
    const properties: Record<string, unknown> = { ...objectOr(m.properties) };
    if (m.context !== undefined) properties.$context = m.context;
    if (m.traits !== undefined) properties.$set = m.traits;
    if (type === "group" && m.groupId !== undefined) properties.$group_id = m.groupId;
    if (type === "alias" && m.previousId !== undefined) properties.$previous_id = m.previousId;
    if ((type === "page" || type === "screen") && m.name !== undefined) properties.$name = m.name;
    const sentAt = timeMs(m.sentAt ?? body.sentAt);
    const stamped = timeMs(m.timestamp) ?? timeMs(m.originalTimestamp);
    return {
      source: "segment",
      id: m.messageId,
      users: [m.userId, m.anonymousId],
      anonymousId: m.anonymousId,
      eventType: type === "track" ? m.event : EVENT_TYPES[type],
      occurredAtMs:
        stamped === undefined
          ? undefined
          : sentAt === undefined
            ? stamped
            : nowMs - (sentAt - stamped),
      rawTime: m.timestamp ?? m.originalTimestamp,
      properties,
    };
  });
  return { events, key: typeof body.writeKey === "string" ? body.writeKey : undefined };
}

/**
 * What analytics.js reads from `GET /v1/projects/{writeKey}/settings` to
 * start: its Segment.io destination pointed back at this host.
 */
export function segmentSettings(writeKey: string, host: string, protocol: "http" | "https") {
  return {
    integrations: {
      "Segment.io": {
        apiKey: writeKey,
        apiHost: `${host}/v1`,
        protocol,
        unbundledIntegrations: [],
        addBundledMetadata: false,
      },
    },
    plan: {
      track: { __default: { enabled: true, integrations: {} } },
      identify: { __default: { enabled: true } },
      group: { __default: { enabled: true } },
    },
    edgeFunction: {},
    analyticsNextEnabled: true,
    middlewareSettings: {},
    enabledMiddleware: {},
    metrics: { sampleRate: 0 },
    legacyVideoPluginsEnabled: false,
    remotePlugins: [],
  };
}
