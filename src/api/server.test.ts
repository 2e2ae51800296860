import { connect, Socket } from "node:net";
import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createMetrics } from "../observability/metrics.ts";
import { createApiServer } from "./server.ts";

describe("createApiServer", () => {
  afterEach(() => vi.restoreAllMocks());

  it("turns Nagle's algorithm off on every connection (it held unary gRPC replies back)", async () => {
    const noDelay = vi.spyOn(Socket.prototype, "setNoDelay");
    const unused = () => {
      throw new Error("not called");
    };
    const server = createApiServer({
      ingest: { ingest: unused, ingestStream: unused, tailEvents: unused },
      analytics: {
        getDau: unused,
        getActiveUsers: unused,
        getDataRange: unused,
        getTopEvents: unused,
        getRetention: unused,
        getStickiness: unused,
        getLifecycle: unused,
        getFunnel: unused,
        getTrends: unused,
      },
      users: {
        getUser: unused,
        listUserEvents: unused,
        deleteUser: unused,
        getDeletion: unused,
      },
      export: { exportEvents: unused },
      dependencies: [],
      maxBodyBytes: 1024,
      maxFutureSkewMs: 86_400_000,
      apiKeys: [],
      metrics: createMetrics(),
      log: pino({ level: "silent" }),
    });
    const port = await server.listen(0, "127.0.0.1");
    // A raw client that sends nothing: no HTTP server has seen the socket yet.
    const client = connect(port, "127.0.0.1");
    await new Promise((r) => client.once("connect", r));
    await vi.waitFor(() => expect(noDelay).toHaveBeenCalledWith(true));
    client.destroy();
    await server.close(0);
  });
});
