import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { freePort, spawnTally, TALLY_COMMAND, untilReady } from "../../test/helpers.ts";
import { tempDir } from "../../test/temp-dirs.ts";

const root = join(import.meta.dirname, "../..");

// Written to stderr as the process exits: whether Node loaded its TypeScript stripper.
const REPORT = `data:text/javascript,process.on("exit", () => process.stderr.write("stripper=" + process.moduleLoadList.some((m) => m.includes("amaro"))));`;

/** An empty compile cache and data directory of their own. */
const freshEnv = () => ({
  NODE_COMPILE_CACHE: tempDir("tally-compile-cache-"),
  TALLY_DATA_DIR: tempDir("tally-compile-cache-data-"),
});

/** Whether `tally ARGS` loaded Node's TypeScript stripper (17 MiB of RSS). */
function stripsTypes(args: string[], env: Record<string, string>): boolean {
  const run = spawnSync(process.execPath, ["--import", REPORT, TALLY_COMMAND, ...args], {
    cwd: root,
    encoding: "utf8",
    env: { PATH: process.env.PATH ?? "", ...env },
  });
  const found = /stripper=(true|false)/.exec(run.stderr);
  if (found === null) throw new Error(`no report from tally ${args.join(" ")}: ${run.stderr}`);
  return found[1] === "true";
}

describe("the tally command's compile cache", () => {
  it("strips TypeScript on the first run only", () => {
    const env = freshEnv();
    expect(stripsTypes(["help"], env)).toBe(true);
    expect(stripsTypes(["help"], env)).toBe(false);
  });

  it("holds what the service loaded even when the service is killed", async () => {
    const env = freshEnv();
    const port = await freePort();
    const service = spawnTally(["serve"], { ...env, PORT: String(port), HOST: "127.0.0.1" });
    try {
      await untilReady(port, 60_000);
    } finally {
      service.child.kill("SIGKILL");
      await service.exit;
    }
    // serve --help loads every module the service's start does, chDB's warehouse aside.
    expect(stripsTypes(["serve", "--help"], env)).toBe(false);
  });
});
