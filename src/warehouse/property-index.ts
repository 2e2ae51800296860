import { createHash } from "node:crypto";
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
 * property indexes store exactly this, so they and the events agree.
 */
export function propertyValueSql(raw: string): string {
  return `if(startsWith(${raw}, '"'), JSONExtractString(${raw}), ${raw})`;
}

/** What {@link indexProperties} changed. */
export interface PropertyIndexChanges {
  added: string[];
  dropped: string[];
}

/**
 * Makes the indexed properties exactly `paths` (dotted: `device.os`). Each
 * indexed path has a materialized view copying its value from every new event
 * into `property_values`, whose views keep the property rollups; a new path is
 * backfilled from the stored events first. Idempotent, and safe to run from
 * several processes at once: the rollups are sets, so a doubled backfill adds
 * nothing. A path counts as indexed only once its view exists and its backfill
 * is recorded in `property_indexes`.
 */
export async function indexProperties(
  warehouse: Warehouse,
  paths: readonly string[],
): Promise<PropertyIndexChanges> {
  const { db, client } = warehouse;
  const recorded = (
    await warehouse.rows<{ path: string }>(`SELECT path FROM ${db}.property_indexes FINAL`, {})
  ).map((r) => r.path);
  const views = new Set(
    (
      await warehouse.rows<{ name: string }>(
        `SELECT name FROM system.tables WHERE database = {database:String} AND name LIKE 'prop\\_mv\\_%'`,
        { database: warehouse.database },
      )
    ).map((r) => r.name),
  );
  const ready = new Set(recorded.filter((p) => views.has(viewName(p))));
  const changes: PropertyIndexChanges = { added: [], dropped: [] };

  for (const path of recorded) {
    if (paths.includes(path)) continue;
    // Forget it first: a crash part-way must not leave it counted as indexed.
    await client.command({
      query: `DELETE FROM ${db}.property_indexes WHERE path = {path:String}`,
      query_params: { path },
    });
    await client.command({ query: `DROP VIEW IF EXISTS ${db}.${viewName(path)}` });
    for (const table of ["prop_user_days", "prop_day_events", "prop_first_days"]) {
      await client.command({
        query: `DELETE FROM ${db}.${table} WHERE path = {path:String}`,
        query_params: { path },
      });
    }
    changes.dropped.push(path);
  }

  for (const path of paths) {
    if (ready.has(path)) continue;
    // The view first, then the backfill: an event stored in between is read by both, and counts once.
    await client.command({
      query: `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.${viewName(path)} TO ${db}.property_values
              AS ${propertyRows(path, `${db}.events`)}`,
    });
    await client.command({
      query: `INSERT INTO ${db}.property_values ${propertyRows(path, `${db}.events FINAL`)}`,
    });
    await client.insert({
      table: `${db}.property_indexes`,
      columns: ["path"],
      values: [{ path }],
      format: "JSONEachRow",
    });
    changes.added.push(path);
  }
  return changes;
}

/** The view's name for a path: any text may be a path, so it is hashed. */
function viewName(path: string): string {
  return `prop_mv_${createHash("sha256").update(path).digest("hex").slice(0, 16)}`;
}

/**
 * One `property_values` row per event holding the property. A view's query
 * cannot take parameters, so the path travels as escaped string literals.
 */
function propertyRows(path: string, events: string): string {
  const raw = propertyRawSql("properties", path.split(".").map(sqlString));
  return `SELECT ${sqlString(path)} AS path, ${propertyValueSql("raw")} AS value, event_type,
            toDate(occurred_at) AS day, user_id, event_id
          FROM ${events}
          WHERE (${raw} AS raw) != ''`;
}

/** A ClickHouse string literal. */
function sqlString(text: string): string {
  return `'${text.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
}
