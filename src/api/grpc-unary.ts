import type * as http2 from "node:http2";
import { type DescMethodUnary, fromBinary, type Message, toBinary } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
  type ServiceImplSpec,
} from "@connectrpc/connect";
import { invokeUnaryImplementation } from "@connectrpc/connect/protocol";
import { parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { PlainHeaders } from "./plain-headers.ts";

/**
 * Answers one plain gRPC unary call on its HTTP/2 stream, with `answerHeaders`
 * among its response headers; resolves once the answer is written.
 */
export type GrpcUnaryHandler = (
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  values: ContextValues,
  answerHeaders?: Record<string, string>,
) => Promise<void>;

/** Options of {@link createGrpcUnaryHandlers}. */
export interface GrpcUnaryOptions {
  /** The services and their implementations, as given to the router. */
  services: readonly ServiceImplSpec[];
  /** The router's interceptors, run the same way. */
  interceptors: Interceptor[];
  /** Largest request message, in bytes. */
  readMaxBytes: number;
  /**
   * Most bytes of requests one HTTP/2 connection may have gathered and not
   * yet answered; a call past it gets RESOURCE_EXHAUSTED. Without it, a
   * connection's 256 streams could hold 256 messages of `readMaxBytes`.
   * @default 4 * readMaxBytes
   */
  connectionMaxBytes?: number;
}

type UnarySpec = Extract<MethodImplSpec, { kind: "unary" }>;

interface Limits {
  readMaxBytes: number;
  connectionMaxBytes: number;
}

/** Bytes of request messages being gathered, per HTTP/2 connection. */
const gathering = new WeakMap<object, { bytes: number }>();

const PLAIN_GRPC = /^application\/grpc(\+proto)?$/i;
/** The reason a finished call's signal carries: abort() without one builds a DOMException. */
const CALL_ENDED = new ConnectError("the call has ended", Code.Canceled);

/**
 * The common case of gRPC, a unary call in binary protobuf with nothing
 * compressed, answered without connect-node's stream pipeline: at 2,000
 * calls/s that pipeline alone (a no-op handler behind it) cost 0.2 ms of
 * CPU per call and held p99 at 24-47 ms, mostly in garbage collection of its
 * async iterators. The call still goes through connect for what matters:
 * the same interceptors (observe, auth, rate limit), the same handler
 * context, deadlines (grpc-timeout) and status trailers. Everything else
 * (compression, JSON, gRPC-Web, Connect, streams, HTTP/1.1) stays with the
 * router: `for` says which HTTP/2 streams this may answer. It reads and
 * answers on the HTTP/2 stream itself, without Node's compatibility objects
 * (one-port.ts).
 */
export function createGrpcUnaryHandlers(options: GrpcUnaryOptions) {
  const handlers = new Map<string, GrpcUnaryHandler>();
  const limits: Limits = {
    readMaxBytes: options.readMaxBytes,
    connectionMaxBytes: options.connectionMaxBytes ?? 4 * options.readMaxBytes,
  };
  for (const { service, methods } of options.services) {
    for (const spec of Object.values(methods)) {
      if (spec.kind !== "unary") continue;
      handlers.set(
        `/${service.typeName}/${spec.method.name}`,
        unaryHandler(spec, options.interceptors, limits),
      );
    }
  }
  return {
    /** The handler for an HTTP/2 stream with `headers`, if it is plain gRPC for a unary method. */
    for(headers: http2.IncomingHttpHeaders) {
      const encoding = headers["grpc-encoding"];
      if (
        headers[":method"] !== "POST" ||
        !PLAIN_GRPC.test(headers["content-type"] ?? "") ||
        (encoding !== undefined && encoding !== "identity")
      ) {
        return undefined;
      }
      return handlers.get(headers[":path"] ?? "");
    },
  };
}

function unaryHandler(
  spec: UnarySpec,
  interceptors: Interceptor[],
  limits: Limits,
): GrpcUnaryHandler {
  const { readMaxBytes } = limits;
  const { method } = spec;
  return async (stream, headers, values, answerHeaders = {}) => {
    // A client's reset with an error code is emitted as "error" on the
    // stream; unheard, it would be thrown and end the process. Node's
    // compatibility objects swallow it the same way; "close" follows.
    stream.on("error", ignoreStreamError);
    const timeout = parseTimeout(header(headers, "grpc-timeout"), Number.MAX_SAFE_INTEGER);
    const context = callContext(method, {
      protocolName: "grpc",
      url: `http://${headers[":authority"]}${headers[":path"]}`,
      requestHeader: new PlainHeaders(headers),
      responseHeader: new PlainHeaders(answerHeaders),
      responseTrailer: new PlainHeaders({ "grpc-status": "0" }),
      values,
      timeoutMs: timeout.timeoutMs,
    });
    context.responseHeader.set("content-type", "application/grpc+proto");
    // Closed before its answer: the client left. (A reset ends the stream's
    // writable side too, so writableFinished cannot say it.) The error is
    // made only then: made for every call, it was most of the ConnectErrors
    // (and their stack traces) the service built.
    stream.once("close", () => {
      if (!stream.headersSent)
        context.abort(new ConnectError("the client went away", Code.Canceled));
    });
    let body: Buffer | undefined;
    try {
      if (timeout.error) throw timeout.error;
      // The deadline and a client that leaves end the read too (context.signal says which).
      const bytes = await readMessage(stream, limits, context.signal);
      const input = fromEnvelope(method, bytes, readMaxBytes);
      const output = await invokeUnaryImplementation(spec, context, input, interceptors);
      body = envelope(toBinary(method.output, output as never));
    } catch (err) {
      setTrailerStatus(
        context.responseTrailer,
        err instanceof ConnectError
          ? err
          : new ConnectError("internal error", Code.Internal, undefined, undefined, err),
      );
    } finally {
      context.end();
    }
    if (stream.closed || stream.destroyed) return;
    stream.respond({ ":status": 200, ...context.responseHeader.node }, { waitForTrailers: true });
    stream.once("wantTrailers", () => {
      // Gone in between: nothing to send them on.
      if (!stream.closed) stream.sendTrailers(context.responseTrailer.node);
    });
    if (body === undefined) stream.end();
    else stream.end(body);
  };
}

function ignoreStreamError() {}

/**
 * What connect's createHandlerContext makes, for one call, with less: one
 * AbortController where it linked three (its own, the deadline's and the
 * caller's, with listeners on each), a timer only when there is a
 * deadline, and headers over plain objects (plain-headers.ts). With them,
 * the service's main thread spent 5-8% less CPU a call (gRPC at 2,000 and
 * 5,000 calls/s, REST at 2,000) and allocated 14% less a gRPC call. Its
 * signal aborts as connect's does: `abort` (the client gone), the deadline
 * passed (DEADLINE_EXCEEDED), or the call over (`end`).
 */
function callContext(
  method: DescMethodUnary,
  init: Pick<HandlerContext, "protocolName" | "url" | "requestHeader" | "values"> & {
    responseHeader: PlainHeaders;
    responseTrailer: PlainHeaders;
    timeoutMs: number | undefined;
  },
) {
  const controller = new AbortController();
  const { timeoutMs } = init;
  const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
  const expire = () =>
    controller.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded));
  let timer: NodeJS.Timeout | undefined;
  if (timeoutMs !== undefined && timeoutMs <= 0) expire();
  else if (timeoutMs !== undefined) timer = setTimeout(expire, timeoutMs);
  return {
    ...init,
    service: method.parent,
    method,
    requestMethod: "POST",
    signal: controller.signal,
    timeoutMs: () => (deadline === undefined ? undefined : deadline - Date.now()),
    /** Ends the call early with `reason`. */
    abort(reason: unknown) {
      controller.abort(reason);
    },
    /** Clears the deadline's timer and aborts the signal: the call is over. */
    end() {
      clearTimeout(timer);
      controller.abort(CALL_ENDED);
    },
  } satisfies HandlerContext & { abort(reason: unknown): void; end(): void };
}

/**
 * The request's one message, whole, still in its 5-byte envelope. Fails
 * when `signal` aborts (deadline, client gone), when the message passes
 * `readMaxBytes`, or when its connection gathers more than
 * `connectionMaxBytes` across its calls.
 */
function readMessage(
  stream: http2.ServerHttp2Stream,
  { readMaxBytes, connectionMaxBytes }: Limits,
  signal: AbortSignal,
): Promise<Buffer> {
  const session = stream.session ?? stream;
  let connection = gathering.get(session);
  if (connection === undefined) {
    connection = { bytes: 0 };
    gathering.set(session, connection);
  }
  const held = connection;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const fail = (err: unknown) => {
      done();
      stream.resume(); // drain, so the stream can close
      reject(err);
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      held.bytes += chunk.length;
      if (size > readMaxBytes + 5) {
        // Too big to be one allowed message: stop gathering, say the size it promised.
        const promised = Math.max(Buffer.concat(chunks).readUInt32BE(1), size - 5);
        fail(
          new ConnectError(
            `message size ${promised} is larger than configured readMaxBytes ${readMaxBytes}`,
            Code.ResourceExhausted,
          ),
        );
      } else if (held.bytes > connectionMaxBytes) {
        fail(
          new ConnectError(
            `this connection is sending more than ${connectionMaxBytes} bytes of requests at once; wait for answers or open another connection`,
            Code.ResourceExhausted,
          ),
        );
      }
    };
    const onEnd = () => {
      done();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
    };
    // A client that resets the stream sends no end: its close aborts the
    // call's signal (unaryHandler), and that settles the wait.
    const onAbort = () => fail(signal.reason);
    let settled = false;
    const done = () => {
      if (settled) return;
      settled = true;
      held.bytes -= size;
      stream.off("data", onData);
      stream.off("end", onEnd);
      signal.removeEventListener("abort", onAbort);
    };
    if (signal.aborted) return fail(signal.reason);
    stream.on("data", onData);
    stream.once("end", onEnd);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * The one message of a unary request, checked in the order connect's
 * envelope reader checks it, so that each fault gets the same answer.
 */
function fromEnvelope(method: DescMethodUnary, bytes: Buffer, readMaxBytes: number) {
  if (bytes.length === 0) {
    throw new ConnectError(
      "protocol error: missing input message for unary method",
      Code.Unimplemented,
    );
  }
  const length = bytes.length < 5 ? 0 : bytes.readUInt32BE(1);
  if (length > readMaxBytes) {
    throw new ConnectError(
      `message size ${length} is larger than configured readMaxBytes ${readMaxBytes}`,
      Code.ResourceExhausted,
    );
  }
  if (bytes.length < 5 + length) {
    throw new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
  }
  if ((bytes[0] as number) & 1) {
    // gRPC's spec: a compressed message without grpc-encoding is a protocol error, INTERNAL.
    throw new ConnectError(
      "received compressed envelope, but do not know how to decompress",
      Code.Internal,
    );
  }
  let message: ReturnType<typeof fromBinary>;
  try {
    message = fromBinary(method.input, bytes.subarray(5, 5 + length));
  } catch (e) {
    // connect says Internal here; bad bytes are the caller's (decode-errors.ts).
    throw new ConnectError(`parse binary: ${(e as Error).message}`, Code.InvalidArgument);
  }
  const rest = bytes.subarray(5 + length);
  if (rest.length > 0) {
    const complete = rest.length >= 5 && rest.length >= 5 + rest.readUInt32BE(1);
    throw complete
      ? new ConnectError(
          "protocol error: received extra input message for unary method",
          Code.Unimplemented,
        )
      : new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
  }
  return message;
}

function envelope(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

function header(headers: http2.IncomingHttpHeaders, name: string): string | null {
  const v = headers[name];
  return typeof v === "string" ? v : null;
}

/** What a {@link UnaryInvoker}'s calls are given besides the message. */
export interface DirectCall {
  header: Headers;
  values: ContextValues;
  signal: AbortSignal;
}

/**
 * Calls a unary method's implementation with a request message already
 * made, through the same interceptors and handler context as a call that
 * came over the wire (REST and the SDK routes hand their messages on this
 * way): no encoding, no decoding. Resolves to the answer and its response
 * headers; rejects with a ConnectError.
 */
export type UnaryInvoker = (
  input: Message,
  call: DirectCall,
) => Promise<{ output: Message; header: Headers }>;

/** An invoker for each unary method of `services`, by `/package.Service/Method`. */
export function createUnaryInvokers(
  services: readonly ServiceImplSpec[],
  interceptors: Interceptor[],
): Map<string, UnaryInvoker> {
  const invokers = new Map<string, UnaryInvoker>();
  for (const { service, methods } of services) {
    for (const spec of Object.values(methods)) {
      if (spec.kind === "unary") {
        invokers.set(`/${service.typeName}/${spec.method.name}`, unaryInvoker(spec, interceptors));
      }
    }
  }
  return invokers;
}

function unaryInvoker(spec: UnarySpec, interceptors: Interceptor[]): UnaryInvoker {
  const { method } = spec;
  return async (input, call) => {
    const context = callContext(method, {
      protocolName: "connect",
      url: `http://direct/${method.parent.typeName}/${method.name}`,
      requestHeader: call.header,
      responseHeader: new PlainHeaders(),
      responseTrailer: new PlainHeaders(),
      values: call.values,
      timeoutMs: undefined,
    });
    const onAbort = () => context.abort(call.signal.reason);
    if (call.signal.aborted) onAbort();
    else call.signal.addEventListener("abort", onAbort, { once: true });
    try {
      const output = await invokeUnaryImplementation(spec, context, input as never, interceptors);
      return { output: output as Message, header: context.responseHeader };
    } catch (err) {
      throw err instanceof ConnectError
        ? err
        : new ConnectError("internal error", Code.Internal, undefined, undefined, err);
    } finally {
      call.signal.removeEventListener("abort", onAbort);
      context.end();
    }
  };
}
