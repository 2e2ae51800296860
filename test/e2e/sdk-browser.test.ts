import { existsSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Tally } from "../../src/app/tally.ts";
import { launchChromium } from "../chromium.ts";
import { realServices, start, testConfig, waitFor } from "../helpers.ts";

const MODULES = join(import.meta.dirname, "../../node_modules");
const KEY = "browser-key";

/**
 * The browser SDKs, as a site would load them, in Debian's Chromium: a page
 * on a server of its own (another origin than Tally's, so CORS is real)
 * loads posthog-js and Segment's analytics.js (analytics-next) from their
 * npm builds, pointed at Tally, and sends events.
 */
describe("posthog-js and analytics.js in a real browser, against Tally (RabbitMQ, Redis, chDB)", () => {
  let tally: Tally;
  let tallyUrl: string;
  let site: Server;
  let siteUrl: string;
  let browser: Browser;
  beforeAll(async () => {
    tally = await start(testConfig({ ...realServices(), TALLY_API_KEYS: `${KEY}:ingest` }));
    tallyUrl = `http://127.0.0.1:${tally.port}`;
    // The site: its page, the SDKs' files, and analytics.js's CDN (settings from Tally, bundles from npm).
    site = createServer(async (req, res) => {
      const url = req.url ?? "/";
      if (url.startsWith("/v1/projects/")) {
        const answer = await fetch(`${tallyUrl}${url}`);
        res.writeHead(answer.status, { "content-type": "application/json" });
        return res.end(await answer.text());
      }
      const files: Record<string, string> = {
        "/posthog.js": join(MODULES, "posthog-js/dist/array.full.js"),
        "/analytics.js": join(MODULES, "@segment/analytics-next/dist/umd/index.js"),
      };
      const bundle = /^\/analytics-next\/bundles\/([\w.-]+\.js)$/.exec(url)?.[1];
      const file =
        files[url] ?? (bundle && join(MODULES, "@segment/analytics-next/dist/umd", bundle));
      if (file && existsSync(file)) {
        res.writeHead(200, { "content-type": "text/javascript" });
        return res.end(readFileSync(file));
      }
      if (url === "/") {
        res.writeHead(200, { "content-type": "text/html" });
        return res.end('<!doctype html><meta charset="utf-8"><title>site</title><p>site</p>');
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => site.listen(0, "127.0.0.1", r));
    siteUrl = `http://127.0.0.1:${(site.address() as { port: number }).port}`;
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise((r) => site?.close(r));
    await tally?.close();
  });

  async function stored(prefix: string) {
    const rows = await tally.warehouse.query<{ event_type: string; n: string }>(
      `SELECT event_type, count() AS n FROM ${tally.warehouse.db}.events FINAL
       WHERE startsWith(user_id, {prefix:String}) GROUP BY event_type ORDER BY event_type`,
      { prefix },
    );
    return Object.fromEntries(rows.map((r) => [r.event_type, Number(r.n)]));
  }

  it("posthog-js: captures and an identify reach Tally, each once", async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(siteUrl);
    await page.addScriptTag({ url: `${siteUrl}/posthog.js` });
    await page.evaluate(
      ({ key, host }) => {
        const posthog = (
          globalThis as unknown as { posthog: Record<string, (...a: unknown[]) => unknown> }
        ).posthog;
        posthog.init?.(key, {
          api_host: host,
          autocapture: false,
          capture_pageview: false,
          capture_pageleave: false,
          disable_session_recording: true,
          advanced_disable_flags: true,
          advanced_disable_decide: true,
          persistence: "memory",
          // Headless Chromium's user agent reads as a bot, whose events posthog-js drops.
          opt_out_useragent_filter: true,
        });
        posthog.identify?.("web-ph-1");
        for (let i = 0; i < 20; i++) posthog.capture?.("clicked", { i });
      },
      { key: KEY, host: tallyUrl },
    );
    const counts = await waitFor(
      () => stored("web-ph-"),
      (s) => s.clicked === 20 && s.$identify === 1,
      30_000,
    );
    expect(counts).toEqual({ $identify: 1, clicked: 20 });
    expect(errors).toEqual([]);
    await page.close();
  });

  it("analytics.js (analytics-next): loads its settings from Tally and sends track, page and identify", async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(siteUrl);
    await page.addScriptTag({ url: `${siteUrl}/analytics.js` });
    await page.evaluate(
      async ({ key, cdn }) => {
        const { AnalyticsBrowser } = (
          globalThis as unknown as {
            AnalyticsNext: {
              AnalyticsBrowser: {
                load(
                  s: object,
                ): PromiseLike<unknown> & Record<string, (...a: unknown[]) => Promise<unknown>>;
              };
            };
          }
        ).AnalyticsNext;
        const analytics = AnalyticsBrowser.load({ writeKey: key, cdnURL: cdn });
        await analytics.identify?.("web-seg-1", { plan: "pro" });
        await analytics.page?.();
        for (let i = 0; i < 10; i++) await analytics.track?.("Viewed", { i });
      },
      { key: KEY, cdn: siteUrl },
    );
    const counts = await waitFor(
      () => stored("web-seg-"),
      (s) => s.Viewed === 10 && s.$identify === 1 && s.$pageview === 1,
      30_000,
    );
    expect(counts).toEqual({ $identify: 1, $pageview: 1, Viewed: 10 });
    expect(errors).toEqual([]);
    await page.close();
  });
});
