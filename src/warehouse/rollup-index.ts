import { createHash } from "node:crypto";
import { sqlString } from "./inline-params.ts";
import type { Warehouse } from "./warehouse.ts";

/**
 * A property's JSON text in `column`, '' where it is missing. `keys` are SQL
 * string expressions (literals or query parameters), from the top down.
 */
export function propertyRawSql(column: string, keys: readonly string[]): string {
  return `JSONExtractRaw(${column}, ${keys.join(", ")})`;
}

/**
 * A property's value as segments compare it, from its JSON text: a string by
 * its text, a number, boolean, null, array or object by its JSON text. The
 * property rollups store exactly this, so they and the events agree.
 */
export function propertyValueSql(raw: string): string {
  return `if(startsWith(${raw}, '"'), JSONExtractString(${raw}), ${raw})`;
}

/** What gets rollups of its own: properties (dotted paths) and time zones. */
export interface RollupIndexes {
  properties: readonly string[];
  zones: readonly string[];
}

/** What {@link indexRollups} changed, as `property:PATH` and `zone:NAME`. */
export interface RollupIndexChanges {
  added: string[];
  dropped: string[];
}

/** How each kind of index fills its Null table (see migrations.ts) from the events: literals, since a view's query cannot take parameters. */
const KINDS = {
  property: {
    prefix: "prop",
    keyColumn: "path",
    // One row per event holding the property, its value as segments compare it.
    rows: (path: string, events: string) => {
      const raw = propertyRawSql("properties", path.split(".").map(sqlString));
      return `SELECT ${sqlString(path)} AS path, ${propertyValueSql("raw")} AS value, event_type,
                toDate(occurred_at) AS day, user_id, event_id
              FROM ${events}
              WHERE (${raw} AS raw) != ''`;
    },
  },
  zone: {
    prefix: "zone",
    keyColumn: "zone",
    // Every event, on its day in the zone.
    rows: (zone: string, events: string) =>
      `SELECT ${sqlString(zone)} AS zone, event_type, toDate(occurred_at, ${sqlString(zone)}) AS day,
         user_id, event_id
       FROM ${events}`,
  },
} as const;
type Kind = keyof typeof KINDS;

/**
 * Makes the indexed properties and zones exactly `wanted`. Each index has a
 * materialized view copying one row per new event into its kind's Null
 * table, whose views keep the rollups; a new index is backfilled from the
 * stored events first. Idempotent, and safe to run from several processes at
 * once: the rollups are sets, so a doubled backfill adds nothing. An index
 * counts only once its view exists and its backfill is recorded in
 * `rollup_indexes`.
 */
export async function indexRollups(
  warehouse: Warehouse,
  wanted: RollupIndexes,
): Promise<RollupIndexChanges> {
  const { db } = warehouse;
  const wantedIndexes = [
    ...wanted.properties.map((key) => index("property", key)),
    ...wanted.zones.map((key) => index("zone", key)),
  ];
  const want = new Set(wantedIndexes.map((i) => i.name));
  const recorded = (
    await warehouse.query<{ kind: Kind; key: string }>(
      `SELECT kind, key FROM ${db}.rollup_indexes FINAL ORDER BY kind, key`,
      {},
    )
  ).map(({ kind, key }) => index(kind, key));
  const views = new Set(
    (
      await warehouse.query<{ name: string }>(
        `SELECT name FROM system.tables WHERE database = {database:String} AND name LIKE 'index\\_mv\\_%'`,
        { database: warehouse.database },
      )
    ).map((r) => r.name),
  );
  const ready = new Set(recorded.filter((r) => views.has(viewName(r.name))).map((r) => r.name));
  const changes: RollupIndexChanges = { added: [], dropped: [] };

  for (const { kind, key, name } of recorded) {
    if (want.has(name)) continue;
    const { prefix, keyColumn } = KINDS[kind];
    // Forget it first: a crash part-way must not leave it counted as indexed.
    await warehouse.command(
      `DELETE FROM ${db}.rollup_indexes WHERE kind = {kind:String} AND key = {key:String}`,
      { kind, key },
    );
    await warehouse.command(`DROP VIEW IF EXISTS ${db}.${viewName(name)}`);
    for (const table of ["user_days", "day_events", "first_days"]) {
      await warehouse.command(
        `DELETE FROM ${db}.${prefix}_${table} WHERE ${keyColumn} = {key:String}`,
        { key },
      );
    }
    changes.dropped.push(name);
  }
  // A view no index owns any more (its record was forgotten, as migration 5
  // does so that every index is backfilled again) stops feeding the rollups.
  const owned = new Set(wantedIndexes.map((i) => viewName(i.name)));
  for (const view of views) {
    if (!owned.has(view)) await warehouse.command(`DROP VIEW IF EXISTS ${db}.${view}`);
  }

  for (const { kind, key, name } of wantedIndexes) {
    if (ready.has(name)) continue;
    const { prefix, rows } = KINDS[kind];
    // The view first, then the backfill: an event stored in between is read by both, and counts once.
    await warehouse.command(
      `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.${viewName(name)} TO ${db}.${prefix}_events
              AS ${rows(key, `${db}.events`)}`,
    );
    await warehouse.command(
      `INSERT INTO ${db}.${prefix}_events ${rows(key, `${db}.events FINAL`)}`,
    );
    await warehouse.insert("rollup_indexes", { format: "JSONEachRow", rows: [{ kind, key }] });
    changes.added.push(name);
  }
  return changes;
}

/** An index, named as {@link RollupIndexChanges} reports it. */
function index(kind: Kind, key: string) {
  return { kind, key, name: `${kind}:${key}` };
}

/** The view's name for an index: a path or zone may hold any text, so it is hashed. */
function viewName(name: string): string {
  return `index_mv_${createHash("sha256").update(name).digest("hex").slice(0, 16)}`;
}

/**
 * INSERTs that feed every recorded index's rollups from `events` (a table
 * or a subquery), as its view does from new events: to rebuild a user's
 * rows after a deletion.
 */
export async function indexedRollupInserts(
  warehouse: Warehouse,
  events: string,
): Promise<string[]> {
  const { db } = warehouse;
  const recorded = await warehouse.query<{ kind: Kind; key: string }>(
    `SELECT kind, key FROM ${db}.rollup_indexes FINAL ORDER BY kind, key`,
    {},
  );
  return recorded.map(({ kind, key }) => {
    const { prefix, rows } = KINDS[kind];
    return `INSERT INTO ${db}.${prefix}_events ${rows(key, events)}`;
  });
}
