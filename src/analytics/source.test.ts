import { describe, expect, it } from "vitest";
import { chooseSource } from "./source.ts";

const indexed = {
  indexedProperties: ["country", "device.os"],
  indexedTimeZones: ["Europe/Kyiv"],
};

describe("chooseSource", () => {
  it("reads the rollups of all events for no segment or one event type, in UTC", () => {
    expect(chooseSource("UTC", [], indexed)).toMatchObject({ prefix: "", params: { type: "" } });
    expect(chooseSource("UTC", ["event_type:buy", "event_type:buy"], indexed)).toMatchObject({
      prefix: "",
      params: { type: "buy" },
    });
  });

  it("reads an indexed property's rollups, alone or with one event type", () => {
    expect(chooseSource("UTC", ["properties.device.os:ios"], indexed)).toMatchObject({
      kind: "rollups",
      prefix: "prop_",
      params: { type: "", path: "device.os", value: "ios" },
    });
    expect(
      chooseSource("UTC", ["event_type:buy", "properties.country:UA:x"], indexed),
    ).toMatchObject({ prefix: "prop_", params: { type: "buy", path: "country", value: "UA:x" } });
  });

  it("reads an indexed zone's rollups, with no segment or one event type", () => {
    expect(chooseSource("Europe/Kyiv", ["event_type:buy"], indexed)).toMatchObject({
      kind: "rollups",
      prefix: "zone_",
      params: { type: "buy", zone: "Europe/Kyiv" },
    });
    expect(chooseSource("Europe/Kyiv", ["properties.country:UA"], indexed).kind).toBe("events");
    expect(chooseSource("Europe/Kiev", [], indexed).kind).toBe("events"); // another name, not indexed
  });

  it("reads the events for what no rollup holds", () => {
    for (const segment of [
      ["properties.plan:pro"], // not indexed
      ["properties.device:ios"], // a parent of an indexed path is another property
      ["properties.country:UA", "properties.country:PL"],
      ["properties.country:UA", "properties.device.os:ios"],
      ["event_type:buy", "event_type:sell"],
      ["event_type:"],
    ]) {
      expect(chooseSource("UTC", segment, indexed).kind, segment.join(" ")).toBe("events");
    }
    expect(chooseSource("America/New_York", [], indexed).kind).toBe("events");
    expect(chooseSource("Europe/Kyiv", [], {}).kind).toBe("events");
    expect(chooseSource("UTC", ["properties.country:UA"], {}).kind).toBe("events");
    expect(chooseSource("UTC", [], { ...indexed, rawOnly: true }).kind).toBe("events");
  });
});
