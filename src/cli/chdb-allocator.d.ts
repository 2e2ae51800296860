/** Sets chDB's allocator options in `env` (the process's own by default), ahead of any there. */
export declare function tuneChdbAllocator(env?: NodeJS.ProcessEnv): void;
