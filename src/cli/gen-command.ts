import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { parseArgs } from "node:util";
import { generateCsv } from "./gen/generate.ts";
import { UsageError } from "./usage-error.ts";

export const GEN_HELP = `tally gen: write synthetic events as CSV

Usage:
  tally gen --rows N [options] > FILE.csv

Options:
  --rows N            rows to write, repeats included (required)
  --users N           distinct users, a few much more active (default 10000)
  --days N            days the events span (default 30)
  --from YYYY-MM-DD   the first day (default: N days before today, UTC)
  --event-types N     distinct event types, a few dominating (default 12)
  --dup-rate R        share of rows repeating an earlier event_id, 0..1 (default 0)
  --seed N            the same seed and options give the same file (default 1)
  --out PATH          write to PATH instead of standard output
  -h, --help          this text

Examples:
  tally gen --rows 1000000 --seed 7 > events.csv
  tally gen --rows 5000 --users 500 --from 2025-10-01 --days 30 --dup-rate 0.02 --out sample.csv
`;

export async function genCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      rows: { type: "string" },
      users: { type: "string", default: "10000" },
      days: { type: "string", default: "30" },
      from: { type: "string" },
      "event-types": { type: "string", default: "12" },
      "dup-rate": { type: "string", default: "0" },
      seed: { type: "string", default: "1" },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(GEN_HELP);
    return 0;
  }
  const whole = (name: string, value: string | undefined, min: number) => {
    const n = Number(value);
    if (value === undefined || !Number.isInteger(n) || n < min) {
      throw new UsageError(`--${name}: expected a whole number of at least ${min}`, GEN_HELP);
    }
    return n;
  };
  const rows = whole("rows", values.rows, 0);
  const days = whole("days", values.days, 1);
  const dupRate = Number(values["dup-rate"]);
  if (!(dupRate >= 0 && dupRate < 1))
    throw new UsageError("--dup-rate: expected a number from 0 to below 1", GEN_HELP);
  let fromMs: number;
  if (values.from === undefined) {
    const today = Date.parse(new Date().toISOString().slice(0, 10));
    fromMs = today - days * 86_400_000;
  } else {
    fromMs = Date.parse(`${values.from}T00:00:00Z`);
    if (!/^\d{4}-\d{2}-\d{2}$/.test(values.from) || Number.isNaN(fromMs)) {
      throw new UsageError(`--from: expected a date as YYYY-MM-DD, got "${values.from}"`, GEN_HELP);
    }
  }
  const out: NodeJS.WritableStream =
    values.out === undefined ? process.stdout : createWriteStream(values.out);
  for (const chunk of generateCsv({
    rows,
    users: whole("users", values.users, 1),
    days,
    fromMs,
    eventTypes: whole("event-types", values["event-types"], 1),
    dupRate,
    seed: whole("seed", values.seed, 0),
  })) {
    if (!out.write(chunk)) await once(out, "drain");
  }
  if (out !== process.stdout) await new Promise<void>((r) => out.end(() => r()));
  return 0;
}
