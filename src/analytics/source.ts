import { parseSegments, type Segment, segmentsSql } from "./segments.ts";

/** How a stats query may read the warehouse. */
export interface ReadOptions {
  /** Read the raw events even where a rollup could answer (for checking one against the other). */
  rawOnly?: boolean;
  /** The properties with rollups of their own (`TALLY_INDEXED_PROPERTIES`), dotted. */
  indexedProperties?: readonly string[];
}

/**
 * Where a query reads from. The rollups (see warehouse/migrations.ts) hold
 * UTC days per event type, and per indexed property's value, so they answer
 * queries in UTC filtered by at most one event type and one indexed property;
 * any other zone or segment reads the events `FINAL`.
 */
export type Source =
  | {
      readonly kind: "rollups";
      /** '' for the rollups of all events, 'prop_' for those of one property's value. */
      readonly prefix: "" | "prop_";
      /** Picks the property's rows out of the 'prop_' rollups ('1' for the others). */
      readonly where: string;
      /** `type` is the event type ('' for any); `path` and `value` the property's. */
      readonly params: Record<string, string>;
    }
  /** Read the events, `where` holding. */
  | { readonly kind: "events"; readonly where: string; readonly params: Record<string, string> };

/** The rollups' event_type for "any type". */
const ANY_TYPE = "";

export function chooseSource(tz: string, segment: readonly string[], options: ReadOptions): Source {
  const segments = parseSegments(segment);
  if (!options.rawOnly && tz === "UTC") {
    const rollup = rollupKey(segments, options.indexedProperties ?? []);
    if (rollup !== undefined) return rollup;
  }
  const { sql, params } = segmentsSql(segments);
  return { kind: "events", where: sql, params };
}

/** The rollups that hold exactly the segments' events, if any do. */
function rollupKey(segments: readonly Segment[], indexed: readonly string[]): Source | undefined {
  const types = new Set<string>();
  const properties: { path: string; value: string }[] = [];
  for (const s of segments) {
    if (s.field === "event_type") {
      if (s.value === ANY_TYPE) return undefined;
      types.add(s.value);
    } else {
      const path = s.path.join(".");
      if (!indexed.includes(path)) return undefined;
      if (!properties.some((p) => p.path === path && p.value === s.value)) {
        properties.push({ path, value: s.value });
      }
    }
  }
  // Two types (or two properties) at once: the rollups hold no such key; the events say what matches.
  if (types.size > 1 || properties.length > 1) return undefined;
  const type = types.size === 0 ? ANY_TYPE : ([...types][0] as string);
  const [property] = properties;
  if (property === undefined) return { kind: "rollups", prefix: "", where: "1", params: { type } };
  return {
    kind: "rollups",
    prefix: "prop_",
    where: "path = {path:String} AND value = {value:String}",
    params: { type, ...property },
  };
}
