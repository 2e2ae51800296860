/**
 * The schema on a ClickHouse cluster (TALLY_CLICKHOUSE_CLUSTER): every
 * statement Tally writes for one server, rewritten for a cluster. Each
 * table `T` becomes `T_local` on every node, `Replicated*MergeTree` with
 * its replicas in `/clickhouse/tables/{shard}/{database}/{table}`, and a
 * `Distributed` table `T` in front of it that reads every shard and writes
 * by `sipHash64(user_id)`: a user's events, and their rows of every rollup
 * the views keep, live on one shard, so retention, funnels and a person's
 * data are answered shard by shard (queries run with
 * `distributed_product_mode = 'local'`). Tables without a user_id
 * (day_events and its indexed twins) are kept by the views on each shard,
 * beside their events; Tally inserts into them only in the migrations'
 * backfills, which find no events on a new cluster (their Distributed
 * table shards by event_id, so that such an insert works at all). An
 * existing database is moved onto a cluster by export and import, not by
 * turning this on. The small bookkeeping tables are replicated to every
 * node instead of sharded.
 * DDL, DELETE, OPTIMIZE and TRUNCATE run `ON CLUSTER`.
 */

import { MIGRATIONS } from "./migrations.ts";
import type { Warehouse } from "./warehouse.ts";

/** Tables every node holds whole (one replica set across the cluster): read locally. */
const EVERYWHERE = new Set(["schema_migrations", "rollup_indexes", "deletions", "deleted_events"]);

/** The local table of `T`, which holds a shard's rows. */
const local = (table: string) => `${table}_local`;

/** The database and table of a name as Tally writes it: `` `db`.table `` or `db.table`. */
const NAME = String.raw`((?:\x60[^\x60]+\x60|\w+))\.(\w+)`;

const CREATE_TABLE = new RegExp(
  String.raw`^CREATE TABLE IF NOT EXISTS ${NAME}\s*\(([\s\S]*)\)\s*ENGINE = ([\s\S]*)$`,
);

/** A rule: the statements it matches, and their cluster form from the match's groups. */
type Groups = [string, string, string, string, string, string];
type Rule = [RegExp, (groups: Groups, text: string) => string[]];

/**
 * A cluster's statements for `sql`, a statement written for one server.
 * `tables` gives the tables' definitions, for `CREATE TABLE t AS u` (see
 * {@link tableDefinitions}). A statement no rule knows is an error, so
 * that a new kind of statement gets a cluster form before it ships.
 */
export function onCluster(
  sql: string,
  cluster: string,
  tables: ReadonlyMap<string, TableDefinition> = new Map(),
): string[] {
  const on = `ON CLUSTER '${cluster}'`;
  const rules: Rule[] = [
    [
      /^CREATE DATABASE IF NOT EXISTS (\S+)$/,
      ([db]) => [`CREATE DATABASE IF NOT EXISTS ${db} ${on}`],
    ],
    [
      CREATE_TABLE,
      ([db, table, columns, engine]) => createTable(db, table, columns, engine, cluster),
    ],
    [
      new RegExp(`^CREATE TABLE IF NOT EXISTS ${NAME} AS ${NAME}$`),
      ([db, table, , source]) => {
        const known = tables.get(source);
        if (known === undefined)
          throw new Error(`no definition of ${source}, the source of ${table}`);
        return createTable(db, table, known.columns, known.engine, cluster, local(source));
      },
    ],
    [
      new RegExp(
        String.raw`^CREATE MATERIALIZED VIEW (IF NOT EXISTS )?${NAME}\s+TO\s+${NAME}\s+AS\s+([\s\S]*)$`,
      ),
      ([ifNot = "", db, view, , target, select]) => {
        // The view runs on each node, over the rows inserted there: local to local.
        const fromLocal = select.replace(
          new RegExp(`FROM ${NAME}`, "g"),
          (_all, d: string, t: string) => `FROM ${d}.${EVERYWHERE.has(t) ? t : local(t)}`,
        );
        return [
          `CREATE MATERIALIZED VIEW ${ifNot}${db}.${view} ${on} TO ${db}.${local(target)} AS ${fromLocal}`,
        ];
      },
    ],
    [
      new RegExp(`^DROP VIEW IF EXISTS ${NAME}$`),
      ([db, view]) => [`DROP VIEW IF EXISTS ${db}.${view} ${on}`],
    ],
    [
      new RegExp(String.raw`^(ALTER TABLE|OPTIMIZE TABLE|TRUNCATE TABLE) ${NAME}([\s\S]*)$`),
      ([verb, db, table, rest]) => {
        if (EVERYWHERE.has(table)) return [`${verb} ${db}.${table} ${on}${rest}`];
        const statements = [`${verb} ${db}.${local(table)} ${on}${rest}`];
        // The Distributed table needs a new column too, to read it.
        if (verb === "ALTER TABLE" && /^\s*ADD COLUMN/.test(rest)) {
          statements.push(`${verb} ${db}.${table} ${on}${rest}`);
        }
        return statements;
      },
    ],
    [
      new RegExp(String.raw`^DELETE FROM ${NAME}([\s\S]*)$`),
      // A delete from a table every node holds reaches its replicas by itself.
      ([db, table, rest], text) =>
        EVERYWHERE.has(table) ? [text] : [`DELETE FROM ${db}.${local(table)} ${on}${rest}`],
    ],
    // Inserts and reads go through the Distributed tables, by their names.
    [/^(INSERT|SELECT|WITH)\b/, (_, text) => [text]],
  ];
  const text = sql.trim();
  for (const [pattern, form] of rules) {
    const m = text.match(pattern);
    if (m) return form(m.slice(1) as Groups, text);
  }
  throw new Error(`no cluster form for: ${text.slice(0, 80)}`);
}

/**
 * `T_local` on every node (or `T`, for a table every node holds whole),
 * and `T` in front of a sharded one. `asTable`: the structure is that
 * table's as it stands (columns added since included).
 */
function createTable(
  db: string,
  table: string,
  columns: string,
  engine: string,
  cluster: string,
  asTable?: string,
): string[] {
  const on = `ON CLUSTER '${cluster}'`;
  const structure = asTable === undefined ? `(${columns})` : `AS ${db}.${asTable}`;
  if (EVERYWHERE.has(table)) {
    return [
      `CREATE TABLE IF NOT EXISTS ${db}.${table} ${on} ${structure} ENGINE = ${replicated(engine, "/clickhouse/tables/{database}/{table}")}`,
    ];
  }
  const sharded = !/^Null\b/.test(engine.trim());
  const localEngine = sharded
    ? replicated(engine, "/clickhouse/tables/{shard}/{database}/{table}")
    : engine;
  const database = db.replace(/\x60/g, "");
  const key = /\buser_id\s/.test(columns) ? "sipHash64(user_id)" : "sipHash64(event_id)";
  return [
    `CREATE TABLE IF NOT EXISTS ${db}.${local(table)} ${on} ${structure} ENGINE = ${localEngine}`,
    `CREATE TABLE IF NOT EXISTS ${db}.${table} ${on} AS ${db}.${local(table)}
      ENGINE = Distributed('${cluster}', '${database}', '${local(table)}', ${key})`,
  ];
}

/** `ReplacingMergeTree(version) ORDER BY …` as `ReplicatedReplacingMergeTree('<path>', '{replica}', version) ORDER BY …`. */
function replicated(engine: string, path: string): string {
  const m = engine.trim().match(/^(\w*MergeTree)(?:\(([^)]*)\))?([\s\S]*)$/);
  if (m === null) throw new Error(`not a MergeTree engine: ${engine.slice(0, 60)}`);
  const [, family, args = "", rest] = m as unknown as [string, string, string | undefined, string];
  const params = [`'${path}'`, "'{replica}'", ...(args.trim() === "" ? [] : [args.trim()])];
  return `Replicated${family}(${params.join(", ")})${rest}`;
}

/** A table as first created: its columns and its ENGINE clause (to the end). */
export interface TableDefinition {
  columns: string;
  engine: string;
}

/** The tables `statements` create, by name: `CREATE TABLE t AS u` needs u's. */
export function tableDefinitions(statements: readonly string[]): Map<string, TableDefinition> {
  const tables = new Map<string, TableDefinition>();
  for (const sql of statements) {
    const m = sql.trim().match(CREATE_TABLE);
    if (m) tables.set(m[2] as string, { columns: m[3] as string, engine: m[4] as string });
  }
  return tables;
}

/** `warehouse` (a node of `cluster`) with each statement run in its cluster form ({@link onCluster}). */
export function clusterWarehouse(warehouse: Warehouse, cluster: string): Warehouse {
  const tables = tableDefinitions(MIGRATIONS.flatMap((m) => m.statements(warehouse.db)));
  const clustered: Warehouse = {
    ...warehouse,
    async command(sql, params) {
      for (const statement of onCluster(sql, cluster, tables)) {
        await warehouse.command(statement, params);
      }
    },
    withQueryMemoryCap: (bytes) => clusterWarehouse(warehouse.withQueryMemoryCap(bytes), cluster),
  };
  return clustered;
}
