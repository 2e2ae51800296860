import { z } from "zod";

/** What a key may do: send events, or read stats. */
export type Scope = "ingest" | "read" | "admin";
export const SCOPES: readonly Scope[] = ["ingest", "read", "admin"];

/** An API key: `KEY` may do everything, `KEY:ingest` or `KEY:read` only that. */
export interface ApiKey {
  readonly key: string;
  readonly scopes: readonly Scope[];
}

/** Everything Tally reads from its environment, validated once and frozen. */
export interface Config {
  /** The one port for gRPC, gRPC-Web, Connect and REST. @default 8080 */
  readonly port: number;
  /** @default "0.0.0.0" */
  readonly host: string;
  /** RabbitMQ, or a cluster's nodes (comma-separated, tried in turn); unset means a local log in TALLY_DATA_DIR. */
  readonly amqpUrl: string | undefined;
  /** Redis, or a Redis Cluster's seed nodes (comma-separated); unset means the in-process dedupe store. */
  readonly redisUrl: string | undefined;
  /** A ClickHouse server's HTTP URL; unset means embedded chDB in `dataDir`. */
  readonly clickhouseUrl: string | undefined;
  /** TALLY_CLICKHOUSE_CLUSTER: the schema made ON CLUSTER, sharded and replicated (warehouse/cluster.ts). */
  readonly clickhouseCluster: string | undefined;
  /** Where the embedded engine keeps its data. @default "./var" */
  readonly dataDir: string;
  /** Prefix of queues and Redis keys, and the ClickHouse database. @default "tally" */
  readonly namespace: string;
  /** Accepted API keys and what each may do; empty means no auth. */
  readonly apiKeys: readonly ApiKey[];
  /** How long Redis remembers an event_id. @default 7 days */
  readonly dedupeTtlSeconds: number;
  /** How far in the future occurred_at may be. @default 24 h */
  readonly maxFutureSkewMs: number;
  /** The consumer inserts once it holds this many rows... @default 20000 */
  readonly flushRows: number;
  /**
   * ...or once its oldest row has waited this long. An insert costs chDB
   * 30-60 ms of CPU however few its rows (a part for the events table and
   * each of its 12 views), and ClickHouse advises about one insert a
   * second: at a trickle, this is how often the consumer inserts. @default 1000
   */
  readonly flushIntervalMs: number;
  /**
   * Unacknowledged RabbitMQ messages a consumer holds; it flushes at half of
   * them. @default 512: one-event calls make messages of a few events, and
   * at 2,000 calls/s 256 flushed about six times a second (a chDB insert
   * and its merges cost about 50 ms of CPU however few the rows). 512, 2
   * alternating pairs: 0.30-0.31 ms of service CPU a call against
   * 0.36-0.38, p99 21.4-21.6 ms against 22.5-33.4; at 5,000 calls/s
   * 0.15-0.17 against 0.19-0.20, p99 49-85 against 65-99; the throughput
   * scenario's 500-event messages flush by rows first (50.4k and 52.9k
   * events/s against 49.8k and 50.9k, peak RSS 633-654 MB against 673-682).
   */
  readonly prefetch: number;
  /** Largest REST body accepted. @default 8 MiB */
  readonly maxBodyBytes: number;
  /** Most memory one stats query may use, in bytes; 0 means no cap. @default 0 */
  readonly maxQueryMemoryBytes: number;
  /** Most events in one request, or in one message of a stream. @default 10000 */
  readonly maxEventsPerRequest: number;
  /** Events buffered per live tail (TailEvents) before its oldest are skipped. */
  readonly tailBufferEvents: number;
  /** Ingest answers UNAVAILABLE while more batches than this wait in the queue. @default 100000 */
  readonly maxQueueDepth: number;
  /** Requests a second per API key (or address without keys); 0 means no limit. @default 0 */
  readonly rateLimitRps: number;
  /** Requests a caller may save up. @default twice the rate */
  readonly rateLimitBurst: number;
  /** Properties (dotted paths) with rollups of their own, for fast segments. @default none */
  readonly indexedProperties: readonly string[];
  /** Time zones with rollups of their own, for fast stats in them. @default none */
  readonly indexedTimeZones: readonly string[];
  /** Events older than this many days (by occurred_at) are neither kept nor taken; unset: forever. */
  readonly retentionDays: number | undefined;
  /**
   * How long after a deletion is asked for it is carried out: every consumer
   * reloads the tombstones each second, and must have seen it. @default 3000
   */
  readonly deletionSettleMs: number;
  /** Tests only: a deletion stops (hangs) after this step, for a test to kill the process there. */
  readonly testDeletionStopAfter: "captured" | "events" | "rollups" | undefined;
}

const MAX_INDEXED_PROPERTIES = 16;
const MAX_INDEXED_TIME_ZONES = 8;

/**
 * A comma-separated list, each item once, `implied` left out; `problem` says
 * what is wrong with an item, if anything.
 */
const indexList = (
  max: number,
  what: string,
  problem: (item: string) => string | undefined,
  implied = "",
) =>
  z
    .string()
    .default("")
    .transform((s, ctx) => {
      const items = [...new Set(s.split(",").map((item) => item.trim()))].filter(
        (item) => item !== "" && item !== implied,
      );
      for (const message of items.map(problem)) {
        if (message !== undefined) ctx.addIssue({ code: "custom", message });
      }
      if (items.length > max) {
        ctx.addIssue({
          code: "custom",
          message: `at most ${max} ${what} (each adds rollup rows to every insert)`,
        });
      }
      return items;
    });

// An empty variable means unset, as `AMQP_URL=` in a compose file intends.
const url = (scheme: RegExp, example: string) =>
  z.preprocess(
    (v) => (typeof v === "string" && v.trim() === "" ? undefined : v),
    z
      .string()
      .trim()
      .refine(
        (s) => URL.canParse(s) && scheme.test(new URL(s).protocol),
        `expected a URL like ${example}`,
      )
      .optional(),
  );

/** One URL, or several comma-separated (a cluster's nodes), each checked. */
const urls = (scheme: RegExp, example: string) =>
  z.preprocess(
    (v) => (typeof v === "string" && v.trim() === "" ? undefined : v),
    z
      .string()
      .trim()
      .refine(
        (s) =>
          s
            .split(",")
            .map((u) => u.trim())
            .every((u) => URL.canParse(u) && scheme.test(new URL(u).protocol)),
        `expected a URL like ${example}, or several separated by commas`,
      )
      .optional(),
  );

const int = (min: number, max: number, fallback: number) =>
  z.coerce
    .number({ error: "expected a whole number" })
    .int("expected a whole number")
    .min(min)
    .max(max)
    .default(fallback);

const schema = z.object({
  PORT: int(0, 65535, 8080),
  HOST: z.string().min(1).default("0.0.0.0"),
  AMQP_URL: urls(/^amqps?:$/, "amqp://guest:guest@127.0.0.1:5672"),
  REDIS_URL: urls(/^rediss?:$/, "redis://127.0.0.1:6379"),
  CLICKHOUSE_URL: url(/^https?:$/, "http://127.0.0.1:8123"),
  TALLY_CLICKHOUSE_CLUSTER: z
    .string()
    .regex(
      /^[A-Za-z_][A-Za-z0-9_.-]*$/,
      "expected a cluster's name from the server's remote_servers",
    )
    .optional(),
  TALLY_DATA_DIR: z.string().min(1).default("./var"),
  TALLY_NAMESPACE: z
    .string()
    .regex(
      /^[a-z][a-z0-9_]{0,47}$/,
      "expected lower-case letters, digits and _, starting with a letter",
    )
    .default("tally"),
  TALLY_API_KEYS: z
    .string()
    .default("")
    .transform((s, ctx) =>
      s
        .split(",")
        .map((k) => k.trim())
        .filter((k) => k !== "")
        .map((entry): ApiKey => {
          const at = entry.lastIndexOf(":");
          const scope = at < 0 ? "" : entry.slice(at + 1);
          if (at < 0) return { key: entry, scopes: SCOPES };
          if (!(SCOPES as readonly string[]).includes(scope)) {
            ctx.addIssue({
              code: "custom",
              message: `unknown scope "${scope}" (expected KEY, KEY:ingest, KEY:read or KEY:admin)`,
            });
          }
          return { key: entry.slice(0, at), scopes: [scope as Scope] };
        }),
    ),
  TALLY_DEDUPE_TTL_SECONDS: int(60, 366 * 86400, 7 * 86400),
  TALLY_MAX_FUTURE_SKEW_SECONDS: int(0, 366 * 86400, 86400),
  TALLY_FLUSH_ROWS: int(1, 1_000_000, 20_000),
  TALLY_FLUSH_INTERVAL_MS: int(1, 60_000, 1000),
  TALLY_PREFETCH: int(1, 10_000, 512),
  TALLY_MAX_BODY_BYTES: int(1024, 1 << 30, 8 << 20),
  TALLY_MAX_QUERY_MEMORY_BYTES: int(0, 2 ** 50, 0),
  TALLY_MAX_QUEUE_DEPTH: int(1, 1_000_000_000, 100_000),
  TALLY_MAX_EVENTS_PER_REQUEST: int(1, 1_000_000, 10_000),
  TALLY_TAIL_BUFFER_EVENTS: int(1, 1_000_000, 10_000),
  TALLY_RATE_LIMIT_RPS: int(0, 10_000_000, 0),
  TALLY_RATE_LIMIT_BURST: int(0, 100_000_000, 0),
  TALLY_RETENTION_DAYS: int(0, 100_000, 0),
  TALLY_DELETION_SETTLE_MS: int(1000, 600_000, 3000),
  TALLY_TEST_DELETION_STOP_AFTER: z.enum(["captured", "events", "rollups"]).optional(),
  TALLY_INDEXED_PROPERTIES: indexList(MAX_INDEXED_PROPERTIES, "properties", (path) =>
    path.split(".").some((key) => key === "")
      ? `"${path}" is not a property path (expected KEY or KEY.NESTED, as in segment=properties.KEY:VALUE)`
      : undefined,
  ),
  // UTC is what the rollups of all events hold already.
  TALLY_INDEXED_TIME_ZONES: indexList(
    MAX_INDEXED_TIME_ZONES,
    "zones",
    (zone) => {
      try {
        new Intl.DateTimeFormat("en-US", { timeZone: zone });
        return undefined;
      } catch {
        return `"${zone}" is not an IANA time zone (like Europe/Kyiv)`;
      }
    },
    "UTC",
  ),
});

/** Thrown for a bad environment; the message names every bad variable. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Reads and validates the configuration from `env` (process.env by default). */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join("\n")}`);
  }
  const e = parsed.data;
  if (e.TALLY_CLICKHOUSE_CLUSTER !== undefined && e.CLICKHOUSE_URL === undefined) {
    throw new ConfigError(
      "invalid configuration:\n  TALLY_CLICKHOUSE_CLUSTER: needs CLICKHOUSE_URL (a node of that cluster); the embedded engine is one server",
    );
  }
  return Object.freeze({
    port: e.PORT,
    host: e.HOST,
    amqpUrl: e.AMQP_URL,
    redisUrl: e.REDIS_URL,
    clickhouseUrl: e.CLICKHOUSE_URL,
    clickhouseCluster: e.TALLY_CLICKHOUSE_CLUSTER,
    dataDir: e.TALLY_DATA_DIR,
    namespace: e.TALLY_NAMESPACE,
    apiKeys: Object.freeze(e.TALLY_API_KEYS),
    dedupeTtlSeconds: e.TALLY_DEDUPE_TTL_SECONDS,
    maxFutureSkewMs: e.TALLY_MAX_FUTURE_SKEW_SECONDS * 1000,
    flushRows: e.TALLY_FLUSH_ROWS,
    flushIntervalMs: e.TALLY_FLUSH_INTERVAL_MS,
    prefetch: e.TALLY_PREFETCH,
    maxBodyBytes: e.TALLY_MAX_BODY_BYTES,
    maxQueryMemoryBytes: e.TALLY_MAX_QUERY_MEMORY_BYTES,
    maxQueueDepth: e.TALLY_MAX_QUEUE_DEPTH,
    maxEventsPerRequest: e.TALLY_MAX_EVENTS_PER_REQUEST,
    tailBufferEvents: e.TALLY_TAIL_BUFFER_EVENTS,
    rateLimitRps: e.TALLY_RATE_LIMIT_RPS,
    rateLimitBurst: e.TALLY_RATE_LIMIT_BURST || 2 * e.TALLY_RATE_LIMIT_RPS,
    indexedProperties: Object.freeze(e.TALLY_INDEXED_PROPERTIES),
    indexedTimeZones: Object.freeze(e.TALLY_INDEXED_TIME_ZONES),
    retentionDays: e.TALLY_RETENTION_DAYS === 0 ? undefined : e.TALLY_RETENTION_DAYS,
    deletionSettleMs: e.TALLY_DELETION_SETTLE_MS,
    testDeletionStopAfter: e.TALLY_TEST_DELETION_STOP_AFTER,
  });
}
