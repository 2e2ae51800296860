import type { ErrorReporter } from "../observability/dependency-errors.ts";
import { connectRedis, type RedisClient } from "../redis/connect.ts";
import type { RateLimiter, RateLimits } from "./rate-limiter.ts";

/** One round trip: refill by elapsed time, take a token, or answer the wait in ms. */
const TAKE = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) * 1000 / rate) end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return wait
`;

/** Options of {@link createRedisRateLimiter}. */
export interface RedisRateLimiterOptions extends RateLimits {
  url: string;
  /** Prefix of every key: `<ns>:rate:<caller>`. */
  namespace: string;
  /** Told of the client's errors (it reconnects by itself; takes fail fast meanwhile). */
  onError: ErrorReporter;
}

/** Buckets shared by every API process, in Redis. */
export function createRedisRateLimiter(options: RedisRateLimiterOptions): RateLimiter {
  // One key a call: on a cluster, it goes to the node holding it.
  const redis = connectRedis(options.url);
  redis.on("error", (err) => options.onError(err, "client"));
  redis.defineCommand("takeToken", { numberOfKeys: 1, lua: TAKE });
  const take = redis as RedisClient & {
    takeToken(key: string, ...args: string[]): Promise<number>;
  };
  return {
    kind: "redis",
    async take(caller) {
      return take.takeToken(
        `${options.namespace}:rate:${caller}`,
        String(options.rps),
        String(options.burst),
        String(Date.now()),
      );
    },
    async close() {
      redis.disconnect();
    },
  };
}
