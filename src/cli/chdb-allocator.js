// chDB's engine allocates through a jemalloc of its own, which ClickHouse
// builds to keep freed pages for up to 5 s (dirty_decay_ms:5000) before
// giving them back. Under a steady intake that is the swing of chDB's
// inserts and merges held in RSS. The embedded service's peak after 3M
// events, in five alternating runs of the bench's memory scenario each:
// 463-524 MiB (median 502) with 5 s, 460-475 (median 471) with 1 s, at the
// same CPU per event within the machine's noise (medians 35.8 and 33.2 µs);
// 2 s gave 478-493, and 0 nearly doubled the CPU per event. jemalloc
// reads its options once, as chDB's library loads, from JE_MALLOC_CONF:
// the tally command sets them before any module loads. Options a user
// gives come after ours, so theirs win.

/** What the tally command gives chDB's jemalloc before a user's own options. */
const CHDB_ALLOCATOR_OPTIONS = "dirty_decay_ms:1000";

/** Sets chDB's allocator options in `env`, ahead of any there. */
export function tuneChdbAllocator(env = process.env) {
  const given = env.JE_MALLOC_CONF;
  if (given?.startsWith(CHDB_ALLOCATOR_OPTIONS)) return; // a parent tally set them
  env.JE_MALLOC_CONF = given ? `${CHDB_ALLOCATOR_OPTIONS},${given}` : CHDB_ALLOCATOR_OPTIONS;
}
