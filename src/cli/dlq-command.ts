import { ConfigError, loadConfig } from "../config/config.ts";
import { listDeadLetters, replayDeadLetters } from "../queue/rabbitmq-queue.ts";
import { UsageError } from "./usage-error.ts";

export const DLQ_HELP = `tally dlq: batches the consumer could not store

Usage:
  tally dlq list      show each dead-lettered batch: id, rows, reason, first row
  tally dlq replay    move them back onto the events queue (each confirmed first)

Uses AMQP_URL and TALLY_NAMESPACE, as the service does. A batch lands in
<namespace>.events.dead when it cannot be read (its reason says why) or was
delivered too many times (a crash loop). Replay after fixing the cause;
event_ids make replaying harmless for batches that were stored after all.

Examples:
  AMQP_URL=amqp://guest:guest@127.0.0.1:5672 npx tally dlq list
  AMQP_URL=amqp://guest:guest@127.0.0.1:5672 npx tally dlq replay
`;

export async function dlqCommand(args: string[]): Promise<number> {
  const [action] = args;
  if (action === "--help" || action === "-h") {
    process.stdout.write(DLQ_HELP);
    return 0;
  }
  if (action !== "list" && action !== "replay")
    throw new UsageError("dlq takes list or replay", DLQ_HELP);
  const config = loadConfig();
  if (config.amqpUrl === undefined) {
    throw new ConfigError(
      "tally dlq needs AMQP_URL: embedded, batches set aside are in TALLY_DATA_DIR/journal/<namespace>/dead-letters.jsonl",
    );
  }
  const target = { url: config.amqpUrl, namespace: config.namespace };
  if (action === "list") {
    const letters = await listDeadLetters(target);
    for (const l of letters)
      process.stdout.write(`${l.id}  rows=${l.rows}  reason=${l.reason}\n  ${l.preview}\n`);
    process.stdout.write(
      `${letters.length} dead-lettered batch${letters.length === 1 ? "" : "es"}\n`,
    );
    return 0;
  }
  process.stdout.write(`replayed ${await replayDeadLetters(target)}\n`);
  return 0;
}
