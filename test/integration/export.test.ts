import { once } from "node:events";
import { createWriteStream, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Tally } from "../../src/app/tally.ts";
import { runExport } from "../../src/cli/export-command.ts";
import { runImport } from "../../src/cli/import/importer.ts";
import { rest } from "../clients.ts";
import {
  type JsonEvent,
  realServices,
  rng,
  spawnTally,
  start,
  testConfig,
  uuidFrom,
  waitFor,
  warehouseCounts,
} from "../helpers.ts";
import { firstCopies } from "../reference.ts";
import { tempDir } from "../temp-dirs.ts";

const KEYS = { TALLY_API_KEYS: "admin-key,reader-key:read" };
const FIRST_DAY = Date.parse("2025-10-01T00:00:00Z");
const dir = tempDir("tally-export-");

function generate(n: number, seed: number): JsonEvent[] {
  const random = rng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)] as T;
  return Array.from({ length: n }, () => ({
    event_id: uuidFrom(random),
    occurred_at: new Date(FIRST_DAY + Math.floor(random() * 20 * 86_400_000)).toISOString(),
    // Ids a CSV must quote: commas, quotes, and text beyond ASCII.
    user_id: pick(["u1", "u2", 'o"brien', "a,b", "Ковальчук", "u3", "u4"]),
    event_type: pick(["page_view", "click", "signup", "purchase", "$identify"]),
    properties: pick([
      { country: "UA", plan: "pro", amount: 12.5 },
      { country: "PL", nested: { list: [1, "two", null], quote: 'say "hi"' } },
      {},
      { emoji: "🙂", newline: "a\nb" },
    ]),
  }));
}

/** Every stat of the range that the routes answer, as JSON. */
async function stats(port: number) {
  const auth = { headers: { authorization: "Bearer admin-key" } };
  const range = "from=2025-10-01&to=2025-10-21";
  const paths = [
    `/stats/dau?${range}`,
    `/stats/dau?${range}&tz=Europe/Kyiv&segment=properties.country:UA`,
    `/stats/top-events?${range}&limit=10`,
    `/stats/retention?start_date=2025-10-01&end_date=2025-10-21&windows=3&granularity=week`,
    `/stats/lifecycle?${range}&interval=week`,
    `/stats/stickiness?${range}`,
    `/stats/trends?${range}&measure=sum:properties.amount&breakdown=event_type`,
    `/stats/funnel?${range}&step=page_view&step=purchase&mode=strict`,
  ];
  const out: Record<string, unknown> = {};
  for (const path of paths) out[path] = (await rest(port, path, undefined, auth)).body;
  return out;
}

describe("tally export: CSV, JSON lines and Parquet; a CSV export imports back with every stat equal", () => {
  let a: Tally;
  let b: Tally;
  let unique: JsonEvent[];
  const url = (t: Tally) => `http://127.0.0.1:${t.port}`;
  const exportTo = async (t: Tally, format: string, path: string, apiKey = "admin-key") => {
    const out = createWriteStream(path);
    const days: string[] = [];
    const done = await runExport(
      { url: url(t), apiKey, from: "2025-10-01", to: "2025-10-21", format, out },
      (p) => days.push(p.through),
    );
    out.end();
    await once(out, "finish");
    return { ...done, days };
  };

  beforeAll(async () => {
    a = await start(testConfig({ ...realServices(), ...KEYS }));
    b = await start(testConfig({ ...realServices(), ...KEYS }));
    const events = generate(1200, 61);
    // Repeats with other fields: the first copy is the one exported.
    const repeats = events.slice(0, 50).map((e) => ({ ...e, user_id: "intruder" }));
    const auth = { headers: { authorization: "Bearer admin-key" } };
    expect((await rest(a.port as number, "/events", events, auth)).status).toBe(202);
    expect((await rest(a.port as number, "/events", repeats, auth)).status).toBe(202);
    unique = firstCopies([...events, ...repeats]);
    await waitFor(
      () => warehouseCounts(a),
      (c) => c.ids === unique.length,
    );
  }, 60_000);
  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  it("writes CSV a day at a time that imports into an empty service with every stat unchanged, and exports back byte for byte", async () => {
    const csv = join(dir, "a.csv");
    const exported = await exportTo(a, "csv", csv);
    expect(exported.events).toBe(unique.length);
    expect(exported.days.at(-1)).toBe("2025-10-20");
    const summary = await runImport(
      {
        input: csv,
        url: url(b),
        apiKey: "admin-key",
        batchSize: 500,
        segmentRows: 5000,
        dryRun: false,
        restart: true,
      },
      { bytesRead: 0, totalBytes: undefined, rowsRead: 0, rowsDone: 0 },
    );
    expect(summary).toMatchObject({ accepted: unique.length, rejected: 0 });
    await waitFor(
      () => warehouseCounts(b),
      (c) => c.ids === unique.length,
    );
    expect(await stats(b.port as number)).toEqual(await stats(a.port as number));
    const again = join(dir, "b.csv");
    await exportTo(b, "csv", again);
    expect(readFileSync(again, "utf8")).toBe(readFileSync(csv, "utf8"));
  });

  it("writes JSON lines of the first copies, properties as objects, oldest first", async () => {
    const path = join(dir, "a.jsonl");
    expect((await exportTo(a, "jsonl", path)).events).toBe(unique.length);
    const lines = readFileSync(path, "utf8")
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    const byTime = [...unique].sort(
      (x, y) =>
        Date.parse(x.occurred_at) - Date.parse(y.occurred_at) || (x.event_id < y.event_id ? -1 : 1),
    );
    expect(lines).toEqual(byTime.map((e) => ({ ...e, properties: e.properties ?? {} })));
  });

  it("writes Parquet that ClickHouse reads back", async () => {
    const path = join(dir, "a.parquet");
    expect((await exportTo(a, "parquet", path)).events).toBe(unique.length);
    const [row] = await a.warehouse.query<{ n: string; ids: string; intruders: string }>(
      `SELECT count() AS n, uniqExact(event_id) AS ids, countIf(user_id = 'intruder') AS intruders
       FROM file({path:String}, Parquet)`,
      { path },
    );
    expect([Number(row?.n), Number(row?.ids), Number(row?.intruders)]).toEqual([
      unique.length,
      unique.length,
      0,
    ]);
  });

  it("needs the admin scope, names a bad parameter, and runs as npx tally export", async () => {
    await expect(exportTo(a, "csv", join(dir, "no.csv"), "reader-key")).rejects.toMatchObject({
      rawMessage: 'this API key may not use scope "admin" (it has: read)',
    });
    await expect(exportTo(a, "xml", join(dir, "no.xml"))).rejects.toMatchObject({
      rawMessage: 'format: expected one of csv, jsonl, parquet, got "xml"',
    });
    const out = join(dir, "cli.csv");
    const cli = spawnTally(["export", "--from", "2025-10-01", "--to", "2025-10-21", "--out", out], {
      TALLY_URL: url(a),
      TALLY_API_KEY: "admin-key",
    });
    expect(await cli.exit).toBe(0);
    expect(cli.stderr()).toContain(`tally export: ${unique.length.toLocaleString("en-US")} events`);
    expect(readFileSync(out, "utf8")).toBe(readFileSync(join(dir, "a.csv"), "utf8"));
  });
});
