import { createWriteStream, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Tally } from "../../src/app/tally.ts";
import { generateCsv } from "../../src/cli/gen/generate.ts";
import { checkpointPath } from "../../src/cli/import/checkpoint.ts";
import { ImportError, type ImportOptions, runImport } from "../../src/cli/import/importer.ts";
import type { ImportProgress } from "../../src/cli/import/progress.ts";
import { rest } from "../clients.ts";
import { realServices, start, testConfig } from "../helpers.ts";
import { tempDir } from "../temp-dirs.ts";

const SAMPLE = join(import.meta.dirname, "../../data/events_sample.csv");
const dir = tempDir("tally-import-");
const progress = (): ImportProgress => ({
  bytesRead: 0,
  totalBytes: undefined,
  rowsRead: 0,
  rowsDone: 0,
});

/** Event counts by type over the first copy of each event_id, read straight from the file. */
function bruteForce(csv: string): Record<string, number> {
  const seen = new Set<string>();
  const counts: Record<string, number> = {};
  for (const line of csv.split("\n").slice(1)) {
    const [id, , , type] = line.split(",");
    if (id === undefined || type === undefined || seen.has(id)) continue;
    seen.add(id);
    counts[type] = (counts[type] ?? 0) + 1;
  }
  return counts;
}

describe("tally import on RabbitMQ, Redis and chDB", () => {
  let tally: Tally;
  let url: string;
  const opts = (input: string, more: Partial<ImportOptions> = {}): ImportOptions => ({
    input,
    url,
    batchSize: 500,
    segmentRows: 2000,
    dryRun: false,
    restart: false,
    retryDelayMs: 50,
    ...more,
  });
  const stats = async () => {
    const res = await rest(
      tally.port as number,
      "/stats/top-events?from=2024-01-01&to=2026-12-31&limit=1000",
    );
    return Object.fromEntries(
      (res.body as { event_type: string; count: number }[]).map((r) => [r.event_type, r.count]),
    );
  };
  /** The stats of the types in `want` (tests share a database), once they match or time runs out. */
  const settled = async (want: Record<string, number>) => {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const all = await stats();
      const got = Object.fromEntries(Object.keys(want).map((k) => [k, all[k]]));
      if (JSON.stringify(got) === JSON.stringify(want) || Date.now() > deadline) return got;
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  beforeAll(async () => {
    tally = await start(testConfig(realServices()));
    url = `http://127.0.0.1:${tally.port}`;
  });
  afterAll(() => tally?.close());

  it("imports the sample so the stats equal a brute-force count, and a second import changes nothing", async () => {
    const want = bruteForce(readFileSync(SAMPLE, "utf8"));
    const first = await runImport(
      opts(SAMPLE, { rejectsPath: join(dir, "sample.rejects.csv") }),
      progress(),
    );
    expect(first).toMatchObject({
      rowsRead: 5000,
      accepted: 5000,
      rejected: 0,
      interrupted: false,
    });
    expect(await settled(want)).toEqual(want);
    // Again, gzipped this time: every event_id is already counted.
    const gz = join(dir, "sample.csv.gz");
    await pipeline(Readable.from([readFileSync(SAMPLE)]), createGzip(), createWriteStream(gz));
    const again = await runImport(opts(gz), progress());
    expect(again).toMatchObject({ rowsRead: 5000, accepted: 5000, rejected: 0 });
    await new Promise((r) => setTimeout(r, 500));
    expect(await settled(want)).toEqual(want);
    expect(existsSync(checkpointPath(gz))).toBe(false);
  });

  it("imports every good line of a broken file and reports every bad one by line and reason", async () => {
    const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;
    const at = "2025-10-28T12:00:00Z";
    const deep = `"${'{""a"":'.repeat(20)}1${"}".repeat(20)}"`;
    const lines = [
      "\ufeffevent_id,occurred_at,user_id,event_type,properties", // 1: header, with a BOM
      `${id(1)},${at},u1,broken_test,{}`, // 2 good
      `${id(2)},${at},u1`, // 3 too few fields
      `${id(3)},${at},u1,broken_test,{},extra`, // 4 too many fields
      `${id(4)},${at},u1,"broken"_test,{}`, // 5 text after a closing quote
      `${id(5)},${at},u"1,broken_test,{}`, // 6 a quote inside an unquoted field
      `${id(6)},${at},u2,broken_test,"{""a"":`, // 7-8 good: properties spanning two lines
      `1}"`,
      `not-a-uuid,${at},u1,broken_test,{}`, // 9 bad event_id (the server says)
      `${id(7)},yesterday,u1,broken_test,{}`, // 10 bad time
      `${id(8)},${at},u1,broken_test,{oops`, // 11 properties not JSON
      `${id(9)},${at},u1,broken_test,"[1,2]"`, // 12 properties not an object
      `${id(10)},${at},,broken_test,{}`, // 13 empty user_id (the server says)
      `${id(11)},${at},u1,${"x".repeat(300)},{}`, // 14 event_type too long (the server says)
      `${id(12)},2999-01-01T00:00:00Z,u1,broken_test,{}`, // 15 far in the future (the server says)
      `${id(13)},${at},u1,broken_test,${deep}`, // 16 nested too deep (the server says)
      `${id(14)},${at},u3,broken_test,{}\r`, // 17 good, CRLF
      "", // 18 blank: skipped
      `${id(15)},${at},u4,broken_test,"{""unclosed"":1}`, // 19 a quote never closed
    ];
    const file = join(dir, "broken.csv");
    writeFileSync(file, lines.join("\n"));
    const summary = await runImport(opts(file), progress());
    expect(summary).toMatchObject({
      rowsRead: 16,
      accepted: 3,
      rejected: 13,
      rejectsPath: join(dir, "broken.rejects.csv"),
    });
    const reported = readFileSync(join(dir, "broken.rejects.csv"), "utf8").trim().split("\n");
    expect(reported[0]).toBe("line,reason,record");
    const reasons = reported.slice(1).map((l) => {
      const [line, ...rest] = l.split(",");
      return [Number(line), rest.join(",").replace(/^"?([^",]+).*$/, "$1")];
    });
    expect(reasons).toEqual([
      [3, "expected 5 fields"],
      [4, "expected 5 fields"],
      [5, "broken quoting: text after a closing quote"],
      [6, "broken quoting: a quote inside an unquoted field"],
      [9, "event_id: must be a UUID"],
      [10, "occurred_at: expected an RFC 3339 time with a zone"],
      [11, "properties: not valid JSON"],
      [12, "properties: must be a JSON object"],
      [13, "user_id: required"],
      [14, "event_type: longer than 256 bytes"],
      [15, "occurred_at: more than 24 h in the future"],
      [16, "properties: nested deeper than 16"],
      [19, "broken quoting: a quoted field is never closed"],
    ]);
    expect(await settled({ broken_test: 3 })).toEqual({ broken_test: 3 });
  });

  it("resumes an interrupted import from its checkpoint and ends with exact stats", async () => {
    const file = join(dir, "big.csv");
    const csv = [
      ...generateCsv({
        rows: 12_000,
        users: 400,
        fromMs: Date.parse("2024-03-01"),
        days: 20,
        eventTypes: 5,
        dupRate: 0.03,
        seed: 11,
      }),
    ]
      .join("")
      .replaceAll(",page_view,", ",resume_a,")
      .replaceAll(",click,", ",resume_b,")
      .replaceAll(",search,", ",resume_c,")
      .replaceAll(",add_to_cart,", ",resume_d,")
      .replaceAll(",login,", ",resume_e,");
    writeFileSync(file, csv);
    const stop = new AbortController();
    const p1 = progress();
    const watch = setInterval(() => p1.rowsDone >= 4000 && stop.abort(), 1);
    const first = await runImport(opts(file, { signal: stop.signal }), p1);
    clearInterval(watch);
    expect(first.interrupted).toBe(true);
    const cp = JSON.parse(readFileSync(checkpointPath(file), "utf8")) as {
      linesDone: number;
      rowsRead: number;
    };
    expect(cp.linesDone).toBeGreaterThan(1);
    expect(cp.linesDone).toBeLessThan(12_001);

    const p2 = progress();
    const second = await runImport(opts(file), p2);
    expect(second).toMatchObject({
      resumedAfterLine: cp.linesDone,
      rowsRead: 12_000,
      accepted: 12_000,
      interrupted: false,
    });
    expect(p2.rowsRead).toBe(12_001 - cp.linesDone); // data lines 2..12001: only the rest was read again
    expect(existsSync(checkpointPath(file))).toBe(false);
    const want = bruteForce(csv);
    expect(await settled(want)).toEqual(want);
  });

  it("retries while the service is unreachable and skips no row", async () => {
    const other = await start(testConfig(realServices()));
    const port = other.port as number;
    await other.close(); // the port is free: nothing answers there for now
    const file = join(dir, "retry.csv");
    writeFileSync(
      file,
      [
        ...generateCsv({
          rows: 300,
          users: 10,
          fromMs: Date.parse("2024-06-01"),
          days: 2,
          eventTypes: 3,
          dupRate: 0,
          seed: 3,
        }),
      ].join(""),
    );
    const notices: string[] = [];
    const importing = runImport(
      opts(file, {
        url: `http://127.0.0.1:${port}`,
        attempts: 30,
        retryDelayMs: 100,
        onNotice: (m) => notices.push(m),
      }),
      progress(),
    );
    await new Promise((r) => setTimeout(r, 400));
    const back = await start({ ...testConfig(realServices()), port });
    try {
      expect(await importing).toMatchObject({ accepted: 300, rejected: 0 });
      expect(notices.some((n) => n.startsWith("send failed"))).toBe(true);
    } finally {
      await back.close();
    }
  });

  it("gives up with a message that says what to do", async () => {
    const file = join(dir, "nowhere.csv");
    writeFileSync(
      file,
      [
        ...generateCsv({
          rows: 10,
          users: 1,
          fromMs: Date.parse("2024-06-01"),
          days: 1,
          eventTypes: 1,
          dupRate: 0,
          seed: 4,
        }),
      ].join(""),
    );
    const failed = runImport(
      opts(file, { url: "http://127.0.0.1:1", attempts: 2, retryDelayMs: 10 }),
      progress(),
    );
    await expect(failed).rejects.toBeInstanceOf(ImportError);
    await expect(failed).rejects.toThrow(/after 2 tries.*run the same command again to resume/);
  });
});
