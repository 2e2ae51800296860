import { create, type JsonObject } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { EventSchema } from "../../../gen/tally/v1/event_pb.js";
import { type IngestRequest, IngestRequestSchema } from "../../../gen/tally/v1/ingest_pb.js";
import type { RestResponse } from "../rest/transcoder.ts";
import { AMPLITUDE_FIELD, amplitudeEvents, isAmplitudeBatch } from "./amplitude.ts";
import { BodyError, decodePayload } from "./decode-body.ts";
import { type Source, type SourceEvent, toWireEvent, type WireEvent } from "./map-event.ts";
import { POSTHOG_ROUTES, posthogEvents } from "./posthog.ts";
import { SEGMENT_ROUTES, segmentEvents, segmentSettings } from "./segment.ts";

/** An SDK's request, read. */
export interface SdkRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  header: Headers;
  body: Buffer;
  /** The Host the SDK called, for the settings analytics.js reads. */
  host: string;
  protocol: "http" | "https";
  /**
   * Hands Tally's events to the one ingest path: Ingest through the same
   * interceptors (auth, rate limit, metrics), validation and queue, answered
   * as POST /events answers, the request made already rather than written
   * as JSON or protobuf and read again.
   */
  ingest(request: IngestRequest, header: Headers): Promise<RestResponse>;
}

/** Options of {@link createSdkRoutes}. */
export interface SdkRoutesOptions {
  /** Largest body once decompressed. */
  maxBodyBytes: number;
  /** How far ahead an event's time may be before it is clamped to now. */
  maxFutureSkewMs: number;
}

/**
 * The routes of the SDKs teams already run (Segment and RudderStack,
 * PostHog, Amplitude): thin adapters that decode each source's payload,
 * map it onto Tally events with one shared step, hand them to the same
 * ingest path as POST /events, and answer as each SDK reads an answer.
 */
export function createSdkRoutes(options: SdkRoutesOptions) {
  const sourceOf = (
    method: string,
    path: string,
  ): "segment" | "posthog" | "amplitude" | "settings" | undefined => {
    const p = path.length > 1 && path.endsWith("/") ? path.slice(0, -1) : path;
    if (method === "GET" && /^\/v1\/projects\/[^/]+\/settings$/.test(p)) return "settings";
    if (method === "POST" && p.startsWith("/v1/") && SEGMENT_ROUTES.has(p.slice(4)))
      return "segment";
    if (method === "POST" && p === "/2/httpapi") return "amplitude";
    if ((method === "POST" || method === "GET") && POSTHOG_ROUTES.has(p)) return "posthog";
    return undefined;
  };

  async function handle(req: SdkRequest): Promise<RestResponse> {
    const kind = sourceOf(req.method, req.path) as NonNullable<ReturnType<typeof sourceOf>>;
    const path = req.path.endsWith("/") ? req.path.slice(0, -1) : req.path;
    if (kind === "settings") {
      const writeKey = decodeURIComponent(path.split("/")[3] ?? "");
      return { status: 200, body: segmentSettings(writeKey, req.host, req.protocol) as never };
    }
    let payload: unknown;
    try {
      payload = decodePayload(
        {
          body: req.body,
          contentType: req.header.get("content-type") ?? "",
          contentEncoding: req.header.get("content-encoding") ?? "",
          query: req.query,
        },
        options.maxBodyBytes,
      );
    } catch (err) {
      if (!(err instanceof BodyError)) throw err;
      return refused(
        kind,
        err.status,
        err.status === 413 ? "resource_exhausted" : "invalid_argument",
        err.message,
      );
    }
    const nowMs = Date.now();
    const source: Source =
      kind === "posthog" && path === "/batch" && isAmplitudeBatch(payload) ? "amplitude" : kind;
    const read =
      source === "segment"
        ? segmentEvents(path.slice(4), payload, nowMs)
        : source === "posthog"
          ? posthogEvents(payload, nowMs)
          : amplitudeEvents(payload);
    if (read.events.length === 0) {
      return refused(source, 400, "invalid_argument", "body: no events in it");
    }
    const events = read.events.map((e: SourceEvent) =>
      toWireEvent(e, { nowMs, maxFutureSkewMs: options.maxFutureSkewMs }),
    );
    const request = create(IngestRequestSchema, {
      events: events.map((e) =>
        create(EventSchema, {
          eventId: e.event_id,
          occurredAt: timestampFromMs(Date.parse(e.occurred_at)),
          userId: e.user_id,
          eventType: e.event_type,
          properties: e.properties as JsonObject,
        }),
      ),
    });
    const answer = await req.ingest(request, ingestHeaders(req.header, read.key));
    return answerAs(source, answer, events, req.body.length);
  }

  return {
    /** Whether `method path` is an SDK's route. */
    has: (method: string, path: string) => sourceOf(method, path) !== undefined,
    handle,
  };
}

/**
 * The headers of the events handed on: the SDK's (request id, address),
 * describing a plain JSON body now, with the key the SDK sent: a key in
 * the body, or as HTTP Basic's user name, becomes `Authorization: Bearer
 * KEY` for the ingest path's auth, which lets it only ingest (CONTRACT.md).
 */
function ingestHeaders(header: Headers, bodyKey: string | undefined): Headers {
  const out = new Headers(header);
  out.delete("content-encoding");
  out.delete("content-length");
  out.set("content-type", "application/json");
  const basic = /^Basic\s+(.+)$/i.exec(header.get("authorization") ?? "")?.[1];
  const basicUser =
    basic === undefined ? undefined : Buffer.from(basic, "base64").toString().split(":")[0];
  const key = bodyKey ?? basicUser;
  if (key !== undefined && key !== "" && !/^Bearer\s/i.test(header.get("authorization") ?? "")) {
    out.set("authorization", `Bearer ${key}`);
  }
  return out;
}

/** The ingest path's answer, as the source's SDK reads one. */
function answerAs(
  source: Source,
  answer: RestResponse,
  events: WireEvent[],
  bytes: number,
): RestResponse {
  const header = answer.header;
  if (answer.status === 202) {
    const accepted = Number((answer.body as { accepted?: number }).accepted ?? 0);
    if (source === "amplitude") {
      return {
        status: 200,
        header,
        body: {
          code: 200,
          events_ingested: accepted,
          payload_size_bytes: bytes,
          server_upload_time: Date.now(),
        },
      };
    }
    return { status: 200, header, body: source === "segment" ? { success: true } : { status: 1 } };
  }
  const { code = "unknown", message = "" } = answer.body as { code?: string; message?: string };
  if (source === "amplitude" && answer.status === 400) {
    // None was accepted: name the events that cannot be taken, by field, so the SDK drops them.
    // (Every event of the request was refused; those past the mapping, for what they carry.)
    const invalid: Record<string, number[]> = {};
    events.forEach((e, i) => {
      const field =
        e.user_id === "" ? "user_id" : e.event_type === "" ? "event_type" : "properties";
      const name = AMPLITUDE_FIELD[field] ?? field;
      invalid[name] = [...(invalid[name] ?? []), i];
    });
    return {
      status: 400,
      header,
      body: { code: 400, error: message, events_with_invalid_fields: invalid },
    };
  }
  return { ...refused(source, answer.status, code, message), header };
}

function refused(source: Source, status: number, code: string, message: string): RestResponse {
  if (source !== "amplitude") return { status, body: { code, message } };
  // Amplitude's SDK drops a batch whose error starts so, instead of retrying it.
  const error = status === 401 || status === 403 ? `Invalid API key: ${message}` : message;
  return { status, body: { code: status, error } };
}
