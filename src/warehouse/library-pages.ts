import { readFileSync, realpathSync } from "node:fs";

/**
 * Gives the kernel back the pages of a native library (or of Node's own
 * binary: {@link nodeBinary}) that stay mapped after their one use at
 * start, and answers how many bytes were resident.
 *
 * chDB's library is 566 MB. Starting its engine (registering every
 * function, format and table engine) touches about 185 MiB of its code
 * and constants, which then stay in the process's RSS, though most are
 * never run again. madvise(MADV_DONTNEED) unmaps them: they stay in the
 * page cache, and a page the engine runs again is mapped back on its next
 * touch (a minor fault, no I/O, while the page cache holds it). Measured,
 * the embedded service's RSS idle went from 322 to 196 MiB, and its peak
 * after 3M events from 598-618 to 488-501 MiB, at the same events/s.
 *
 * Only mappings that cannot be written and hold no page of their own are
 * released: in a private file mapping, DONTNEED drops a page the process
 * changed (a relocated one, say), but an unchanged page reads back from
 * the file as it was. Linux only; elsewhere, or without libc, it does
 * nothing.
 */
export async function releaseLibraryPages(library: FileMatch): Promise<number> {
  const advise = await libcMadvise();
  const smaps = readSmaps();
  if (advise === undefined || smaps === undefined) return 0;
  let released = 0;
  for (const mapping of releasable(parseSmaps(smaps), library)) {
    if (advise(mapping.start, mapping.end - mapping.start, MADV_DONTNEED) === 0)
      released += mapping.rssKiB * 1024;
  }
  return released;
}

/** The library's mappings that DONTNEED leaves as they were: read-only, with no page of the process's own. */
export function releasable(mappings: readonly Mapping[], library: FileMatch): Mapping[] {
  return mappings.filter(
    (m) => library(m.path) && !m.perms.includes("w") && m.anonymousKiB === 0 && m.rssKiB > 0,
  );
}

const MADV_DONTNEED = 4;

/** Which file's mappings to release, by the path the mappings name. */
export type FileMatch = (path: string) => boolean;

/** chDB's library, as its mappings name it. */
export const CHDB_LIBRARY: FileMatch = (path) => path.endsWith("/libchdb.so");

/**
 * The Node.js binary running this process, as its mappings name it. Node
 * carries V8's snapshot, its built-in modules and ICU's data in its
 * binary: starting it and loading the service touched about 50 MiB of it.
 * Released once the service has started, an API-only process under 2,000
 * calls/s mapped 25-30 MiB of it back, and peaked at 115-116 MiB against
 * 134-135; the embedded service after 3M events at 464-480 against
 * 516-517 (two alternating runs each).
 */
export function nodeBinary(): FileMatch {
  const binary = realpathSync(process.execPath);
  return (path) => path === binary;
}

export interface Mapping {
  start: number;
  end: number;
  perms: string;
  path: string;
  rssKiB: number;
  anonymousKiB: number;
}

/** The mappings of /proc/<pid>/smaps, with their resident and private (anonymous) sizes. */
export function parseSmaps(text: string): Mapping[] {
  const mappings: Mapping[] = [];
  let current: Mapping | undefined;
  for (const line of text.split("\n")) {
    const header = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header !== null) {
      current = {
        start: Number.parseInt(header[1] ?? "", 16),
        end: Number.parseInt(header[2] ?? "", 16),
        perms: header[3] ?? "",
        path: header[4] ?? "",
        rssKiB: 0,
        anonymousKiB: 0,
      };
      mappings.push(current);
      continue;
    }
    const field = /^(Rss|Anonymous):\s+(\d+) kB/.exec(line);
    if (field !== null && current !== undefined) {
      const kib = Number(field[2]);
      if (field[1] === "Rss") current.rssKiB = kib;
      else current.anonymousKiB = kib;
    }
  }
  return mappings;
}

/** This process's /proc/self/smaps, where there is one. */
export function readSmaps(): string | undefined {
  try {
    return readFileSync("/proc/self/smaps", "utf8");
  } catch {
    return undefined;
  }
}

type Madvise = (addr: number, length: number, advice: number) => number;
let madvise: Promise<Madvise | undefined> | undefined;

/** libc's madvise through koffi (a foreign-function library), loaded once. */
function libcMadvise(): Promise<Madvise | undefined> {
  madvise ??= loadMadvise();
  return madvise;
}

async function loadMadvise(): Promise<Madvise | undefined> {
  if (process.platform !== "linux") return undefined;
  try {
    const { default: koffi } = await import("koffi");
    const libc = koffi.load("libc.so.6");
    return libc.func("int madvise(uintptr_t addr, size_t length, int advice)") as Madvise;
  } catch {
    return undefined; // not glibc, or koffi has no build for this machine
  }
}
