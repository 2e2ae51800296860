import { describe, expect, it } from "vitest";
import { reuseAnswers } from "./reuse-answers.ts";
import type { Warehouse } from "./warehouse.ts";

/** A warehouse whose queries answer `answer()` and are counted, with a write count the test moves. */
function fake(answer: (sql: string) => unknown[] = () => [{ n: 1 }], withWrites = true) {
  const state = { asked: 0, writes: 0, during: () => {} };
  const warehouse = {
    kind: "chdb",
    db: "`t`",
    database: "t",
    async query(sql: string) {
      state.asked++;
      state.during();
      return answer(sql);
    },
    async queryBytes(sql: string, _params: unknown, format: string) {
      state.asked++;
      return Buffer.from(`${format} ${JSON.stringify(answer(sql))}`);
    },
    ...(withWrites ? { writes: () => state.writes } : {}),
  } as unknown as Warehouse;
  return { state, warehouse };
}

describe("reusing answers until the next write", () => {
  it("answers a query asked again from memory, and asks again after a write", async () => {
    let n = 0;
    const { state, warehouse } = fake(() => [{ n: ++n }]);
    const reused = reuseAnswers(warehouse);
    expect(await reused.query("SELECT n", { a: 1 })).toEqual([{ n: 1 }]);
    expect(await reused.query("SELECT n", { a: 1 })).toEqual([{ n: 1 }]);
    expect(state.asked).toBe(1);
    // Other parameters are another question.
    expect(await reused.query("SELECT n", { a: 2 })).toEqual([{ n: 2 }]);
    state.writes++;
    expect(await reused.query("SELECT n", { a: 1 })).toEqual([{ n: 3 }]);
    expect(state.asked).toBe(3);
  });

  it("does not keep an answer a write ended during", async () => {
    const { state, warehouse } = fake();
    const reused = reuseAnswers(warehouse);
    state.during = () => {
      state.writes++;
    };
    await reused.query("SELECT n");
    state.during = () => {};
    await reused.query("SELECT n");
    expect(state.asked).toBe(2);
  });

  it("never keeps queries that name the time, answers past their age, or big ones", async () => {
    let clock = 0;
    const { state, warehouse } = fake((sql) =>
      sql.includes("big") ? Array.from({ length: 11 }, () => ({})) : [{}],
    );
    const reused = reuseAnswers(warehouse, { maxAgeMs: 100, maxRows: 10, now: () => clock });
    for (const sql of ["SELECT today()", "SELECT now( )", "SELECT big"]) {
      await reused.query(sql);
      await reused.query(sql);
    }
    expect(state.asked).toBe(6);
    await reused.query("SELECT n");
    clock = 99;
    await reused.query("SELECT n");
    expect(state.asked).toBe(7);
    clock = 100;
    await reused.query("SELECT n");
    expect(state.asked).toBe(8);
  });

  it("hands out copies, and keeps nothing where writes are not counted (a ClickHouse server)", async () => {
    const { warehouse } = fake(() => [{ list: [1] }]);
    const reused = reuseAnswers(warehouse);
    const first = await reused.query<{ list: number[] }>("SELECT list");
    first[0]?.list.push(2);
    expect(await reused.query("SELECT list")).toEqual([{ list: [1] }]);
    const server = fake(() => [{}], false);
    const direct = reuseAnswers(server.warehouse);
    expect(direct).toBe(server.warehouse);
  });

  it("reuses answers in ClickHouse's formats too (the funnel's RowBinary), as copies, up to maxBytes", async () => {
    let n = 0;
    const { state, warehouse } = fake((sql) =>
      sql.includes("big") ? [{ text: "x".repeat(100) }] : [{ n: ++n }],
    );
    const reused = reuseAnswers(warehouse, { maxBytes: 64 });
    const first = await reused.queryBytes("SELECT n", {}, "RowBinary");
    first.fill(0);
    expect(String(await reused.queryBytes("SELECT n", {}, "RowBinary"))).toBe(
      'RowBinary [{"n":1}]',
    );
    expect(state.asked).toBe(1);
    // Another format, or rows, are other answers.
    expect(String(await reused.queryBytes("SELECT n", {}, "CSV"))).toBe('CSV [{"n":2}]');
    expect(await reused.query("SELECT n")).toEqual([{ n: 3 }]);
    state.writes++;
    expect(String(await reused.queryBytes("SELECT n", {}, "RowBinary"))).toBe(
      'RowBinary [{"n":4}]',
    );
    await reused.queryBytes("SELECT big", {}, "RowBinary");
    await reused.queryBytes("SELECT big", {}, "RowBinary");
    expect(state.asked).toBe(6);
  });
});
