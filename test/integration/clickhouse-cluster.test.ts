import { afterAll, describe, expect, it } from "vitest";
import { onCluster, tableDefinitions } from "../../src/warehouse/cluster.ts";
import { compactRollups } from "../../src/warehouse/compact.ts";
import { carryOutDeletions, requestDeletion } from "../../src/warehouse/deletions.ts";
import { MIGRATIONS, migrate } from "../../src/warehouse/migrations.ts";
import { applyRetention } from "../../src/warehouse/retention.ts";
import { indexRollups } from "../../src/warehouse/rollup-index.ts";
import type { Warehouse } from "../../src/warehouse/warehouse.ts";
import { sameDayEvents, storeEvents, testWarehouse } from "../helpers.ts";

const CLUSTER = "tally_cluster";

/**
 * No ClickHouse server (let alone a cluster) runs here: the whole life of
 * a warehouse runs on chDB (migrations, indexing, events, a deletion,
 * retention, compaction), and every statement it issued is rewritten for a
 * cluster and parsed by chDB's own parser (EXPLAIN AST).
 */
describe("the schema on a ClickHouse cluster (TALLY_CLICKHOUSE_CLUSTER; parsed by chDB)", () => {
  const real = testWarehouse();
  afterAll(() => real.close());
  const issued: { sql: string; params?: Record<string, unknown> }[] = [];
  const recording: Warehouse = {
    ...real,
    async command(sql, params) {
      issued.push({ sql, params });
      await real.command(sql, params);
    },
  };
  const tables = tableDefinitions(MIGRATIONS.flatMap((m) => m.statements(real.db)));
  const clustered = (sql: string) => onCluster(sql, CLUSTER, tables);

  it("rewrites every statement a warehouse's life issues into a form ClickHouse parses", async () => {
    await migrate(recording);
    await indexRollups(recording, { properties: ["plan"], zones: ["Europe/Paris"] });
    await storeEvents(real, sameDayEvents(50, 7, "page_view", 5));
    await requestDeletion(recording, "u1");
    expect(await carryOutDeletions(recording, { settleMs: 0 })).toHaveLength(1);
    await applyRetention(recording, Math.floor(Date.parse("2025-10-29") / 86_400_000));
    await compactRollups(recording);
    await indexRollups(recording, { properties: [], zones: [] });
    // What compaction runs once a month's rollup has many parts (this one has few).
    issued.push({ sql: `OPTIMIZE TABLE ${real.db}.user_days PARTITION ID '202510' FINAL` });
    const verbs = new Set(issued.map(({ sql }) => sql.trim().split(/\s+/)[0]));
    expect([...verbs].sort()).toEqual([
      "ALTER",
      "CREATE",
      "DELETE",
      "DROP",
      "INSERT",
      "OPTIMIZE",
      "TRUNCATE",
    ]);
    const failures: string[] = [];
    for (const { sql, params } of issued) {
      for (const statement of clustered(sql)) {
        try {
          await real.queryBytes(`EXPLAIN AST ${statement}`, params ?? {}, "TabSeparatedRaw");
        } catch (err) {
          failures.push(`${statement}\n  -> ${String(err).slice(0, 300)}`);
        }
      }
    }
    expect(failures).toEqual([]);
    // The parser does refuse what is not ClickHouse.
    await expect(
      real.queryBytes(`EXPLAIN AST CREATE TABLE t ON CLUSTER (x)`, {}, "TabSeparatedRaw"),
    ).rejects.toThrow(/Syntax error/);
  });

  it("shards the events and every user's rows by user_id, replicates each shard, and runs DDL on every node", () => {
    const db = real.db;
    const [events, eventsTable] = clustered(MIGRATIONS[0]?.statements(db)[0] as string);
    expect(events).toContain(
      `CREATE TABLE IF NOT EXISTS ${db}.events_local ON CLUSTER '${CLUSTER}'`,
    );
    expect(events).toContain(
      "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', version)",
    );
    expect(eventsTable).toContain(
      `ENGINE = Distributed('${CLUSTER}', '${real.database}', 'events_local', sipHash64(user_id))`,
    );
    // A view reads the rows inserted on its own node and writes its node's rollup.
    const view = clustered(
      `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.user_days_mv TO ${db}.user_days AS SELECT 1 FROM ${db}.events`,
    );
    expect(view).toEqual([
      `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.user_days_mv ON CLUSTER '${CLUSTER}' TO ${db}.user_days_local AS SELECT 1 FROM ${db}.events_local`,
    ]);
    // Rows without a user_id: kept by the views beside their events; an insert through it goes by event_id.
    const dayEvents = clustered(
      `CREATE TABLE IF NOT EXISTS ${db}.day_events (day Date, event_id UUID) ENGINE = ReplacingMergeTree ORDER BY day`,
    );
    expect(dayEvents[1]).toMatch(
      /Distributed\('tally_cluster', '[^']+', 'day_events_local', sipHash64\(event_id\)\)$/,
    );
    // Bookkeeping is on every node whole; deletes and merges reach every shard.
    expect(
      clustered(
        `CREATE TABLE IF NOT EXISTS ${db}.schema_migrations (version UInt32) ENGINE = ReplacingMergeTree ORDER BY version`,
      ),
    ).toEqual([
      `CREATE TABLE IF NOT EXISTS ${db}.schema_migrations ON CLUSTER '${CLUSTER}' (version UInt32) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{database}/{table}', '{replica}') ORDER BY version`,
    ]);
    expect(clustered(`DELETE FROM ${db}.user_days WHERE user_id = 'x'`)).toEqual([
      `DELETE FROM ${db}.user_days_local ON CLUSTER '${CLUSTER}' WHERE user_id = 'x'`,
    ]);
    expect(clustered(`INSERT INTO ${db}.user_days SELECT 1`)).toEqual([
      `INSERT INTO ${db}.user_days SELECT 1`,
    ]);
    expect(() => clustered("RENAME TABLE a TO b")).toThrow(/no cluster form/);
  });
});
