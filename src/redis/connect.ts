import { Cluster, Redis, type RedisOptions } from "ioredis";

/** A client of one Redis, or of a Redis Cluster. */
export type RedisClient = Redis | Cluster;

/**
 * Connects to `url`: one `redis://host:port` URL is one Redis; several,
 * comma-separated, are the seed nodes of a Redis Cluster (CONTRACT.md).
 * Either way, commands fail fast while Redis is away (the callers decide
 * what to do). Commands sent together go out back to back on each node's
 * connection: a round trip per node, not per command.
 */
export function connectRedis(url: string, options: RedisOptions = {}): RedisClient {
  const common: RedisOptions = {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    connectTimeout: 2000,
    ...options,
  };
  const urls = url
    .split(",")
    .map((u) => u.trim())
    .filter((u) => u !== "");
  if (urls.length === 1) return new Redis(urls[0] as string, common);
  const nodes = urls.map((u) => {
    const parsed = new URL(u);
    return { host: parsed.hostname, port: Number(parsed.port || 6379) };
  });
  const first = new URL(urls[0] as string);
  return new Cluster(nodes, {
    // Commands wait for the slots to be known; a failover refreshes them.
    enableOfflineQueue: true,
    retryDelayOnFailover: 200,
    redisOptions: {
      ...common,
      ...(first.username ? { username: decodeURIComponent(first.username) } : {}),
      ...(first.password ? { password: decodeURIComponent(first.password) } : {}),
    },
  });
}

/** Whether `redis` is a cluster: its keys must share a slot within one script call. */
export function isCluster(redis: RedisClient): redis is Cluster {
  return redis instanceof Cluster;
}
