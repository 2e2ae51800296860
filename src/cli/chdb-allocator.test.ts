import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { TALLY_COMMAND } from "../../test/helpers.ts";
import { tempDir } from "../../test/temp-dirs.ts";

const root = join(import.meta.dirname, "../..");

/** A process that loads chDB, after tuning its allocator as the tally command does if `tuned`, and prints jemalloc's options. */
const probe = (tuned: boolean) => `
  ${tuned ? 'const { tuneChdbAllocator } = await import("./src/cli/chdb-allocator.js"); tuneChdbAllocator();' : ""}
  const { Session } = await import("chdb");
  const session = new Session(process.env.TALLY_DATA_DIR);
  process.stdout.write(session.query("SELECT * FROM system.jemalloc_stats", "TSVRaw"));
  session.cleanup();`;

/** chDB's jemalloc's dirty page decay (ms), in a process running `probe(tuned)` with `env`. */
function dirtyDecayMs(tuned: boolean, env: Record<string, string> = {}): number {
  const run = spawnSync(process.execPath, ["--input-type=module", "-e", probe(tuned)], {
    cwd: root,
    encoding: "utf8",
    env: { PATH: process.env.PATH ?? "", TALLY_DATA_DIR: tempDir("tally-allocator-"), ...env },
  });
  const found = /opt\.dirty_decay_ms: (\d+)/.exec(run.stdout);
  if (found === null) throw new Error(`no jemalloc options: ${run.stderr}`);
  return Number(found[1]);
}

// Written to stderr as the process exits: chDB's allocator options as the process left them.
const REPORT = `data:text/javascript,process.on("exit", () => process.stderr.write("conf=" + process.env.JE_MALLOC_CONF + "\\n"));`;

/** JE_MALLOC_CONF as `tally ARGS` leaves it for chDB, with `env` given. */
function confOfTally(args: string[], env: Record<string, string> = {}): string {
  const run = spawnSync(process.execPath, ["--import", REPORT, TALLY_COMMAND, ...args], {
    cwd: root,
    encoding: "utf8",
    env: { PATH: process.env.PATH ?? "", ...env },
  });
  const found = /conf=(.*)\n/.exec(run.stderr);
  if (found === null) throw new Error(`no report from tally ${args.join(" ")}: ${run.stderr}`);
  return found[1] as string;
}

describe("chDB's allocator", () => {
  it("keeps freed pages 5 s on its own, 1 s as the tally command tunes it", () => {
    expect(dirtyDecayMs(false)).toBe(5000);
    expect(dirtyDecayMs(true)).toBe(1000);
  });

  it("takes a user's own options over the tally command's", () => {
    expect(dirtyDecayMs(true, { JE_MALLOC_CONF: "dirty_decay_ms:3000" })).toBe(3000);
  });

  it("is tuned by the tally command before any command runs", () => {
    expect(confOfTally(["help"])).toBe("dirty_decay_ms:1000");
    expect(confOfTally(["help"], { JE_MALLOC_CONF: "dirty_decay_ms:3000" })).toBe(
      "dirty_decay_ms:1000,dirty_decay_ms:3000",
    );
    // A tally (or the bench) started by one that set them leaves them as they are.
    expect(
      confOfTally(["help"], { JE_MALLOC_CONF: "dirty_decay_ms:1000,dirty_decay_ms:3000" }),
    ).toBe("dirty_decay_ms:1000,dirty_decay_ms:3000");
  });
});
