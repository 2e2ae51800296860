import { describe, expect, it } from "vitest";
import { readHeader, rowToEvent } from "./csv-events.ts";

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
