import { execFile, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Tally } from "../../src/app/tally.ts";
import { rest } from "../clients.ts";
import {
  realServices,
  sameDayEvents,
  start,
  testConfig,
  waitFor,
  warehouseCounts,
} from "../helpers.ts";

const BUF = fileURLToPath(new URL("../../node_modules/.bin/buf", import.meta.url));
const PROTOCOLS = ["grpc", "grpcweb", "connect"] as const;
type Protocol = (typeof PROTOCOLS)[number];

/** `buf curl --reflect` (the default) as a process: what it printed and how it exited. */
function bufCurl(
  port: number,
  protocol: Protocol,
  method: string,
  data?: string,
): Promise<{ code: number; out: string; err: string }> {
  const args = ["curl", "--protocol", protocol, "--http2-prior-knowledge"];
  if (data !== undefined) args.push("-d", data);
  args.push(`http://127.0.0.1:${port}/${method}`);
  return new Promise((resolve) => {
    execFile(BUF, args, { timeout: 30_000 }, (err, out, errText) =>
      resolve({ code: err ? Number(err.code ?? 1) : 0, out, err: errText }),
    );
  });
}

/** A server stream's first message, then the call is dropped (these streams never end by themselves). */
function firstOfStream(port: number, protocol: Protocol, method: string): Promise<unknown> {
  const child = spawn(BUF, [
    "curl",
    "--protocol",
    protocol,
    "--http2-prior-knowledge",
    "-d",
    "{}",
    `http://127.0.0.1:${port}/${method}`,
  ]);
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`no message from ${method} over ${protocol}`));
    }, 20_000);
    let settled = false;
    child.stdout.on("data", (c: Buffer) => {
      if (settled) return;
      out += c.toString();
      // buf curl prints each message as a JSON document: "{}", or indented, ending in a line "}".
      const end = out.startsWith("{}") ? 2 : out.indexOf("\n}") + 2;
      if (end < 2) return;
      settled = true;
      clearTimeout(timer);
      child.kill();
      resolve(JSON.parse(out.slice(0, end)));
    });
  });
}

/**
 * Connect's own Go implementation, with server reflection, as an
 * independent client of every RPC of the three services over gRPC,
 * gRPC-Web and Connect.
 */
describe("buf curl --reflect against Tally, over gRPC, gRPC-Web and Connect (RabbitMQ, Redis, chDB)", () => {
  let tally: Tally;
  let port: number;
  beforeAll(async () => {
    tally = await start(testConfig(realServices()));
    port = tally.port as number;
    // A user to look up.
    const [known] = sameDayEvents(1, 402, "buf_curl");
    await rest(port, "/events", [{ ...known, user_id: "buf-curl-known" }]);
    await waitFor(
      () => warehouseCounts(tally),
      (c) => c.ids === 1,
    );
  });
  afterAll(() => tally?.close());

  const event = (seed: number) => {
    const [e] = sameDayEvents(1, seed, "buf_curl");
    return JSON.stringify({ events: [e] });
  };
  const range = { from: "2025-10-27", to: "2025-10-28" };
  const unary: [
    method: string,
    data: string | undefined,
    expect: (r: Record<string, unknown>) => void,
  ][] = [
    ["tally.v1.IngestService/Ingest", event(401), (r) => expect(r).toEqual({ accepted: "1" })],
    [
      "tally.v1.IngestService/IngestStream",
      `${event(402)}\n${event(403)}`,
      (r) => expect(r).toEqual({ accepted: "2" }),
    ],
    [
      "tally.v1.AnalyticsService/GetDau",
      JSON.stringify(range),
      (r) => expect(r.days).toHaveLength(2),
    ],
    [
      "tally.v1.AnalyticsService/GetActiveUsers",
      JSON.stringify({ ...range, window: "week" }),
      (r) => expect(r.days).toHaveLength(2),
    ],
    [
      "tally.v1.AnalyticsService/GetTopEvents",
      JSON.stringify({ ...range, limit: 5 }),
      (r) => expect(r).toHaveProperty("events"),
    ],
    [
      "tally.v1.AnalyticsService/GetRetention",
      JSON.stringify({
        startDate: "2025-10-27",
        endDate: "2025-10-28",
        windows: 1,
        granularity: "day",
      }),
      (r) => expect(r.cohorts).toHaveLength(2),
    ],
    ["tally.v1.AnalyticsService/GetDataRange", "{}", (r) => expect(r).toBeTypeOf("object")],
    [
      "tally.v1.AnalyticsService/GetLifecycle",
      JSON.stringify({ ...range, interval: "week" }),
      (r) => expect(r.periods).toHaveLength(1),
    ],
    [
      "tally.v1.AnalyticsService/GetStickiness",
      JSON.stringify({ ...range, interval: "day" }),
      (r) => expect(r.periods).toHaveLength(2),
    ],
    [
      "tally.v1.AnalyticsService/GetFunnel",
      JSON.stringify({ ...range, step: ["signup", "purchase"], mode: "strict" }),
      (r) => expect(r.steps).toHaveLength(2),
    ],
    [
      "tally.v1.AnalyticsService/GetTrends",
      JSON.stringify({ ...range, measure: "users", breakdown: "event_type" }),
      (r) => expect(r).toBeTypeOf("object"),
    ],
    [
      "tally.v1.UsersService/ListUserEvents",
      JSON.stringify({ userId: "u0", limit: 5 }),
      (r) => expect(r).toBeTypeOf("object"),
    ],
    [
      "tally.v1.UsersService/DeleteUser",
      JSON.stringify({ userId: "buf-curl-forgotten" }),
      (r) => expect(r).toMatchObject({ status: "pending" }),
    ],
    [
      "tally.v1.UsersService/GetUser",
      JSON.stringify({ userId: "buf-curl-known" }),
      (r) => expect(r).toMatchObject({ userId: "buf-curl-known", events: "1" }),
    ],
    ["grpc.health.v1.Health/Check", "{}", (r) => expect(r).toEqual({ status: "SERVING" })],
    [
      "grpc.health.v1.Health/List",
      "{}",
      (r) => expect(r.statuses).toHaveProperty(["tally.v1.IngestService", "status"], "SERVING"),
    ],
  ];
  const streams = ["tally.v1.IngestService/TailEvents", "grpc.health.v1.Health/Watch"];
  // Called below for its error: an unknown deletion is NOT_FOUND.
  const refusing = ["tally.v1.UsersService/GetDeletion", "tally.v1.ExportService/ExportEvents"];

  it("lists every method of the three services through reflection", async () => {
    const listed = await new Promise<string>((resolve, reject) =>
      execFile(
        BUF,
        [
          "curl",
          "--protocol",
          "grpc",
          "--http2-prior-knowledge",
          "--list-methods",
          `http://127.0.0.1:${port}`,
        ],
        (err, out) => (err ? reject(err) : resolve(out)),
      ),
    );
    expect(listed.trim().split("\n").sort()).toEqual(
      [...unary.map(([m]) => m), ...streams, ...refusing].sort(),
    );
  });

  for (const protocol of PROTOCOLS) {
    it(`answers every RPC over ${protocol}`, async () => {
      for (const [method, data, check] of unary) {
        const r = await bufCurl(port, protocol, method, data);
        expect(r.code, `${method}: ${r.err}`).toBe(0);
        check(JSON.parse(r.out));
      }
      expect(await firstOfStream(port, protocol, "tally.v1.IngestService/TailEvents")).toEqual({});
      expect(await firstOfStream(port, protocol, "grpc.health.v1.Health/Watch")).toEqual({
        status: "SERVING",
      });
      // A refusal comes back with its code and the parameter it names.
      const bad = await bufCurl(
        port,
        protocol,
        "tally.v1.AnalyticsService/GetDau",
        JSON.stringify({ from: "2025-10-28", to: "2025-10-01" }),
      );
      expect(bad.code).not.toBe(0);
      expect(JSON.parse(bad.err)).toEqual({
        code: "invalid_argument",
        message: "from: 2025-10-28 is after to (2025-10-01)",
      });
      const unknown = await bufCurl(
        port,
        protocol,
        "tally.v1.UsersService/GetDeletion",
        JSON.stringify({ deletionId: "00000000-0000-4000-8000-000000000000" }),
      );
      expect(JSON.parse(unknown.err)).toEqual({
        code: "not_found",
        message: 'no deletion "00000000-0000-4000-8000-000000000000"',
      });
      const badExport = await bufCurl(
        port,
        protocol,
        "tally.v1.ExportService/ExportEvents",
        JSON.stringify({ from: "2025-10-01", to: "2025-10-02", format: "xml" }),
      );
      expect(JSON.parse(badExport.err)).toEqual({
        code: "invalid_argument",
        message: 'format: expected one of csv, jsonl, parquet, got "xml"',
      });
    });
  }
});
