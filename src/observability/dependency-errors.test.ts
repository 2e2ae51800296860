import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { createErrorReporters } from "./dependency-errors.ts";
import { createMetrics } from "./metrics.ts";

describe("dependency error reporters", () => {
  it("count every error, and log one line a minute per dependency, saying how many went unlogged", async () => {
    const lines: { dependency: string; msg: string; unloggedSince?: number }[] = [];
    const log = pino(
      new Writable({
        write(chunk, _encoding, done) {
          lines.push(JSON.parse(String(chunk)));
          done();
        },
      }),
    );
    const metrics = createMetrics();
    let t = 0;
    const errorsOf = createErrorReporters({ log, metrics, now: () => t });
    const redis = errorsOf("redis");
    expect(errorsOf("redis")).toBe(redis); // one window per dependency
    for (let i = 0; i < 1000; i++) redis(new Error("connect ECONNREFUSED"), "client");
    errorsOf("rabbitmq")(new Error("socket closed"));
    t = 60_000;
    redis(new Error("connect ECONNREFUSED"), "client");
    await new Promise((r) => setImmediate(r));

    expect(lines.map((l) => [l.dependency, l.unloggedSince])).toEqual([
      ["redis", undefined],
      ["rabbitmq", undefined],
      ["redis", 999],
    ]);
    expect(lines[2]?.msg).toBe("redis: client (and 999 more errors since the last report)");
    const { values } = await metrics.dependencyErrors.get();
    expect(Object.fromEntries(values.map((v) => [v.labels.dependency, v.value]))).toEqual({
      redis: 1001,
      rabbitmq: 1,
    });
  });
});
