import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { EventSchema } from "../../gen/tally/v1/event_pb.js";
import {
  batchIds,
  clickhouseTime,
  decodeRows,
  encodeRow,
  escapeTsv,
  rowIds,
} from "./row-format.ts";

describe("event batch rows", () => {
  it("escapes TabSeparated specials", () => {
    expect(escapeTsv("plain")).toBe("plain");
    expect(escapeTsv("a\tb\nc\\d\re\0")).toBe("a\\tb\\nc\\\\d\\re\\0");
  });

  it("writes ClickHouse DateTime64 text", () => {
    expect(clickhouseTime(Date.parse("2025-10-28T12:00:00.123Z"))).toBe("2025-10-28 12:00:00.123");
    // Every field at its edges, across day changes both ways (the formatter keeps each day's date).
    const times = [
      0,
      1,
      999,
      59_999,
      3_599_999,
      86_399_999,
      86_400_000,
      Date.parse("2024-02-29T23:59:59.999Z"),
    ];
    for (
      let ms = Date.parse("2025-12-31T23:00:00Z");
      ms < Date.parse("2026-01-01T01:00:00Z");
      ms += 997
    ) {
      times.push(ms, ms - 86_400_000 * 400);
    }
    // More days than it keeps, twice over: it starts again, and stays right.
    for (let round = 0; round < 2; round++) {
      for (let day = 20_000; day < 25_000; day++) times.push(day * 86_400_000 + 43_200_123);
    }
    for (const ms of times) {
      expect(clickhouseTime(ms)).toBe(new Date(ms).toISOString().replace("T", " ").slice(0, 23));
    }
  });

  it("encodes a row that starts with the lower-cased id and reads back", () => {
    const event = create(EventSchema, {
      eventId: "8F14E45F-CEEA-467F-A0E6-1D8F1E6B0B2A",
      occurredAt: timestampFromMs(Date.parse("2025-10-28T12:00:00.5Z")),
      userId: "u\t1",
      eventType: "view\nx",
    });
    const row = encodeRow(event, '{"k":"a\\tb"}', "2025-10-28 12:00:01.000000");
    expect(row).toBe(
      '8f14e45f-ceea-467f-a0e6-1d8f1e6b0b2a\t2025-10-28 12:00:00.500\tu\\t1\tview\\nx\t{"k":"a\\\\tb"}\t2025-10-28 12:00:01.000000\n',
    );
    const { ids, rows } = rowIds(Buffer.from(row + row));
    expect(ids).toEqual([
      "8f14e45f-ceea-467f-a0e6-1d8f1e6b0b2a",
      "8f14e45f-ceea-467f-a0e6-1d8f1e6b0b2a",
    ]);
    expect(rows).toHaveLength(2);
    // The ids alone, as the API's claim reads them, are the same.
    const other = encodeRow(
      create(EventSchema, {
        eventId: "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        userId: "é",
        eventType: "x",
      }),
      "{}",
      "2025-10-28 12:00:01.000000",
    );
    const body = Buffer.from(row + other + row);
    expect(batchIds(body)).toEqual(rowIds(body).ids);
    expect(batchIds(Buffer.alloc(0))).toEqual([]);
  });

  it("gives ids that do not keep their batch's text alive (the dedupe keeps them for long)", () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const props = JSON.stringify({ pad: "x".repeat(10_000) });
    const body = () =>
      Buffer.from(
        Array.from({ length: 50 }, () =>
          encodeRow(
            create(EventSchema, { eventId: crypto.randomUUID(), userId: "u", eventType: "t" }),
            props,
            "2025-10-28 12:00:01.000000",
          ),
        ).join(""),
      );
    gc();
    const before = process.memoryUsage().heapUsed;
    // 200 batches of about 500 KB: 100 MB of text if each id held its batch's.
    const kept = Array.from({ length: 200 }, () => rowIds(body()).ids);
    gc();
    const grown = process.memoryUsage().heapUsed - before;
    expect(kept.flat()).toHaveLength(10_000);
    expect(grown).toBeLessThan(20e6);
  });

  it("reads each row and its id, with or without the last line break, past any non-ASCII", () => {
    const at = "2025-10-28 12:00:01.000000";
    const rows = [
      encodeRow(
        create(EventSchema, { eventId: crypto.randomUUID(), userId: "é", eventType: "x" }),
        '{"k":"ü"}',
        at,
      ),
      encodeRow(
        create(EventSchema, { eventId: crypto.randomUUID(), userId: "u", eventType: "y" }),
        "{}",
        at,
      ),
      encodeRow(
        create(EventSchema, { eventId: crypto.randomUUID(), userId: "😀", eventType: "z" }),
        "{}",
        at,
      ),
    ];
    for (const body of [Buffer.from(rows.join("")), Buffer.from(rows.join("").slice(0, -1))]) {
      const read = rowIds(body);
      expect(read.rows).toEqual(rows.map((r) => r.slice(0, -1)));
      expect(read.ids).toEqual(rows.map((r) => r.slice(0, 36)));
    }
    expect(rowIds(Buffer.alloc(0))).toEqual({ ids: [], rows: [] });
  });

  it("refuses a body whose rows do not start with an id", () => {
    expect(() => rowIds(Buffer.from("garbage\n"))).toThrow(/row 0/);
    const row = encodeRow(
      create(EventSchema, { eventId: crypto.randomUUID(), userId: "u", eventType: "t" }),
      "{}",
      "2025-10-28 12:00:01.000000",
    );
    // An empty line, a short one, an id not followed by its tab.
    expect(() => rowIds(Buffer.from(`${row}\n${row}`))).toThrow(/row 1/);
    expect(() => rowIds(Buffer.from(`${row}${row}${row.slice(0, 36)}`))).toThrow(/row 2/);
    expect(() => rowIds(Buffer.from(`${row}x${row}`))).toThrow(/row 1/);
  });

  it("reads rows back into events, for live tails", () => {
    const event = create(EventSchema, {
      eventId: "8f14e45f-ceea-467f-a0e6-1d8f1e6b0b2a",
      occurredAt: timestampFromMs(Date.parse("2025-10-28T12:00:00.5Z")),
      userId: "u\t1\\x",
      eventType: "view\nx",
      properties: { k: "a\tb", n: { deep: [1, true] } },
    });
    const plain = create(EventSchema, {
      eventId: "0b3f5f0e-9a55-4d8c-8d5e-2a1f6c3b7e91",
      occurredAt: timestampFromMs(0),
      userId: "7",
      eventType: "signup",
    });
    const rows =
      encodeRow(event, JSON.stringify(event.properties), "2025-10-28 12:00:01.000000") +
      encodeRow(plain, "{}", "2025-10-28 12:00:01.000000");
    expect(decodeRows(Buffer.from(rows))).toEqual([event, plain]);
  });
});
