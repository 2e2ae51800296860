import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Metrics } from "./metrics.ts";
import { type Dependency, readinessResponse } from "./readiness.ts";

/** An operations answer: status, content type and body text. */
export interface OpsResponse {
  status: number;
  contentType: string;
  body: string;
}

/** /healthz (alive), /readyz (dependencies answer) and /metrics (Prometheus text). */
export async function opsResponse(
  path: string,
  deps: readonly Dependency[],
  metrics: Metrics,
): Promise<OpsResponse | undefined> {
  if (path === "/healthz")
    return { status: 200, contentType: "application/json", body: '{"status":"ok"}' };
  if (path === "/readyz") {
    const r = await readinessResponse(deps);
    return { status: r.status, contentType: "application/json", body: JSON.stringify(r.body) };
  }
  if (path === "/metrics") {
    return {
      status: 200,
      contentType: metrics.registry.contentType,
      body: await metrics.registry.metrics(),
    };
  }
  return undefined;
}

export function sendOps(
  res: ServerResponse | { writeHead: ServerResponse["writeHead"]; end(text: string): void },
  r: OpsResponse | undefined,
) {
  const found = r ?? {
    status: 404,
    contentType: "application/json",
    body: '{"code":"not_found","message":"no such route"}',
  };
  res.writeHead(found.status, {
    "content-type": found.contentType,
    "content-length": Buffer.byteLength(found.body),
  });
  res.end(found.body);
}

/**
 * The consumer role's only port: health, readiness and metrics, so it can be
 * probed and scraped like the API.
 */
export async function startOpsServer(
  port: number,
  host: string,
  deps: readonly Dependency[],
  metrics: Metrics,
) {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?", 1)[0] ?? "/";
    opsResponse(path, deps, metrics).then(
      (r) => sendOps(res, r),
      () =>
        sendOps(res, { status: 500, contentType: "application/json", body: '{"code":"internal"}' }),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
