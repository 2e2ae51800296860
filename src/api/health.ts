import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import {
  type Health,
  HealthCheckResponseSchema,
  HealthListResponseSchema,
  HealthCheckResponse_ServingStatus as Status,
} from "../../gen/health/v1/health_pb.js";
import { checkReadiness, type Dependency } from "../observability/readiness.ts";

/**
 * grpc.health.v1: the overall service ("") and each served service are
 * SERVING when every dependency answers.
 */
export function createHealthService(
  deps: readonly Dependency[],
  services: readonly string[],
  watchIntervalMs = 5000,
): ServiceImpl<typeof Health> {
  const known = new Set(["", ...services]);
  async function status(service: string) {
    if (!known.has(service)) throw new ConnectError(`unknown service "${service}"`, Code.NotFound);
    return (await checkReadiness(deps)).ready ? Status.SERVING : Status.NOT_SERVING;
  }
  return {
    async check(req) {
      return create(HealthCheckResponseSchema, { status: await status(req.service) });
    },
    async list() {
      const status = (await checkReadiness(deps)).ready ? Status.SERVING : Status.NOT_SERVING;
      const statuses: Record<string, { status: Status }> = {};
      for (const s of known) statuses[s] = { status };
      return create(HealthListResponseSchema, { statuses });
    },
    async *watch(req, ctx) {
      let last: Status | undefined;
      while (!ctx.signal.aborted) {
        const now = known.has(req.service) ? await status(req.service) : Status.SERVICE_UNKNOWN;
        if (now !== last) yield create(HealthCheckResponseSchema, { status: now });
        last = now;
        await new Promise((r) => setTimeout(r, watchIntervalMs));
      }
    },
  };
}
