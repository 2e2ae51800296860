import { randomUUID } from "node:crypto";
import { clickhouseTime, escapeTsv } from "../event/row-format.ts";
import { DELETE_SETTINGS, plainRollups, userEventsSql } from "./migrations.ts";
import { indexedRollupInserts } from "./rollup-index.ts";
import type { Warehouse } from "./warehouse.ts";

/** A deletion of a user's events, as recorded. */
export interface Deletion {
  deletionId: string;
  userId: string;
  status: "pending" | "done";
  eventsDeleted: number;
  /** ms since the epoch: the user's events from before this are deleted. */
  requestedAt: number;
  completedAt: number | undefined;
}

interface DeletionRow {
  id: string;
  user_id: string;
  status: "pending" | "done";
  events_deleted: string;
  requested_ms: string;
  completed_ms: string | null;
}

// Aliases unlike the columns': an alias would stand for its column in WHERE.
const COLUMNS = `toString(deletion_id) AS id, user_id, status, events_deleted,
  toString(toUnixTimestamp64Milli(requested_at)) AS requested_ms,
  if(completed_at IS NULL, NULL, toString(toUnixTimestamp64Milli(assumeNotNull(completed_at)))) AS completed_ms`;

function fromRow(r: DeletionRow): Deletion {
  return {
    deletionId: r.id,
    userId: r.user_id,
    status: r.status,
    eventsDeleted: Number(r.events_deleted),
    requestedAt: Number(r.requested_ms),
    completedAt: r.completed_ms === null ? undefined : Number(r.completed_ms),
  };
}

async function record(warehouse: Warehouse, d: Deletion): Promise<void> {
  await warehouse.insert("deletions", {
    format: "JSONEachRow",
    rows: [
      {
        deletion_id: d.deletionId,
        user_id: d.userId,
        requested_at: clickhouseTime(d.requestedAt),
        status: d.status,
        events_deleted: d.eventsDeleted,
        completed_at: d.completedAt === undefined ? null : clickhouseTime(d.completedAt),
        // updated_at is the insert's time: the latest version of a deletion wins.
      },
    ],
  });
}

/**
 * Records that `userId`'s events from before now are to be deleted, and
 * answers the receipt. Recorded once stored: it survives a restart, and
 * from then on it is a tombstone. A deletion of the same user still
 * pending is answered instead of a new one.
 */
export async function requestDeletion(
  warehouse: Warehouse,
  userId: string,
  now = Date.now(),
): Promise<Deletion> {
  const [pending] = await warehouse.query<DeletionRow>(
    `SELECT ${COLUMNS} FROM ${warehouse.db}.deletions FINAL
     WHERE user_id = {user:String} AND status = 'pending' ORDER BY requested_at LIMIT 1`,
    { user: userId },
  );
  if (pending !== undefined) return fromRow(pending);
  const deletion: Deletion = {
    deletionId: randomUUID(),
    userId,
    status: "pending",
    eventsDeleted: 0,
    requestedAt: now,
    completedAt: undefined,
  };
  await record(warehouse, deletion);
  return deletion;
}

export async function getDeletion(
  warehouse: Warehouse,
  deletionId: string,
): Promise<Deletion | undefined> {
  const [row] = await warehouse.query<DeletionRow>(
    `SELECT ${COLUMNS} FROM ${warehouse.db}.deletions FINAL
     WHERE deletion_id = toUUIDOrNull({id:String})`,
    { id: deletionId },
  );
  return row === undefined ? undefined : fromRow(row);
}

/**
 * Every deleted user, as the consumer matches rows: the user_id escaped as
 * in a row, and the latest request's time in a row's text form. A row of
 * theirs that occurred before it is dropped.
 */
export async function loadTombstones(warehouse: Warehouse): Promise<Map<string, string>> {
  const rows = await warehouse.query<{ user_id: string; at: string }>(
    `SELECT user_id, toString(toUnixTimestamp64Milli(max(requested_at))) AS at
     FROM ${warehouse.db}.deletions FINAL GROUP BY user_id`,
    {},
  );
  return new Map(rows.map((r) => [escapeTsv(r.user_id), clickhouseTime(Number(r.at))]));
}

/** Where {@link carryOut} may stop on purpose, for the tests that kill it there. */
export type DeletionStep = "captured" | "events" | "rollups";

/**
 * Carries out the pending deletions requested at least `settleMs` ago (the
 * consumers' tombstones have been refreshed since), oldest first. Returns
 * those now done.
 */
export async function carryOutDeletions(
  warehouse: Warehouse,
  options: { settleMs: number; stopAfter?: (step: DeletionStep) => Promise<void> },
): Promise<Deletion[]> {
  const pending = await warehouse.query<DeletionRow>(
    `SELECT ${COLUMNS} FROM ${warehouse.db}.deletions FINAL
     WHERE status = 'pending' AND requested_at <= now64(3) - toIntervalMillisecond({settle:UInt64})
     ORDER BY requested_at`,
    { settle: options.settleMs },
  );
  const done: Deletion[] = [];
  for (const row of pending) {
    const d = await carryOut(warehouse, fromRow(row), options.stopAfter);
    if (d !== undefined) done.push(d);
  }
  return done;
}

/**
 * Deletes the user's events from before the request from the events and
 * every table kept from them, then rebuilds the user's rollup rows from
 * what is left (their events after the request). Each step may run again:
 * a crash part-way is finished by the next run. Done only once no event
 * of theirs from before the request is stored, so a flush that raced the
 * tombstone is caught by the next run.
 */
async function carryOut(
  warehouse: Warehouse,
  d: Deletion,
  stopAfter: (step: DeletionStep) => Promise<void> = async () => {},
): Promise<Deletion | undefined> {
  const { db } = warehouse;
  const params = { id: d.deletionId, user: d.userId, at: clickhouseTime(d.requestedAt) };
  const before = "user_id = {user:String} AND occurred_at < toDateTime64({at:String}, 3, 'UTC')";
  const run = (sql: string) => warehouse.command(sql, params);
  // 1. Which events go: kept, so that the rollups keyed by event can be cleared after them.
  await run(
    `INSERT INTO ${db}.deleted_events SELECT toUUID({id:String}), event_id
     FROM ${db}.user_events WHERE ${before}`,
  );
  await stopAfter("captured");
  // 2. The events, and the tables that copy them.
  for (const table of ["events", "events_by_time", "user_events"]) {
    await run(`DELETE FROM ${db}.${table} WHERE ${before} ${DELETE_SETTINGS}`);
  }
  await stopAfter("events");
  // 3. The rollups: the user's rows, and the deleted events' rows.
  const taken = `event_id IN (SELECT event_id FROM ${db}.deleted_events WHERE deletion_id = toUUID({id:String}))`;
  for (const prefix of ["", "prop_", "zone_"]) {
    await run(
      `DELETE FROM ${db}.${prefix}user_days WHERE user_id = {user:String} ${DELETE_SETTINGS}`,
    );
    await run(
      `DELETE FROM ${db}.${prefix}first_days WHERE user_id = {user:String} ${DELETE_SETTINGS}`,
    );
    await run(`DELETE FROM ${db}.${prefix}day_events WHERE ${taken} ${DELETE_SETTINGS}`);
  }
  await run(`DELETE FROM ${db}.user_activity WHERE user_id = {user:String} ${DELETE_SETTINGS}`);
  await stopAfter("rollups");
  // 4. The user's rollup rows again, from their events left. day_events
  // lost only the deleted events' rows: the rest are still there (and on a
  // cluster, only its views write it, beside each event: warehouse/cluster.ts).
  const left = `(${userEventsSql(db)})`;
  for (const [table, columns, select] of plainRollups(left)) {
    if (table === "day_events") continue;
    await run(`INSERT INTO ${db}.${table} (${columns}) ${select}`);
  }
  for (const insert of await indexedRollupInserts(warehouse, left)) await run(insert);
  // 5. Done once nothing of theirs from before is stored (a late insert means another run;
  // every insert into the events reaches user_events by its view).
  const [{ n } = { n: "0" }] = await warehouse.query<{ n: string }>(
    `SELECT count() AS n FROM ${db}.user_events WHERE ${before}`,
    params,
  );
  if (Number(n) > 0) return undefined;
  const [{ count } = { count: "0" }] = await warehouse.query<{ count: string }>(
    `SELECT uniqExact(event_id) AS count FROM ${db}.deleted_events
     WHERE deletion_id = toUUID({id:String})`,
    params,
  );
  const done: Deletion = {
    ...d,
    status: "done",
    eventsDeleted: Number(count),
    completedAt: Date.now(),
  };
  await record(warehouse, done);
  return done;
}
