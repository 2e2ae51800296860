/** What the tally command gives chDB's jemalloc before a user's own options. */
export declare const CHDB_ALLOCATOR_OPTIONS: string;
/** Sets chDB's allocator options in `env` (the process's own by default), ahead of any there. */
export declare function tuneChdbAllocator(env?: NodeJS.ProcessEnv): void;
