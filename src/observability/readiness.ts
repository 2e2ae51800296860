/** Something the service depends on, checked for readiness. */
export interface Dependency {
  /** Named in reports: "rabbitmq", "redis", "clickhouse". */
  readonly name: string;
  /** Throws when the dependency cannot serve. */
  check(): Promise<void>;
}

/** The outcome of checking every dependency. */
export interface Readiness {
  ready: boolean;
  checks: Record<string, string>;
  /** Names of the dependencies that did not answer. */
  failing: string[];
}

/** Checks all dependencies at once, each within `timeoutMs`. */
export async function checkReadiness(
  deps: readonly Dependency[],
  timeoutMs = 2000,
): Promise<Readiness> {
  const results = await Promise.all(
    deps.map(async (d) => {
      try {
        await Promise.race([
          d.check(),
          new Promise((_, reject) =>
            setTimeout(() => reject(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs).unref(),
          ),
        ]);
        return [d.name, "ok"] as const;
      } catch (err) {
        return [d.name, err instanceof Error ? err.message : String(err)] as const;
      }
    }),
  );
  const failing = results.filter(([, r]) => r !== "ok").map(([n]) => n);
  return { ready: failing.length === 0, checks: Object.fromEntries(results), failing };
}

/** The answer of /readyz: 200, or 503 naming what does not answer. */
export async function readinessResponse(deps: readonly Dependency[]) {
  const r = await checkReadiness(deps);
  return r.ready
    ? { status: 200, body: { status: "ok", checks: r.checks } }
    : {
        status: 503,
        body: {
          status: "unavailable",
          message: `not ready: ${r.failing.join(", ")} unavailable`,
          checks: r.checks,
        },
      };
}
