import { objectOr, type SourceEvent } from "./map-event.ts";

/** Fields of an Amplitude event that Tally maps itself; the rest describe the device: `$context`. */
const MAPPED = new Set([
  "user_id",
  "device_id",
  "event_type",
  "time",
  "insert_id",
  "event_properties",
  "user_properties",
  "groups",
  "group_properties",
]);

/** Amplitude's name for each field Tally refuses by its own name. */
export const AMPLITUDE_FIELD: Record<string, string> = {
  event_id: "insert_id",
  occurred_at: "time",
  user_id: "user_id",
  event_type: "event_type",
  properties: "event_properties",
};

/** The events of an Amplitude HTTP V2 or Batch request: `{api_key, events: [...]}`. */
export function amplitudeEvents(payload: unknown) {
  const body = objectOr(payload);
  const list: unknown[] = Array.isArray(body.events) ? body.events : [];
  const events = list.map((raw): SourceEvent => {
    const e = objectOr(raw);
    const properties: Record<string, unknown> = { ...objectOr(e.event_properties) };
    if (e.user_properties !== undefined) properties.$set = e.user_properties;
    if (e.groups !== undefined) properties.$groups = e.groups;
    if (e.group_properties !== undefined) properties.$group_set = e.group_properties;
    const context: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(e)) if (!MAPPED.has(k)) context[k] = v;
    if (Object.keys(context).length > 0) properties.$context = context;
    return {
      source: "amplitude",
      id: e.insert_id,
      users: [e.user_id, e.device_id],
      anonymousId: e.device_id,
      eventType: e.event_type,
      occurredAtMs: typeof e.time === "number" ? e.time : undefined,
      rawTime: e.time,
      properties,
    };
  });
  return { events, key: typeof body.api_key === "string" ? body.api_key : undefined };
}

/** Whether a request to `/batch` is Amplitude's (an `events` list) rather than PostHog's. */
export function isAmplitudeBatch(payload: unknown): boolean {
  const body = objectOr(payload);
  return Array.isArray(body.events) && !Array.isArray(body.batch);
}
