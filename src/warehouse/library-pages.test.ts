import { describe, expect, it } from "vitest";
import { parseSmaps, releasable } from "./library-pages.ts";

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
    const chosen = releasable(parseSmaps(SMAPS), /\/libchdb\.so$/);
    // Not the relocated read-only part (its pages were written before they
    // were sealed: DONTNEED would bring back the file's unrelocated ones),
    // not the writable data, not another library, not anonymous memory.
    expect(chosen.map((m) => m.perms)).toEqual(["r--p", "r-xp"]);
    expect(chosen.map((m) => m.start)).toEqual([0x7ff5e5400000, 0x7ff5ee56e000]);
  });
});
