import type { Event } from "../../gen/tally/v1/event_pb.js";

/** Limits an event must keep, from CONTRACT.md. */
export interface EventRules {
  /** How far in the future occurred_at may be, in ms. */
  readonly maxFutureSkewMs: number;
  /** Whole UTC days kept before today (TALLY_RETENTION_DAYS); an event on an earlier day is refused. */
  readonly retentionDays?: number | undefined;
}

const DAY_MS = 86_400_000;

/** The first UTC day (days since 1970) that `retentionDays` keeps at `nowMs`. */
export function firstKeptDay(retentionDays: number, nowMs: number): number {
  return Math.floor(nowMs / DAY_MS) - retentionDays;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_ID_BYTES = 256;
const MAX_PROPERTIES_BYTES = 32 * 1024;
const MAX_DEPTH = 16;
// ClickHouse DateTime64 ends in 2299; earlier than the epoch is no product event.
const MIN_TIME_MS = 0;

/**
 * Checks one event against the contract. Returns the reason it is refused,
 * naming the field ("event_id: must be a UUID"), or undefined when valid.
 * On the hot path: cheap checks first, no allocation when valid.
 */
export function validateEvent(event: Event, rules: EventRules, nowMs: number): string | undefined {
  if (event.eventId === "") return "event_id: required";
  if (!UUID.test(event.eventId)) return "event_id: must be a UUID";
  const at = event.occurredAt;
  if (at === undefined) return "occurred_at: required";
  const ms = Number(at.seconds) * 1000 + at.nanos / 1e6;
  if (!(ms >= MIN_TIME_MS)) return "occurred_at: must be after 1970-01-01T00:00:00Z";
  if (ms > nowMs + rules.maxFutureSkewMs) {
    return `occurred_at: more than ${rules.maxFutureSkewMs / 3_600_000} h in the future`;
  }
  if (
    rules.retentionDays !== undefined &&
    Math.floor(ms / DAY_MS) < firstKeptDay(rules.retentionDays, nowMs)
  ) {
    return `occurred_at: older than the ${rules.retentionDays} days kept (TALLY_RETENTION_DAYS)`;
  }
  const idReason = checkId(event.userId);
  if (idReason !== undefined) return `user_id: ${idReason}`;
  const typeReason = checkId(event.eventType);
  if (typeReason !== undefined) return `event_type: ${typeReason}`;
  return undefined;
}

function checkId(value: string): string | undefined {
  if (value === "") return "required";
  // A UTF-16 unit is at most 3 UTF-8 bytes: only long strings need measuring.
  if (value.length * 3 > MAX_ID_BYTES && Buffer.byteLength(value) > MAX_ID_BYTES) {
    return `longer than ${MAX_ID_BYTES} bytes`;
  }
  return undefined;
}

/**
 * The properties of an event as stored: JSON text, from `properties` (a
 * Struct) or from `properties_json` (text, normalized as a Struct's would
 * be), or the reason they are refused, naming the field.
 */
export function storedProperties(event: Event): { json: string } | { reason: string } {
  const text = event.propertiesJson;
  if (text === "") {
    const json = event.properties === undefined ? "{}" : JSON.stringify(event.properties);
    const reason = validateProperties(json);
    return reason === undefined ? { json } : { reason };
  }
  const field = "properties_json";
  if (event.properties !== undefined) {
    return { reason: `${field}: set properties or properties_json, not both` };
  }
  // Before parsing: a deep enough text would exhaust the parser's stack.
  if (nestingDepth(text) > MAX_DEPTH)
    return { reason: `${field}: nested deeper than ${MAX_DEPTH}` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { reason: `${field}: not valid JSON` };
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    return { reason: `${field}: must be a JSON object` };
  }
  const json = JSON.stringify(parsed);
  // Its depth is the text's, checked above: only its size is left.
  const reason = sizeReason(json, field);
  return reason === undefined ? { json } : { reason };
}

/**
 * Checks the properties' encoded JSON (as stored). Returns the reason they
 * are refused, or undefined.
 */
export function validateProperties(json: string, field = "properties"): string | undefined {
  return (
    sizeReason(json, field) ??
    (nestingDepth(json) > MAX_DEPTH ? `${field}: nested deeper than ${MAX_DEPTH}` : undefined)
  );
}

function sizeReason(json: string, field: string): string | undefined {
  // A UTF-16 unit is at most 3 UTF-8 bytes: only long texts need measuring.
  if (json.length * 3 > MAX_PROPERTIES_BYTES && Buffer.byteLength(json) > MAX_PROPERTIES_BYTES) {
    return `${field}: larger than ${MAX_PROPERTIES_BYTES / 1024} KiB`;
  }
  return undefined;
}

/** Depth of the deepest object or array in a JSON text. */
export function nestingDepth(json: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 /* { */ || c === 91 /* [ */) max = Math.max(max, ++depth);
    else if (c === 125 /* } */ || c === 93 /* ] */) depth--;
  }
  return max;
}
