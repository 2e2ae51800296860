import {
  create,
  type DescMessage,
  fromBinary,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { type Client, createClient } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { AnalyticsService } from "../gen/tally/v1/analytics_pb.js";
import { type Event, EventSchema } from "../gen/tally/v1/event_pb.js";
import {
  type IngestRequest,
  IngestRequestSchema,
  type IngestResponse,
  IngestResponseSchema,
  IngestService,
} from "../gen/tally/v1/ingest_pb.js";
import type { JsonEvent } from "./helpers.ts";

/** A JSON test event as a protobuf Event. */
export function toProto(e: JsonEvent): Event {
  return create(EventSchema, {
    eventId: e.event_id,
    occurredAt: timestampFromMs(Date.parse(e.occurred_at)),
    userId: e.user_id,
    eventType: e.event_type,
    ...(e.properties === undefined ? {} : { properties: e.properties as Event["properties"] }),
  });
}

/** Connect-ES clients over each protocol connect-node offers. */
export function connectClients(port: number) {
  const baseUrl = `http://127.0.0.1:${port}`;
  const transports = {
    connect: createConnectTransport({ baseUrl, httpVersion: "1.1" }),
    "connect-h2": createConnectTransport({ baseUrl, httpVersion: "2" }),
    "grpc-web": createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }),
    grpc: createGrpcTransport({ baseUrl }),
  };
  const clients = {} as Record<
    keyof typeof transports,
    { ingest: Client<typeof IngestService>; analytics: Client<typeof AnalyticsService> }
  >;
  for (const [name, t] of Object.entries(transports)) {
    clients[name as keyof typeof transports] = {
      ingest: createClient(IngestService, t),
      analytics: createClient(AnalyticsService, t),
    };
  }
  return clients;
}

/**
 * An independent gRPC peer: @grpc/grpc-js with protobuf-es only for the
 * message bytes, so HTTP/2 framing and status handling are not ours.
 */
export function grpcJsClient(port: number) {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const codec = <S extends DescMessage>(schema: S) => ({
    ser: (m: MessageShape<S>) => Buffer.from(toBinary(schema, m)),
    de: (b: Buffer) => fromBinary(schema, b),
  });
  const req = codec(IngestRequestSchema);
  const res = codec(IngestResponseSchema);
  return {
    raw: client,
    ingest(events: Event[], metadata = new grpc.Metadata()): Promise<IngestResponse> {
      return new Promise((resolve, reject) => {
        client.makeUnaryRequest(
          "/tally.v1.IngestService/Ingest",
          req.ser,
          res.de,
          create(IngestRequestSchema, { events }),
          metadata,
          (err, value) => (err ? reject(err) : resolve(value as IngestResponse)),
        );
      });
    },
    ingestStream(batches: Event[][]): Promise<IngestResponse> {
      return new Promise((resolve, reject) => {
        const call = client.makeClientStreamRequest(
          "/tally.v1.IngestService/IngestStream",
          req.ser,
          res.de,
          new grpc.Metadata(),
          (err, value) => (err ? reject(err) : resolve(value as IngestResponse)),
        );
        for (const events of batches)
          call.write(create(IngestRequestSchema, { events }) as IngestRequest);
        call.end();
      });
    },
    close: () => client.close(),
  };
}

/** POSTs JSON to a REST route; answers status and parsed body. */
export async function rest(port: number, path: string, body?: unknown, init: RequestInit = {}) {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: body === undefined ? "GET" : "POST",
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
    ...init,
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: text === "" ? undefined : (JSON.parse(text) as unknown),
  };
}
