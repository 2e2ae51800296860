import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Connection } from "rabbitmq-client";
import { IngestRequestSchema } from "../../gen/tally/v1/ingest_pb.js";
import { createRedisDedupe } from "../../src/dedupe/redis-dedupe.ts";
import { encodeRow, ROW_COLUMNS } from "../../src/event/row-format.ts";
import { validateEvent, validateProperties } from "../../src/event/validate-event.ts";
import { createRabbitQueue } from "../../src/queue/rabbitmq-queue.ts";
import { migrate } from "../../src/warehouse/migrations.ts";
import { indexRollups } from "../../src/warehouse/rollup-index.ts";
import { createWarehouse } from "../../src/warehouse/warehouse.ts";
import { benchDir } from "../lib/bench-dir.ts";
import { makeBatches } from "../lib/events.ts";
import type { Section } from "../lib/table.ts";

/** The bench stops on the first error a stage meets, so its clients' errors are only shown. */
const reportErrors = (err: unknown, context?: string) =>
  console.error(`bench: ${context ?? "client error"}: ${String(err)}`);

const AMQP_URL = process.env.AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

/** Each stage of the data's path alone, on the same events: which one is the bottleneck. */
export async function stages(scale: number): Promise<Section[]> {
  const total = Math.max(10_000, Math.round(500_000 * scale));
  const batches = makeBatches(total, 500);
  const rows: (string | number)[][] = [];
  const time = async (name: string, unit: string, n: number, run: () => Promise<void> | void) => {
    const t0 = performance.now();
    await run();
    const seconds = (performance.now() - t0) / 1000;
    rows.push([name, n, seconds, Math.round(n / seconds), unit]);
  };

  // API: decode the request, validate, encode the queue rows (what the server does per event).
  const wire = batches.map((events) =>
    toBinary(IngestRequestSchema, create(IngestRequestSchema, { events })),
  );
  const bodies: Buffer[] = [];
  await time("decode + validate + encode rows (API, one core)", "events/s", total, () => {
    const now = Date.now();
    for (const bytes of wire) {
      let body = "";
      for (const e of fromBinary(IngestRequestSchema, bytes).events) {
        const props = JSON.stringify(e.properties ?? {});
        if (validateEvent(e, { maxFutureSkewMs: 86_400_000 }, now) ?? validateProperties(props))
          continue;
        body += encodeRow(e, props, "2025-10-28 12:00:00.000000");
      }
      bodies.push(Buffer.from(body));
    }
  });

  // Queue: durable quorum queue, publisher confirms, 500-event messages, 8 in flight.
  const namespace = `bench_stage_${Date.now()}`;
  const queue = createRabbitQueue({
    url: AMQP_URL,
    namespace,
    prefetch: 64,
    onError: reportErrors,
  });
  await time(
    "publish with confirms (RabbitMQ, 500 events a message, 8 in flight)",
    "events/s",
    total,
    async () => {
      let next = 0;
      const worker = async () => {
        while (next < bodies.length) {
          const body = bodies[next++] as Buffer;
          await queue.publish({
            id: `m${next}`,
            body,
            rows: 500,
            acceptedAt: Date.now(),
            requestIds: [],
          });
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
    },
  );
  await queue.close();
  const rabbit = new Connection(AMQP_URL);
  await rabbit.queueDelete({ queue: `${namespace}.events` });
  await rabbit.queueDelete({ queue: `${namespace}.events.dead` });
  await rabbit.close();

  // Dedupe: one Lua round trip per 20,000 ids.
  const dedupe = createRedisDedupe({
    url: REDIS_URL,
    namespace,
    ttlSeconds: 60,
    onError: reportErrors,
  });
  await dedupe.check().catch(() => new Promise((r) => setTimeout(r, 200)));
  const ids = batches.flat().map((e) => e.eventId);
  await time(
    "dedupe claims (Redis, one Lua call per 20,000 ids)",
    "ids/s",
    ids.length,
    async () => {
      for (let i = 0; i < ids.length; i += 20_000) {
        const chunk = ids.slice(i, i + 20_000);
        await dedupe.claim(
          chunk,
          chunk.map(() => "owner"),
        );
      }
    },
  );
  await dedupe.close();

  // Warehouse: TabSeparated inserts of 20,000 rows into chDB.
  const warehouse = await createWarehouse({
    url: undefined,
    dataDir: benchDir("stage-"),
    database: "bench_stage",
  });
  await migrate(warehouse);
  const text = bodies.map((b) => b.toString());
  const inserts: string[] = [];
  for (let i = 0; i < text.length; i += 40) inserts.push(text.slice(i, i + 40).join(""));
  const insertAll = async () => {
    for (const body of inserts)
      await warehouse.insert("events", {
        format: "TabSeparated",
        columns: ROW_COLUMNS,
        text: body,
      });
  };
  await time("insert (chDB, TabSeparated, 20,000 rows an insert)", "rows/s", total, insertAll);
  // The same rows into empty tables again, now with a property indexed: what its rollups cost.
  await indexRollups(warehouse, { properties: ["country"], zones: [] });
  const stored = await warehouse.query<{ name: string }>(
    // The events and every rollup; not the schema's own records.
    `SELECT name FROM system.tables WHERE database = {db:String} AND engine LIKE '%MergeTree'
       AND name NOT IN ('schema_migrations', 'rollup_indexes')`,
    { db: warehouse.database },
  );
  for (const { name } of stored) {
    await warehouse.command(`TRUNCATE TABLE ${warehouse.db}.\`${name}\``);
  }
  await time("insert, with TALLY_INDEXED_PROPERTIES=country", "rows/s", total, insertAll);
  await warehouse.close();

  return [
    {
      title: `Stages alone (${total.toLocaleString("en-US")} events each)`,
      columns: ["stage", "items", "seconds", "per second", "unit"],
      rows,
      notes: ["Each stage runs alone on the same machine; the slowest one bounds the pipeline."],
    },
  ];
}
