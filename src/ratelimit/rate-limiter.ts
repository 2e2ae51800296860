/** Token buckets, one per caller: `rps` tokens a second, at most `burst` saved up. */
export interface RateLimiter {
  readonly kind: string;
  /** Takes a token for `caller`: 0 when allowed, else how many ms until one is free. */
  take(caller: string): Promise<number>;
  close(): Promise<void>;
}

/** The rates of {@link RateLimiter}s. */
export interface RateLimits {
  rps: number;
  burst: number;
}

/**
 * In-process buckets, for the embedded default (and as the reference for the
 * Redis script). At most `maxCallers` are kept, the least recently seen
 * forgotten first: a forgotten caller comes back with a full bucket, so
 * forgetting only ever lets a caller in, and an idle one would have refilled
 * by then anyway.
 */
export function createMemoryRateLimiter(
  limits: RateLimits,
  options: { maxCallers?: number; now?: () => number } = {},
): RateLimiter & { readonly size: number } {
  const { maxCallers = 100_000, now = Date.now } = options;
  // Insertion order is recency order: a caller is moved to the end on each take.
  const buckets = new Map<string, { tokens: number; at: number }>();
  return {
    kind: "in-process",
    get size() {
      return buckets.size;
    },
    async take(caller) {
      const t = now();
      const b = buckets.get(caller) ?? { tokens: limits.burst, at: t };
      b.tokens = Math.min(limits.burst, b.tokens + ((t - b.at) * limits.rps) / 1000);
      b.at = t;
      buckets.delete(caller);
      buckets.set(caller, b);
      if (buckets.size > maxCallers) buckets.delete(buckets.keys().next().value as string);
      if (b.tokens >= 1) {
        b.tokens -= 1;
        return 0;
      }
      return Math.ceil(((1 - b.tokens) * 1000) / limits.rps);
    },
    async close() {
      buckets.clear();
    },
  };
}
