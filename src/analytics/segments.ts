import { propertyRawSql, propertyValueSql } from "../warehouse/rollup-index.ts";
import { InvalidParameterError } from "./params.ts";

/** A filter on events: their type, or a (nested) property, compared as a string. */
export type Segment =
  | { readonly field: "event_type"; readonly value: string }
  | { readonly field: "properties"; readonly path: readonly string[]; readonly value: string };

const MAX_SEGMENTS = 20;
const EXPECTED = "expected event_type:VALUE or properties.KEY:VALUE (KEY may be nested: a.b)";

/** Parses `segment=` values; a malformed one is an InvalidParameterError naming `segment`. */
export function parseSegments(values: readonly string[]): Segment[] {
  if (values.length > MAX_SEGMENTS) {
    throw new InvalidParameterError("segment", `at most ${MAX_SEGMENTS} segments`);
  }
  return values.map((raw) => {
    const colon = raw.indexOf(":");
    if (colon < 0) throw new InvalidParameterError("segment", `"${raw}": ${EXPECTED}`);
    const key = raw.slice(0, colon);
    const value = raw.slice(colon + 1);
    if (key === "event_type") return { field: "event_type", value };
    if (key.startsWith("properties.")) {
      const path = key.slice("properties.".length).split(".");
      if (path.every((p) => p !== "")) return { field: "properties", path, value };
    }
    throw new InvalidParameterError("segment", `"${raw}": ${EXPECTED}`);
  });
}

/**
 * The segments as one SQL condition over the events table, with its query
 * parameters: every value and key travels as a parameter, none is spliced.
 */
export function segmentsSql(segments: readonly Segment[]): {
  sql: string;
  params: Record<string, string>;
} {
  const params: Record<string, string> = {};
  const conditions = segments.map((s, i) => {
    params[`seg${i}`] = s.value;
    if (s.field === "event_type") return `event_type = {seg${i}:String}`;
    const keys = s.path.map((k, j) => {
      params[`seg${i}_${j}`] = k;
      return `{seg${i}_${j}:String}`;
    });
    const raw = propertyRawSql("properties", keys);
    return `(${raw} != '' AND ${propertyValueSql(raw)} = {seg${i}:String})`;
  });
  return { sql: conditions.length === 0 ? "1" : conditions.join(" AND "), params };
}
