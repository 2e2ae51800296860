/** One section of the results: a table and what it means. */
export interface Section {
  title: string;
  columns: string[];
  rows: (string | number)[][];
  notes?: string[];
}

const cell = (v: string | number) =>
  typeof v === "number"
    ? Number.isInteger(v)
      ? v.toLocaleString("en-US")
      : v.toFixed(v < 10 ? 2 : 1)
    : v;

/** A section as aligned text for the terminal. */
export function textTable(s: Section): string {
  const cells = [s.columns, ...s.rows.map((r) => r.map(cell))];
  const widths = s.columns.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? "").length)));
  const lines = cells.map((r) => r.map((c, i) => String(c).padStart(widths[i] ?? 0)).join("  "));
  return [`\n${s.title}`, ...lines, ...(s.notes ?? []).map((n) => `  ${n}`)].join("\n");
}

/** A section as Markdown, its columns padded as the formatter (biome) pads them. */
export function markdownTable(s: Section): string {
  // Trimmed, as the formatter trims them.
  const cells = [s.columns, ...s.rows.map((r) => r.map((v) => String(cell(v)).trim()))];
  const widths = s.columns.map((_, i) =>
    Math.max(3, ...cells.map((r) => String(r[i] ?? "").length)),
  );
  const row = (r: (string | number)[]) =>
    `| ${r.map((c, i) => String(c).padEnd(widths[i] ?? 0)).join(" | ")} |`;
  return [
    `## ${s.title}`,
    "",
    row(s.columns),
    row(widths.map((w) => "-".repeat(w))),
    ...cells.slice(1).map(row),
    ...(s.notes?.length ? ["", ...s.notes] : []),
    "",
  ].join("\n");
}
