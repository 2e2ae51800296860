import { createHash, timingSafeEqual } from "node:crypto";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { ApiKey, Scope } from "../config/config.ts";

/** Services anyone may call, keys or not (CONTRACT.md). */
const OPEN_SERVICES = new Set(["grpc.health.v1.Health"]);

/** The scope each service, or method, needs; others (reflection) take any valid key. */
const SCOPE_OF: Record<string, Scope> = {
  "tally.v1.IngestService": "ingest",
  // Watching events is reading them.
  "tally.v1.IngestService/TailEvents": "read",
  "tally.v1.AnalyticsService": "read",
  "tally.v1.UsersService": "read",
  // Deleting a person's data is not for a dashboard's key.
  "tally.v1.UsersService/DeleteUser": "admin",
  // Everyone's events at once.
  "tally.v1.ExportService": "admin",
};

const digest = (key: string) => createHash("sha256").update(key).digest();

/** The key a request carries, as `Authorization: Bearer KEY` or `x-api-key: KEY`. */
export function apiKeyOf(header: Headers): string | undefined {
  const bearer = /^Bearer\s+(.+)$/i.exec(header.get("authorization") ?? "")?.[1];
  return (bearer ?? header.get("x-api-key") ?? undefined)?.trim();
}

/**
 * With keys configured, every RPC but health checks needs one, as
 * `Authorization: Bearer KEY` or `x-api-key: KEY`; REST is transcoded through
 * the same handlers, so it is covered too. A missing or unknown key is
 * UNAUTHENTICATED; a known key without the service's scope is
 * PERMISSION_DENIED. Keys are compared as SHA-256 digests with
 * timingSafeEqual against every configured key, so neither a key's length
 * nor which one matched shows in the time taken.
 */
export function createAuthInterceptor(keys: readonly ApiKey[]): Interceptor {
  const known = keys.map((k) => ({ digest: digest(k.key), scopes: k.scopes }));
  return (next) => async (req) => {
    if (OPEN_SERVICES.has(req.service.typeName)) return next(req);
    const given = apiKeyOf(req.header);
    if (given === undefined) {
      throw new ConnectError(
        "an API key is required: send Authorization: Bearer KEY or x-api-key: KEY",
        Code.Unauthenticated,
      );
    }
    const d = digest(given);
    let match: (typeof known)[number] | undefined;
    for (const k of known) if (timingSafeEqual(k.digest, d)) match ??= k;
    if (match === undefined)
      throw new ConnectError("the API key is not valid", Code.Unauthenticated);
    const needed =
      SCOPE_OF[`${req.service.typeName}/${req.method.name}`] ?? SCOPE_OF[req.service.typeName];
    if (needed !== undefined && !match.scopes.includes(needed)) {
      throw new ConnectError(
        `this API key may not use scope "${needed}" (it has: ${match.scopes.join(", ")})`,
        Code.PermissionDenied,
      );
    }
    return next(req);
  };
}
