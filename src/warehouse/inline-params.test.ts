import { describe, expect, it } from "vitest";
import { inlineParams } from "./inline-params.ts";

describe("inlineParams", () => {
  it("writes each placeholder as a literal cast to its type, a String as the string literal", () => {
    expect(
      inlineParams("SELECT {a:String}, {n:UInt32}, {ids:Array(String)}, {big:UInt64}", {
        a: "x",
        n: 7,
        ids: ["p", "q"],
        big: 18446744073709551615n,
      }),
    ).toBe(
      "SELECT 'x', CAST('7' AS UInt32), CAST('[\\'p\\',\\'q\\']' AS Array(String)), CAST('18446744073709551615' AS UInt64)",
    );
  });

  it("escapes what would end a string literal, and nothing a value holds is read as SQL", () => {
    expect(inlineParams("WHERE u = {u:String}", { u: "a'b\\' OR 1 = 1 --" })).toBe(
      "WHERE u = 'a\\'b\\\\\\' OR 1 = 1 --'",
    );
    // A value that looks like a placeholder stays a value.
    expect(inlineParams("{a:String} {b:String}", { a: "{b:String}", b: "B" })).toBe(
      "'{b:String}' 'B'",
    );
  });

  it("leaves placeholders alone inside quoted strings, quoted names and comments, as ClickHouse's lexer does", () => {
    const sql = `SELECT '{a:String}', 'it''s {a:String}', 'x\\'{a:String}', \`{a:String}\`, "{a:String}" -- {a:String}
      /* {a:String} */ FROM t WHERE x = {a:String}`;
    expect(inlineParams(sql, { a: "v" })).toBe(sql.replace("x = {a:String}", "x = 'v'"));
    expect(inlineParams(`SELECT '{"event_id":', {a:String}`, { a: "v" })).toBe(
      `SELECT '{"event_id":', 'v'`,
    );
  });

  it("refuses a parameter that is missing, or that has no literal", () => {
    expect(() => inlineParams("SELECT {a:String}", {})).toThrow(/a \(String\) was not given/);
    expect(() => inlineParams("SELECT {a:Float64}", { a: Number.NaN })).toThrow(/not finite/);
    expect(() => inlineParams("SELECT {a:String}", { a: { b: 1 } })).toThrow(/cannot be written/);
    expect(() => inlineParams("SELECT {a:String}", { a: null })).toThrow(/cannot be written/);
  });

  it("changes nothing where no parameter is asked for", () => {
    const sql = "SELECT map('a', 1) AS m, {'x': 1}";
    expect(inlineParams(sql, { unused: "u" })).toBe(sql);
  });
});
