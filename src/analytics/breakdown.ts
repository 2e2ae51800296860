import { propertyRawSql, propertyValueSql } from "../warehouse/rollup-index.ts";
import { InvalidParameterError } from "./params.ts";

/** What `breakdown=` splits by: nothing, the event type, or a (nested) property. */
export type Breakdown =
  | { readonly kind: "none" }
  | { readonly kind: "event_type" }
  | { readonly kind: "property"; readonly path: readonly string[] };

/** A series' value for the events that lack the breakdown's property. */
export const NONE = "$none";
/** A series' value for the values past the top ones. */
export const OTHER = "$other";

const EXPECTED = "expected event_type or properties.KEY (KEY may be nested: a.b)";

export function parseBreakdown(value: string): Breakdown {
  if (value === "") return { kind: "none" };
  if (value === "event_type") return { kind: "event_type" };
  const path = parsePropertyPath(value);
  if (path === undefined) throw new InvalidParameterError("breakdown", `"${value}": ${EXPECTED}`);
  return { kind: "property", path };
}

/** `properties.a.b` as its keys, or undefined when it is not one. */
export function parsePropertyPath(value: string): string[] | undefined {
  if (!value.startsWith("properties.")) return undefined;
  const path = value.slice("properties.".length).split(".");
  return path.every((k) => k !== "") ? path : undefined;
}

/**
 * The breakdown's value of an event row as SQL (a Nullable(String): NULL
 * where the property is missing), its keys as query parameters named
 * `{prefix}N`. A property compares as segments do: a string by its text,
 * anything else by its JSON.
 */
export function breakdownSql(
  breakdown: Breakdown,
  prefix: string,
): { sql: string; params: Record<string, string> } {
  if (breakdown.kind === "none") return { sql: "toNullable('')", params: {} };
  if (breakdown.kind === "event_type")
    return { sql: "toNullable(toString(event_type))", params: {} };
  const { raw, params } = propertySql(breakdown.path, prefix);
  return { sql: `if(${raw} = '', NULL, ${propertyValueSql(raw)})`, params };
}

/**
 * A property's JSON text in an event row ('' where it is missing), its
 * keys as query parameters named `{prefix}N`: nothing is spliced.
 */
export function propertySql(
  path: readonly string[],
  prefix: string,
): { raw: string; params: Record<string, string> } {
  return {
    raw: propertyRawSql(
      "properties",
      path.map((_, i) => `{${prefix}${i}:String}`),
    ),
    params: Object.fromEntries(path.map((k, i) => [`${prefix}${i}`, k])),
  };
}
