import { join } from "node:path";
import type { Logger } from "pino";
import { createAnalyticsService } from "../api/analytics-service.ts";
import { createExportService } from "../api/export-service.ts";
import { createIngestService } from "../api/ingest-service.ts";
import { LiveEvents } from "../api/live-events.ts";
import { type ApiServer, createApiServer } from "../api/server.ts";
import { createUsersService } from "../api/users-service.ts";
import { type Config, ConfigError } from "../config/config.ts";
import { type BatchConsumer, createBatchConsumer } from "../consumer/batch-consumer.ts";
import { loadStoredIds } from "../consumer/stored-ids.ts";
import type { DedupeStore } from "../dedupe/dedupe-store.ts";
import { createMemoryDedupe } from "../dedupe/memory-dedupe.ts";
import { createRedisDedupe } from "../dedupe/redis-dedupe.ts";
import { firstKeptDay } from "../event/validate-event.ts";
import { createErrorReporters } from "../observability/dependency-errors.ts";
import { createMetrics, type Metrics } from "../observability/metrics.ts";
import { startOpsServer } from "../observability/ops-server.ts";
import type { Dependency } from "../observability/readiness.ts";
import { claimOnAccept } from "../queue/claim-on-accept.ts";
import { coalescePublishes } from "../queue/coalesce.ts";
import { guardDepth } from "../queue/depth-guard.ts";
import { createJournalQueue } from "../queue/journal-queue.ts";
import {
  createMemoryLiveFeed,
  createRabbitLiveFeed,
  type LiveFeed,
  shareAccepted,
} from "../queue/live-feed.ts";
import type { EventQueue } from "../queue/queue.ts";
import { createRabbitQueue } from "../queue/rabbitmq-queue.ts";
import { timePublishes } from "../queue/time-publishes.ts";
import { createMemoryRateLimiter, type RateLimiter } from "../ratelimit/rate-limiter.ts";
import { createRedisRateLimiter } from "../ratelimit/redis-rate-limiter.ts";
import { compactRollups } from "../warehouse/compact.ts";
import { carryOutDeletions, type DeletionStep, loadTombstones } from "../warehouse/deletions.ts";
import { nodeBinary, releaseLibraryPages } from "../warehouse/library-pages.ts";
import { migrate } from "../warehouse/migrations.ts";
import { applyRetention } from "../warehouse/retention.ts";
import { reuseAnswers } from "../warehouse/reuse-answers.ts";
import { indexRollups } from "../warehouse/rollup-index.ts";
import { createWarehouse, type Warehouse } from "../warehouse/warehouse.ts";

/** How long the consumer's inserts may fail before readiness says it is stuck. */
const CONSUMER_STUCK_MS = 30_000;

/** Which parts of Tally a process runs. */
export type Role = "api" | "consumer" | "all";

/** A running Tally. */
export interface Tally {
  /** The port: the API's, or a consumer's health and metrics port. */
  readonly port: number | undefined;
  readonly queue: EventQueue;
  readonly dedupe: DedupeStore;
  readonly warehouse: Warehouse;
  readonly consumer: BatchConsumer | undefined;
  readonly metrics: Metrics;
  /** Drains the API, hands held batches back to the queue, disconnects. */
  close(): Promise<void>;
}

/**
 * Stops consuming: deliveries stop and held batches go back to the queue,
 * together. One after the other, a batch handed back while an insert was
 * still finishing was redelivered to this closing process at once, handed
 * back again, and so on until the broker's delivery limit dead-lettered it.
 */
export async function stopConsuming(queue: EventQueue, consumer: BatchConsumer | undefined) {
  await Promise.all([queue.close(), consumer?.close()]);
}

/**
 * Throws when `role` cannot run alone in a process with `config`: the
 * local log and the embedded chDB live inside one process, so the
 * API and the consumer can only be split over RabbitMQ and a ClickHouse
 * server (each process would otherwise have its own, and the API's stats
 * would never see what the consumer stored).
 */
export function checkRoleAlone(config: Config, role: Role): void {
  if (role === "all") return;
  const missing = [
    config.amqpUrl === undefined ? "AMQP_URL" : undefined,
    config.clickhouseUrl === undefined ? "CLICKHOUSE_URL" : undefined,
  ].filter((m) => m !== undefined);
  if (missing.length > 0) {
    throw new ConfigError(
      `--role ${role} needs ${missing.join(" and ")}: without ${missing.length > 1 ? "them" : "it"} the queue or the warehouse lives inside one process, so the API and the consumer must share it (--role all)`,
    );
  }
}

/**
 * Starts `role` from `config`: the one place where real services or their
 * embedded stand-ins are chosen and wired together.
 */
export async function startTally(config: Config, role: Role, log: Logger): Promise<Tally> {
  // The queue is made below; the gauge reads it only at a scrape.
  const metrics = createMetrics({ queueDepth: () => queue.depth() });
  const errorsOf = createErrorReporters({ log, metrics });
  // How many batches the consumer may hold unanswered. RabbitMQ counts
  // messages, whatever their size (TALLY_PREFETCH). The local log counts
  // rows (maxLentRows below), however many batches carry them: at a trickle
  // of one-event requests, a count made the consumer flush at half of it,
  // several chDB inserts a second instead of one an interval.
  const lentBatches = config.amqpUrl === undefined ? Number.POSITIVE_INFINITY : config.prefetch;
  const queue =
    config.amqpUrl === undefined
      ? await createJournalQueue({
          dir: join(config.dataDir, "journal", config.namespace),
          prefetch: lentBatches,
          // The consumer holds what it is lent as rows in memory: enough for
          // the two flushes it overlaps. Lent up to the prefetch (128,000
          // rows in batches of 500), they made a 3M-event ingest's peak RSS
          // 762 MiB instead of 671, for no more events a second.
          maxLentRows: 2 * config.flushRows,
          onError: errorsOf("queue"),
          onRecover: (batches, rows) =>
            log.info({ batches, rows }, "delivering again the batches kept in the local log"),
        })
      : createRabbitQueue({
          url: config.amqpUrl,
          namespace: config.namespace,
          prefetch: config.prefetch,
          onError: errorsOf("rabbitmq"),
        });
  const dedupe =
    config.redisUrl === undefined
      ? createMemoryDedupe({ ttlSeconds: config.dedupeTtlSeconds })
      : createRedisDedupe({
          url: config.redisUrl,
          namespace: config.namespace,
          ttlSeconds: config.dedupeTtlSeconds,
          onError: errorsOf("redis"),
        });
  const warehouse = await createWarehouse({
    url: config.clickhouseUrl,
    dataDir: config.dataDir,
    database: config.namespace,
    cluster: config.clickhouseCluster,
    onCall: (operation, seconds) => metrics.clickhouseRoundTrip.observe({ operation }, seconds),
  });
  const applied = await migrate(warehouse);
  if (applied.length > 0) log.info({ applied }, "applied warehouse migrations");
  const indexing = performance.now();
  const indexes = await indexRollups(warehouse, {
    properties: config.indexedProperties,
    zones: config.indexedTimeZones,
  });
  if (indexes.added.length + indexes.dropped.length > 0) {
    const seconds = Math.round(performance.now() - indexing) / 1000;
    log.info({ ...indexes, seconds }, "changed the indexed properties and time zones");
  }

  const dependencies: Dependency[] = [
    { name: config.amqpUrl === undefined ? "queue" : "rabbitmq", check: () => queue.check() },
    { name: config.redisUrl === undefined ? "dedupe" : "redis", check: () => dedupe.check() },
    { name: warehouse.kind, check: () => warehouse.check() },
  ];
  let consumer: BatchConsumer | undefined;
  const timers: NodeJS.Timeout[] = [];
  if (role !== "api") {
    let tombstones = await loadTombstones(warehouse);
    timers.push(
      every(
        TOMBSTONE_REFRESH_MS,
        async () => {
          tombstones = await loadTombstones(warehouse);
        },
        log,
        "reloading the tombstones",
      ),
      every(
        TOMBSTONE_REFRESH_MS,
        async () => {
          const done = await carryOutDeletions(warehouse, {
            settleMs: config.deletionSettleMs,
            stopAfter: stopOnPurpose(config.testDeletionStopAfter, log),
          });
          for (const d of done) {
            log.info({ deletion: d.deletionId, events: d.eventsDeleted }, "deleted a user's data");
          }
        },
        log,
        "carrying out deletions",
      ),
    );
    // Where this process is the warehouse's one writer (chDB), it can know every stored id.
    const loading = performance.now();
    const storedIds = warehouse.writes === undefined ? undefined : loadStoredIds(warehouse);
    storedIds?.loaded.then(
      () =>
        log.info(
          { ms: Math.round(performance.now() - loading), bytes: storedIds.bytes },
          "loaded the stored event ids",
        ),
      (err) => log.warn({ err }, "could not load the stored event ids; asking the warehouse"),
    );
    consumer = createBatchConsumer({
      dedupe,
      warehouse,
      storedIds,
      flushRows: config.flushRows,
      // The queue lends at most `lentBatches`: flush before they run out.
      flushBatches: Math.max(1, Math.floor(lentBatches / 2)),
      flushIntervalMs: config.flushIntervalMs,
      metrics,
      log: log.child({ role: "consumer" }),
      onDedupeError: errorsOf(config.redisUrl === undefined ? "dedupe" : "redis"),
      tombstones: () => tombstones,
    });
    const stuck = consumer;
    // Ready again once an insert goes through; meanwhile a load balancer and an operator see why.
    dependencies.push({ name: "consumer", check: async () => stuck.checkStuck(CONSUMER_STUCK_MS) });
    const { retentionDays } = config;
    if (retentionDays !== undefined) {
      const forget = async () => {
        const forgotten = await applyRetention(warehouse, firstKeptDay(retentionDays, Date.now()));
        if (forgotten > 0) log.info({ forgotten, retentionDays }, "forgot events past retention");
      };
      // At start, before consuming, then every hour.
      await forget();
      timers.push(every(3_600_000, forget, log, "applying TALLY_RETENTION_DAYS"));
    }
    await queue.consume(consumer.handle);
    timers.push(
      every(
        600_000,
        async () => {
          const merged = await compactRollups(warehouse);
          if (merged.length > 0) log.info({ merged }, "compacted rollups");
        },
        log,
        "compacting the rollups",
      ),
    );
  }

  let api: ApiServer | undefined;
  let live: LiveEvents | undefined;
  let liveFeed: LiveFeed | undefined;
  let rateLimiter: RateLimiter | undefined;
  let ops: { port: number; close(): Promise<void> } | undefined;
  let port: number | undefined;
  if (role !== "consumer") {
    if (config.rateLimitRps > 0) {
      const limits = { rps: config.rateLimitRps, burst: config.rateLimitBurst };
      rateLimiter =
        config.redisUrl === undefined
          ? createMemoryRateLimiter(limits)
          : createRedisRateLimiter({
              url: config.redisUrl,
              namespace: config.namespace,
              ...limits,
              onError: errorsOf("rate_limiter"),
            });
    }
    liveFeed =
      config.amqpUrl === undefined
        ? createMemoryLiveFeed()
        : createRabbitLiveFeed({
            url: config.amqpUrl,
            namespace: config.namespace,
            onError: errorsOf("live_feed"),
          });
    live = new LiveEvents(liveFeed, config.tailBufferEvents);
    const guarded = timePublishes(guardDepth(queue, { maxDepth: config.maxQueueDepth }), (s) =>
      metrics.acceptSteps.observe({ step: "queue" }, s),
    );
    // With a shared store, the copy accepted first is the one stored, whichever consumer sees which.
    const accepting = dedupe.durable
      ? claimOnAccept(
          guarded,
          (batchId, ids) => dedupe.claimBatch(batchId, ids),
          errorsOf("redis"),
          (s) => metrics.acceptSteps.observe({ step: "claim" }, s),
        )
      : guarded;
    api = createApiServer({
      // Many small requests share broker messages under load.
      ingest: createIngestService({
        queue: coalescePublishes(shareAccepted(accepting, liveFeed)),
        rules: { maxFutureSkewMs: config.maxFutureSkewMs, retentionDays: config.retentionDays },
        maxEvents: config.maxEventsPerRequest,
        metrics,
        live,
      }),
      // A dashboard's repeated questions, answered again from memory until the next write (chDB).
      analytics: createAnalyticsService(
        reuseAnswers(warehouse.withQueryMemoryCap(config.maxQueryMemoryBytes)),
        {
          indexedProperties: config.indexedProperties,
          indexedTimeZones: config.indexedTimeZones,
        },
      ),
      users: createUsersService(warehouse),
      export: createExportService(warehouse),
      dependencies,
      maxBodyBytes: config.maxBodyBytes,
      maxFutureSkewMs: config.maxFutureSkewMs,
      apiKeys: config.apiKeys,
      rateLimit: rateLimiter && {
        limiter: rateLimiter,
        rps: config.rateLimitRps,
        onError: errorsOf("rate_limiter"),
      },
      metrics,
      log: log.child({ role: "api" }),
    });
    port = await api.listen(config.port, config.host);
  } else {
    // A consumer alone still answers health checks and Prometheus.
    ops = await startOpsServer(config.port, config.host, dependencies, metrics);
    port = ops.port;
  }
  const released = await warehouse.releaseStartPages?.();
  if (released)
    log.info({ mib: Math.round(released / 2 ** 20) }, "gave back the warehouse's start-time pages");
  const nodePages = await releaseLibraryPages(nodeBinary());
  if (nodePages)
    log.info({ mib: Math.round(nodePages / 2 ** 20) }, "gave back Node's start-time pages");
  log.info(
    {
      role,
      port,
      queue: queue.kind,
      dedupe: dedupe.kind,
      warehouse: warehouse.kind,
      namespace: config.namespace,
    },
    "tally started",
  );

  return {
    port,
    queue,
    dedupe,
    warehouse,
    consumer,
    metrics,
    async close() {
      live?.close(); // live tails never end by themselves: end them before the drain
      await api?.close();
      await liveFeed?.close();
      await rateLimiter?.close();
      await ops?.close();
      for (const timer of timers) clearInterval(timer);
      await stopConsuming(queue, consumer);
      await dedupe.close();
      await warehouse.close();
    },
  };
}

/** How often a consumer reloads the deleted users; deletions wait a few of these. */
const TOMBSTONE_REFRESH_MS = 1000;

/**
 * Runs `work` every `ms` while the process lives, one run at a time (a
 * slow run is not overlapped); a failure is logged and tried next time.
 */
function every(ms: number, work: () => Promise<void>, log: Logger, what: string): NodeJS.Timeout {
  let running = false;
  const run = async () => {
    if (running) return;
    running = true;
    try {
      await work();
    } catch (err) {
      log.warn({ err }, `${what} failed; will retry`);
    } finally {
      running = false;
    }
  };
  const timer = setInterval(run, ms);
  timer.unref();
  return timer;
}

/** Tests only (TALLY_TEST_DELETION_STOP_AFTER): a deletion hangs after this step, to be killed there. */
function stopOnPurpose(step: DeletionStep | undefined, log: Logger) {
  return async (reached: DeletionStep) => {
    if (reached !== step) return;
    log.warn({ step }, "deletion stopped on purpose (TALLY_TEST_DELETION_STOP_AFTER)");
    await new Promise(() => {});
  };
}
