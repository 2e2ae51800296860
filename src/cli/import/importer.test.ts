import { existsSync, writeFileSync } from "node:fs";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventSchema } from "../../../gen/tally/v1/event_pb.js";
import {
  IngestRequestSchema,
  IngestResponseSchema,
  IngestService,
} from "../../../gen/tally/v1/ingest_pb.js";
import { waitFor } from "../../../test/helpers.ts";
import { tempDir } from "../../../test/temp-dirs.ts";
import { generateCsv } from "../gen/generate.ts";
import { checkpointPath } from "./checkpoint.ts";
import { encodedRequest, runImport } from "./importer.ts";

describe("an encoded IngestRequest", () => {
  it("is sent as the very bytes it was encoded to", () => {
    const events = ["a", "b", "c"].map((id, i) =>
      create(EventSchema, {
        eventId: id,
        occurredAt: timestampFromMs(1_700_000_000_000 + i),
        userId: `u${i}`,
        eventType: "t",
        propertiesJson: i === 1 ? "" : `{"n":${i}}`,
      }),
    );
    const encoded = toBinary(IngestRequestSchema, create(IngestRequestSchema, { events }));
    const sent = toBinary(IngestRequestSchema, encodedRequest(encoded));
    expect(Buffer.from(sent).equals(Buffer.from(encoded))).toBe(true);
    expect(fromBinary(IngestRequestSchema, sent).events).toEqual(events);
    expect(() => encodedRequest(new Uint8Array([0x12, 0]))).toThrow(/not an encoded IngestRequest/);
  });
});

/**
 * The order the checkpoint moves in while several streams are in flight,
 * against a server that answers the first segment last. (The import's
 * behaviour on the real services is test/integration/import.test.ts.)
 */
describe("tally import with several streams in flight", () => {
  const answered: string[] = [];
  let holdFirst: Promise<void> = Promise.resolve();
  let releaseFirst = () => {};
  const ingestStream = async (requests: AsyncIterable<{ events: { eventId: string }[] }>) => {
    let first: string | undefined;
    let n = 0;
    for await (const r of requests) {
      first ??= r.events[0]?.eventId;
      n += r.events.length;
    }
    if (first === firstId) await holdFirst;
    answered.push(first ?? "");
    return create(IngestResponseSchema, { accepted: BigInt(n) });
  };
  const server = http2.createServer(
    connectNodeAdapter({ routes: (r) => r.service(IngestService, { ingestStream }) }),
  );
  let url = "";
  let firstId = "";
  const dir = tempDir("tally-import-order-");
  const file = join(dir, "events.csv");
  const csv = [
    ...generateCsv({
      rows: 400,
      users: 20,
      fromMs: Date.parse("2024-06-01"),
      days: 2,
      eventTypes: 3,
      dupRate: 0,
      seed: 5,
    }),
  ].join("");
  beforeAll(async () => {
    writeFileSync(file, csv);
    firstId = csv.split("\n")[1]?.slice(0, 36) ?? "";
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((r) => server.close(r)));

  it("never checkpoints past a segment the server has not answered, though later ones were", async () => {
    holdFirst = new Promise((r) => {
      releaseFirst = r;
    });
    const stop = new AbortController();
    const importing = runImport(
      {
        input: file,
        url,
        batchSize: 50,
        segmentRows: 100,
        streams: 4,
        dryRun: false,
        restart: true,
        signal: stop.signal,
      },
      { bytesRead: 0, totalBytes: undefined, rowsRead: 0, rowsDone: 0 },
    );
    // The other three segments are answered while the first is held.
    await waitFor(
      async () => answered.length,
      (n) => n === 3,
    );
    // A grace for a wrong checkpoint to appear (their answers reach the client): nothing to poll for.
    await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(checkpointPath(file))).toBe(false);
    stop.abort();
    releaseFirst();
    const summary = await importing;
    expect(summary.interrupted).toBe(true);
    expect(summary.accepted).toBe(0);
    // Nothing is marked done: the next run sends every line again (the ids make that harmless).
    expect(existsSync(checkpointPath(file))).toBe(false);
  });
});
