import { randomUUID } from "node:crypto";
import {
  ConnectError,
  type ContextValues,
  createContextKey,
  type Interceptor,
} from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import type { Logger } from "pino";
import type { Metrics } from "../observability/metrics.ts";
import { asDecodeError } from "./decode-errors.ts";

/** The request's id: the caller's x-request-id when sane, else a new one. */
export const requestIdKey = createContextKey<string>("", { description: "request id" });

/** The REST route ("POST /events") an RPC was transcoded from; "" when it came as an RPC. */
export const restRouteKey = createContextKey<string>("", { description: "transcoded REST route" });

/** The request id a handler runs under. */
export const requestIdOf = (values: ContextValues): string => values.get(requestIdKey);

function transportOf(contentType: string | null, restRoute: string): string {
  if (restRoute !== "") return "rest";
  if (contentType?.startsWith("application/grpc-web")) return "grpc_web";
  if (contentType?.startsWith("application/grpc")) return "grpc";
  return "connect";
}

/**
 * Gives each RPC a request id (echoed in x-request-id), and counts, times
 * and logs it once it is answered: one access line per request.
 */
export function createObserveInterceptor(metrics: Metrics, log: Logger): Interceptor {
  return (next) => async (req) => {
    const started = performance.now();
    const given = req.header.get("x-request-id");
    const requestId = given !== null && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID();
    req.contextValues.set(requestIdKey, requestId);
    const restRoute = req.contextValues.get(restRouteKey);
    const labels = {
      service: req.service.typeName,
      method: req.method.name,
      transport: transportOf(req.header.get("content-type"), restRoute),
    };
    let code = "ok";
    try {
      const res = await next(req);
      res.header.set("x-request-id", requestId);
      return res;
    } catch (thrown) {
      const err = asDecodeError(thrown);
      const e = ConnectError.from(err);
      code = codeToString(e.code);
      e.metadata.set("x-request-id", requestId);
      throw e;
    } finally {
      const seconds = (performance.now() - started) / 1000;
      metrics.rpcRequests.inc({ ...labels, code });
      metrics.rpcDuration.observe(labels, seconds);
      log.info(
        {
          requestId,
          route: restRoute || `/${labels.service}/${labels.method}`,
          transport: labels.transport,
          status: code,
          ms: Math.round(seconds * 10_000) / 10,
        },
        "request",
      );
    }
  };
}
