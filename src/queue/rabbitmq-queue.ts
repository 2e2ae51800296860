import type { Socket } from "node:net";
import { Connection, ConsumerStatus, type Envelope } from "rabbitmq-client";
import type { ErrorReporter } from "../observability/dependency-errors.ts";
import { amqpOptions } from "./amqp-url.ts";
import { BATCH_CONTENT_TYPE, type EventBatch } from "./event-batch.ts";
import { type BatchHandler, type EventQueue, outcome, QueueUnavailableError } from "./queue.ts";

/** Options of {@link createRabbitQueue}. */
export interface RabbitQueueOptions {
  /** e.g. "amqp://guest:guest@127.0.0.1:5672" */
  url: string;
  /** Prefix of the queue and exchange names. */
  namespace: string;
  /** Unacknowledged messages held by the consumer. */
  prefetch: number;
  /** How long a publish may wait for a connection before it fails. @default 3000 */
  publishTimeoutMs?: number;
  /** Deliveries of one message before it is dead-lettered (crash loops). @default 20 */
  deliveryLimit?: number;
  /** Told of connection and consumer errors (the client reconnects by itself). */
  onError: ErrorReporter;
}

/** Sends of one message the broker may nack before its publish fails. */
const NACK_ATTEMPTS = 4;

/**
 * Batches on a durable quorum queue `<ns>.events`, published with confirms.
 * Messages the consumer rejects, or that were delivered `deliveryLimit`
 * times, go to `<ns>.events.dead`.
 */
export function createRabbitQueue(options: RabbitQueueOptions): EventQueue {
  const queue = `${options.namespace}.events`;
  const deadExchange = `${options.namespace}.dead-letter`;
  const deadQueue = `${options.namespace}.events.dead`;
  // Publishing and consuming each have a connection, as RabbitMQ advises:
  // a broker that closes one (flow control, or a hard error while a consumer
  // subscribes) leaves the other's work in flight alone.
  const connect = (name: string) => {
    const connection = new Connection({
      ...amqpOptions(options.url),
      connectionName: name,
      acquireTimeout: options.publishTimeoutMs ?? 3000,
      retryHigh: 5000,
      // Nagle's algorithm held small frames (a publish, an ack) back until
      // the broker's delayed ACK (~40 ms): unary Ingest waited 40 ms at its
      // p99 even at 100 calls/s.
      noDelay: true,
    });
    // The client reconnects by itself; check() answers readiness meanwhile.
    connection.on("error", (err) => options.onError(err, `connection ${name}`));
    return connection;
  };
  const rabbit = connect(`tally-${options.namespace}`);
  let consuming: Connection | undefined;
  const queueOptions = {
    queue,
    durable: true,
    arguments: {
      "x-queue-type": "quorum" as const,
      "x-dead-letter-exchange": deadExchange,
      "x-delivery-limit": options.deliveryLimit ?? 20,
    },
  };
  const publisher = rabbit.createPublisher({
    confirm: true,
    maxAttempts: 1,
    queues: [queueOptions],
  });
  /**
   * The dead-letter queue, replicated like the events queue: a classic one
   * lives on one node, and while that node was down every declare of it
   * failed, so (declared with the publisher) no batch could be published
   * at all. Declared by the consumer, before it consumes: only redeliveries
   * are dead-lettered. A classic one made by an earlier version stays in
   * use (its type cannot change in place); one that cannot be declared
   * now is reported, and does not stop consuming.
   */
  const declareDeadLetters = async (connection: Connection) => {
    await connection.exchangeDeclare({ exchange: deadExchange, type: "fanout", durable: true });
    try {
      await connection.queueDeclare({
        queue: deadQueue,
        durable: true,
        arguments: { "x-queue-type": "quorum" },
      });
    } catch (err) {
      if ((err as { code?: string }).code !== "PRECONDITION_FAILED") {
        options.onError(err, `declaring ${deadQueue}`);
        return;
      }
    }
    await connection.queueBind({ exchange: deadExchange, queue: deadQueue });
  };
  // The broker confirms a message it routed to no queue (the queue deleted
  // under us): only a mandatory message's return, which comes before the
  // confirm, says so. Such a publish fails rather than be acknowledged. The
  // client emits returns on setImmediate, so one turn of the loop after the
  // confirm has seen it.
  const returned = new Map<string, string>();
  publisher.on("basic.return", (msg) => {
    if (msg.messageId !== undefined)
      returned.set(msg.messageId, `${msg.replyCode} ${msg.replyText}`);
  });
  const send = async (envelope: Envelope & { messageId: string }, body: Buffer) => {
    // A new quorum queue declared by two connections at once (the publisher
    // and the consumer, at start) nacks what reaches it meanwhile: 7 first
    // publishes in 40 here, none with one declare. A nack means the broker
    // did not take the message, so it is sent again, a few times.
    for (let attempt = 1; ; attempt++) {
      try {
        await publisher.send({ ...envelope, mandatory: true }, body);
        break;
      } catch (err) {
        if ((err as { code?: string }).code !== "NACK" || attempt >= NACK_ATTEMPTS) throw err;
        await new Promise((r) => setTimeout(r, 50 * attempt));
      }
    }
    await new Promise(setImmediate);
    const reason = returned.get(envelope.messageId);
    if (reason !== undefined) {
      returned.delete(envelope.messageId);
      throw new Error(`no queue took it (${reason})`);
    }
  };
  // Declaring (not a passive check) is idempotent and answers the depth
  // too: a probe that runs before the publisher's first declare, right
  // after start, finds the queue instead of refusing every publish, and a
  // queue deleted under us comes back.
  const declare = () => rabbit.queueDeclare(queueOptions);
  let consumer: ReturnType<Connection["createConsumer"]> | undefined;

  return {
    kind: "rabbitmq",
    async publish(batch: EventBatch) {
      try {
        await send(
          {
            routingKey: queue,
            durable: true,
            messageId: batch.id,
            contentType: BATCH_CONTENT_TYPE,
            timestamp: Math.floor(Date.now() / 1000),
            headers: {
              rows: batch.rows,
              "accepted-at": batch.acceptedAt,
              "request-ids": headerIds(batch.requestIds),
            },
          },
          batch.body,
        );
      } catch (cause) {
        throw new QueueUnavailableError(`RabbitMQ did not confirm the batch: ${messageOf(cause)}`, {
          cause,
        });
      }
    },
    async consume(handler: BatchHandler) {
      consuming = connect(`tally-${options.namespace}-consumer`);
      await declareDeadLetters(consuming);
      consumer = consuming.createConsumer(
        {
          queue,
          queueOptions,
          qos: { prefetchCount: options.prefetch },
          concurrency: options.prefetch,
        },
        async (msg) => {
          const body = Buffer.isBuffer(msg.body) ? msg.body : Buffer.from(String(msg.body ?? ""));
          const requestIds = String(msg.headers?.["request-ids"] ?? "");
          const result = await handler({
            id: msg.messageId ?? `delivery-${msg.deliveryTag}`,
            body,
            rows: Number(msg.headers?.rows ?? 0),
            acceptedAt: Number(msg.headers?.["accepted-at"] ?? (msg.timestamp ?? 0) * 1000),
            requestIds: requestIds === "" ? [] : requestIds.split(","),
          }).catch((err) => outcome.requeue(messageOf(err)));
          holdWrites(consuming);
          if (result.action === "ack") return ConsumerStatus.ACK;
          if (result.action === "requeue") return ConsumerStatus.REQUEUE;
          // Dead-letter it ourselves, so the reason travels with it; acknowledged once confirmed there.
          await send(
            {
              routingKey: deadQueue,
              durable: true,
              messageId: msg.messageId ?? `delivery-${msg.deliveryTag}`,
              contentType: msg.contentType,
              headers: { ...msg.headers, "x-tally-reason": result.reason },
            },
            body,
          );
          return ConsumerStatus.ACK;
        },
      );
      consumer.on("error", (err) => options.onError(err, "consumer"));
    },
    async check() {
      if (!rabbit.ready) throw new QueueUnavailableError("RabbitMQ is not connected");
      await declare();
    },
    async depth() {
      return (await declare()).messageCount;
    },
    async close() {
      await consumer?.close();
      await consuming?.close();
      await publisher.close();
      await rabbit.close();
    },
  };
}

/**
 * Holds `connection`'s writes until this turn of the event loop is over,
 * then sends them at once. A flush answers all its batches together, and
 * rabbitmq-client writes each acknowledgement to the socket by itself: a
 * system call each, which on loopback runs the broker's side of the socket
 * and wakes it, hundreds in a row. At 2,000 gRPC calls/s they held the
 * event loop for up to 20 ms after a flush (100 ms of the main thread in a
 * 25 s CPU profile; corked, 3 ms), and the calls waiting then were among
 * the slowest 1%. In 16 alternating pairs (bench/ab.ts), the calls' p99 was
 * lower in 11; in the last 6, medians of p99 39.3 ms against 43.5 and p50
 * 4.6 against 5.1. (The socket is the client's own field: a reconnect
 * replaces it, and the one corked here is the one uncorked.)
 */
function holdWrites(connection: Connection | undefined) {
  const socket = (connection as unknown as { _socket?: Socket } | undefined)?._socket;
  if (socket === undefined || held.has(socket)) return;
  held.add(socket);
  socket.cork();
  setImmediate(() => {
    held.delete(socket);
    socket.uncork();
  });
}
const held = new WeakSet<Socket>();

/**
 * The request ids as one header value. A message's headers must fit in one
 * AMQP frame (8 KiB), and a coalesced batch may carry thousands of requests:
 * the first ones that fit in 2 KiB are enough to follow it in the logs.
 */
function headerIds(ids: readonly string[]): string {
  let out = "";
  for (const id of ids) {
    if (out.length + id.length + 1 > 2048) break;
    out = out === "" ? id : `${out},${id}`;
  }
  return out;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A dead-lettered batch, as `tally dlq list` shows it. */
export interface DeadLetter {
  id: string;
  rows: number;
  reason: string;
  /** The start of its first row. */
  preview: string;
}

/** Options of the dead-letter tools. */
export interface DeadLetterOptions {
  url: string;
  namespace: string;
}

/** Every batch in `<ns>.events.dead`, taking none away. */
export async function listDeadLetters(o: DeadLetterOptions): Promise<DeadLetter[]> {
  const rabbit = new Connection(amqpOptions(o.url));
  const ch = await rabbit.acquire();
  const found: DeadLetter[] = [];
  try {
    for (;;) {
      const msg = await ch.basicGet({ queue: `${o.namespace}.events.dead` });
      if (msg === undefined) break;
      const body = Buffer.isBuffer(msg.body) ? msg.body : Buffer.from(String(msg.body ?? ""));
      const death = (msg.headers?.["x-death"] as { reason?: string }[] | undefined)?.[0]?.reason;
      found.push({
        id: msg.messageId ?? `delivery-${msg.deliveryTag}`,
        rows: Number(msg.headers?.rows ?? 0),
        reason: String(msg.headers?.["x-tally-reason"] ?? death ?? "unknown"),
        preview: body.toString("utf8", 0, Math.min(body.length, 120)).split("\n")[0] ?? "",
      });
    }
  } finally {
    await ch.close(); // unacknowledged: every message goes back where it was
    await rabbit.close();
  }
  return found;
}

/**
 * Moves the batches in `<ns>.events.dead` back onto `<ns>.events`, each
 * confirmed there before it leaves the dead-letter queue. Only as many as
 * were there at the start, so a batch that fails again cannot loop.
 */
export async function replayDeadLetters(o: DeadLetterOptions): Promise<number> {
  const rabbit = new Connection(amqpOptions(o.url));
  const dead = `${o.namespace}.events.dead`;
  const ch = await rabbit.acquire();
  const publisher = rabbit.createPublisher({ confirm: true });
  let replayed = 0;
  try {
    const { messageCount } = await ch.queueDeclare({ queue: dead, passive: true });
    for (; replayed < messageCount; replayed++) {
      const msg = await ch.basicGet({ queue: dead });
      if (msg === undefined) break;
      const { "x-death": _death, "x-tally-reason": _reason, ...headers } = msg.headers ?? {};
      await publisher.send(
        {
          routingKey: `${o.namespace}.events`,
          durable: true,
          messageId: msg.messageId,
          contentType: msg.contentType,
          headers,
        },
        msg.body,
      );
      ch.basicAck({ deliveryTag: msg.deliveryTag });
    }
  } finally {
    await publisher.close();
    await ch.close();
    await rabbit.close();
  }
  return replayed;
}
