import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "../..");
const read = (file: string) => readFileSync(join(root, file), "utf8");
const flagsIn = (command: string) => command.split(/[\s",[\]]+/).filter((w) => w.startsWith("--"));

/**
 * The service's Node.js flags (its heap's size and growth) are given where
 * it starts, since V8 ignores them once running: `npm start`, the `tally`
 * command's shebang and the Docker image. The three must agree.
 */
describe("the service's Node.js flags", () => {
  const start = (JSON.parse(read("package.json")) as { scripts: { start: string } }).scripts.start;
  const flags = flagsIn(start);

  it("are the same in npm start, the tally command and the Docker image", () => {
    expect(flags).toContain("--heap-growing-percent=50");
    expect(flags).toContain("--no-compact");
    expect(flagsIn(read("src/cli/tally.js").split("\n")[0] as string)).toEqual(flags);
    const entrypoint = read("Dockerfile")
      .split("\n")
      .find((line) => line.startsWith("ENTRYPOINT"));
    expect(flagsIn(entrypoint as string)).toEqual(flags);
  });

  it("are flags this Node.js accepts", () => {
    const run = spawnSync(process.execPath, [...flags, "-e", "0"], { encoding: "utf8" });
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
  });
});
