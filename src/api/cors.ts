import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import { cors } from "@connectrpc/connect";

const ALLOW_HEADERS = [...cors.allowedHeaders, "Authorization", "X-Api-Key", "X-Request-Id"].join(
  ", ",
);
const EXPOSE_HEADERS = [...cors.exposedHeaders, "Retry-After", "X-Request-Id"].join(", ");

/**
 * Browsers on other origins call Tally over Connect and gRPC-Web. Any origin
 * may: credentials are API keys in headers, never cookies.
 */
export function corsHeaders(request: IncomingHttpHeaders): OutgoingHttpHeaders {
  if (request.origin === undefined) return {};
  return { "access-control-allow-origin": "*", "access-control-expose-headers": EXPOSE_HEADERS };
}

/** The answer to a CORS preflight (OPTIONS with Access-Control-Request-Method). */
export function preflightHeaders(): OutgoingHttpHeaders {
  return {
    "access-control-allow-origin": "*",
    "access-control-allow-methods": [...new Set([...cors.allowedMethods, "GET", "POST"])].join(
      ", ",
    ),
    "access-control-allow-headers": ALLOW_HEADERS,
    "access-control-max-age": "7200",
  };
}
