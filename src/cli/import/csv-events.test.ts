import { create, fromJson, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { TimestampSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { EventSchema } from "../../../gen/tally/v1/event_pb.js";
import { IngestRequestSchema } from "../../../gen/tally/v1/ingest_pb.js";
import { readHeader, readRow, rowToEvent, writeEvent } from "./csv-events.ts";

describe("CSV rows to events", () => {
  const header = readHeader(["event_id", "occurred_at", "user_id", "event_type", "properties"]);

  it("reads columns in any order, properties optional", () => {
    const h = readHeader(["user_id", "event_type", "occurred_at", "event_id"]);
    const event = rowToEvent(
      ["7", "signup", "2025-10-28T12:00:00+02:00", "5d41402a-bc4b-4a76-b971-9d911017c592"],
      h,
    );
    expect(event).toMatchObject({
      userId: "7",
      eventType: "signup",
      eventId: "5d41402a-bc4b-4a76-b971-9d911017c592",
    });
    expect(typeof event !== "string" && event.occurredAt?.seconds).toBe(
      BigInt(Date.parse("2025-10-28T10:00:00Z") / 1000),
    );
  });

  it("sends properties as the text of the row, for the server to judge", () => {
    const json = '{"plan":"pro","device":{"os":"ios"}}';
    const event = rowToEvent(
      ["5d41402a-bc4b-4a76-b971-9d911017c592", "2025-10-28T12:00:00Z", "u", "t", json],
      header,
    );
    expect(event).toMatchObject({ propertiesJson: json });
    expect(typeof event !== "string" && event.properties).toBeUndefined();
  });

  it("refuses a header that is not Tally's, naming what is wrong", () => {
    expect(() => readHeader(["id", "occurred_at", "user_id", "event_type"])).toThrow(
      "the first line must be the header event_id,occurred_at,user_id,event_type,properties; missing: event_id; unknown: id",
    );
  });

  it.each([
    [["a", "b"], "expected 5 fields, found 2"],
    [["x", "28/10/2025", "u", "t", ""], /^occurred_at: expected an RFC 3339 time with a zone/],
  ])("refuses %j: %s", (fields, reason) => {
    const got = rowToEvent(fields, header);
    expect(typeof got).toBe("string");
    expect(got).toMatch(reason);
  });
});

describe("a row's event written straight to bytes", () => {
  const header = readHeader(["event_id", "occurred_at", "user_id", "event_type", "properties"]);
  /** The way the CLI made a request's bytes before: protobuf-es's own reader and writer. */
  const asToBinaryWrites = (fields: string[]) => {
    const at = fields[1] as string;
    const event = create(EventSchema, {
      eventId: fields[0],
      occurredAt: at === "" ? undefined : fromJson(TimestampSchema, at),
      userId: fields[2],
      eventType: fields[3],
      propertiesJson: fields[4],
    });
    return toBinary(IngestRequestSchema, create(IngestRequestSchema, { events: [event, event] }));
  };
  const written = (fields: string[]) => {
    const row = readRow(fields, header);
    if (typeof row === "string") return row;
    const w = new BinaryWriter();
    writeEvent(w, 1, row);
    writeEvent(w, 1, row);
    return w.finish();
  };
  const id = "5d41402a-bc4b-4a76-b971-9d911017c592";

  it.each([
    "2025-10-28T12:00:00Z",
    "2025-10-28T12:00:00.5Z",
    "2025-10-28T12:00:00.123456789Z",
    "2025-10-28T12:00:00.000Z",
    "2025-10-28T12:00:00+02:00",
    "2025-10-28T00:30:00.25-05:30",
    "1969-12-31T23:59:59.999Z",
    "1970-01-01T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999999Z",
    "",
  ])("gives the bytes toBinary gives for the time %j", (at) => {
    const fields = [id, at, "user 7", "page_view", '{"plan":"pro"}'];
    expect(written(fields)).toEqual(asToBinaryWrites(fields));
  });

  it("leaves out empty fields as toBinary does", () => {
    const fields = ["", "2025-10-28T12:00:00Z", "", "", ""];
    expect(written(fields)).toEqual(asToBinaryWrites(fields));
  });

  it.each([
    "2025-02-30T00:00:00Z",
    "2025-10-28T24:00:00Z",
    "2025-10-28 12:00:00Z",
    "2025-10-28T12:00:00",
    "2025-10-28t12:00:00z",
    "2025-10-28T12:00:00.1234567890Z",
    "0000-12-31T23:59:59Z",
    "+2025-10-28T12:00:00Z",
  ])("refuses the time %j exactly when protobuf's reader does", (at) => {
    const fields = [id, at, "u", "t", ""];
    const refused = (() => {
      try {
        asToBinaryWrites(fields);
        return false;
      } catch {
        return true;
      }
    })();
    const got = written(fields);
    expect(typeof got === "string").toBe(refused);
    if (!refused) expect(got).toEqual(asToBinaryWrites(fields));
  });
});
