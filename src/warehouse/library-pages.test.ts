import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CHDB_LIBRARY, parseSmaps, releasable } from "./library-pages.ts";

// A library's four mappings as the kernel lists them, then another library's
// and anonymous memory, cut to the fields read.
const SMAPS = `7ff5e5400000-7ff5ee56e000 r--p 00000000 fe:00 5311518                    /opt/lib/libchdb.so
Size:             149944 kB
Rss:               49596 kB
Anonymous:             0 kB
7ff5ee56e000-7ff606348000 r-xp 0916d000 fe:00 5311518                    /opt/lib/libchdb.so
Rss:              135552 kB
Anonymous:             0 kB
7ff606348000-7ff606fc4000 r--p 20f46000 fe:00 5311518                    /opt/lib/libchdb.so
Rss:               12768 kB
Anonymous:         12764 kB
7ff606fc4000-7ff60701b000 rw-p 21bc1000 fe:00 5311518                    /opt/lib/libchdb.so
Rss:                 344 kB
Anonymous:           336 kB
7ff607000000-7ff607100000 r-xp 00000000 fe:00 5311519                    /opt/lib/libother.so
Rss:                1024 kB
Anonymous:             0 kB
7ff608000000-7ff608100000 rw-p 00000000 00:00 0 
Rss:                1024 kB
Anonymous:          1024 kB
`;

describe("library pages", () => {
  it("reads each mapping's range, permissions, file and resident sizes", () => {
    const mappings = parseSmaps(SMAPS);
    expect(mappings).toHaveLength(6);
    expect(mappings[1]).toEqual({
      start: 0x7ff5ee56e000,
      end: 0x7ff606348000,
      perms: "r-xp",
      path: "/opt/lib/libchdb.so",
      rssKiB: 135552,
      anonymousKiB: 0,
    });
    expect(mappings[5]).toMatchObject({ path: "", rssKiB: 1024, anonymousKiB: 1024 });
  });

  it("releases only the library's read-only mappings that hold no page of the process's own", () => {
    const chosen = releasable(parseSmaps(SMAPS), CHDB_LIBRARY);
    // Not the relocated read-only part (its pages were written before they
    // were sealed: DONTNEED would bring back the file's unrelocated ones),
    // not the writable data, not another library, not anonymous memory.
    expect(chosen.map((m) => m.perms)).toEqual(["r--p", "r-xp"]);
    expect(chosen.map((m) => m.start)).toEqual([0x7ff5e5400000, 0x7ff5ee56e000]);
  });
});

/**
 * A Node.js process that loads the service's modules, gives back its
 * binary's start-time pages, then runs on: what it gave back, the binary's
 * releasable pages before and after, and an answer computed after (from
 * code and data mapped back on their next touch).
 */
const RELEASE_NODE = `
  import { nodeBinary, parseSmaps, readSmaps, releasable, releaseLibraryPages } from "./src/warehouse/library-pages.ts";
  await import("./src/app/tally.ts");
  const binary = nodeBinary();
  const releasableKiB = () => releasable(parseSmaps(readSmaps() ?? ""), binary).reduce((k, m) => k + m.rssKiB, 0);
  const before = releasableKiB();
  const released = await releaseLibraryPages(binary);
  const after = releasableKiB();
  const answer = new Intl.NumberFormat("uk-UA").format(1234.5) + " " + JSON.stringify(structuredClone({ a: [1, 2] }));
  console.log(JSON.stringify({ before, released, after, answer }));`;

describe("Node's own start-time pages", () => {
  it("are given back, and the process runs on from pages mapped back", () => {
    const run = spawnSync(process.execPath, ["--input-type=module", "-e", RELEASE_NODE], {
      cwd: join(import.meta.dirname, "../.."),
      encoding: "utf8",
    });
    expect(run.status, run.stderr).toBe(0);
    const { before, released, after, answer } = JSON.parse(run.stdout) as {
      before: number;
      released: number;
      after: number;
      answer: string;
    };
    // Starting Node and loading the service touched tens of MiB of its binary.
    expect(before).toBeGreaterThan(16 << 10);
    expect(released).toBeGreaterThan(before * 1024 * 0.9);
    expect(after).toBeLessThan(before / 2);
    expect(answer).toBe(`${new Intl.NumberFormat("uk-UA").format(1234.5)} {"a":[1,2]}`);
  });
});
