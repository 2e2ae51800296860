import type * as http from "node:http";
import type * as http2 from "node:http2";
import type { AddressInfo, Socket } from "node:net";
import type { DescService } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createConnectRouter,
  createContextValues,
  createServiceImplSpec,
  type Interceptor,
  type ServiceImpl,
} from "@connectrpc/connect";
import {
  compressionBrotli,
  compressionGzip,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from "@connectrpc/connect-node";
import type { Logger } from "pino";
import { Health } from "../../gen/health/v1/health_pb.js";
import { AnalyticsService } from "../../gen/tally/v1/analytics_pb.js";
import { ExportService } from "../../gen/tally/v1/export_pb.js";
import { IngestService } from "../../gen/tally/v1/ingest_pb.js";
import { UsersService } from "../../gen/tally/v1/users_pb.js";
import type { ApiKey } from "../config/config.ts";
import type { ErrorReporter } from "../observability/dependency-errors.ts";
import type { Metrics } from "../observability/metrics.ts";
import { opsResponse, sendOps } from "../observability/ops-server.ts";
import type { Dependency } from "../observability/readiness.ts";
import type { RateLimiter } from "../ratelimit/rate-limiter.ts";
import { createAuthInterceptor } from "./auth.ts";
import { corsHeaders, preflightHeaders } from "./cors.ts";
import { reclassifyDecodeErrors } from "./decode-errors.ts";
import { createGrpcUnaryHandlers, createUnaryInvokers } from "./grpc-unary.ts";
import { createHealthService } from "./health.ts";
import { createObserveInterceptor } from "./observe-rpc.ts";
import { createOnePortServer, type StreamHandler } from "./one-port.ts";
import { PlainHeaders } from "./plain-headers.ts";
import { clientAddressKey, createRateLimitInterceptor } from "./rate-limit.ts";
import { registerReflection } from "./reflection.ts";
import { createTranscoder, error, type RestResponse, restRoutes } from "./rest/transcoder.ts";
import { createSdkRoutes } from "./sources/sdk-routes.ts";
import { createStaticFiles } from "./static-files.ts";

/** What request bodies may be compressed with (gRPC's grpc-accept-encoding names them). */
const ACCEPT_COMPRESSION = [compressionGzip, compressionBrotli];
const ACCEPT_ENCODING = ACCEPT_COMPRESSION.map((c) => c.name).join(",");

/** gRPC says which encodings a server takes, so a client may compress its requests. */
const GRPC_ANSWER = { "grpc-accept-encoding": ACCEPT_ENCODING };

/** The headers every answer to a plain gRPC call carries: the encodings taken, and CORS. */
function answerHeaders(headers: http2.IncomingHttpHeaders): Record<string, string> {
  if (headers.origin === undefined) return GRPC_ANSWER;
  return { ...(corsHeaders(headers) as Record<string, string>), ...GRPC_ANSWER };
}

/** Options of {@link createApiServer}. */
export interface ApiServerOptions {
  ingest: ServiceImpl<typeof IngestService>;
  analytics: ServiceImpl<typeof AnalyticsService>;
  users: ServiceImpl<typeof UsersService>;
  export: ServiceImpl<typeof ExportService>;
  /** Checked by /readyz and grpc.health.v1. */
  dependencies: readonly Dependency[];
  /** Largest request body or message accepted, in bytes. */
  maxBodyBytes: number;
  /** How far ahead an SDK's event time may be before it is clamped to now (ms). */
  maxFutureSkewMs: number;
  /** API keys and their scopes; empty means no auth. */
  apiKeys: readonly ApiKey[];
  metrics: Metrics;
  /** Per-caller limits; `onError` is told when the limiter cannot answer (the call is let in). */
  rateLimit?: { limiter: RateLimiter; rps: number; onError: ErrorReporter } | undefined;
  /** Access lines, and failures that reached no client. */
  log: Logger;
}

/** The API: every protocol on one port. */
export interface ApiServer {
  /** Starts listening; resolves to the bound port (useful with port 0). */
  listen(port: number, host: string): Promise<number>;
  /** Stops accepting, lets requests in flight finish (up to `graceMs`), then closes. */
  close(graceMs?: number): Promise<void>;
}

/**
 * A client bursting thousands of calls on one connection queues them itself
 * (its HTTP/2 stack waits for a free stream) instead of overrunning the
 * session. With Node's defaults (no stream limit, 10 MB of session memory)
 * nghttp2 refused the streams past the memory limit and, after 100 refusals,
 * closed the session and failed every call on it.
 */
const HTTP2_LIMITS: http2.ServerOptions = {
  settings: { maxConcurrentStreams: 256 },
  // 256 streams with full flow-control windows (64 KiB each) fit.
  maxSessionMemory: 64,
};

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;

/**
 * gRPC (h2c), gRPC-Web and Connect over HTTP/1.1 and HTTP/2, and REST
 * transcoded from the `google.api.http` annotations, all on one port: the
 * first bytes of each connection tell HTTP/2's preface from HTTP/1.1.
 */
export function createApiServer(options: ApiServerOptions): ApiServer {
  const services: DescService[] = [
    IngestService,
    AnalyticsService,
    UsersService,
    ExportService,
    Health,
  ];
  // Observe first, so refused calls are counted and logged too.
  const interceptors: Interceptor[] = [
    createObserveInterceptor(options.metrics, options.log),
    ...(options.apiKeys.length > 0 ? [createAuthInterceptor(options.apiKeys)] : []),
    ...(options.rateLimit ? [createRateLimitInterceptor(options.rateLimit)] : []),
  ];
  const router = createConnectRouter({
    readMaxBytes: options.maxBodyBytes,
    acceptCompression: ACCEPT_COMPRESSION,
    interceptors,
  });
  router.service(IngestService, options.ingest);
  router.service(AnalyticsService, options.analytics);
  router.service(UsersService, options.users);
  router.service(ExportService, options.export);
  const health = createHealthService(
    options.dependencies,
    services.map((s) => s.typeName),
  );
  router.service(Health, health);
  registerReflection(router, services);
  const specs = {
    ingest: createServiceImplSpec<typeof IngestService>(IngestService, options.ingest),
    analytics: createServiceImplSpec<typeof AnalyticsService>(AnalyticsService, options.analytics),
    users: createServiceImplSpec<typeof UsersService>(UsersService, options.users),
    health: createServiceImplSpec<typeof Health>(Health, health),
  };
  // REST and the SDK routes hand their messages to the implementations themselves.
  const invokers = createUnaryInvokers([specs.ingest, specs.analytics, specs.users], interceptors);
  const grpcUnary = createGrpcUnaryHandlers({
    services: Object.values(specs),
    interceptors,
    readMaxBytes: options.maxBodyBytes,
  });
  const rpc = new Map(router.handlers.map((h) => [h.requestPath, reclassifyDecodeErrors(h)]));
  const rest = createTranscoder(
    restRoutes([IngestService, AnalyticsService, UsersService]),
    invokers,
    options.maxBodyBytes * 8,
  );
  const files = createStaticFiles();
  const sdk = createSdkRoutes({
    maxBodyBytes: options.maxBodyBytes,
    maxFutureSkewMs: options.maxFutureSkewMs,
  });
  const { log, metrics } = options;
  let inFlight = 0;

  async function handle(req: NodeRequest, res: NodeResponse) {
    const [path = "/", search = ""] = (req.url ?? "/").split("?", 2);
    if (req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined) {
      (res as http.ServerResponse).writeHead(204, preflightHeaders());
      res.end();
      return;
    }
    for (const [name, value] of Object.entries(corsHeaders(req.headers))) {
      res.setHeader(name, value as string);
    }
    // gRPC calls the lean path leaves (streams, compressed, JSON, gRPC-Web): as GRPC_ANSWER.
    if (req.headers["content-type"]?.startsWith("application/grpc")) {
      res.setHeader("grpc-accept-encoding", ACCEPT_ENCODING);
    }
    const handler = rpc.get(path);
    if (handler !== undefined) {
      const uRes = await handler(
        universalRequestFromNodeRequest(req, res, undefined, callValues(req.socket.remoteAddress)),
      );
      await universalResponseToNodeResponse(uRes, res);
      return;
    }
    const routed = rest.has(path) ? "rest" : sdk.has(req.method ?? "GET", path) ? "sdk" : undefined;
    if (routed !== undefined) return send(res, await answerJson(req, res, path, search, routed));
    if (path === "/healthz" || path === "/readyz" || path === "/metrics") {
      // Probes and scrapes come every few seconds: their access lines are debug.
      const started = performance.now();
      sendOps(res as http.ServerResponse, await opsResponse(path, options.dependencies, metrics));
      const ms = Math.round((performance.now() - started) * 10) / 10;
      log.debug({ route: `${req.method} ${path}`, status: res.statusCode, ms }, "request");
      return;
    }
    if (await files(req as http.IncomingMessage, res as http.ServerResponse, path)) return;
    send(res, error(404, "not_found", `no route ${req.method} ${path}`));
    log.info({ route: `${req.method} ${path}`, status: 404 }, "request");
  }

  /** A REST or SDK route's answer: the body read (capped), then transcoded or adapted. */
  async function answerJson(
    req: NodeRequest,
    res: NodeResponse,
    path: string,
    search: string,
    routed: "rest" | "sdk",
  ) {
    const body = await readBody(req, options.maxBodyBytes);
    if (body === undefined) {
      return error(413, "resource_exhausted", `body: larger than ${options.maxBodyBytes} bytes`);
    }
    const ac = new AbortController();
    // Only a client gone early aborts: abort() builds a DOMException, a cost per request otherwise.
    res.once("close", () => {
      if (!res.writableFinished) ac.abort();
    });
    const call = {
      query: new URLSearchParams(search),
      header: headersOf(req),
      address: req.socket.remoteAddress ?? "",
      body,
      signal: ac.signal,
    };
    if (routed === "rest") return rest.handle({ verb: req.method ?? "GET", path, ...call });
    return sdk.handle({
      ...call,
      method: req.method ?? "GET",
      path,
      host: String(req.headers.host ?? req.headers[":authority"] ?? "127.0.0.1"),
      protocol: "http",
      ingest: (request, header) =>
        rest.answerMessage("POST", "/events", request, {
          header,
          address: call.address,
          signal: ac.signal,
        }),
    });
  }

  /** Plain gRPC unary calls, answered on their HTTP/2 stream (grpc-unary.ts). */
  const onStream: StreamHandler = (stream, headers) => {
    const lean = grpcUnary.for(headers);
    if (lean === undefined) return false;
    inFlight++;
    stream.once("close", () => inFlight--);
    const values = callValues(stream.session?.socket?.remoteAddress);
    lean(stream, headers, values, answerHeaders(headers)).catch((err: unknown) => {
      log.error({ err, url: headers[":path"] }, "request failed");
      stream.destroy();
    });
    return true;
  };
  const server = createOnePortServer(
    HTTP2_LIMITS,
    (req, res) => {
      inFlight++;
      res.once("close", () => inFlight--);
      handle(req, res).catch((err: unknown) => {
        // The client went away: nothing to answer, nothing to report.
        if (ConnectError.from(err).code === Code.Aborted) return;
        log.error({ err, url: req.url }, "request failed");
        if (!res.headersSent) send(res, error(500, "internal", "internal error"));
        else res.destroy();
      });
    },
    onStream,
  );
  const sockets = new Set<Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  server.on("connection", (s: Socket) => {
    // Nagle's algorithm held small HTTP/2 frames back: unary gRPC calls
    // crawled at ~900/s instead of ~3,300/s. Node's own HTTP servers do this.
    s.setNoDelay(true);
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  });

  return {
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
      });
    },
    async close(graceMs = 5000) {
      const closed = new Promise((r) => server.close(r));
      // GOAWAY: streams in flight finish, new ones go to another server.
      for (const session of sessions) session.close();
      const deadline = Date.now() + graceMs;
      while (inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

function send(res: NodeResponse, r: RestResponse) {
  const text = JSON.stringify(r.body);
  (res as http.ServerResponse).writeHead(r.status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...r.header,
  });
  res.end(text);
}

/** What the interceptors read of a call: who made it, by address (for the rate limit). */
function callValues(address: string | undefined) {
  return createContextValues().set(clientAddressKey, address ?? "");
}

function headersOf(req: NodeRequest): Headers {
  return new PlainHeaders(req.headers);
}

/** The body, or undefined once it passes `max` bytes. */
async function readBody(req: NodeRequest, max: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
