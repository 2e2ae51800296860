import { ClickHouseError } from "@clickhouse/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { insertErrorKind } from "../../src/consumer/insert-errors.ts";
import { reuseAnswers } from "../../src/warehouse/reuse-answers.ts";
import { createServerWarehouse } from "../../src/warehouse/server-warehouse.ts";
import {
  createWarehouse,
  QueryMemoryError,
  type Warehouse,
} from "../../src/warehouse/warehouse.ts";
import { DATA_DIR, freePort, uniqueNamespace } from "../helpers.ts";

/**
 * Each implementation of the warehouse seam: chDB always; a ClickHouse
 * server too when TEST_CLICKHOUSE_URL names one (none can run on the
 * project's machines; set it where one does, e.g. http://127.0.0.1:8123).
 */
const implementations: [name: string, url: string | undefined][] = [
  ["chDB", undefined],
  ...(process.env.TEST_CLICKHOUSE_URL
    ? [["a ClickHouse server", process.env.TEST_CLICKHOUSE_URL] as [string, string]]
    : []),
];

describe.each(implementations)("the warehouse contract: %s", (_name, url) => {
  const database = uniqueNamespace();
  const table = `\`${database}\`.contract`;
  let warehouse: Warehouse;
  beforeAll(async () => {
    warehouse = await createWarehouse({ url, dataDir: DATA_DIR, database });
  });
  afterAll(async () => {
    await warehouse.command(`DROP DATABASE IF EXISTS ${warehouse.db}`);
    await warehouse.close();
  });

  it("creates, inserts in each format, and answers parameterised queries", async () => {
    await warehouse.check();
    await warehouse.command(`CREATE DATABASE IF NOT EXISTS ${warehouse.db}`);
    await warehouse.command(
      `CREATE TABLE ${table} (id UInt32, name String, at DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY id`,
    );
    const columns = ["id", "name", "at"];
    await warehouse.insert("contract", {
      format: "TabSeparated",
      columns,
      text: "1\tone\\ttab\t2025-10-28 12:00:00.000\n",
    });
    await warehouse.insert("contract", {
      format: "CSV",
      columns,
      text: '2,"two, quoted",2025-10-28 12:00:01\n',
    });
    await warehouse.insert("contract", {
      format: "JSONEachRow",
      rows: [{ id: 3, name: "three", at: "2025-10-28T14:00:02+02:00" }],
      bestEffortTimes: true,
    });
    expect(
      await warehouse.query<{ id: number; name: string; at: string }>(
        `SELECT id, name, toString(at) AS at FROM ${table} WHERE id >= {from:UInt32} ORDER BY id`,
        { from: 1 },
      ),
    ).toEqual([
      { id: 1, name: "one\ttab", at: "2025-10-28 12:00:00.000" },
      { id: 2, name: "two, quoted", at: "2025-10-28 12:00:01.000" },
      { id: 3, name: "three", at: "2025-10-28 12:00:02.000" },
    ]);
    await warehouse.command(
      `ALTER TABLE ${table} DELETE WHERE id = {id:UInt32} SETTINGS mutations_sync = 1`,
      {
        id: 2,
      },
    );
    expect(await warehouse.query(`SELECT id FROM ${table} ORDER BY id`)).toEqual([
      { id: 1 },
      { id: 3 },
    ]);
    // As ClickHouse writes a format itself: what exports send.
    const csv = await warehouse.queryBytes(
      `SELECT id, name FROM ${table} WHERE id >= {from:UInt32} ORDER BY id`,
      { from: 1 },
      "CSVWithNames",
    );
    expect(csv.toString("utf8")).toBe('"id","name"\n1,"one\ttab"\n3,"three"\n');
    const parquet = await warehouse.queryBytes(`SELECT id FROM ${table}`, {}, "Parquet");
    expect(parquet.subarray(0, 4).toString("latin1")).toBe("PAR1");
  });

  it("answers every row whole, whatever its strings hold, and no row for an empty answer", async () => {
    const odd = 'line\nbreak, "quotes", tab\t, back\\slash, Київ, 🎉';
    expect(
      await warehouse.query<{ n: string; s: string }>(
        "SELECT toString(number) AS n, {odd:String} AS s FROM numbers(3)",
        { odd },
      ),
    ).toEqual([0, 1, 2].map((n) => ({ n: String(n), s: odd })));
    expect(await warehouse.query("SELECT 1 AS one WHERE 0")).toEqual([]);
  });

  it("gives a query each parameter's value exactly, whatever it holds, in every statement", async () => {
    const strings = [
      "it's",
      "back\\slash\\",
      "\\'; SELECT 1 --",
      "line\nbreak\ttab\0nul",
      "{other:String} */ -- /*",
      "Київ 🎉",
      "",
    ];
    const uuid = "0b1e5d3c-7a2f-4c61-9e8d-5f4a3b2c1d0e";
    const params = {
      strings,
      one: strings[2],
      n: 4294967295,
      big: 18446744073709551615n,
      neg: -9007199254740993n,
      ids: [uuid],
      nums: [0, 4294967295],
      nested: [strings.slice(0, 3), []],
      flag: true,
    };
    const [row] = await warehouse.query<Record<string, unknown>>(
      `SELECT {strings:Array(String)} AS strings, {one:String} AS one, {n:UInt32} AS n,
         toString({big:UInt64}) AS big, toString({neg:Int64}) AS neg,
         toString({ids:Array(UUID)}[1]) AS id, '{one:String}' AS quoted,
         {nums:Array(UInt32)} AS nums, {nested:Array(Array(String))} AS nested, {flag:Bool} AS flag`,
      params,
    );
    expect(row).toEqual({
      strings,
      one: strings[2],
      n: 4294967295,
      big: "18446744073709551615",
      neg: "-9007199254740993",
      id: uuid,
      quoted: "{one:String}",
      nums: [0, 4294967295],
      nested: [strings.slice(0, 3), []],
      flag: true,
    });
    // A command and an answer as bytes carry them the same way.
    await warehouse.command(
      `INSERT INTO ${table} (id, name, at) SELECT 9, {one:String}, now64(3)`,
      {
        one: strings[2],
      },
    );
    const bytes = await warehouse.queryBytes(
      `SELECT name FROM ${table} WHERE id = {id:UInt32}`,
      { id: 9 },
      "TabSeparatedRaw",
    );
    expect(bytes.toString()).toBe(`${strings[2]}\n`);
    await warehouse.command(`DELETE FROM ${table} WHERE id = {id:UInt32}`, { id: 9 });
  });

  it("answers a parameterised query while another is still running", async () => {
    // chDB's own binding ran such queries one at a time (inline-params.ts).
    let slowDone = false;
    const slow = warehouse
      .query("SELECT sleepEachRow(0.1), {a:String} AS a FROM numbers(20)", { a: "slow" })
      .then(() => {
        slowDone = true;
      });
    expect(await warehouse.query("SELECT {b:String} AS b", { b: "fast" })).toEqual([{ b: "fast" }]);
    expect(slowDone).toBe(false);
    await slow;
  });

  it("refuses rows it cannot read with an error the consumer calls bad data, and keeps the table as it was", async () => {
    const err = await warehouse
      .insert("contract", {
        format: "TabSeparated",
        columns: ["id", "name", "at"],
        text: "4\tfour\tnot-a-time\n",
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeDefined();
    expect(insertErrorKind(err)).toBe("bad-data");
    const [stored] = await warehouse.query<{ n: number | string }>(
      `SELECT count() AS n FROM ${table}`,
    );
    expect(Number(stored?.n)).toBe(2);
  });

  it("fails a query past its memory cap alone, with QueryMemoryError, and answers the next", async () => {
    const capped = warehouse.withQueryMemoryCap(1 << 20);
    await expect(
      capped.query("SELECT groupArray(number) FROM numbers(10000000)"),
    ).rejects.toBeInstanceOf(QueryMemoryError);
    expect(await capped.query("SELECT 1 AS one")).toEqual([{ one: 1 }]);
    const [all] = await warehouse.query<{ n: number | string }>(
      "SELECT count() AS n FROM numbers(10000000)",
    );
    expect(Number(all?.n)).toBe(10_000_000);
  });

  it("fails a query ClickHouse refuses with the client's ClickHouseError, naming the error", async () => {
    const refused = await warehouse.query(`SELECT count() FROM ${warehouse.db}.no_such_table`).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(ClickHouseError);
    expect(refused).toMatchObject({ type: "UNKNOWN_TABLE", code: "60" });
    expect((refused as Error).message).toContain("no_such_table");
  });

  it.runIf(url === undefined)(
    "counts every write to chDB's data, from any warehouse of the process on it, so answers are reused only until one",
    async () => {
      await warehouse.command(`CREATE DATABASE IF NOT EXISTS ${warehouse.db}`);
      await warehouse.command(
        `CREATE TABLE IF NOT EXISTS ${warehouse.db}.reuse (id UInt32) ENGINE = MergeTree ORDER BY id`,
      );
      let asked = 0;
      const reader = reuseAnswers(
        await createWarehouse({
          url,
          dataDir: DATA_DIR,
          database: warehouse.database,
          onCall: (operation) => {
            if (operation === "query") asked++;
          },
        }),
      );
      const count = async () =>
        Number(
          (await reader.query<{ n: string }>(`SELECT count() AS n FROM ${warehouse.db}.reuse`))[0]
            ?.n,
        );
      expect(await count()).toBe(0);
      expect(await count()).toBe(0);
      expect(asked).toBe(1);
      // Written through another warehouse (as the consumer writes, beside the API's reads).
      await warehouse.insert("reuse", { format: "TabSeparated", columns: ["id"], text: "1\n" });
      expect(await count()).toBe(1);
      await warehouse.command(`INSERT INTO ${warehouse.db}.reuse SELECT 2`);
      expect(await count()).toBe(2);
      expect(asked).toBe(3);
      await reader.close();
    },
  );

  it.runIf(url === undefined)(
    "runs chDB with caches and its part-removal pool sized for a shared process, not a server",
    async () => {
      const settings = await warehouse.query<{ name: string; value: string }>(
        `SELECT name, value FROM system.server_settings
         WHERE name IN ('mark_cache_size', 'primary_index_cache_size', 'index_mark_cache_size',
                        'max_parts_cleaning_thread_pool_size')
         ORDER BY name`,
      );
      expect(settings).toEqual([
        { name: "index_mark_cache_size", value: String(64 << 20) },
        { name: "mark_cache_size", value: String(128 << 20) },
        { name: "max_parts_cleaning_thread_pool_size", value: "16" },
        { name: "primary_index_cache_size", value: String(128 << 20) },
      ]);
    },
  );

  it.runIf(url === undefined)(
    "reads a table of 17 granules with a thread for every 8, not one",
    async () => {
      // ClickHouse's defaults read fewer than 20 granules with one thread (chdb-warehouse.ts).
      await warehouse.command(
        `CREATE TABLE \`${database}\`.per_user (x UInt64) ENGINE = MergeTree ORDER BY x
         SETTINGS index_granularity = 8192`,
      );
      await warehouse.command(
        `INSERT INTO \`${database}\`.per_user SELECT number FROM numbers(17 * 8192)`,
      );
      const [threads] = await warehouse.query<{ n: number | string }>(
        "SELECT getSetting('max_threads') AS n",
      );
      const pipeline = await warehouse.query<{ explain: string }>(
        `EXPLAIN PIPELINE SELECT sum(x) FROM \`${database}\`.per_user`,
      );
      const read = pipeline.map((r) => r.explain).find((line) => line.includes("MergeTreeSelect"));
      const streams = Number(/× (\d+)/.exec(read ?? "")?.[1] ?? 1);
      // A read task is 8 granules at least: 17 make three, where there are threads for them.
      expect(streams).toBe(Math.min(3, Number(threads?.n)));
    },
  );

  it.runIf(url === undefined)(
    "writes every answer on the query's own thread, not through a pool of formatters",
    async () => {
      // Parallel formatting costs each small answer two threads' wakeups (chdb-warehouse.ts).
      const sql = "SELECT getSetting('output_format_parallel_formatting') AS parallel";
      expect(await warehouse.query(sql)).toEqual([{ parallel: false }]);
      const bytes = await warehouse.queryBytes(sql, {}, "CSV");
      expect(bytes.toString()).toBe("false\n");
    },
  );
});

describe("a ClickHouse server that does not answer", () => {
  it("fails check() and queries with an error, promptly, instead of hanging", async () => {
    const warehouse = createServerWarehouse({
      url: `http://127.0.0.1:${await freePort()}`,
      dataDir: DATA_DIR,
      database: uniqueNamespace(),
    });
    try {
      await expect(warehouse.check()).rejects.toThrow();
      const err = await warehouse.query("SELECT 1").then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeDefined();
      // The consumer retries such an error rather than dead-lettering a batch for it.
      expect(insertErrorKind(err)).toBe("retryable");
    } finally {
      await warehouse.close();
    }
  });
});
