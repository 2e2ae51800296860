import { setFlagsFromString } from "node:v8";
import { ConfigError } from "../config/config.ts";
import { UsageError } from "./usage-error.ts";

const HELP = `tally: event ingest and product analytics

Usage:
  tally serve [--role api|consumer|all]   run the service
  tally import FILE.csv [--url URL]       stream a CSV of events to the service
  tally export --from D --to D [--out F]  write stored events as CSV, JSON lines or Parquet
  tally tail [--event-type T] [--user-id U]  print events live as they are accepted
  tally gen --rows N > FILE.csv           write synthetic events
  tally dlq list|replay                   batches the consumer could not store
  tally COMMAND --help                    more on one command

Examples:
  npm start
  npx tally gen --rows 100000 --seed 7 > events.csv
  npx tally import events.csv --url http://127.0.0.1:8080
`;

type Command = (args: string[]) => Promise<number | undefined>;

/**
 * Each command loads its own modules only when it runs: loaded together,
 * every command paid for the server's (chDB's library among them), and
 * `tally help` took 0.85 s and 280 MB.
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  serve: async () => (await import("./serve-command.ts")).serveCommand,
  import: async () => (await import("./import-command.ts")).importCommand,
  export: async () => (await import("./export-command.ts")).exportCommand,
  gen: async () => (await import("./gen-command.ts")).genCommand,
  tail: async () => (await import("./tail-command.ts")).tailCommand,
  dlq: async () => (await import("./dlq-command.ts")).dlqCommand,
};

async function main(argv: string[]): Promise<number | undefined> {
  const [name = "help", ...rest] = argv;
  if (name === "help" || name === "--help" || name === "-h") {
    process.stdout.write(HELP);
    return 0;
  }
  const load = COMMANDS[name];
  if (load === undefined) {
    process.stderr.write(`tally: unknown command "${name}"\n\n${HELP}`);
    return 2;
  }
  // The command's Node.js flags are the service's (tally.js), and two of
  // them are for a service only: a full collection each time the heap grows
  // by half (its peak memory), and no compaction (its calls' latency). The
  // other commands make garbage fast: an import of 1M rows ran 41-53 full
  // collections with the first, 9-12 with V8's own growth, and the CLI's
  // CPU fell from 5.6-5.8 to 4.3 µs a row. V8 reads both flags at each
  // collection, so they hold when set after the start (a growth of 0, its
  // default, lets V8 choose).
  if (name !== "serve") {
    setFlagsFromString("--heap-growing-percent=0");
    setFlagsFromString("--compact");
  }
  return (await load())(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== undefined) process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`tally: ${err.message}\n\n${err.help}`);
      process.exitCode = 2;
    } else if (
      err instanceof ConfigError ||
      (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")
    ) {
      process.stderr.write(`tally: ${(err as Error).message}\n`);
      process.exitCode = (err as { code?: string }).code === undefined ? 1 : 2;
    } else {
      process.stderr.write(
        `tally: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
      process.exitCode = 1;
    }
  },
);
