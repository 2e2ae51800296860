import { createHash } from "node:crypto";
import { Code, ConnectError, createContextKey, type Interceptor } from "@connectrpc/connect";
import type { ErrorReporter } from "../observability/dependency-errors.ts";
import type { RateLimiter } from "../ratelimit/rate-limiter.ts";
import { apiKeyOf } from "./auth.ts";

/** The caller's network address, for limiting callers without keys. */
export const clientAddressKey = createContextKey<string>("", { description: "client address" });

/** Health checks are never limited (CONTRACT.md). */
const UNLIMITED = new Set(["grpc.health.v1.Health"]);

/**
 * One token per RPC from the caller's bucket: the caller is its API key
 * (hashed: keys never reach Redis) or, without one, its address. Past the
 * limit: RESOURCE_EXHAUSTED (429) with Retry-After. If the limiter itself
 * fails (Redis away), the request is let in: better served than refused.
 */
export function createRateLimitInterceptor(options: {
  limiter: RateLimiter;
  rps: number;
  /** Told when the limiter cannot answer: counted always, logged once a minute, not per request. */
  onError: ErrorReporter;
}): Interceptor {
  const { limiter, rps, onError } = options;
  return (next) => async (req) => {
    if (UNLIMITED.has(req.service.typeName)) return next(req);
    const key = apiKeyOf(req.header);
    const caller = key
      ? `key:${createHash("sha256").update(key).digest("hex").slice(0, 32)}`
      : `addr:${req.contextValues.get(clientAddressKey)}`;
    let waitMs = 0;
    try {
      waitMs = await limiter.take(caller);
    } catch (err) {
      onError(err, `rate limiter (${limiter.kind}) unavailable; letting requests in`);
    }
    if (waitMs > 0) {
      const seconds = Math.max(1, Math.ceil(waitMs / 1000));
      throw new ConnectError(
        `rate limit of ${rps} requests/s exceeded; retry in ${seconds} s`,
        Code.ResourceExhausted,
        { "retry-after": String(seconds) },
      );
    }
    return next(req);
  };
}
