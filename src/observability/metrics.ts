import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * Every metric Tally exports, on one registry. Labels are bounded sets
 * (service, method, transport, code, field, operation): never an event type,
 * a user or a request id.
 */
export function createMetrics(sources: { queueDepth?: () => Promise<number> } = {}) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const r = { registers: [registry] };
  return {
    registry,
    rpcRequests: new Counter({
      name: "tally_rpc_requests_total",
      help: "RPCs answered, by service, method, transport (grpc, grpc_web, connect, rest) and code",
      labelNames: ["service", "method", "transport", "code"] as const,
      ...r,
    }),
    rpcDuration: new Histogram({
      name: "tally_rpc_duration_seconds",
      help: "Time to answer an RPC",
      labelNames: ["service", "method", "transport"] as const,
      buckets: LATENCY_BUCKETS,
      ...r,
    }),
    eventsAccepted: new Counter({
      name: "tally_events_accepted_total",
      help: "Events accepted (acknowledged to the client), repeats included",
      ...r,
    }),
    eventsRejected: new Counter({
      name: "tally_events_rejected_total",
      help: "Events refused, by the field that was wrong",
      labelNames: ["field"] as const,
      ...r,
    }),
    eventsDeduplicated: new Counter({
      name: "tally_events_deduplicated_total",
      help: "Rows dropped by the consumer as repeats of an event already stored",
      ...r,
    }),
    eventsDroppedDeleted: new Counter({
      name: "tally_events_dropped_deleted_total",
      help: "Rows dropped by the consumer because their user's data was deleted after they occurred",
      ...r,
    }),
    eventsInserted: new Counter({
      name: "tally_events_inserted_total",
      help: "Rows inserted into ClickHouse",
      ...r,
    }),
    insertFailures: new Counter({
      name: "tally_insert_failures_total",
      help: "Failed inserts, by kind: retryable (network, timeouts, too many parts) or not (bad data, schema)",
      labelNames: ["kind"] as const,
      ...r,
    }),
    batchesDeadLettered: new Counter({
      name: "tally_batches_dead_lettered_total",
      help: "Batches the consumer dead-lettered, with their reason, instead of storing them",
      ...r,
    }),
    consumerStuckSeconds: new Gauge({
      name: "tally_consumer_stuck_seconds",
      help: "How long the consumer's current insert has been failing (0 while inserts succeed)",
      ...r,
    }),
    dependencyErrors: new Counter({
      name: "tally_dependency_errors_total",
      help: "Errors from a dependency's client (rabbitmq, redis, clickhouse, live_feed, rate_limiter), each counted, logged at most once a minute",
      labelNames: ["dependency"] as const,
      ...r,
    }),
    queueDepth: new Gauge({
      name: "tally_queue_depth_messages",
      help: "Messages waiting in the events queue (read from the broker at each scrape)",
      ...r,
      async collect() {
        if (sources.queueDepth === undefined) return;
        try {
          this.set(await sources.queueDepth());
        } catch {
          // The broker is away: /readyz says so; keep the last value.
        }
      },
    }),
    consumerLag: new Gauge({
      name: "tally_consumer_lag_seconds",
      help: "Age of the last batch the consumer took from the queue, from its acceptance",
      ...r,
    }),
    flushRows: new Histogram({
      name: "tally_flush_rows",
      help: "Rows per consumer flush (one dedupe round trip and one insert)",
      buckets: [1, 10, 100, 1000, 5000, 10000, 20000, 50000],
      ...r,
    }),
    acceptedToQueryable: new Histogram({
      name: "tally_accepted_to_queryable_seconds",
      help: "Time from an event's acknowledgement to its insert into ClickHouse",
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      ...r,
    }),
    acceptSteps: new Histogram({
      name: "tally_accept_step_seconds",
      help: "Time of each step of acknowledging one queue message (several coalesced requests): queue (the broker's confirm, or the local log's sync), claim (its ids claimed in Redis after it)",
      labelNames: ["step"] as const,
      buckets: LATENCY_BUCKETS,
      ...r,
    }),
    redisRoundTrip: new Histogram({
      name: "tally_redis_roundtrip_seconds",
      help: "Time of a flush's dedupe step: the marks of its batches found whole at accept, then the claims of the others' ids",
      buckets: LATENCY_BUCKETS,
      ...r,
    }),
    clickhouseRoundTrip: new Histogram({
      name: "tally_clickhouse_roundtrip_seconds",
      help: "Time of one ClickHouse call, by operation (insert, query)",
      labelNames: ["operation"] as const,
      buckets: LATENCY_BUCKETS,
      ...r,
    }),
  };
}

/** Tally's metrics, as made by {@link createMetrics}. */
export type Metrics = ReturnType<typeof createMetrics>;

/** The field a rejection reason names ("event_id: must be a UUID" -> "event_id"), from a closed set. */
export function rejectedField(reason: string): string {
  const field = reason.slice(0, reason.indexOf(":"));
  return ["event_id", "occurred_at", "user_id", "event_type", "properties"].includes(field)
    ? field
    : "malformed";
}
