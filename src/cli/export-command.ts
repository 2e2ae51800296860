import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { parseArgs } from "node:util";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { ExportService } from "../../gen/tally/v1/export_pb.js";
import { SERVICE_HELP, SERVICE_OPTIONS, serviceUrl } from "./service-options.ts";
import { UsageError } from "./usage-error.ts";

export const EXPORT_HELP = `tally export: write the stored events of a range to a file

Usage:
  tally export --from YYYY-MM-DD --to YYYY-MM-DD [options]

Options:
${SERVICE_HELP}
  --from DAY           first UTC day (inclusive)
  --to DAY             last UTC day (inclusive; at most 1,100 days after --from)
  --format F           csv (default: the import's columns), jsonl or parquet
  --out FILE           where to write (default: standard output)
  -h, --help           this text

Each event once (its first copy), oldest first. With API keys set, the key
needs the admin scope. A CSV export imports back unchanged:
  tally export --from 2025-10-01 --to 2025-10-31 --out october.csv
  tally import october.csv --url http://other:8080
Progress goes to standard error on a terminal.
`;

export interface ExportOptions {
  url: string;
  apiKey: string | undefined;
  from: string;
  to: string;
  format: string;
  /** Where the bytes go. */
  out: NodeJS.WritableStream;
}

/** Streams an export from the service into `out`; `onChunk` hears each day's progress. */
export async function runExport(
  o: ExportOptions,
  onChunk: (p: { events: number; bytes: number; through: string }) => void = () => {},
): Promise<{ events: number; bytes: number }> {
  const client = createClient(ExportService, createGrpcTransport({ baseUrl: o.url }));
  const headers = o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : undefined;
  let events = 0;
  let bytes = 0;
  for await (const chunk of client.exportEvents(
    { from: o.from, to: o.to, format: o.format },
    { headers },
  )) {
    if (!o.out.write(chunk.data)) await once(o.out, "drain");
    events += Number(chunk.events);
    bytes += chunk.data.length;
    onChunk({ events, bytes, through: chunk.through });
  }
  return { events, bytes };
}

export async function exportCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...SERVICE_OPTIONS,
      from: { type: "string", default: "" },
      to: { type: "string", default: "" },
      format: { type: "string", default: "csv" },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(EXPORT_HELP);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError("export takes no arguments", EXPORT_HELP);
  if (values.from === "" || values.to === "") {
    throw new UsageError("--from and --to are required (YYYY-MM-DD)", EXPORT_HELP);
  }
  const url = serviceUrl(values.url, EXPORT_HELP);
  const out = values.out === undefined ? process.stdout : createWriteStream(values.out);
  const terminal = process.stderr.isTTY;
  try {
    const done = await runExport(
      {
        url,
        apiKey: values["api-key"],
        from: values.from,
        to: values.to,
        format: values.format,
        out,
      },
      (p) => {
        if (terminal) {
          process.stderr.write(
            `\rtally export: ${p.events.toLocaleString("en-US")} events through ${p.through} (${(p.bytes / 1e6).toFixed(1)} MB)`,
          );
        }
      },
    );
    if (out !== process.stdout) {
      out.end();
      await once(out, "finish");
    }
    process.stderr.write(
      `${terminal ? "\n" : ""}tally export: ${done.events.toLocaleString("en-US")} events, ${(done.bytes / 1e6).toFixed(1)} MB${values.out ? ` to ${values.out}` : ""}\n`,
    );
    return 0;
  } catch (err) {
    const e = ConnectError.from(err);
    const hint =
      e.code === Code.Unauthenticated || e.code === Code.PermissionDenied
        ? " (pass --api-key with a key that has the admin scope)"
        : e.code === Code.Unavailable
          ? ` (is the service running at ${url}?)`
          : "";
    process.stderr.write(`${terminal ? "\n" : ""}tally export: ${e.rawMessage}${hint}\n`);
    return 1;
  }
}
