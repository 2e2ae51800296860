import { validate as isUuid, v5 as uuidv5, v7 as uuidv7 } from "uuid";

/** Where an SDK event came from, as `properties.$source` says. */
export type Source = "segment" | "posthog" | "amplitude";

/** Tally's namespace for the UUIDv5 of a source's non-UUID ids: fixed, so a retry maps alike. */
export const SOURCE_ID_NAMESPACE = "3b1f2c9e-7a64-4d0b-9c2e-5f8a1d6e4b73";

/** A Tally event in its JSON wire form, as POST /events takes it. */
export interface WireEvent {
  event_id: string;
  occurred_at: string;
  user_id: string;
  event_type: string;
  properties: Record<string, unknown>;
}

/** What a source's adapter read off one of its events. */
export interface SourceEvent {
  source: Source;
  /** The source's id of the event (messageId, uuid, insert_id), if any. */
  id: unknown;
  /** The user: the first of these that is a non-empty string or a number. */
  users: readonly unknown[];
  /** An anonymous id, kept as `$anonymous_id` when a user id came first. */
  anonymousId?: unknown;
  eventType: unknown;
  /** When it happened, in ms since the epoch, if the source says. */
  occurredAtMs: number | undefined;
  /** The source's own text for the time, kept when it is clamped. */
  rawTime?: unknown;
  properties: Record<string, unknown>;
}

/** Options of {@link toWireEvent}. */
export interface MapOptions {
  /** When the request arrived. */
  nowMs: number;
  /** How far ahead of now an event may be before it is clamped to now. */
  maxFutureSkewMs: number;
}

/**
 * The one mapping step every source shares: ids (a UUID as is, else the
 * UUIDv5 of "<source>:<id>", none: a new UUIDv7), the user (numbers become
 * strings; none leaves it empty, which validation refuses by name), the
 * time (clamped to now past the allowed skew, the raw value kept), and
 * `$source`, `$source_id` and `$anonymous_id` among the properties.
 */
export function toWireEvent(e: SourceEvent, o: MapOptions): WireEvent {
  const properties: Record<string, unknown> = { ...e.properties, $source: e.source };
  let eventId: string;
  const rawId = idText(e.id);
  if (rawId === undefined) eventId = uuidv7();
  else {
    eventId = isUuid(rawId)
      ? rawId.toLowerCase()
      : uuidv5(`${e.source}:${rawId}`, SOURCE_ID_NAMESPACE);
    properties.$source_id = rawId;
  }
  const user = e.users.map(idText).find((u) => u !== undefined) ?? "";
  const anonymous = idText(e.anonymousId);
  if (anonymous !== undefined && anonymous !== user) properties.$anonymous_id = anonymous;
  let at = e.occurredAtMs ?? o.nowMs;
  if (!Number.isFinite(at)) at = o.nowMs;
  if (at > o.nowMs + o.maxFutureSkewMs) {
    properties.$source_timestamp = e.rawTime ?? new Date(at).toISOString();
    at = o.nowMs;
  }
  return {
    event_id: eventId,
    occurred_at: new Date(at).toISOString(),
    user_id: user,
    event_type: typeof e.eventType === "string" ? e.eventType : "",
    properties,
  };
}

/** An id as text: a non-empty string, or a finite number; else undefined. */
function idText(v: unknown): string | undefined {
  if (typeof v === "string") return v.trim() === "" ? undefined : v;
  if (typeof v === "number" && Number.isFinite(v)) return String(v);
  return undefined;
}

/** A time in ms from an ISO string, a Date's JSON, or ms; undefined when absent or unreadable. */
export function timeMs(v: unknown): number | undefined {
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (typeof v !== "string" || v === "") return undefined;
  const ms = Date.parse(v);
  return Number.isNaN(ms) ? undefined : ms;
}

/** `v` if it is a plain JSON object, else an empty one. */
export function objectOr(v: unknown): Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : {};
}
