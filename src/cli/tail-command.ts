import { parseArgs } from "node:util";
import { toJson } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { type Event, EventSchema } from "../../gen/tally/v1/event_pb.js";
import { IngestService } from "../../gen/tally/v1/ingest_pb.js";
import { SERVICE_HELP, SERVICE_OPTIONS, serviceUrl } from "./service-options.ts";
import { UsageError } from "./usage-error.ts";

export const TAIL_HELP = `tally tail: print events live, as the service accepts them

Usage:
  tally tail [options]

Options:
${SERVICE_HELP}
  --event-type TYPE    only events of this type
  --user-id ID         only this user's events
  --json               one JSON object per line (the default when not on a terminal)
  -h, --help           this text

With API keys set, the key needs the read scope. Repeats are shown too:
de-duplication happens after acceptance. If the terminal cannot keep up, the
oldest events waiting are skipped and a line on standard error says how many.
A lost connection is retried every second. Ctrl-C stops.

Examples:
  tally tail
  tally tail --event-type purchase --json | jq .user_id
`;

/** Codes worth reconnecting after: the service went away, or is restarting. */
const RETRIED = new Set([Code.Unavailable, Code.Unknown, Code.Internal, Code.Aborted]);

export async function tailCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...SERVICE_OPTIONS,
      "event-type": { type: "string", default: "" },
      "user-id": { type: "string", default: "" },
      json: { type: "boolean", default: !process.stdout.isTTY },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(TAIL_HELP);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError("tail takes no arguments", TAIL_HELP);
  const url = serviceUrl(values.url, TAIL_HELP);

  const client = createClient(IngestService, createGrpcTransport({ baseUrl: url }));
  const headers = values["api-key"] ? { authorization: `Bearer ${values["api-key"]}` } : undefined;
  const request = { eventType: values["event-type"], userId: values["user-id"] };
  const format = values.json ? formatJson : formatLine;
  const stop = new AbortController();
  process.once("SIGINT", () => stop.abort());
  const say = (line: string) => process.stderr.write(`${line}\n`);

  while (!stop.signal.aborted) {
    try {
      for await (const res of client.tailEvents(request, { headers, signal: stop.signal })) {
        if (res.skipped > 0n) say(`tally tail: skipped ${res.skipped} events (fell behind)`);
        if (res.events.length === 0 && res.skipped === 0n) {
          say(`tally tail: live on ${url}; Ctrl-C stops`);
        }
        for (const e of res.events) process.stdout.write(`${format(e)}\n`);
      }
      say("tally tail: the service ended the tail; reconnecting");
    } catch (err) {
      if (stop.signal.aborted) break;
      const e = ConnectError.from(err);
      if (!RETRIED.has(e.code)) {
        say(`tally tail: ${e.rawMessage} (${Code[e.code]})`);
        return 1;
      }
      say(`tally tail: ${e.rawMessage}; retrying in 1 s (events meanwhile are not shown)`);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  return 0;
}

function formatJson(e: Event): string {
  return JSON.stringify(toJson(EventSchema, e, { useProtoFieldName: true }));
}

/** time, type, user, id, properties: the columns a person scans for. */
function formatLine(e: Event): string {
  const at = e.occurredAt === undefined ? "-" : timestampDate(e.occurredAt).toISOString();
  const props = e.properties === undefined ? "" : ` ${JSON.stringify(e.properties)}`;
  return `${at}  ${e.eventType}  ${e.userId}  ${e.eventId}${props}`;
}
