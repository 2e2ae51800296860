import type { Logger } from "pino";
import type { Metrics } from "./metrics.ts";

/** Told of each error a dependency's client meets; never throws. */
export type ErrorReporter = (err: unknown, context?: string) => void;

/** Options of {@link createErrorReporters}. */
export interface ErrorReportersOptions {
  log: Logger;
  metrics: Pick<Metrics, "dependencyErrors">;
  /** After a logged error, further ones of that dependency are only counted for this long. @default 60000 */
  quietMs?: number;
  /** The clock, for tests. @default Date.now */
  now?: () => number;
}

/**
 * A reporter per dependency: every error is counted in
 * `tally_dependency_errors_total{dependency}`, and logged (warn) when it is
 * the first in `quietMs`, with how many were only counted since the last
 * line, so an outage writes a line a minute, not one per request.
 */
export function createErrorReporters(options: ErrorReportersOptions) {
  const { log, metrics, quietMs = 60_000, now = Date.now } = options;
  const reporters = new Map<string, ErrorReporter>();
  return (dependency: string): ErrorReporter => {
    const known = reporters.get(dependency);
    if (known !== undefined) return known;
    let loggedAt = Number.NEGATIVE_INFINITY;
    let unlogged = 0;
    const counter = metrics.dependencyErrors.labels(dependency);
    const report: ErrorReporter = (err, context) => {
      counter.inc();
      const t = now();
      if (t - loggedAt < quietMs) {
        unlogged++;
        return;
      }
      log.warn(
        { err, dependency, ...(unlogged > 0 ? { unloggedSince: unlogged } : {}) },
        `${dependency}: ${context ?? "client error"}${unlogged > 0 ? ` (and ${unlogged} more errors since the last report)` : ""}`,
      );
      loggedAt = t;
      unlogged = 0;
    };
    reporters.set(dependency, report);
    return report;
  };
}
