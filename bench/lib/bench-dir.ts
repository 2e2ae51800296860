import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The run's own directory in the temporary directory, made at the first ask. */
let root: string | undefined;

/**
 * A new directory for one scenario's data (chDB's, a service's, a CSV),
 * under one directory for the scenario's process (bench/run.ts runs each
 * in its own), which is removed when the process exits: a default run
 * writes about 9 GB of chDB data, and before this it stayed behind in the
 * temporary directory, run after run.
 */
export function benchDir(prefix: string): string {
  if (root === undefined) {
    root = mkdtempSync(join(tmpdir(), "tally-bench-run-"));
    const dir = root;
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
    // Ctrl-C exits through the handler above instead of leaving the data behind.
    process.once("SIGINT", () => process.exit(130));
  }
  return mkdtempSync(join(root, prefix));
}
