import type { DedupeStore } from "./dedupe-store.ts";

/**
 * The in-process dedupe store of the embedded default. It forgets on restart;
 * the warehouse's ReplacingMergeTree then still collapses repeats, so stats
 * stay exact, only with more rows stored.
 */
export function createMemoryDedupe(ttlSeconds: number, now = Date.now): DedupeStore {
  const owners = new Map<string, { owner: string; expiresAt: number }>();
  let nextSweep = now() + 60_000;
  return {
    kind: "in-process",
    durable: false,
    async claim(ids, batchOwners) {
      const t = now();
      if (t >= nextSweep) {
        for (const [id, entry] of owners) if (entry.expiresAt <= t) owners.delete(id);
        nextSweep = t + 60_000;
      }
      return ids.map((id, i) => {
        const owner = batchOwners[i] as string;
        const entry = owners.get(id);
        if (entry === undefined || entry.expiresAt <= t) {
          owners.set(id, { owner, expiresAt: t + ttlSeconds * 1000 });
          return true;
        }
        return entry.owner === owner;
      });
    },
    async check() {},
    async close() {
      owners.clear();
    },
  };
}
