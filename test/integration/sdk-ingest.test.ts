import { gzipSync } from "node:zlib";
import { createInstance as createAmplitude, Identify } from "@amplitude/analytics-node";
import RudderAnalytics from "@rudderstack/rudder-sdk-node";
import { Analytics as SegmentAnalytics } from "@segment/analytics-node";
import { PostHog } from "posthog-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Tally } from "../../src/app/tally.ts";
import { startFlakyProxy } from "../flaky-http.ts";
import { realServices, start, testConfig, waitFor } from "../helpers.ts";

const N = 40;
const KEY = "sdk-test-key";

/** What the test sent, per stored event type, as a brute-force count. */
type Sent = Record<string, number>;

describe("the SDKs teams already run, unmodified, pointed at Tally (RabbitMQ, Redis, chDB)", () => {
  let tally: Tally;
  let base: string;
  beforeAll(async () => {
    tally = await start(
      testConfig({ ...realServices(), TALLY_API_KEYS: `${KEY}:ingest,reader:read` }),
    );
    base = `http://127.0.0.1:${tally.port}`;
  });
  afterAll(() => tally?.close());

  /** Stored events (first copies) per event type whose user starts with `prefix`. */
  async function stored(prefix: string): Promise<Sent> {
    const rows = await tally.warehouse.query<{ event_type: string; n: string }>(
      `SELECT event_type, count() AS n FROM ${tally.warehouse.db}.events FINAL
       WHERE startsWith(user_id, {prefix:String}) GROUP BY event_type`,
      { prefix },
    );
    return Object.fromEntries(rows.map((r) => [r.event_type, Number(r.n)]));
  }

  /** The properties, parsed, of the first stored event of `userId` and `eventType` (by time, then id). */
  /**
   * The user's first event of the type, or the one whose property `key` is
   * `value` (an SDK stamps events in a loop within one millisecond: "first" ties).
   */
  async function propertiesOf(
    userId: string,
    eventType: string,
    [key, value]: [string?, unknown?] = [],
  ) {
    const [row] = await tally.warehouse.query<{ properties: string; event_id: string }>(
      `SELECT properties, toString(event_id) AS event_id FROM ${tally.warehouse.db}.events FINAL
       WHERE user_id = {userId:String} AND event_type = {eventType:String}
         AND ({key:String} = '' OR JSONExtractRaw(properties, {key:String}) = {raw:String})
       ORDER BY occurred_at, event_id LIMIT 1`,
      { userId, eventType, key: key ?? "", raw: JSON.stringify(value ?? null) },
    );
    return { ...row, properties: JSON.parse(row?.properties ?? "{}") as Record<string, unknown> };
  }

  const expectStored = (prefix: string, sent: Sent) =>
    waitFor(
      () => stored(prefix),
      (s) =>
        JSON.stringify(Object.entries(s).sort()) === JSON.stringify(Object.entries(sent).sort()),
    );

  it("Segment's analytics-node: track, page, screen, identify, group, alias, each once", async () => {
    const segment = new SegmentAnalytics({
      writeKey: KEY,
      host: base,
      maxEventsInBatch: 25,
      flushInterval: 50,
    });
    for (let i = 0; i < N; i++) {
      const userId = `seg-${i % 7}`;
      segment.track({
        userId,
        event: "Order Completed",
        properties: { total: i },
        messageId: `seg-track-${i}`,
      });
      segment.page({ userId, name: "Home", properties: { path: "/" } });
      segment.screen({ anonymousId: `seg-anon-${i}`, name: "Feed" });
      segment.identify({ userId, traits: { plan: "pro" } });
      segment.group({ userId, groupId: "acme", traits: { seats: 3 } });
      segment.alias({ userId, previousId: `seg-anon-${i}` });
    }
    await segment.closeAndFlush();
    const sent = {
      "Order Completed": N,
      $pageview: N,
      $screen: N,
      $identify: N,
      $groupidentify: N,
      $create_alias: N,
    };
    expect(await expectStored("seg-", sent)).toEqual(sent);
    const track = await propertiesOf("seg-0", "Order Completed", ["$source_id", "seg-track-0"]);
    expect(track.properties).toMatchObject({
      $source: "segment",
      total: 0,
      $source_id: "seg-track-0",
    });
    expect(track.properties.$context).toMatchObject({
      library: { name: "@segment/analytics-node" },
    });
    expect((await propertiesOf("seg-0", "$identify")).properties.$set).toEqual({ plan: "pro" });
  });

  it("RudderStack's rudder-sdk-node (gzip bodies, Segment's routes)", async () => {
    const rudder = new RudderAnalytics(KEY, {
      dataPlaneUrl: base,
      flushAt: 25,
      flushInterval: 50,
      logLevel: "error",
    });
    for (let i = 0; i < N; i++) {
      const userId = `rud-${i % 5}`;
      rudder.track({ userId, event: "Signed Up", properties: { i } });
      rudder.identify({ userId, traits: { name: `n${i}` } });
      rudder.page({ userId, name: "Pricing" });
    }
    await rudder.flush();
    const sent = { "Signed Up": N, $identify: N, $pageview: N };
    expect(await expectStored("rud-", sent)).toEqual(sent);
  });

  it("posthog-node: capture, identify, alias, groupIdentify (gzip bodies to /batch/)", async () => {
    const posthog = new PostHog(KEY, { host: base, flushAt: 25, flushInterval: 50 });
    for (let i = 0; i < N; i++) {
      const distinctId = `ph-${i % 6}`;
      posthog.capture({ distinctId, event: "file uploaded", properties: { size: i } });
      posthog.capture({ distinctId, event: "$pageview", properties: { $current_url: "/x" } });
      posthog.identify({ distinctId, properties: { email: `${distinctId}@example.com` } });
      posthog.alias({ distinctId, alias: `ph-alias-${i}` });
      posthog.groupIdentify({
        groupType: "company",
        groupKey: `ph-co-${i}`,
        distinctId,
        properties: { n: i },
      });
    }
    await posthog.shutdown();
    const sent = {
      "file uploaded": N,
      $pageview: N,
      $identify: N,
      $create_alias: N,
      $groupidentify: N,
    };
    expect(await expectStored("ph-", sent)).toEqual(sent);
    const upload = await propertiesOf("ph-0", "file uploaded");
    expect(upload.properties).toMatchObject({ $source: "posthog", size: expect.any(Number) });
    // The SDK's uuid (a UUIDv7) is the event's id; the key is never stored.
    expect(upload.event_id).toBe(upload.properties.$source_id);
    expect(JSON.stringify(upload.properties)).not.toContain(KEY);
  });

  it("Amplitude's analytics-node: track and identify, with device-only users", async () => {
    const amplitude = createAmplitude();
    await amplitude.init(KEY, {
      serverUrl: `${base}/2/httpapi`,
      flushQueueSize: 25,
      flushIntervalMillis: 50,
      logLevel: 0,
    }).promise;
    for (let i = 0; i < N; i++) {
      amplitude.track(
        "Song Played",
        { song: i },
        { user_id: `amp-${i % 4}`, device_id: `amp-dev-${i}` },
      );
      amplitude.track("App Opened", undefined, { device_id: `amp-dev-${i}` });
      amplitude.identify(new Identify().set("plan", "gold"), { user_id: `amp-${i % 4}` });
    }
    await amplitude.flush().promise;
    // The device-only events are stored under their device id.
    const byUser = await waitFor(
      async () => ({ ...(await stored("amp-")) }),
      (s) => s["Song Played"] === N && s["App Opened"] === N && s.$identify === N,
    );
    expect(byUser).toEqual({ "Song Played": N, "App Opened": N, $identify: N });
    const played = await propertiesOf("amp-0", "Song Played", ["song", 0]);
    expect(played.properties).toMatchObject({
      $source: "amplitude",
      song: 0,
      $anonymous_id: "amp-dev-0",
    });
  });

  it("refuses what it cannot take, by source, with the status each SDK acts on", async () => {
    const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${base}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body),
      }).then(async (r) => ({ status: r.status, body: await r.json() }));
    const basic = (key: string) => ({
      authorization: `Basic ${Buffer.from(`${key}:`).toString("base64")}`,
    });
    // A wrong key: 401 (an SDK drops the batch rather than retry).
    expect(
      (
        await post(
          "/v1/batch",
          { batch: [{ type: "track", userId: "x", event: "e" }] },
          basic("nope"),
        )
      ).status,
    ).toBe(401);
    // A read-only key may not ingest.
    expect(
      (
        await post(
          "/v1/batch",
          { batch: [{ type: "track", userId: "x", event: "e" }] },
          basic("reader"),
        )
      ).status,
    ).toBe(403);
    // Missing user refused alone: the other event of the batch counts.
    const mixed = await post(
      "/v1/batch",
      {
        batch: [
          { type: "track", event: "bad-no-user", messageId: "bad-1" },
          { type: "track", userId: "bad-user-ok", event: "good", messageId: "bad-2" },
        ],
      },
      basic(KEY),
    );
    expect(mixed).toEqual({ status: 200, body: { success: true } });
    // Broken gzip, undecodable lz64, too big once decompressed: 400, 400, 413.
    const gz = await fetch(`${base}/batch/`, {
      method: "POST",
      headers: { "content-type": "application/json", "content-encoding": "gzip" },
      body: new Uint8Array([0x1f, 0x8b, 1, 2, 3]),
    });
    expect(gz.status).toBe(400);
    expect(((await gz.json()) as { message: string }).message).toMatch(/gzip/);
    const lz = await fetch(`${base}/e/?compression=lz64`, {
      method: "POST",
      body: "data=%%%notlz",
    });
    expect(lz.status).toBe(400);
    // A batch over the size limit once decompressed: 413 naming the cap.
    const bomb = await fetch(`${base}/v1/batch`, {
      method: "POST",
      headers: { "content-type": "application/json", "content-encoding": "gzip", ...basic(KEY) },
      body: gzipSync(
        JSON.stringify({
          batch: [
            { type: "track", userId: "x", event: "e", properties: { pad: "x".repeat(9 << 20) } },
          ],
        }),
      ),
    });
    expect(bomb.status).toBe(413);
    expect(((await bomb.json()) as { message: string }).message).toMatch(
      /larger than 8388608 bytes once decompressed/,
    );
    // Browsers ask first: the routes answer CORS preflights.
    const preflight = await fetch(`${base}/v1/batch`, {
      method: "OPTIONS",
      headers: {
        origin: "http://site.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("*");
    expect(preflight.headers.get("access-control-allow-headers")).toMatch(/Authorization/i);
    // Amplitude: none valid -> 400 naming the events by field, so the SDK drops them.
    const amp = await post("/2/httpapi", {
      api_key: KEY,
      events: [{ event_type: "x" }, { user_id: "u" }],
    });
    expect(amp).toEqual({
      status: 400,
      body: {
        code: 400,
        error: expect.stringContaining("no event was accepted"),
        events_with_invalid_fields: { user_id: [0], event_type: [1] },
      },
    });
    const wrong = await post("/2/httpapi", {
      api_key: "nope",
      events: [{ event_type: "x", user_id: "u" }],
    });
    expect(wrong.status).toBe(401);
    expect((wrong.body as { error: string }).error).toMatch(/^Invalid API key/);
    // A time years ahead is clamped to now, the raw value kept.
    const ahead = await post("/capture/", {
      api_key: KEY,
      event: "future",
      distinct_id: "bad-future",
      timestamp: "2099-01-01T00:00:00Z",
    });
    expect(ahead).toEqual({ status: 200, body: { status: 1 } });
    await waitFor(
      () => stored("bad-"),
      (s) => s.good === 1 && s.future === 1,
    );
    const future = await propertiesOf("bad-future", "future");
    expect(future.properties.$source_timestamp).toBe("2099-01-01T00:00:00Z");
  });

  it("counts each event once when answers are lost after storing, or refused before, and every SDK retries", async () => {
    const proxy = await startFlakyProxy(base, { lostAnswer: 3, refused: 5 });
    try {
      const segment = new SegmentAnalytics({
        writeKey: KEY,
        host: proxy.url,
        maxEventsInBatch: 10,
        flushInterval: 20,
        maxRetries: 10,
      });
      const posthog = new PostHog(KEY, {
        host: proxy.url,
        flushAt: 10,
        flushInterval: 20,
        fetchRetryDelay: 10,
        fetchRetryCount: 10,
      });
      const amplitude = createAmplitude();
      await amplitude.init(KEY, {
        serverUrl: `${proxy.url}/2/httpapi`,
        flushQueueSize: 10,
        flushIntervalMillis: 20,
        flushMaxRetries: 10,
        logLevel: 0,
      }).promise;
      for (let i = 0; i < 60; i++) {
        segment.track({ userId: `retry-seg-${i % 3}`, event: "retried" });
        posthog.capture({ distinctId: `retry-ph-${i % 3}`, event: "retried" });
        amplitude.track("retried", undefined, { user_id: `retry-amp-${i % 3}` });
      }
      // Amplitude's own timer sends its events: its flush() sends without retrying (by design).
      await Promise.all([segment.flush(), posthog.flush()]);
      // An SDK goes on retrying after its flush has answered: wait with it open.
      const prefixes = ["retry-seg-", "retry-ph-", "retry-amp-"];
      const counts = await waitFor(
        async () =>
          Object.fromEntries(
            await Promise.all(prefixes.map(async (p) => [p, (await stored(p)).retried])),
          ),
        (c) => prefixes.every((p) => c[p] === 60),
        40_000,
      );
      expect(counts).toEqual({ "retry-seg-": 60, "retry-ph-": 60, "retry-amp-": 60 });
      await Promise.all([segment.closeAndFlush(), posthog.shutdown()]);
      // Nothing arrives twice later.
      await new Promise((r) => setTimeout(r, 500));
      for (const p of prefixes) expect(await stored(p), p).toEqual({ retried: 60 });
      expect(proxy.faults.lostAnswers).toBeGreaterThan(0);
      expect(proxy.faults.refused).toBeGreaterThan(0);
    } finally {
      await proxy.close();
    }
  });

  it("answers the settings analytics.js starts from, pointing it back here", async () => {
    const res = await fetch(`${base}/v1/projects/${KEY}/settings`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      integrations: {
        "Segment.io": { apiKey: KEY, apiHost: `127.0.0.1:${tally.port}/v1`, protocol: "http" },
      },
    });
  });
});
