import { execFileSync } from "node:child_process";
import { Redis } from "ioredis";
import { Connection } from "rabbitmq-client";

/**
 * Removes the queues, exchanges and Redis keys of namespaces matching
 * `prefix` (tests' `t_…`, benches' `bench_…`), so runs leave the shared
 * broker and Redis as they found them.
 */
export async function dropNamespaces(pattern: RegExp, amqpUrl: string, redisUrl: string) {
  const list = (what: string) => {
    try {
      return execFileSync("rabbitmqctl", [what, "name", "-q", "--no-table-headers"], {
        encoding: "utf8",
      })
        .split("\n")
        .map((l) => l.trim())
        .filter((name) => pattern.test(name));
    } catch {
      return []; // no rabbitmqctl here: nothing to list
    }
  };
  const rabbit = new Connection({ url: amqpUrl, retryLow: 100, retryHigh: 200 });
  try {
    for (const queue of list("list_queues")) await rabbit.queueDelete({ queue });
    for (const exchange of list("list_exchanges")) await rabbit.exchangeDelete({ exchange });
  } finally {
    await rabbit.close();
  }
  const redis = new Redis(redisUrl);
  try {
    // Claims (`…:claims:…`, and `…:seen:…` of the old layout), whole batches'
    // marks (`…:whole:…`) and what the old layout's search found.
    for (const match of ["*:claims:*", "*:seen:*", "*:whole:*", "*:seen-keys-until"]) {
      let cursor = "0";
      do {
        const [next, keys] = await redis.scan(cursor, "MATCH", match, "COUNT", 10_000);
        cursor = next;
        const mine = keys.filter((k) => pattern.test(k));
        if (mine.length > 0) await redis.del(...mine);
      } while (cursor !== "0");
    }
  } finally {
    redis.disconnect();
  }
}
