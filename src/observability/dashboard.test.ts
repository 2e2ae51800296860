import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createMetrics } from "./metrics.ts";

const DASHBOARD = join(import.meta.dirname, "../../ops/grafana/dashboards/tally.json");

interface Panel {
  title: string;
  targets: { expr: string }[];
}

describe("the Grafana dashboard", () => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as {
    uid: string;
    title: string;
    panels: Panel[];
  };

  it("is a dashboard with the panels operators need", () => {
    expect(dashboard.uid).toBe("tally-overview");
    const titles = dashboard.panels.map((p) => p.title).join(" | ");
    for (const want of [
      "Ingest rate",
      "Errors by code",
      "p50 / p99",
      "Queue depth",
      "Consumer lag",
      "Dedupe rate",
      "Insert rate",
    ]) {
      expect(titles).toContain(want);
    }
  });

  it("refers only to metrics the service exports", async () => {
    const exported = new Set<string>();
    for (const m of await createMetrics().registry.getMetricsAsJSON()) {
      exported.add(m.name);
      if (String(m.type) === "histogram")
        for (const s of ["_bucket", "_sum", "_count"]) exported.add(m.name + s);
    }
    const used = dashboard.panels.flatMap((p) =>
      p.targets.flatMap((t) => t.expr.match(/\b(tally|process|nodejs)_[a-z0-9_]+\b/g) ?? []),
    );
    expect(used.length).toBeGreaterThan(10);
    expect(used.filter((name) => !exported.has(name))).toEqual([]);
  });
});
