import { flushCompileCache } from "node:module";
import { parseArgs } from "node:util";
import { setFlagsFromString } from "node:v8";
import { createLogger } from "../app/logger.ts";
import { checkRoleAlone, startTally } from "../app/tally.ts";
import { loadConfig } from "../config/config.ts";
import { UsageError } from "./usage-error.ts";

export const SERVE_HELP = `tally serve: run the service

Usage:
  tally serve [--role api|consumer|all]      (default: all roles in one process)

Configured by environment variables (README.md has the table): PORT,
AMQP_URL, REDIS_URL, CLICKHOUSE_URL, TALLY_DATA_DIR, TALLY_NAMESPACE,
TALLY_API_KEYS, ... With none of AMQP_URL, REDIS_URL, CLICKHOUSE_URL set,
everything runs in this process on embedded parts (a local log for a queue,
in-process dedupe, chDB on disk, all in TALLY_DATA_DIR).

Examples:
  npm start
  AMQP_URL=amqp://guest:guest@127.0.0.1:5672 REDIS_URL=redis://127.0.0.1:6379 tally serve --role api
`;

/** Runs until SIGTERM or SIGINT, then drains and exits. */
export async function serveCommand(args: string[]): Promise<number | undefined> {
  const { values } = parseArgs({
    args,
    options: { role: { type: "string", default: "all" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    process.stdout.write(SERVE_HELP);
    return 0;
  }
  const role = values.role;
  if (role !== "api" && role !== "consumer" && role !== "all") {
    throw new UsageError(`--role: expected api, consumer or all, got "${role}"`, SERVE_HELP);
  }
  const config = loadConfig();
  checkRoleAlone(config, role);
  // Request objects live for milliseconds, but V8 learned to allocate some
  // of them straight in the old generation (allocation-site pretenuring):
  // at 2,000 gRPC calls/s each scavenge promoted 4-5 MB and paused the API
  // 7-8 ms, and the old generation filled every 2-3 s. Without it: 1.1 MB,
  // 2.6-3.3 ms, and in steady state p99 fell from about 28 to 19 ms.
  setFlagsFromString("--no-allocation-site-pretenuring");
  const log = createLogger(process.env.LOG_LEVEL);
  const tally = await startTally(config, role, log);
  // Node writes its compile cache (src/cli/tally.js) as it exits, and a
  // service may never exit cleanly: what starting it loaded is written now.
  flushCompileCache();
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
  return undefined; // keeps running
}
