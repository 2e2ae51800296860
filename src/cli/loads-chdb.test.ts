import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tempDir } from "../../test/temp-dirs.ts";

const root = join(import.meta.dirname, "../..");

// Written to stderr as the process exits: whether chDB's library was loaded.
const REPORT = `data:text/javascript,import { readFileSync } from "node:fs";
process.on("exit", () => process.stderr.write("chdb=" + readFileSync("/proc/self/maps", "utf8").includes("libchdb")));`;

/** Whether a Node.js process running `args` loaded chDB's library (150 MiB of RSS). */
function loadsChdb(args: string[]): boolean {
  const run = spawnSync(process.execPath, ["--import", REPORT, ...args], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, TALLY_DATA_DIR: tempDir("tally-loads-chdb-") },
  });
  const found = /chdb=(true|false)/.exec(run.stderr);
  if (found === null) throw new Error(`no report from ${args.join(" ")}: ${run.stderr}`);
  return found[1] === "true";
}

const opening = (url: string | undefined) => `
  import { createWarehouse } from "./src/warehouse/warehouse.ts";
  const warehouse = await createWarehouse({ url: ${JSON.stringify(url)}, dataDir: process.env.TALLY_DATA_DIR, database: "loads_chdb" });
  await warehouse.close();`;

describe("chDB's library is loaded only where chDB is used", () => {
  it("by the embedded warehouse", () => {
    expect(loadsChdb(["--input-type=module", "-e", opening(undefined)])).toBe(true);
  });

  it("not by a warehouse on a ClickHouse server", () => {
    expect(loadsChdb(["--input-type=module", "-e", opening("http://127.0.0.1:1")])).toBe(false);
  });

  it.each(["help", "gen --rows 1", "import --help", "serve --help"])(
    "not by tally %s",
    (command) => {
      expect(loadsChdb(["src/cli/tally.js", ...command.split(" ")])).toBe(false);
    },
  );
});
