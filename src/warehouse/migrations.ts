import { NOT_ACTIVITY_SQL } from "../event/activity.ts";
import type { Warehouse } from "./warehouse.ts";

/** One step of the schema. Never edit a step once released: add another. */
export interface Migration {
  version: number;
  name: string;
  statements: (db: string) => string[];
}

/** A user's key in the rollups (migration 4). */
const USER_KEY = "reinterpretAsUInt128(sipHash128(user_id))";

/**
 * The rollups the materialized views keep, each as a SELECT over the events.
 * Every rollup is a set (or a minimum), so a repeated copy of an event adds
 * nothing: an event stored twice counts once in them as in the events table.
 */
const ROLLUPS: readonly [string, (events: string) => string][] = [
  [
    "user_days",
    (events) =>
      `SELECT type AS event_type, toDate(occurred_at) AS day, user_id
       FROM ${events} ARRAY JOIN [event_type, ''] AS type`,
  ],
  [
    "day_events",
    (events) => `SELECT toDate(occurred_at) AS day, event_type, event_id FROM ${events}`,
  ],
  [
    "first_days",
    (events) =>
      `SELECT type AS event_type, user_id, min(toDate(occurred_at)) AS first_day
       FROM ${events} ARRAY JOIN [event_type, ''] AS type
       GROUP BY type, user_id`,
  ],
];

/** The activity's event types: each event's own, and '' (any type) where it is activity. */
const ANY_TYPE = `ARRAY JOIN if(event_type IN ${NOT_ACTIVITY_SQL}, [event_type], [event_type, '']) AS type`;

/** The user_activity rollup (migration 9): its columns, and its view's SELECT over `events`. */
const userActivity = [
  "user_activity",
  "event_type, user_id, first_day, days",
  (events: string) =>
    `SELECT type AS event_type, user_id, min(toDate(occurred_at)) AS first_day,
            groupUniqArray(toDate(occurred_at)) AS days
     FROM ${events} ${ANY_TYPE} GROUP BY type, user_id`,
] as const;

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
  {
    version: 2,
    name: "daily rollups",
    statements: (db) => [
      // Which users were active on which UTC day, per event type and for any
      // type (''): DAU, WAU/MAU and retention read this, not the events.
      `CREATE TABLE IF NOT EXISTS ${db}.user_days (
        event_type LowCardinality(String),
        day Date,
        user_id String
      )
      ENGINE = ReplacingMergeTree
      PARTITION BY toYYYYMM(day)
      ORDER BY (event_type, day, user_id)`,
      // Each event_id once per UTC day and type: exact counts for top events.
      `CREATE TABLE IF NOT EXISTS ${db}.day_events (
        day Date,
        event_type LowCardinality(String),
        event_id UUID
      )
      ENGINE = ReplacingMergeTree
      PARTITION BY toYYYYMM(day)
      ORDER BY (day, event_type, event_id)`,
      // Each user's first UTC day, per event type and for any type: the cohorts.
      `CREATE TABLE IF NOT EXISTS ${db}.first_days (
        event_type LowCardinality(String),
        user_id String,
        first_day SimpleAggregateFunction(min, Date)
      )
      ENGINE = AggregatingMergeTree
      ORDER BY (event_type, user_id)`,
      ...ROLLUPS.flatMap(([table, select]) => [
        `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.${table}_mv TO ${db}.${table} AS ${select(`${db}.events`)}`,
        // Events stored before this step; an event also seen by the view counts once.
        `INSERT INTO ${db}.${table} ${select(`${db}.events FINAL`)}`,
      ]),
    ],
  },
  {
    version: 3,
    name: "indexed rollups",
    statements: (db) => [
      // The daily rollups again, per value of each indexed property and per
      // indexed time zone (see rollup-index.ts). Each set is filled through a
      // Null table that stores nothing: one view per property or zone writes
      // one row per event into it, and its three views below keep the rollups,
      // so each event's JSON (or local day) is worked out once.
      ...[
        // [prefix, key columns, their definitions]
        ["prop", "path, value", "path LowCardinality(String), value String"],
        ["zone", "zone", "zone LowCardinality(String)"],
      ].flatMap(([prefix, keyColumns, key]) => [
        `CREATE TABLE IF NOT EXISTS ${db}.${prefix}_events (
            ${key}, event_type LowCardinality(String), day Date, user_id String, event_id UUID
          )
          ENGINE = Null`,
        `CREATE TABLE IF NOT EXISTS ${db}.${prefix}_user_days (
            ${key}, event_type LowCardinality(String), day Date, user_id String
          )
          ENGINE = ReplacingMergeTree
          PARTITION BY toYYYYMM(day)
          ORDER BY (${keyColumns}, event_type, day, user_id)`,
        `CREATE TABLE IF NOT EXISTS ${db}.${prefix}_day_events (
            ${key}, day Date, event_type LowCardinality(String), event_id UUID
          )
          ENGINE = ReplacingMergeTree
          PARTITION BY toYYYYMM(day)
          ORDER BY (${keyColumns}, day, event_type, event_id)`,
        `CREATE TABLE IF NOT EXISTS ${db}.${prefix}_first_days (
            ${key}, event_type LowCardinality(String), user_id String,
            first_day SimpleAggregateFunction(min, Date)
          )
          ENGINE = AggregatingMergeTree
          ORDER BY (${keyColumns}, event_type, user_id)`,
        `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.${prefix}_user_days_mv TO ${db}.${prefix}_user_days AS
           SELECT ${keyColumns}, type AS event_type, day, user_id
           FROM ${db}.${prefix}_events ARRAY JOIN [event_type, ''] AS type`,
        `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.${prefix}_day_events_mv TO ${db}.${prefix}_day_events AS
           SELECT ${keyColumns}, day, event_type, event_id FROM ${db}.${prefix}_events`,
        `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.${prefix}_first_days_mv TO ${db}.${prefix}_first_days AS
           SELECT ${keyColumns}, type AS event_type, user_id, min(day) AS first_day
           FROM ${db}.${prefix}_events ARRAY JOIN [event_type, ''] AS type
           GROUP BY ${keyColumns}, type, user_id`,
      ]),
      // What is indexed: each one's view exists and its backfill is done.
      `CREATE TABLE IF NOT EXISTS ${db}.rollup_indexes (
        kind LowCardinality(String), key String, indexed_at DateTime DEFAULT now()
      )
      ENGINE = ReplacingMergeTree
      ORDER BY (kind, key)`,
    ],
  },
  {
    version: 4,
    name: "user keys",
    // Every rollup of users gets user_key, a 128-bit SipHash of user_id, as
    // uniqExact keeps for a string anyway: joins and counts by a fixed-size
    // key cost about a third less than by the string, and two ids collide
    // with odds near n^2 / 2^129 (1e-20 for a billion users). MATERIALIZED:
    // every insert computes it (the views' included) and none can set it;
    // older parts compute it when read until the mutation has written it.
    statements: (db) =>
      ["", "prop_", "zone_"].flatMap((prefix) =>
        ["user_days", "first_days"].flatMap((table) => [
          `ALTER TABLE ${db}.${prefix}${table}
             ADD COLUMN IF NOT EXISTS user_key UInt128 MATERIALIZED ${USER_KEY}`,
          `ALTER TABLE ${db}.${prefix}${table} MATERIALIZE COLUMN user_key`,
        ]),
      ),
  },
  {
    version: 5,
    name: "identify, group and alias are not activity",
    // The rollups' '' rows ("any type") hold activity only from now on: the
    // views are made anew, and the '' rows rebuilt from the events. An
    // event stored while a view was being made anew is in the rebuild (the
    // rollups are sets: what is there already counts once). The indexed
    // rollups forget their backfills, so that the start that follows this
    // migration backfills each indexed property and zone again.
    statements: (db) => {
      const anyType = `ARRAY JOIN if(event_type IN ${NOT_ACTIVITY_SQL}, [event_type], [event_type, '']) AS type`;
      const plain: [string, string, (from: string) => string][] = [
        [
          "user_days",
          "event_type, day, user_id",
          (from) =>
            `SELECT type AS event_type, toDate(occurred_at) AS day, user_id FROM ${from} ${anyType}`,
        ],
        [
          "first_days",
          "event_type, user_id, first_day",
          (from) =>
            `SELECT type AS event_type, user_id, min(toDate(occurred_at)) AS first_day
             FROM ${from} ${anyType} GROUP BY type, user_id`,
        ],
      ];
      return [
        ...plain.flatMap(([table, columns, select]) => [
          `DROP VIEW IF EXISTS ${db}.${table}_mv`,
          `CREATE MATERIALIZED VIEW ${db}.${table}_mv TO ${db}.${table} AS ${select(`${db}.events`)}`,
          `DELETE FROM ${db}.${table} WHERE event_type = ''`,
          `INSERT INTO ${db}.${table} (${columns}) ${select(`${db}.events FINAL`)}`,
        ]),
        ...[
          ["prop", "path, value"],
          ["zone", "zone"],
        ].flatMap(([prefix, keyColumns]) => [
          `DROP VIEW IF EXISTS ${db}.${prefix}_user_days_mv`,
          `CREATE MATERIALIZED VIEW ${db}.${prefix}_user_days_mv TO ${db}.${prefix}_user_days AS
             SELECT ${keyColumns}, type AS event_type, day, user_id FROM ${db}.${prefix}_events ${anyType}`,
          `DROP VIEW IF EXISTS ${db}.${prefix}_first_days_mv`,
          `CREATE MATERIALIZED VIEW ${db}.${prefix}_first_days_mv TO ${db}.${prefix}_first_days AS
             SELECT ${keyColumns}, type AS event_type, user_id, min(day) AS first_day
             FROM ${db}.${prefix}_events ${anyType} GROUP BY ${keyColumns}, type, user_id`,
          `DELETE FROM ${db}.${prefix}_user_days WHERE event_type = ''`,
          `DELETE FROM ${db}.${prefix}_first_days WHERE event_type = ''`,
        ]),
        `DELETE FROM ${db}.rollup_indexes WHERE 1`,
      ];
    },
  },
  {
    version: 6,
    name: "events by time",
    // The events again, sorted by type and time: funnels and trends with a
    // breakdown or a sum need the events themselves, and read only their
    // range of this (the events table is sorted by event_id, so a range of
    // it is a full scan). A copy stored twice collapses here too: it has
    // the same sorting key.
    statements: (db) => {
      const select = (from: string) =>
        `SELECT event_type, occurred_at, user_id, event_id, properties FROM ${from}`;
      return [
        `CREATE TABLE IF NOT EXISTS ${db}.events_by_time (
          event_type LowCardinality(String),
          occurred_at DateTime64(3, 'UTC'),
          user_id String,
          event_id UUID,
          properties String CODEC(ZSTD(1))
        )
        ENGINE = ReplacingMergeTree
        PARTITION BY toYYYYMM(occurred_at)
        ORDER BY (event_type, occurred_at, user_id, event_id)`,
        `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.events_by_time_mv TO ${db}.events_by_time AS ${select(`${db}.events`)}`,
        // Events stored before the view; one also seen by the view collapses with its copy.
        `INSERT INTO ${db}.events_by_time ${select(`${db}.events FINAL`)}`,
      ];
    },
  },
  {
    version: 7,
    name: "a person's data",
    // A user's events by time (their timeline, and what a deletion finds),
    // the deletions asked for (each also a tombstone: the user's events from
    // before it are dropped when they arrive), and the events each deleted.
    statements: (db) => {
      const select = (from: string) =>
        `SELECT user_id, occurred_at, event_id, event_type FROM ${from}`;
      return [
        `CREATE TABLE IF NOT EXISTS ${db}.user_events (
          user_id String,
          occurred_at DateTime64(3, 'UTC'),
          event_id UUID,
          event_type LowCardinality(String)
        )
        ENGINE = ReplacingMergeTree
        ORDER BY (user_id, occurred_at, event_id)`,
        `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.user_events_mv TO ${db}.user_events AS ${select(`${db}.events`)}`,
        `INSERT INTO ${db}.user_events ${select(`${db}.events FINAL`)}`,
        `CREATE TABLE IF NOT EXISTS ${db}.deletions (
          deletion_id UUID,
          user_id String,
          requested_at DateTime64(3, 'UTC'),
          status LowCardinality(String),
          events_deleted UInt64,
          completed_at Nullable(DateTime64(3, 'UTC')),
          updated_at DateTime64(6, 'UTC') DEFAULT now64(6)
        )
        ENGINE = ReplacingMergeTree(updated_at)
        ORDER BY deletion_id`,
        `CREATE TABLE IF NOT EXISTS ${db}.deleted_events (deletion_id UUID, event_id UUID)
        ENGINE = ReplacingMergeTree
        ORDER BY (deletion_id, event_id)`,
        // The users whose first day retention is moving (retention.ts), kept until it has moved.
        ...["", "prop_", "zone_"].map(
          (prefix) =>
            `CREATE TABLE IF NOT EXISTS ${db}.${prefix}first_days_moving AS ${db}.${prefix}first_days`,
        ),
      ];
    },
  },
  {
    version: 8,
    name: "deletes as patch parts",
    // A DELETE of one user's rows marked every part of a table (a month
    // each for the rollups) and took seconds a table; as a patch part it
    // writes the rows it deletes and is applied on read (see DELETE_SETTINGS).
    statements: (db) =>
      DELETED_FROM.map(
        (table) =>
          `ALTER TABLE ${db}.${table} MODIFY SETTING enable_block_number_column = 1, enable_block_offset_column = 1`,
      ),
  },
  {
    version: 9,
    name: "user activity",
    // Each user's first day and every day they were active, per event type
    // and for any type: one row a user (read FINAL), so retention is one
    // read of one table, not the user-days joined to the first days. On
    // 100,000 events its cohorts took 4.9-5.7 ms against 10.4-11.5; on a
    // million 8 against 17; on ten million about the same as the join.
    statements: (db) => {
      const [, columns, select] = userActivity;
      return [
        `CREATE TABLE IF NOT EXISTS ${db}.user_activity (
          event_type LowCardinality(String),
          user_id String,
          first_day SimpleAggregateFunction(min, Date),
          days SimpleAggregateFunction(groupUniqArrayArray, Array(Date))
        )
        ENGINE = AggregatingMergeTree
        ORDER BY (event_type, user_id)`,
        `ALTER TABLE ${db}.user_activity MODIFY SETTING enable_block_number_column = 1, enable_block_offset_column = 1`,
        `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.user_activity_mv TO ${db}.user_activity AS ${select(`${db}.events`)}`,
        // Events stored before the view; one also seen by it adds nothing (a minimum and a set).
        `INSERT INTO ${db}.user_activity (${columns}) ${select(`${db}.events FINAL`)}`,
      ];
    },
  },
  {
    version: 10,
    name: "user activity's days uncompressed",
    // Retention reads every cohort member's days whole. In no particular
    // order, LZ4 shrank them by a quarter only, and unpacking them was a
    // sixth of the read: 12 weekly cohorts of every user at 10M events took
    // 17.5 ms against 20.5. Parts written before are rewritten as they merge.
    statements: (db) => [
      `ALTER TABLE ${db}.user_activity MODIFY COLUMN days SimpleAggregateFunction(groupUniqArrayArray, Array(Date)) CODEC(NONE)`,
    ],
  },
  {
    version: 11,
    name: "vertical merges",
    // A horizontal merge holds buffers for every column of every part it
    // merges; a vertical one merges the key columns first, then copies the
    // others one at a time. ClickHouse goes vertical from 11 columns on;
    // these tables have 2 to 9, and merges were most of an embedded
    // service's peak memory. 2.4M events inserted: merges peaked at 61-77
    // MiB of tracked memory against 112-119, the process at 530 MiB against
    // 574-579, at the same CPU. The bench's embedded service, 3M events,
    // peak RSS: 586-621 MiB against 629-639; 559-572 with chDB's smaller
    // part-removal pool (chdb-warehouse.ts). Queries after a load of 5M
    // events took as long (lifecycle 28.9-30.1 ms against 30.1-32.7).
    // Aggregating tables cannot merge vertically.
    statements: (db) =>
      VERTICAL.map(
        (table) =>
          `ALTER TABLE ${db}.${table} MODIFY SETTING vertical_merge_algorithm_min_columns_to_activate = 1`,
      ),
  },
];

/** The ReplacingMergeTree tables with an event_id or a user_id column (migration 11). */
const VERTICAL = [
  "events",
  "events_by_time",
  "user_events",
  ...["", "prop_", "zone_"].flatMap((p) => [`${p}user_days`, `${p}day_events`]),
  "deletions",
  "deleted_events",
];

/**
 * The stored events of the user `{user:String}`, each event_id once (its
 * first copy, and only where that copy is theirs): found by user in
 * user_events (migration 7), read by event_id, the events' sorting key, so
 * no full scan.
 */
export function userEventsSql(db: string): string {
  return `SELECT * FROM ${db}.events FINAL
    WHERE event_id IN (SELECT event_id FROM ${db}.user_events WHERE user_id = {user:String})
      AND user_id = {user:String}`;
}

/**
 * The tables deletions and retention delete rows from, as migration 8 found
 * them. user_activity (migration 9) is deleted from too, and set up for it
 * by its own migration.
 */
export const DELETED_FROM = [
  "events",
  "events_by_time",
  "user_events",
  ...["", "prop_", "zone_"].flatMap((p) => [`${p}user_days`, `${p}day_events`, `${p}first_days`]),
];

/** Settings of those DELETEs: patch parts (migration 8), else as before. */
export const DELETE_SETTINGS = "SETTINGS lightweight_delete_mode = 'lightweight_update'";

/** The views' SELECTs of the plain rollups as they stand (after migration 9), over `events`. */
export function plainRollups(events: string): [table: string, columns: string, select: string][] {
  const [activity, activityColumns, activitySelect] = userActivity;
  return [
    [activity, activityColumns, activitySelect(events)],
    [
      "user_days",
      "event_type, day, user_id",
      `SELECT type AS event_type, toDate(occurred_at) AS day, user_id FROM ${events} ${ANY_TYPE}`,
    ],
    [
      "day_events",
      "day, event_type, event_id",
      `SELECT toDate(occurred_at) AS day, event_type, event_id FROM ${events}`,
    ],
    [
      "first_days",
      "event_type, user_id, first_day",
      `SELECT type AS event_type, user_id, min(toDate(occurred_at)) AS first_day
       FROM ${events} ${ANY_TYPE} GROUP BY type, user_id`,
    ],
  ];
}

/**
 * Creates the database and applies the migrations it has not seen, in order
 * (`steps` picks fewer, to test an upgrade from an older schema).
 */
export async function migrate(
  warehouse: Warehouse,
  steps: readonly Migration[] = MIGRATIONS,
): Promise<number[]> {
  const { db } = warehouse;
  await warehouse.command(`CREATE DATABASE IF NOT EXISTS ${db}`);
  await warehouse.command(
    `CREATE TABLE IF NOT EXISTS ${db}.schema_migrations (
      version UInt32, name String, applied_at DateTime DEFAULT now()
    ) ENGINE = ReplacingMergeTree ORDER BY version`,
  );
  const done = new Set(
    (
      await warehouse.query<{ version: number }>(`SELECT version FROM ${db}.schema_migrations`, {})
    ).map((r) => Number(r.version)),
  );
  const applied: number[] = [];
  for (const m of steps) {
    if (done.has(m.version)) continue;
    // Statements are idempotent, so two processes starting at once is harmless.
    for (const statement of m.statements(db)) await warehouse.command(statement);
    await warehouse.insert("schema_migrations", {
      format: "JSONEachRow",
      rows: [{ version: m.version, name: m.name }],
    });
    applied.push(m.version);
  }
  return applied;
}
