import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GetDauRequestSchema, GetDauResponseSchema } from "../../gen/tally/v1/analytics_pb.js";
import { IngestRequestSchema, IngestResponseSchema } from "../../gen/tally/v1/ingest_pb.js";
import type { Tally } from "../../src/app/tally.ts";
import { toProto } from "../clients.ts";
import {
  type JsonEvent,
  realServices,
  sameDayEvents,
  start,
  testConfig,
  waitFor,
  warehouseCounts,
} from "../helpers.ts";

/** Debian's Python, which python3-grpcio installs into (a pyenv python3 on PATH would lack it). */
const PYTHON = process.env.GRPCIO_PYTHON ?? "/usr/bin/python3";
const PEER = fileURLToPath(new URL("../peers/grpcio_peer.py", import.meta.url));
const MAX = 65_536;
const INGEST = "/tally.v1.IngestService/Ingest";
const STREAM = "/tally.v1.IngestService/IngestStream";

interface Case {
  name: string;
  method: string;
  kind?: "unary" | "stream";
  requests: string[];
  metadata?: [string, string][];
  timeout?: number;
  compression?: "gzip";
  pause_after?: number;
  pause?: number;
  cancel_after?: number;
}
interface Answer {
  name: string;
  code: string;
  details?: string;
  response?: string;
  initial?: [string, string][];
  trailing?: [string, string][];
}

/** Runs the C-core peer over `cases`, one connection for all, and returns its answers by name. */
function grpcio(port: number, cases: Case[]): Promise<Record<string, Answer>> {
  return new Promise((resolve, reject) => {
    const child = execFile(PYTHON, [PEER], { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`the grpcio peer failed: ${stderr || err.message}`));
      const answers = stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as Answer);
      resolve(Object.fromEntries(answers.map((a) => [a.name, a])));
    });
    child.stdin?.end(JSON.stringify({ target: `127.0.0.1:${port}`, cases }));
  });
}

const hex = (events: JsonEvent[]) =>
  Buffer.from(
    toBinary(IngestRequestSchema, create(IngestRequestSchema, { events: events.map(toProto) })),
  ).toString("hex");
const ingested = (a: Answer | undefined) =>
  fromBinary(IngestResponseSchema, Buffer.from(a?.response ?? "", "hex"));

/** An ingest request of `bytes` bytes: valid events, each padded out by a property (at most 32 KiB each). */
function sized(bytes: number, seed: number): string {
  const events = sameDayEvents(Math.ceil(bytes / 16_000), seed, "grpcio_size");
  const padded = (last: number) =>
    hex(
      events.map((e, i) => ({
        ...e,
        properties: { pad: "x".repeat(i === events.length - 1 ? last : 15_000) },
      })),
    );
  const guess = 15_000;
  const last = guess + bytes - padded(guess).length / 2;
  const out = padded(last);
  if (out.length / 2 !== bytes) throw new Error(`sized: ${out.length / 2} bytes, not ${bytes}`);
  return out;
}

/**
 * gRPC's C-core implementation (Python grpcio) as an independent client: its
 * framing, compression, deadlines and metadata are not connect's or
 * grpc-js's. Plain calls take the lean unary path, gzip ones connect's
 * router; both must answer alike.
 */
describe("Python grpcio (C-core) against Tally (RabbitMQ, Redis, chDB)", () => {
  let tally: Tally;
  let port: number;
  beforeAll(async () => {
    if (!existsSync(PYTHON)) throw new Error(`no ${PYTHON}: apt-get install python3-grpcio`);
    tally = await start(testConfig({ ...realServices(), TALLY_MAX_BODY_BYTES: String(MAX) }));
    port = tally.port as number;
  });
  afterAll(() => tally?.close());

  it("ingests unary and client-streaming, plain and gzip, with metadata both ways, and stores each event once", async () => {
    const events = sameDayEvents(40, 301, "grpcio_ok", 4);
    const invalid = sameDayEvents(60, 302, "grpcio_bad").map((e) => ({ ...e, user_id: "" }));
    const mixed = hex([...events.slice(0, 20), ...invalid]);
    const a = await grpcio(port, [
      {
        name: "plain",
        method: INGEST,
        requests: [mixed],
        metadata: [["x-request-id", "py-plain"]],
      },
      // The rejections (60 reasons) make a response over 1 KiB: the router compresses it.
      { name: "gzip", method: INGEST, requests: [mixed], compression: "gzip" },
      {
        name: "stream",
        method: STREAM,
        kind: "stream",
        requests: [hex(events.slice(0, 20)), hex(events.slice(20)), hex(invalid.slice(0, 1))],
        metadata: [["x-request-id", "py-stream"]],
      },
      {
        name: "stream-gzip",
        method: STREAM,
        kind: "stream",
        requests: [hex(events.slice(20))],
        compression: "gzip",
      },
    ]);
    for (const name of ["plain", "gzip"]) {
      expect(a[name]?.code, name).toBe("OK");
      const res = ingested(a[name]);
      expect(res.accepted).toBe(20n);
      expect(res.rejected.map((r) => Number(r.index))).toEqual(invalid.map((_, i) => 20 + i));
      expect(res.rejected[0]?.reason).toMatch(/^user_id: /);
    }
    expect(a.plain?.initial).toContainEqual(["x-request-id", "py-plain"]);
    expect(a.stream?.code).toBe("OK");
    expect(a.stream?.initial).toContainEqual(["x-request-id", "py-stream"]);
    expect(ingested(a.stream)).toMatchObject({ accepted: 40n, rejected: [{ index: 40n }] });
    expect(ingested(a["stream-gzip"]).accepted).toBe(20n);
    const counts = await waitFor(
      () => warehouseCounts(tally),
      (c) => c.ids >= 40,
    );
    expect(counts.ids).toBe(40);
  });

  it("refuses what it must with the status a gRPC client expects: size limits, deadlines before and during a call, a cancelled stream, a bad parameter", async () => {
    const cases: Case[] = [];
    for (const compression of [undefined, "gzip"] as const) {
      const tag = compression ?? "plain";
      cases.push(
        { name: `under-${tag}`, method: INGEST, requests: [sized(MAX - 100, 310)], compression },
        { name: `over-${tag}`, method: INGEST, requests: [sized(MAX + 100, 311)], compression },
        {
          name: `deadline-before-${tag}`,
          method: INGEST,
          requests: [hex(sameDayEvents(1, 312, "grpcio_late"))],
          timeout: 0.000_001,
          compression,
        },
      );
    }
    cases.push(
      {
        name: "deadline-during",
        method: STREAM,
        kind: "stream",
        requests: [
          hex(sameDayEvents(2, 313, "grpcio_late")),
          hex(sameDayEvents(2, 314, "grpcio_late")),
        ],
        timeout: 0.5,
        pause_after: 0,
        pause: 1.5,
      },
      {
        name: "cancel-mid-stream",
        method: STREAM,
        kind: "stream",
        requests: [
          hex(sameDayEvents(2, 315, "grpcio_cancel")),
          hex(sameDayEvents(2, 316, "grpcio_cancel")),
        ],
        cancel_after: 0,
      },
      {
        name: "dau-bad-zone",
        method: "/tally.v1.AnalyticsService/GetDau",
        requests: [
          Buffer.from(
            toBinary(
              GetDauRequestSchema,
              create(GetDauRequestSchema, {
                from: "2025-10-28",
                to: "2025-10-28",
                tz: "Mars/Olympus",
              }),
            ),
          ).toString("hex"),
        ],
      },
      {
        name: "dau",
        method: "/tally.v1.AnalyticsService/GetDau",
        requests: [
          Buffer.from(
            toBinary(
              GetDauRequestSchema,
              create(GetDauRequestSchema, { from: "2025-10-28", to: "2025-10-29" }),
            ),
          ).toString("hex"),
        ],
      },
      { name: "health", method: "/grpc.health.v1.Health/Check", requests: [""] },
    );
    const a = await grpcio(port, cases);
    for (const tag of ["plain", "gzip"]) {
      expect(a[`under-${tag}`]?.code, tag).toBe("OK");
      expect(a[`over-${tag}`], tag).toMatchObject({ code: "RESOURCE_EXHAUSTED" });
      expect(a[`over-${tag}`]?.details).toMatch(/larger than configured readMaxBytes 65536/);
      expect(a[`deadline-before-${tag}`]?.code, tag).toBe("DEADLINE_EXCEEDED");
    }
    expect(a["deadline-during"]?.code).toBe("DEADLINE_EXCEEDED");
    expect(a["cancel-mid-stream"]?.code).toBe("CANCELLED");
    expect(a["dau-bad-zone"]).toMatchObject({
      code: "INVALID_ARGUMENT",
      details: expect.stringMatching(/tz/),
    });
    expect(a.dau?.code).toBe("OK");
    const dau = fromBinary(GetDauResponseSchema, Buffer.from(a.dau?.response ?? "", "hex"));
    expect(dau.days.map((d) => d.date)).toEqual(["2025-10-28", "2025-10-29"]);
    expect(a.health).toMatchObject({ code: "OK", response: "0801" });
    // The service is whole after all of that.
    const after = await grpcio(port, [
      { name: "after", method: INGEST, requests: [hex(sameDayEvents(1, 317, "grpcio_after"))] },
    ]);
    expect(after.after?.code).toBe("OK");
  });
});
