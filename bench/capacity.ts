/**
 * The capacity model: bench/CAPACITY.md, made from the stage figures of a
 * bench run (bench/RESULTS.md). Each stage's events per second per core,
 * then what a deployment needs for 100k, 1M and 10M events/s, with the
 * assumption behind each number. Run after `npm run bench`:
 *
 *   node bench/capacity.ts [RESULTS.md] [CAPACITY.md]
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { markdownTable } from "./lib/table.ts";

const results = process.argv[2] ?? join(import.meta.dirname, "RESULTS.md");
const out = process.argv[3] ?? join(import.meta.dirname, "CAPACITY.md");
const text = readFileSync(results, "utf8");

/** A markdown table's rows under `## <title...>`, as cells. */
function table(title: string): string[][] {
  const at = text.indexOf(`## ${title}`);
  if (at < 0) throw new Error(`${results} has no section "${title}": run npm run bench first`);
  const section = text.slice(at).split("\n## ")[0] as string;
  return section
    .split("\n")
    .filter((l) => l.startsWith("|") && !l.startsWith("| ---"))
    .slice(1)
    .map((l) =>
      l
        .split("|")
        .slice(1, -1)
        .map((c) => c.trim()),
    );
}
const num = (s: string | undefined) => Number((s ?? "").replaceAll(",", ""));
const row = (rows: string[][], starts: string) => {
  const found = rows.find((r) => r[0]?.startsWith(starts));
  if (found === undefined) throw new Error(`no row "${starts}" in ${results}`);
  return found;
};

const stages = table("Stages alone");
const resources = table("Resources during the pipeline run");
const endToEnd = table("End-to-end throughput");
const pipeline = num(row(endToEnd, "pipeline")[2]);
const coresOf = (process: string) => num(row(resources, process)[2]);

// Events per second per core, each stage (the assumption in the last column).
const perCore = {
  api: {
    rate: num(row(stages, "decode + validate + encode")[3]),
    why: "the API's CPU stage measured alone on one core (decode, validate, encode a row)",
  },
  serve: {
    rate: pipeline / coresOf("tally serve"),
    why: "the whole embedded process (API, consumer, chDB) in the pipeline run: events/s over its average cores",
  },
  broker: {
    rate: pipeline / coresOf("RabbitMQ"),
    why: "RabbitMQ's average cores in the pipeline run, 500-event messages with confirms, one node",
  },
  redis: {
    rate: num(row(stages, "dedupe claims")[3]),
    why: "one Redis (one thread) claiming ids in 20,000-id Lua calls, measured alone",
  },
  insert: {
    rate: num(row(stages, "insert (chDB")[3]) / 2,
    why: "chDB inserts with every rollup view, measured alone on this 2-core machine: half of it per core",
  },
};

const targets = [100_000, 1_000_000, 10_000_000];
/**
 * Dedupe claims per event on a Redis Cluster: the API's
 * (queue/claim-on-accept.ts) and the consumer's. (One Redis marks a batch
 * whole at accept, and its consumer does not claim it again.)
 */
const CLAIMS_PER_EVENT = 2;
/** Headroom kept on every part: run at half of what it can do, for peaks and failures. */
const HEADROOM = 0.5;
/** Cores of one ClickHouse server, one broker node, and one API/consumer host in the sizing. */
const SERVER_CORES = 16;
const REPLICAS = 2;
const BROKER_REPLICAS = 3;

const lines: string[] = [];
lines.push("# Capacity model", "");
lines.push(
  `Made by \`node bench/capacity.ts\` from \`bench/RESULTS.md\` (${
    text
      .match(/Made by `([^`]*)` on ([^,]*)/)
      ?.slice(1)
      .join(" on ") ?? "a bench run"
  }). Figures are ratios of measured stage rates, so they hold on a machine of another speed as the ratios do; every assumption is written beside its number.`,
  "",
);
lines.push(
  markdownTable({
    title: "Events per second per core, each stage",
    columns: ["stage", "events/s per core", "measured as"],
    rows: Object.entries(perCore).map(([name, s]) => [name, Math.round(s.rate), s.why]),
  }),
);
const sizes = targets.map((target) => {
  const need = target / HEADROOM;
  const insertCores = need / perCore.insert.rate;
  // A quorum queue's writes are replicated to 3 nodes: each node does the work of every queue it holds.
  const brokerCores = (need * BROKER_REPLICAS) / perCore.broker.rate;
  return [
    target,
    Math.ceil(need / perCore.api.rate),
    Math.ceil(insertCores),
    `${Math.max(1, Math.ceil(insertCores / SERVER_CORES))} (x ${REPLICAS})`,
    // Each id is claimed twice: by the API once the broker has it (first accepted wins), then by the consumer.
    Math.max(1, Math.ceil((need * CLAIMS_PER_EVENT) / perCore.redis.rate)),
    Math.max(BROKER_REPLICAS, Math.ceil(brokerCores / SERVER_CORES)),
    // One queue is one Erlang process on its leader: a core's worth each, leaders spread over the nodes.
    Math.max(1, Math.ceil(brokerCores)),
  ];
});
lines.push(
  markdownTable({
    title: "What a deployment needs",
    columns: [
      "events/s",
      "API cores",
      "insert cores (ClickHouse)",
      "ClickHouse shards (x replicas)",
      "Redis shards (masters)",
      "broker nodes",
      "queues",
    ],
    rows: sizes,
    notes: [
      `Every part runs at ${HEADROOM * 100}% of what it can do (peaks, a node lost). API and consumer hosts, broker nodes and ClickHouse servers have ${SERVER_CORES} cores; ClickHouse shards have ${REPLICAS} replicas, the quorum queues ${BROKER_REPLICAS}.`,
    ],
  }),
);
lines.push("## Assumptions", "");
lines.push(
  "- Events arrive in batches (SDKs, services and the CLI batch); one-event calls cost about a call's overhead each on the API (the unary rows of RESULTS.md give the CPU per call) and need more API cores than the table says.",
  "- The consumer's own CPU (reading messages, claiming, building inserts) is small beside ClickHouse's insert work, so the insert column is ClickHouse cores, on the shards; the consumer processes run beside the API ones.",
  "- ClickHouse insert work grows with the rollups kept: each indexed property or zone adds about a third (the stage table's indexed row).",
  "- A Redis shard is one thread: ids/s per shard is the measured claim rate; replicas add no write capacity. On a cluster each event is claimed twice (the API claims a batch's ids once the broker has it, so that the first accepted copy wins; the consumer claims them again, finding its own), so Redis does twice the stage's work per event. (One Redis, not a cluster, marks a batch whose ids the API found all its own, and the consumer takes it on the mark: one claim per event.)",
  "- A quorum queue is one process on its leader: the queue count spreads the broker work over cores. Tally uses one queue per namespace today, so past one broker core's worth (the first row) events must be spread over several namespaces, which Tally does not do by itself yet.",
  "- Reads (stats) are not in the table: they run on the replicas' spare cores, and the analytics bench gives their latency at 10M events.",
);
writeFileSync(out, `${lines.join("\n")}\n`);
process.stdout.write(`wrote ${out}\n`);
