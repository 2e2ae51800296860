import { describe, expect, it } from "vitest";
import { type CsvRecord, csvRecords } from "./csv-records.ts";

async function read(text: string, chunkSize = text.length || 1): Promise<CsvRecord[]> {
  async function* chunks() {
    for (let i = 0; i < text.length; i += chunkSize) yield text.slice(i, i + chunkSize);
  }
  const out: CsvRecord[] = [];
  for await (const r of csvRecords(chunks())) out.push(r);
  return out;
}

/** Every chunking must read the same: one character at a time included. */
async function readAllWays(text: string) {
  const whole = await read(text);
  for (const size of [1, 2, 3, 7, 64])
    expect(await read(text, size), `chunks of ${size}`).toEqual(whole);
  return whole;
}

describe("csvRecords", () => {
  it("reads quoting, embedded commas, quotes and newlines, with each record's first line", async () => {
    const text = 'a,b,c\n"x, y","say ""hi""",3\n"multi\nline\nfield",z,\n,,\n';
    expect(await readAllWays(text)).toEqual([
      { line: 1, fields: ["a", "b", "c"], raw: "a,b,c" },
      { line: 2, fields: ["x, y", 'say "hi"', "3"], raw: '"x, y","say ""hi""",3' },
      { line: 3, fields: ["multi\nline\nfield", "z", ""], raw: '"multi\nline\nfield",z,' },
      { line: 6, fields: ["", "", ""], raw: ",," },
    ]);
  });

  it("strips a BOM, reads CRLF, skips blank lines, and reads a last line without a line end", async () => {
    const text = '\ufeffa,b\r\n\r\n1,"2\r\n2"\r\n\n3,4';
    expect(await readAllWays(text)).toEqual([
      { line: 1, fields: ["a", "b"], raw: "a,b" },
      { line: 3, fields: ["1", "2\r\n2"], raw: '1,"2\r\n2"' },
      { line: 6, fields: ["3", "4"], raw: "3,4" },
    ]);
  });

  it("reports broken quoting by line and loses no other line", async () => {
    const text = [
      "a,b,c",
      '7,"bro"ken,9',
      "10,11,12",
      'x,un"quoted,z',
      '"never closed,1,2',
      "13,14,15",
      '"ok",16,17',
    ].join("\n");
    expect(await readAllWays(text)).toEqual([
      { line: 1, fields: ["a", "b", "c"], raw: "a,b,c" },
      { line: 2, error: "broken quoting: text after a closing quote", raw: '7,"bro"ken,9' },
      { line: 3, fields: ["10", "11", "12"], raw: "10,11,12" },
      { line: 4, error: "broken quoting: a quote inside an unquoted field", raw: 'x,un"quoted,z' },
      // Its quote closes on line 7, followed by text: still only line 5 is lost.
      { line: 5, error: "broken quoting: text after a closing quote", raw: '"never closed,1,2' },
      { line: 6, fields: ["13", "14", "15"], raw: "13,14,15" },
      { line: 7, fields: ["ok", "16", "17"], raw: '"ok",16,17' },
    ]);
  });

  it("re-reads the lines a quote swallowed when the record breaks later", async () => {
    const text = 'a,b\n"opens,1\n2,3\n4,"5\n6,7\n';
    // Line 2 opens a quote that line 4 closes, followed by text: the record is broken,
    // so line 2 alone is reported and lines 3 onwards are read again.
    expect(await readAllWays(text)).toEqual([
      { line: 1, fields: ["a", "b"], raw: "a,b" },
      { line: 2, error: "broken quoting: text after a closing quote", raw: '"opens,1' },
      { line: 3, fields: ["2", "3"], raw: "2,3" },
      { line: 4, error: "broken quoting: a quoted field is never closed", raw: '4,"5' },
      { line: 5, fields: ["6", "7"], raw: "6,7" },
    ]);
  });
});
