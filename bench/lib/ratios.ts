import type { Section } from "./table.ts";

/** A cell of `sections`: the section whose title starts with `title`, its `nth` row starting with `label`, column `column`. */
function cell(
  sections: readonly Section[],
  title: string,
  label: string,
  column: string,
  nth = 0,
): number | undefined {
  const section = sections.find((s) => s.title.startsWith(title));
  const at = section?.columns.indexOf(column) ?? -1;
  const row = section?.rows.filter((r) => String(r[0]).startsWith(label))[nth];
  const value = row === undefined || at < 0 ? undefined : Number(row[at]);
  return value === undefined || Number.isNaN(value) ? undefined : value;
}

/**
 * Issue 24's ratios, each with its two sides as measured in this run, from
 * the scenarios' own tables; a ratio whose scenario did not run is left out.
 */
export function ratios(sections: readonly Section[]): Section[] {
  const rows: (string | number)[][] = [];
  const add = (what: string, goal: string, a?: number, b?: number, unit = "") => {
    if (a === undefined || b === undefined) return;
    const shown = (v: number) =>
      `${v < 100 ? v.toFixed(2) : Math.round(v).toLocaleString("en-US")}${unit}`;
    rows.push([what, shown(a), shown(b), (a / b).toFixed(2), goal]);
  };
  const endToEnd = cell(sections, "End-to-end throughput", "pipeline", "events/s");
  add(
    "end to end / raw chDB insert (events/s)",
    ">= 0.85",
    endToEnd,
    cell(sections, "End-to-end throughput", "limit", "events/s"),
  );
  // The unary rows come per target in rate order; the second rate is the windowed one (2,000/s at full scale).
  for (const [nth, goal] of [
    [1, "<= 2"],
    [2, "<= 3"],
  ] as const) {
    const rate = cell(sections, "Unary latency", "gRPC Ingest", "rate/s", nth);
    add(
      `gRPC unary p99 at ${rate?.toLocaleString("en-US")}/s / the floor's p99`,
      goal,
      cell(sections, "Unary latency", "gRPC Ingest", "p99 ms", nth),
      cell(sections, "Unary latency", "floor", "p99 ms", nth),
      " ms",
    );
  }
  add(
    "tally import / the same rows streamed over gRPC, end to end (rows/s)",
    ">= 0.9",
    cell(sections, "tally import", "stats show every event", "rows/s"),
    cell(sections, "tally import", "the same rows streamed", "rows/s"),
  );
  add(
    "embedded one-event POST p50 / the floor's p50",
    "p50 <= 5 ms",
    cell(sections, "Acknowledging one event", "embedded", "p50 ms"),
    cell(sections, "Acknowledging one event", "floor", "p50 ms"),
    " ms",
  );
  for (const [label, name] of [
    ["DAU over 30 days", "DAU"],
    ["top events over 30 days", "top events"],
    ["retention, daily cohorts", "retention"],
  ] as const) {
    add(
      `${name} p50 at 100k events, over 30 days / the fixed cost (SELECT 1)`,
      "p50 <= 5 ms",
      cell(sections, "Stats latency on small data", label, "p50 ms"),
      cell(sections, "Stats latency on small data", "the floor", "p50 ms"),
      " ms",
    );
  }
  for (const [title, name] of [
    ["Memory of the embedded service", "embedded peak RSS"],
    ["Memory of an API-only process", "API-only peak RSS at 2,000 gRPC calls/s"],
  ] as const) {
    add(
      `${name} / the goal (MiB)`,
      "<= 1",
      cell(sections, title, "peak RSS", "figure"),
      cell(sections, title, "goal", "figure"),
    );
  }
  for (const [label, name] of [
    ["DAU over 365 days", "DAU"],
    ["top events over 90 days", "top events"],
    ["retention, the first 12 weekly cohorts", "retention"],
  ] as const) {
    add(
      `${name} p50, all the events / a tenth of them`,
      "< 2",
      cell(sections, "How the cost grows", label, "p50 ms, all"),
      cell(sections, "How the cost grows", label, "p50 ms, a tenth"),
      " ms",
    );
  }
  if (rows.length === 0) return [];
  return [
    {
      title: "Ratios (issue 24), each side measured in this run",
      columns: ["ratio", "measured", "against", "ratio", "goal"],
      rows,
      notes: [
        "Each side is a figure of a table above, from the same run: ratios hold from machine to machine where absolute figures do not.",
      ],
    },
  ];
}
