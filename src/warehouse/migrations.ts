import type { Warehouse } from "./warehouse.ts";

/** One step of the schema. Never edit a step once released: add another. */
interface Migration {
  version: number;
  name: string;
  statements: (db: string) => string[];
}

/**
 * The events table keeps every stored row. Its sorting key is the event_id
 * alone, so every copy of an event collapses into one, whatever its other
 * fields say; `version` falls as acceptance time rises, so the copy that
 * survives (at merge time, and in every `FINAL` query before it) is the
 * first accepted one.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "events table",
    statements: (db) => [
      `CREATE TABLE IF NOT EXISTS ${db}.events (
        event_id UUID,
        occurred_at DateTime64(3, 'UTC'),
        user_id String,
        event_type LowCardinality(String),
        properties String CODEC(ZSTD(1)),
        accepted_at DateTime64(6, 'UTC'),
        version UInt64 MATERIALIZED 18446744073709551615 - toUInt64(toUnixTimestamp64Micro(accepted_at))
      )
      ENGINE = ReplacingMergeTree(version)
      ORDER BY event_id`,
    ],
  },
];

/** Creates the database and applies the migrations it has not seen, in order. */
export async function migrate(warehouse: Warehouse): Promise<number[]> {
  const { db, client } = warehouse;
  await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${db}` });
  await client.command({
    query: `CREATE TABLE IF NOT EXISTS ${db}.schema_migrations (
      version UInt32, name String, applied_at DateTime DEFAULT now()
    ) ENGINE = ReplacingMergeTree ORDER BY version`,
  });
  const done = new Set(
    (
      await warehouse.rows<{ version: number }>(`SELECT version FROM ${db}.schema_migrations`, {})
    ).map((r) => Number(r.version)),
  );
  const applied: number[] = [];
  for (const m of MIGRATIONS) {
    if (done.has(m.version)) continue;
    // Statements are idempotent, so two processes starting at once is harmless.
    for (const query of m.statements(db)) await client.command({ query });
    await client.insert({
      table: `${db}.schema_migrations`,
      columns: ["version", "name"],
      values: [{ version: m.version, name: m.name }],
      format: "JSONEachRow",
    });
    applied.push(m.version);
  }
  return applied;
}
