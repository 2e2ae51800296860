#!/usr/bin/env -S node --max-semi-space-size=8 --heap-growing-percent=50 --no-compact
// The tally command. It is JavaScript, not TypeScript, so that Node's
// compile cache is on before any TypeScript loads: from the second run on,
// every module comes from the cache already stripped of its types, and Node
// never loads its TypeScript stripper (about 17 MiB of RSS, a tenth of an
// API process). The cache is NODE_COMPILE_CACHE, or node-compile-cache in
// the temporary directory; where it cannot be written, nothing changes.
import { enableCompileCache } from "node:module";
import { tuneChdbAllocator } from "./chdb-allocator.js";

enableCompileCache();
tuneChdbAllocator();
await import("./main.ts");
