import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Tally } from "../../src/app/tally.ts";
import { generateCsv } from "../../src/cli/gen/generate.ts";
import { runImport } from "../../src/cli/import/importer.ts";
import { connectClients, rest } from "../clients.ts";
import { realServices, start, testConfig, waitFor } from "../helpers.ts";
import { tempDir } from "../temp-dirs.ts";

const query = "/stats/dau?from=2025-10-28&to=2025-10-28";

describe("rate limits (a token bucket per key in Redis)", () => {
  let tally: Tally;
  let port: number;
  beforeAll(async () => {
    tally = await start(
      testConfig({
        ...realServices(),
        TALLY_API_KEYS: "alice,bob",
        TALLY_RATE_LIMIT_RPS: "1",
        TALLY_RATE_LIMIT_BURST: "5",
      }),
    );
    port = tally.port as number;
  });
  afterAll(() => tally?.close());
  const as = (key: string) => ({ headers: { authorization: `Bearer ${key}` } });

  it("answers 429 with Retry-After past the burst, per key, and lets the caller in again later", async () => {
    const answers = [];
    for (let i = 0; i < 7; i++) answers.push(await rest(port, query, undefined, as("alice")));
    expect(answers.slice(0, 5).map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
    const limited = answers[6];
    expect(limited).toMatchObject({
      status: 429,
      body: { code: "resource_exhausted", message: expect.stringContaining("1 requests/s") },
    });
    expect(Number(limited?.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    // Bob has a bucket of his own.
    expect((await rest(port, query, undefined, as("bob"))).status).toBe(200);
    // gRPC says RESOURCE_EXHAUSTED.
    const { grpc } = connectClients(port);
    await expect(
      grpc.analytics.getDau(
        { from: "2025-10-28", to: "2025-10-28", tz: "", segment: [] },
        as("alice"),
      ),
    ).rejects.toMatchObject({
      code: Code.ResourceExhausted,
    });
    // Tokens come back at 1/s.
    await waitFor(
      async () => (await rest(port, query, undefined, as("alice"))).status,
      (status) => status === 200,
    );
  });

  it("slows tally import down to the limit without losing a row", async () => {
    const dir = tempDir("tally-rate-");
    const path = join(dir, "events.csv");
    writeFileSync(
      path,
      [
        ...generateCsv({
          rows: 6000,
          users: 10,
          fromMs: Date.parse("2024-08-01"),
          days: 2,
          eventTypes: 2,
          dupRate: 0,
          seed: 8,
        }),
      ].join(""),
    );
    const notices: string[] = [];
    const summary = await runImport(
      {
        input: path,
        url: `http://127.0.0.1:${port}`,
        apiKey: "bob",
        batchSize: 500,
        segmentRows: 500,
        dryRun: false,
        restart: false,
        retryDelayMs: 10,
        attempts: 30,
        onNotice: (m) => notices.push(m),
      },
      { bytesRead: 0, totalBytes: undefined, rowsRead: 0, rowsDone: 0 },
    );
    expect(summary).toMatchObject({ rowsRead: 6000, accepted: 6000, rejected: 0 });
    // It waited as told (Retry-After, whole seconds), not its own 10 ms.
    expect(notices.some((n) => /rate limit.*retrying in [1-9]\d{3} ms/.test(n))).toBe(true);
  });

  it("never limits health checks", async () => {
    for (let i = 0; i < 10; i++) expect((await rest(port, "/healthz")).status).toBe(200);
  });
});
