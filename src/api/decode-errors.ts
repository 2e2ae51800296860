import { Code, ConnectError } from "@connectrpc/connect";
import type { UniversalHandler, UniversalServerResponse } from "@connectrpc/connect/protocol";
import { collect } from "./body.ts";

/**
 * connect-es reports a request it cannot decode from protobuf as
 * `internal` (500), the code it also uses for its own failures. Bad input is
 * the caller's mistake: on the server, "parse binary" only ever means the
 * request. These rewrite it to `invalid_argument`, as the contract has it.
 */
const DECODE = /^(\[internal\] )?parse binary: /;

/** For errors raised inside a handler (client streams decode lazily). */
export function asDecodeError(err: unknown): unknown {
  const e = ConnectError.from(err);
  return e.code === Code.Internal && DECODE.test(e.rawMessage)
    ? new ConnectError(e.rawMessage, Code.InvalidArgument, e.metadata)
    : err;
}

/** For errors answered before a unary handler runs: the response is rewritten. */
export function reclassifyDecodeErrors(handler: UniversalHandler): UniversalHandler {
  return Object.assign(async (req: Parameters<UniversalHandler>[0]) => {
    const res = await handler(req);
    // gRPC and gRPC-Web: the status is in headers (trailers-only) or in
    // trailers, which are written once the body has been read.
    rewriteStatus(res.header);
    const trailer = res.trailer;
    if (trailer !== undefined && res.body !== undefined) {
      const body = res.body;
      return {
        ...res,
        body: (async function* () {
          yield* body;
          rewriteStatus(trailer);
        })(),
      };
    }
    // Connect: a JSON error body with HTTP 500.
    if (res.status === 500 && res.header?.get("content-type")?.startsWith("application/json")) {
      const body = await collect(res.body);
      const json = JSON.parse(body.toString("utf8") || "{}") as { code?: string; message?: string };
      if (json.code !== "internal" || !DECODE.test(json.message ?? ""))
        return withBody(res, res.status, body);
      return withBody(res, 400, Buffer.from(JSON.stringify({ ...json, code: "invalid_argument" })));
    }
    return res;
  }, handler);
}

function rewriteStatus(headers: Headers | undefined) {
  const message = decodeURIComponent(headers?.get("grpc-message") ?? "");
  if (headers?.get("grpc-status") === String(Code.Internal) && DECODE.test(message)) {
    headers.set("grpc-status", String(Code.InvalidArgument));
  }
}

function withBody(
  res: UniversalServerResponse,
  status: number,
  body: Buffer,
): UniversalServerResponse {
  res.header?.set("content-length", String(body.length));
  return {
    ...res,
    status,
    body: (async function* () {
      yield body;
    })(),
  };
}
