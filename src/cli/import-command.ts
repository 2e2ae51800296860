import { parseArgs } from "node:util";
import { ImportError, runImport } from "./import/importer.ts";
import { createProgressReporter, type ImportProgress } from "./import/progress.ts";
import { SERVICE_HELP, SERVICE_OPTIONS, serviceUrl } from "./service-options.ts";
import { UsageError } from "./usage-error.ts";

export const IMPORT_HELP = `tally import: stream a CSV file of events to Tally over gRPC

Usage:
  tally import FILE.csv [options]      (FILE.csv.gz works too; - reads standard input)

Options:
${SERVICE_HELP}
  --batch-size N       events per stream message (default 1000)
  --streams N          streams in flight at once (default 4)
  --dry-run            parse and validate only; send nothing, report what would be rejected
  --rejects PATH       where rejected lines go (default FILE.rejects.csv beside the input)
  --restart            ignore a checkpoint left by an interrupted import
  -h, --help           this text

The file needs the header event_id,occurred_at,user_id,event_type,properties
(properties: a JSON object in one field). Bad lines never stop the import: each
is reported with its line number and reason, and written to the rejects file.
Ctrl-C or a lost connection leaves a checkpoint: the same command resumes.
Importing a file again counts nothing twice (event_id is the idempotency key).

Exit codes: 0 every line accepted, 3 some lines rejected, 1 the import failed
(the message says what to do), 2 bad usage, 130 interrupted (resumable).

Examples:
  tally import data/events_sample.csv
  tally gen --rows 1000000 | gzip > big.csv.gz && tally import big.csv.gz --batch-size 2000
  tally import events.csv --dry-run
  cat events.csv | tally import - --url http://tally.internal:8080 --api-key "$KEY"
`;

export async function importCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...SERVICE_OPTIONS,
      "batch-size": { type: "string", default: "1000" },
      "segment-rows": { type: "string", default: "20000" },
      streams: { type: "string", default: "4" },
      "dry-run": { type: "boolean", default: false },
      rejects: { type: "string" },
      restart: { type: "boolean", default: false },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(IMPORT_HELP);
    return 0;
  }
  const [input, ...extra] = positionals;
  if (input === undefined || extra.length > 0)
    throw new UsageError("import takes one FILE (or - for standard input)", IMPORT_HELP);
  const batchSize = Number(values["batch-size"]);
  const segmentRows = Number(values["segment-rows"]);
  const streams = Number(values.streams);
  if (!Number.isInteger(streams) || streams < 1 || streams > 64) {
    throw new UsageError("--streams: expected a whole number from 1 to 64", IMPORT_HELP);
  }
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 100_000) {
    throw new UsageError("--batch-size: expected a whole number from 1 to 100000", IMPORT_HELP);
  }
  if (!Number.isInteger(segmentRows) || segmentRows < batchSize) {
    throw new UsageError(
      "--segment-rows: expected a whole number no smaller than --batch-size",
      IMPORT_HELP,
    );
  }
  const url = serviceUrl(values.url, IMPORT_HELP);

  const err = process.stderr;
  const progress: ImportProgress = {
    bytesRead: 0,
    totalBytes: undefined,
    rowsRead: 0,
    rowsDone: 0,
  };
  const reporter = createProgressReporter(err, () => progress);
  const stop = new AbortController();
  const onSigint = () => {
    err.write("\ninterrupting: waiting for the server's answer to what was sent...\n");
    stop.abort();
  };
  process.once("SIGINT", onSigint);
  let shown = 0;
  try {
    const summary = await runImport(
      {
        input,
        url,
        apiKey: values["api-key"],
        batchSize,
        segmentRows,
        streams,
        dryRun: values["dry-run"],
        rejectsPath: values.rejects,
        restart: values.restart,
        signal: stop.signal,
        onReject: (line, reason) => {
          // Name the first rejects here; all of them are in the rejects file.
          if (shown++ < 20) err.write(`${err.isTTY ? "\r\x1b[K" : ""}line ${line}: ${reason}\n`);
        },
        onNotice: (message) => err.write(`${err.isTTY ? "\r\x1b[K" : ""}${message}\n`),
      },
      progress,
    );
    reporter.stop();
    const seconds = summary.durationMs / 1000;
    const lines = [
      `${values["dry-run"] ? "dry run of" : "imported"} ${input}${summary.resumedAfterLine ? ` (resumed after line ${summary.resumedAfterLine})` : ""}`,
      `  rows read ${summary.rowsRead.toLocaleString("en-US")}`,
      `  ${values["dry-run"] ? "valid    " : "accepted "} ${summary.accepted.toLocaleString("en-US")}`,
      `  rejected  ${summary.rejected.toLocaleString("en-US")}${summary.rejectsPath ? ` (see ${summary.rejectsPath})` : ""}`,
      `  duration  ${seconds.toFixed(1)} s, ${Math.round(summary.rowsRead / Math.max(seconds, 0.001)).toLocaleString("en-US")} rows/s`,
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
    if (summary.interrupted) {
      err.write(`interrupted: run the same command again to resume (--restart to start over)\n`);
      return 130;
    }
    return summary.rejected > 0 ? 3 : 0;
  } catch (e) {
    reporter.stop();
    if (e instanceof ImportError) {
      err.write(`tally import: ${e.message}\n`);
      return 1;
    }
    throw e;
  } finally {
    process.off("SIGINT", onSigint);
  }
}
