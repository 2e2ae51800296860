import { randomUUID } from "node:crypto";
import type { HandlerContext } from "@connectrpc/connect";

const HEADER = "x-request-id";

/** The caller's x-request-id when it sent a sane one, else a new id. */
export function requestIdOf(ctx: HandlerContext): string {
  const given = ctx.requestHeader.get(HEADER);
  return given !== null && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID();
}
