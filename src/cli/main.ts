#!/usr/bin/env node
import { parseArgs } from "node:util";
import { createLogger } from "../app/logger.ts";
import { type Role, startTally } from "../app/tally.ts";
import { ConfigError, loadConfig } from "../config/config.ts";

const HELP = `tally: event ingest and product analytics

Usage:
  tally serve [--role api|consumer|all]   run the service (default: all roles)
  tally help                              this text

The service is configured by environment variables (see README.md):
  PORT, AMQP_URL, REDIS_URL, CLICKHOUSE_URL, TALLY_DATA_DIR, TALLY_NAMESPACE, ...
With none of AMQP_URL, REDIS_URL, CLICKHOUSE_URL set, everything runs in this
one process on embedded parts (in-process queue and dedupe, chDB on disk).

Examples:
  npm start
  AMQP_URL=amqp://guest:guest@127.0.0.1:5672 REDIS_URL=redis://127.0.0.1:6379 npx tally serve --role api
`;

async function serve(args: string[]) {
  const { values } = parseArgs({
    args,
    options: { role: { type: "string", default: "all" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) return void process.stdout.write(HELP);
  const role = values.role;
  if (role !== "api" && role !== "consumer" && role !== "all") {
    throw new ConfigError(`--role: expected api, consumer or all, got "${role}"`);
  }
  const config = loadConfig();
  const log = createLogger(process.env.LOG_LEVEL);
  const tally = await startTally(config, role as Role, log);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "stopping: draining requests and handing held batches back");
    tally.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, "unclean stop");
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
}

async function main(argv: string[]) {
  const [command = "help", ...rest] = argv;
  switch (command) {
    case "serve":
      return serve(rest);
    case "help":
    case "--help":
    case "-h":
      return void process.stdout.write(HELP);
    default:
      process.stderr.write(`tally: unknown command "${command}"\n\n${HELP}`);
      process.exitCode = 2;
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (
    err instanceof ConfigError ||
    (err instanceof Error && err.name === "TypeError" && "code" in err)
  ) {
    process.stderr.write(`tally: ${err.message}\n`);
  } else {
    process.stderr.write(
      `tally: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
  }
  process.exit(1);
});
