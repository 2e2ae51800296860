import { parseSegments, type Segment, segmentsSql } from "./segments.ts";

/** How a stats query may read the warehouse. */
export interface ReadOptions {
  /** Read the raw events even where a rollup could answer (for checking one against the other). */
  rawOnly?: boolean;
}

/**
 * Where a query reads from. The rollups (see warehouse/migrations.ts) hold
 * UTC days per event type, so they answer queries in UTC filtered by nothing
 * or by one event type; any other zone or segment reads the events `FINAL`.
 */
export type Source =
  /** Read the rollups of event type `{type:String}` ('' for any). */
  | { readonly kind: "rollups"; readonly params: { type: string } }
  /** Read the events, `where` holding. */
  | { readonly kind: "events"; readonly where: string; readonly params: Record<string, string> };

/** The rollups' event_type for "any type". */
const ANY_TYPE = "";

export function chooseSource(tz: string, segment: readonly string[], options: ReadOptions): Source {
  const segments = parseSegments(segment);
  const type = options.rawOnly || tz !== "UTC" ? undefined : rollupType(segments);
  if (type !== undefined) return { kind: "rollups", params: { type } };
  const { sql, params } = segmentsSql(segments);
  return { kind: "events", where: sql, params };
}

/** The one event type the segments ask for (ANY_TYPE for none), or undefined if the rollups cannot say. */
function rollupType(segments: readonly Segment[]): string | undefined {
  const types = new Set<string>();
  for (const s of segments) {
    if (s.field !== "event_type" || s.value === ANY_TYPE) return undefined;
    types.add(s.value);
  }
  if (types.size > 1) return undefined; // two types at once match nothing; the events say so
  return types.size === 0 ? ANY_TYPE : [...types][0];
}
