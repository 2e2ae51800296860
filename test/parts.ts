import { Connection } from "rabbitmq-client";
import { afterEach } from "vitest";
import { createRedisDedupe } from "../src/dedupe/redis-dedupe.ts";
import { createRabbitQueue } from "../src/queue/rabbitmq-queue.ts";
import { createChdbWarehouse } from "../src/warehouse/chdb-warehouse.ts";
import { migrate } from "../src/warehouse/migrations.ts";
import { AMQP_URL, DATA_DIR, REDIS_URL, reportErrors, uniqueNamespace } from "./helpers.ts";

/** The consumer's parts on the real services (RabbitMQ, Redis, chDB, migrated), in a namespace of their own. */
export async function realParts(options: { prefetch?: number; namespace?: string } = {}) {
  const namespace = options.namespace ?? uniqueNamespace();
  const queue = createRabbitQueue({
    url: AMQP_URL,
    namespace,
    prefetch: options.prefetch ?? 16,
    onError: reportErrors,
  });
  const dedupe = createRedisDedupe({
    url: REDIS_URL,
    namespace,
    ttlSeconds: 600,
    onError: reportErrors,
  });
  const warehouse = createChdbWarehouse({ url: undefined, dataDir: DATA_DIR, database: namespace });
  await migrate(warehouse);
  return { namespace, queue, dedupe, warehouse };
}

/** `track(x)` returns x and closes it after the test, the newest first. */
export function closeAfterEach() {
  const open: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const o of open.splice(0).reverse()) await o.close();
  });
  return <T extends { close(): Promise<void> }>(o: T) => {
    open.push(o);
    return o;
  };
}

/** The batches in `<ns>.events.dead`, as "id: reason", taken off the queue. */
export async function takeDeadLetters(namespace: string): Promise<string[]> {
  const rabbit = new Connection(AMQP_URL);
  const ch = await rabbit.acquire();
  try {
    const out: string[] = [];
    for (;;) {
      const msg = await ch.basicGet({ queue: `${namespace}.events.dead`, noAck: true });
      if (msg === undefined) return out;
      out.push(`${msg.messageId}: ${String(msg.headers?.["x-tally-reason"])}`);
    }
  } finally {
    await ch.close();
    await rabbit.close();
  }
}
