import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type { Event } from "../../gen/tally/v1/event_pb.js";
import {
  type IngestRequest,
  type IngestResponse,
  IngestResponseSchema,
  type IngestService,
  type Rejection,
  RejectionSchema,
  type TailEventsRequest,
  TailEventsResponseSchema,
} from "../../gen/tally/v1/ingest_pb.js";
import { clickhouseTime, encodeRow } from "../event/row-format.ts";
import { type EventRules, storedProperties, validateEvent } from "../event/validate-event.ts";
import { type Metrics, rejectedField } from "../observability/metrics.ts";
import { QueueBusyError } from "../queue/depth-guard.ts";
import { type EventBatch, newBatchId } from "../queue/event-batch.ts";
import { type EventQueue, QueueUnavailableError } from "../queue/queue.ts";
import type { LiveEvents } from "./live-events.ts";
import { requestIdOf } from "./observe-rpc.ts";
import { bodyErrorsKey } from "./rest/body-errors.ts";

/** Options of {@link createIngestService}. */
export interface IngestServiceOptions {
  queue: EventQueue;
  rules: EventRules;
  metrics: Metrics;
  /** Accepted events, live (TailEvents). */
  live: LiveEvents;
  /** Most events in a request, or in one message of a stream. */
  maxEvents: number;
  /** Batches of one stream being published at once; more waits (flow control). @default 8 */
  streamPublishesInFlight?: number;
}

/**
 * Validates events, turns the valid ones into one queue batch per request
 * (or per stream message), and answers only once the queue has them.
 */
export function createIngestService(
  options: IngestServiceOptions,
): ServiceImpl<typeof IngestService> {
  const { queue, rules, metrics, maxEvents, live } = options;
  const checkSize = (request: IngestRequest) => {
    if (request.events.length > maxEvents) {
      throw new ConnectError(
        `events: at most ${maxEvents} events per request, got ${request.events.length}`,
        Code.ResourceExhausted,
      );
    }
  };
  const inFlight = options.streamPublishesInFlight ?? 8;

  async function publish(batch: EventBatch) {
    try {
      await queue.publish(batch);
    } catch (err) {
      if (err instanceof QueueUnavailableError) {
        const retryAfter = err instanceof QueueBusyError ? err.retryAfterSeconds : 1;
        throw new ConnectError(
          `the queue could not take the events, none of them was accepted; retry later (${err.message})`,
          Code.Unavailable,
          { "retry-after": String(retryAfter) },
        );
      }
      throw err;
    }
  }

  return {
    async ingest(request: IngestRequest, ctx: HandlerContext): Promise<IngestResponse> {
      if (request.events.length === 0) {
        throw new ConnectError("events: at least one event is required", Code.InvalidArgument);
      }
      checkSize(request);
      const prepared = prepare(request.events, 0, rules, ctx);
      countRejected(metrics, prepared.rejected);
      if (prepared.batch === undefined) {
        throw new ConnectError(summarize(prepared.rejected), Code.InvalidArgument);
      }
      await publish({ ...prepared.batch, requestIds: [requestIdOf(ctx.values)] });
      metrics.eventsAccepted.inc(prepared.batch.rows);
      return create(IngestResponseSchema, {
        accepted: BigInt(prepared.batch.rows),
        rejected: prepared.rejected,
      });
    },

    async ingestStream(requests: AsyncIterable<IngestRequest>, ctx: HandlerContext) {
      const requestId = requestIdOf(ctx.values);
      const publishing: Promise<void>[] = [];
      const rejected: Rejection[] = [];
      let accepted = 0;
      let offset = 0;
      try {
        for await (const request of requests) {
          checkSize(request);
          const prepared = prepare(request.events, offset, rules, ctx);
          countRejected(metrics, prepared.rejected);
          offset += request.events.length;
          rejected.push(...prepared.rejected);
          if (prepared.batch === undefined) continue;
          accepted += prepared.batch.rows;
          const { rows } = prepared.batch;
          const p = publish({ ...prepared.batch, requestIds: [requestId] }).then(() =>
            metrics.eventsAccepted.inc(rows),
          );
          p.catch(() => {}); // awaited below; never unhandled
          publishing.push(p);
          // Stop reading the stream while too many batches await the broker.
          if (publishing.length >= inFlight) await publishing.shift();
        }
        await Promise.all(publishing);
      } catch (err) {
        await Promise.allSettled(publishing);
        throw err;
      }
      return create(IngestResponseSchema, { accepted: BigInt(accepted), rejected });
    },

    async *tailEvents(request: TailEventsRequest, ctx: HandlerContext) {
      const filter = { eventType: request.eventType, userId: request.userId };
      for await (const chunk of live.subscribe(filter, ctx.signal)) {
        yield create(TailEventsResponseSchema, {
          events: chunk.events,
          skipped: BigInt(chunk.skipped),
        });
      }
    },
  };
}

/** Validates `events` (indexes counted from `offset`) and encodes the valid ones. */
function prepare(events: readonly Event[], offset: number, rules: EventRules, ctx: HandlerContext) {
  const bodyErrors = ctx.values.get(bodyErrorsKey);
  const now = Date.now();
  const acceptedAtText = `${clickhouseTime(now)}000`;
  const rejected: Rejection[] = [];
  let body = "";
  let rows = 0;
  for (let i = 0; i < events.length; i++) {
    const event = events[i] as Event;
    let reason = bodyErrors?.get(i) ?? validateEvent(event, rules, now);
    let properties = "{}";
    if (reason === undefined) {
      const stored = storedProperties(event);
      if ("json" in stored) properties = stored.json;
      else reason = stored.reason;
    }
    if (reason !== undefined) {
      rejected.push(
        create(RejectionSchema, { index: BigInt(offset + i), eventId: event.eventId, reason }),
      );
      continue;
    }
    body += encodeRow(event, properties, acceptedAtText);
    rows++;
  }
  const batch =
    rows === 0
      ? undefined
      : {
          id: newBatchId(),
          body: Buffer.from(body),
          rows,
          acceptedAt: now,
        };
  return { batch, rejected };
}

function countRejected(metrics: Metrics, rejected: readonly Rejection[]) {
  for (const r of rejected) metrics.eventsRejected.inc({ field: rejectedField(r.reason) });
}

/** One message for a request whose every event was refused. */
function summarize(rejected: readonly Rejection[]): string {
  const shown = rejected.slice(0, 5).map((r) => `events[${r.index}].${r.reason}`);
  const more =
    rejected.length > shown.length ? ` (and ${rejected.length - shown.length} more)` : "";
  return `no event was accepted: ${shown.join("; ")}${more}`;
}
