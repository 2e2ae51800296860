import { NOT_ACTIVITY_SQL } from "../event/activity.ts";
import { clickhouseTime } from "../event/row-format.ts";
import { userEventsSql } from "../warehouse/migrations.ts";
import type { Warehouse } from "../warehouse/warehouse.ts";
import { InvalidParameterError, parseBounded } from "./params.ts";

/** What is stored about one user. */
export interface Person {
  userId: string;
  /** RFC 3339, UTC. */
  firstSeen: string;
  lastSeen: string;
  events: number;
  activeDays: number;
}

const iso = (ms: string | number) => new Date(Number(ms)).toISOString();

/** The user's first and last event, how many, and on how many UTC days they were active; undefined if none. */
export async function person(warehouse: Warehouse, userId: string): Promise<Person | undefined> {
  const [row] = await warehouse.query<{
    events: string;
    days: string;
    first: string;
    last: string;
  }>(
    `SELECT count() AS events,
            uniqExactIf(toDate(occurred_at), event_type NOT IN ${NOT_ACTIVITY_SQL}) AS days,
            toString(toUnixTimestamp64Milli(min(occurred_at))) AS first,
            toString(toUnixTimestamp64Milli(max(occurred_at))) AS last
     FROM (${userEventsSql(warehouse.db)})`,
    { user: userId },
  );
  if (row === undefined || Number(row.events) === 0) return undefined;
  return {
    userId,
    firstSeen: iso(row.first),
    lastSeen: iso(row.last),
    events: Number(row.events),
    activeDays: Number(row.days),
  };
}

/** One stored event, as sent. */
export interface StoredEvent {
  eventId: string;
  occurredAt: number;
  userId: string;
  eventType: string;
  /** The properties' JSON text. */
  properties: string;
}

/** A page's place: after the event at this time and id, going back in time. */
function parseCursor(before: string): { at: string; id: string } | undefined {
  if (before === "") return undefined;
  const text = Buffer.from(before, "base64url").toString("utf8");
  const m = /^(\d{1,15}) ([0-9a-f-]{36})$/.exec(text);
  if (m === null) {
    throw new InvalidParameterError("before", "not a cursor this service gave: pass `next` as is");
  }
  return { at: clickhouseTime(Number(m[1])), id: m[2] as string };
}

const cursorOf = (e: StoredEvent) =>
  Buffer.from(`${e.occurredAt} ${e.eventId}`).toString("base64url");

/**
 * The user's stored events, newest first (by occurred_at, then event_id as
 * text; a UUID as UInt128 sorts as its text does),
 * `limit` at a time (1..1000, default 100); `next` continues after the
 * page's last, and is undefined after the last page.
 */
export async function personEvents(
  warehouse: Warehouse,
  q: { userId: string; limit?: number | undefined; before: string },
): Promise<{ events: StoredEvent[]; next: string | undefined }> {
  const limit = parseBounded("limit", q.limit, 1, 1000, 100);
  const cursor = parseCursor(q.before);
  const { db } = warehouse;
  const after =
    cursor === undefined
      ? ""
      : "AND (occurred_at, toUInt128(event_id)) < (toDateTime64({at:String}, 3, 'UTC'), toUInt128(toUUID({id:String})))";
  const rows = await warehouse.query<{
    id: string;
    at: string;
    type: string;
    properties: string;
  }>(
    `SELECT toString(event_id) AS id, toString(toUnixTimestamp64Milli(occurred_at)) AS at,
            toString(event_type) AS type, properties
     FROM ${db}.events FINAL
     WHERE event_id IN (
         SELECT event_id FROM ${db}.user_events
         WHERE user_id = {user:String} ${after}
         GROUP BY occurred_at, event_id
         ORDER BY occurred_at DESC, toUInt128(event_id) DESC LIMIT {take:UInt32})
       AND user_id = {user:String}
     ORDER BY occurred_at DESC, toUInt128(event_id) DESC`,
    { user: q.userId, take: limit + 1, ...cursor },
  );
  const events = rows.map((r) => ({
    eventId: r.id,
    occurredAt: Number(r.at),
    userId: q.userId,
    eventType: r.type,
    properties: r.properties,
  }));
  const page = events.slice(0, limit);
  const last = page.at(-1);
  return { events: page, next: events.length > limit && last ? cursorOf(last) : undefined };
}
