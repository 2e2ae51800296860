import { createHash, timingSafeEqual } from "node:crypto";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

/** Services anyone may call, keys or not (CONTRACT.md). */
const OPEN_SERVICES = new Set(["grpc.health.v1.Health"]);

const digest = (key: string) => createHash("sha256").update(key).digest();

/**
 * With keys configured, every RPC but health checks needs one, as
 * `Authorization: Bearer KEY` or `x-api-key: KEY`. REST is transcoded through
 * the same handlers, so it is covered too. Keys are compared as SHA-256
 * digests with timingSafeEqual, against every configured key, so neither a
 * key's length nor which key matched shows in the time taken.
 */
export function createAuthInterceptor(keys: readonly string[]): Interceptor {
  const digests = keys.map(digest);
  return (next) => async (req) => {
    if (OPEN_SERVICES.has(req.service.typeName)) return next(req);
    const bearer = /^Bearer\s+(.+)$/i.exec(req.header.get("authorization") ?? "")?.[1];
    const given = bearer ?? req.header.get("x-api-key");
    if (given === null || given === undefined) {
      throw new ConnectError(
        "an API key is required: send Authorization: Bearer KEY or x-api-key: KEY",
        Code.Unauthenticated,
      );
    }
    const d = digest(given.trim());
    let ok = false;
    for (const k of digests) ok = timingSafeEqual(k, d) || ok;
    if (!ok) throw new ConnectError("the API key is not valid", Code.Unauthenticated);
    return next(req);
  };
}
