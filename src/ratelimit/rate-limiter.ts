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

/** In-process buckets, for the embedded default (and as the reference for the Redis script). */
export function createMemoryRateLimiter(limits: RateLimits, now = Date.now): RateLimiter {
  const buckets = new Map<string, { tokens: number; at: number }>();
  return {
    kind: "in-process",
    async take(caller) {
      const t = now();
      const b = buckets.get(caller) ?? { tokens: limits.burst, at: t };
      b.tokens = Math.min(limits.burst, b.tokens + ((t - b.at) * limits.rps) / 1000);
      b.at = t;
      buckets.set(caller, b);
      if (buckets.size > 100_000) buckets.clear(); // bounded: forgetting only ever lets callers in
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
