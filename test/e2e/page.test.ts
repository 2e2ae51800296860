import { copyFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AnalyticsService } from "../../gen/tally/v1/analytics_pb.js";
import { IngestService } from "../../gen/tally/v1/ingest_pb.js";
import { UsersService } from "../../gen/tally/v1/users_pb.js";
import { restRoutes } from "../../src/api/rest/transcoder.ts";
import { WEB_DIST } from "../../src/api/static-files.ts";
import type { Tally } from "../../src/app/tally.ts";
import { runImport } from "../../src/cli/import/importer.ts";
import { launchChromium } from "../chromium.ts";
import { rest } from "../clients.ts";
import {
  realServices,
  rng,
  start,
  testConfig,
  uuidFrom,
  waitFor,
  warehouseCounts,
} from "../helpers.ts";
import { tempDir } from "../temp-dirs.ts";

/** Where the screenshots go, for a person to look at after the run. */
const SCREENSHOTS = join(import.meta.dirname, "../artifacts");
const SAMPLE = join(import.meta.dirname, "../../data/events_sample.csv");
const KEY = "page-key";
/** The promise: an accepted event shows in the live panel within a second. */
const LIVE_WITHIN_MS = 1000;
/** True in the page once every panel has answered (a string: it runs there, not here). */
/** The new panels' defaults, as the page asks them. */
const FUNNEL = "step=page_view&step=add_to_cart&step=purchase&window=14d&mode=ordered&breakdown=";
const TREND = "event_type=&measure=events&interval=day&breakdown=event_type&limit=5";
const ANSWERED = `document.querySelector("#status")?.textContent?.includes("answered")`;

describe("the analytics page in a real browser, against the real pipeline", () => {
  let tally: Tally;
  let base: string;
  let browser: Browser;
  let page: Page;
  const auth = { headers: { authorization: `Bearer ${KEY}` } };
  const api = async <T>(path: string) => {
    const res = await rest(Number(new URL(base).port), path, undefined, auth);
    expect(res.status, `${path}: ${JSON.stringify(res.body)}`).toBe(200);
    return res.body as T;
  };

  beforeAll(async () => {
    if (!existsSync(join(WEB_DIST, "index.html"))) {
      throw new Error("the page is not built: npm run build:web");
    }
    tally = await start(testConfig({ ...realServices(), TALLY_API_KEYS: KEY }));
    base = `http://127.0.0.1:${tally.port}`;
    // The README's sample data, imported the way a user would.
    const input = join(tempDir("tally-page-"), "events_sample.csv");
    copyFileSync(SAMPLE, input);
    const ids = new Set(
      readFileSync(SAMPLE, "utf8")
        .split("\n")
        .slice(1)
        .map((l) => l.split(",")[0])
        .filter((id) => id !== ""),
    );
    await runImport(
      {
        input,
        url: base,
        apiKey: KEY,
        batchSize: 1000,
        segmentRows: 20_000,
        dryRun: false,
        restart: true,
      },
      { bytesRead: 0, totalBytes: undefined, rowsRead: 0, rowsDone: 0 },
    );
    await waitFor(
      () => warehouseCounts(tally),
      (c) => c.ids === ids.size,
    );
    mkdirSync(SCREENSHOTS, { recursive: true });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1200, height: 1600 } });
    page.on("pageerror", (e) => pageErrors.push(e.message));
  });
  // An uncaught error in the page fails the test it happened in.
  const pageErrors: string[] = [];
  afterEach(() => {
    expect(pageErrors.splice(0)).toEqual([]);
  });
  afterAll(async () => {
    await browser?.close();
    await tally?.close();
  });

  /** Clicks Show and waits for every panel to have answered. */
  async function show() {
    await page.locator("#status").evaluate((el) => {
      el.textContent = "";
    });
    await page.getByRole("button", { name: "Show", exact: true }).click();
    await page.waitForFunction(ANSWERED);
  }

  const chartSeries = (key: string) =>
    page.$$eval(`#active-chart g[data-series="${key}"] circle`, (dots) =>
      dots.map((d) => ({
        date: d.getAttribute("data-date"),
        value: Number(d.getAttribute("data-value")),
      })),
    );
  const tableRows = (selector: string) =>
    page.$$eval(`${selector} tr`, (rows) =>
      rows.slice(1).map((r) => [...r.cells].map((c) => c.textContent ?? "")),
    );
  const number = (text: string | undefined) => Number((text ?? "").replaceAll(",", ""));

  async function expectPanelsMatchRest(q: URLSearchParams) {
    const dau = await api<{ date: string; unique_users: number }[]>(`/stats/dau?${q}`);
    expect(await chartSeries("dau")).toEqual(
      dau.map((d) => ({ date: d.date, value: d.unique_users })),
    );
    for (const [key, window] of [
      ["wau", "week"],
      ["mau", "month"],
    ]) {
      const active = await api<{ date: string; active_users: number }[]>(
        `/stats/active-users?${q}&window=${window}`,
      );
      expect(await chartSeries(key as string)).toEqual(
        active.map((d) => ({ date: d.date, value: d.active_users })),
      );
    }
    const top = await api<{ event_type: string; count: number }[]>(
      `/stats/top-events?${q}&limit=10`,
    );
    expect((await tableRows("#top-events")).map(([type, count]) => [type, number(count)])).toEqual(
      top.map((e) => [e.event_type, e.count]),
    );
    const r = new URLSearchParams(q);
    r.set("start_date", q.get("from") ?? "");
    r.set("end_date", q.get("to") ?? "");
    r.delete("from");
    r.delete("to");
    const cohorts = await api<{ cohort: string; size: number; retained: number[] }[]>(
      `/stats/retention?${r}&granularity=week&windows=4`,
    );
    const heatmap = await page.$$eval("#retention tr", (rows) =>
      rows.slice(1).map((row) => ({
        cohort: row.cells[0]?.textContent,
        size: row.cells[1]?.textContent,
        retained: [...row.cells].slice(2).map((c) => Number(c.getAttribute("data-retained"))),
      })),
    );
    expect(heatmap).toEqual(
      cohorts.map((c) => ({
        cohort: c.cohort,
        size: c.size.toLocaleString("en-US"),
        retained: c.retained,
      })),
    );
    expect(cohorts.length).toBeGreaterThan(0);
    await expectNewPanelsMatchRest(q);
  }

  /** The funnel, trends, lifecycle and stickiness panels, each against its REST route. */
  async function expectNewPanelsMatchRest(q: URLSearchParams, funnel = FUNNEL, trend = TREND) {
    const f = await api<{
      steps: { users: number }[];
      breakdowns: { value: string; steps: { users: number }[] }[];
    }>(`/stats/funnel?${q}&${funnel}`);
    const groups = new URLSearchParams(funnel).get("breakdown") ? f.breakdowns : [f];
    const shown = await page.$$eval("#funnel tr[data-step]", (rows) =>
      rows.map((r) => Number(r.getAttribute("data-users"))),
    );
    expect(shown).toEqual(groups.flatMap((g) => g.steps.map((s) => s.users)));
    // A segment on one type leaves a funnel through several empty; without one, someone entered.
    if (!q.has("segment")) expect(shown[0]).toBeGreaterThan(0);
    const t = await api<{
      series: { breakdown: string | null; points: { date: string; value: number }[] }[];
    }>(`/stats/trends?${q}&${trend}`);
    for (const series of t.series) {
      const dots = await page.$$eval(
        `#trends-chart g[data-series="${series.breakdown ?? "all"}"] circle`,
        (circles) =>
          circles.map((d) => ({
            date: d.getAttribute("data-date"),
            value: Number(d.getAttribute("data-value")),
          })),
      );
      expect(dots).toEqual(series.points);
    }
    expect(t.series.length).toBeGreaterThan(0);
    const bars = (chart: string) =>
      page.$$eval(`${chart} rect`, (rects) =>
        rects.map((r) => [
          r.getAttribute("data-bar"),
          r.getAttribute("data-part"),
          Number(r.getAttribute("data-value")),
        ]),
      );
    const life = await api<Record<string, number | string>[]>(
      `/stats/lifecycle?${q}&interval=week`,
    );
    expect(await bars("#lifecycle-chart")).toEqual(
      life.flatMap((p) =>
        ["new", "returning", "resurrecting", "dormant"].map((k) => [p.date, k, p[k]]),
      ),
    );
    const sticky = await api<{ periods: number; users: number }[]>(
      `/stats/stickiness?${q}&interval=day`,
    );
    expect((await bars("#stickiness-chart")).map(([, , users]) => users)).toEqual(
      sticky.map((p) => p.users),
    );
  }

  it("asks for a key, keeps it, and shows the sample data with the REST routes' numbers", async () => {
    await page.goto(base);
    const error = page.getByRole("alert");
    await error.waitFor();
    expect(await error.textContent()).toMatch(/API key is required.*Enter an API key/);
    // The live panel waits for a key too, rather than retrying in vain.
    await page.waitForFunction(
      `document.querySelector("#live-status")?.textContent?.startsWith("Not live: an API key is required")`,
    );

    await page.getByLabel("API key").fill(KEY);
    await show();
    // The default range: the last 30 days that hold data.
    const range = await api<{ first_date: string; last_date: string }>("/stats/range");
    expect(range.last_date).toBe("2025-10-30");
    expect(await page.getByLabel("From", { exact: true }).inputValue()).toBe("2025-10-01");
    expect(await page.getByLabel("To", { exact: true }).inputValue()).toBe(range.last_date);
    await expectPanelsMatchRest(
      new URLSearchParams({ from: "2025-10-01", to: "2025-10-30", tz: "UTC" }),
    );
    await page.screenshot({ path: join(SCREENSHOTS, "page.png"), fullPage: true });

    // The key stays in the browser: a new visit needs no typing.
    await page.reload();
    await page.waitForFunction(ANSWERED);
    expect(await page.getByLabel("API key").inputValue()).toBe(KEY);
    expect(await page.getByRole("alert").isHidden()).toBe(true);
  });

  it("applies the segment and time-zone pickers to every panel as the API does", async () => {
    await page.getByLabel("Segments, one per line").fill("event_type:purchase");
    await page.getByLabel("Time zone").fill("Europe/Kyiv");
    await show();
    expect(await page.locator("#status").textContent()).toContain("Europe/Kyiv");
    const q = new URLSearchParams({ from: "2025-10-01", to: "2025-10-30", tz: "Europe/Kyiv" });
    q.append("segment", "event_type:purchase");
    await expectPanelsMatchRest(q);
    expect((await tableRows("#top-events")).map(([type]) => type)).toEqual(["purchase"]);
    // The choices are in the address, to share.
    expect(new URL(page.url()).searchParams.getAll("segment")).toEqual(["event_type:purchase"]);
    await page.screenshot({ path: join(SCREENSHOTS, "page-segment-kyiv.png"), fullPage: true });
  });

  it("draws a funnel and a trend with the choices made in their panels, as the API answers them", async () => {
    const funnel = page.getByRole("form", { name: "Funnel" });
    await funnel.getByLabel("Steps, in order, comma-separated").fill("signup, page_view, purchase");
    await funnel.getByLabel("Window").fill("7d");
    await funnel.getByLabel("Mode").selectOption("strict");
    await funnel.getByLabel("Breakdown").fill("properties.country");
    const trends = page.getByRole("form", { name: "Trends" });
    await trends.getByLabel("Measure").fill("users");
    await trends.getByLabel("Per").selectOption("week");
    await trends.getByLabel("Breakdown").fill("properties.plan");
    await trends.getByLabel("Series").fill("2");
    await show();
    const q = new URLSearchParams({ from: "2025-10-01", to: "2025-10-30", tz: "Europe/Kyiv" });
    q.append("segment", "event_type:purchase");
    // Segment off: a funnel through three types needs them all.
    await page.getByLabel("Segments, one per line").fill("");
    await show();
    q.delete("segment");
    await expectNewPanelsMatchRest(
      q,
      "step=signup&step=page_view&step=purchase&window=7d&mode=strict&breakdown=properties.country",
      "event_type=&measure=users&interval=week&breakdown=properties.plan&limit=2",
    );
    // A bad window is said in the page, naming the parameter.
    await funnel.getByLabel("Window").fill("2w");
    await funnel.getByRole("button", { name: "Show funnel" }).click();
    const error = page.getByRole("alert");
    await error.waitFor();
    expect(await error.textContent()).toContain("window:");
    await funnel.getByLabel("Window").fill("7d");
    await funnel.getByRole("button", { name: "Show funnel" }).click();
    await error.waitFor({ state: "hidden" });
    await page.screenshot({ path: join(SCREENSHOTS, "page-funnel-trends.png"), fullPage: true });
  });

  it("looks a person up: what is stored about them, and their events newest first, page by page", async () => {
    const panel = page.getByRole("form", { name: "A person" });
    await panel.getByLabel("User id").fill("user_9");
    await panel.getByRole("button", { name: "Look up" }).click();
    const person = await api<{ events: number; active_days: number; first_seen: string }>(
      "/users/user_9",
    );
    await page.waitForFunction(
      `document.querySelector("#person-summary")?.textContent?.startsWith("user_9:")`,
    );
    expect(await page.locator("#person-summary").textContent()).toBe(
      `user_9: ${person.events.toLocaleString("en-US")} events on ${person.active_days} active days, first seen ${person.first_seen}, last seen ${(await api<{ last_seen: string }>("/users/user_9")).last_seen}`,
    );
    const shown = () =>
      page.$$eval("#person-events tr[data-event-id]", (rows) =>
        rows.map((r) => r.getAttribute("data-event-id")),
      );
    const first = await api<{ events: { event_id: string }[]; next: string }>(
      "/users/user_9/events?limit=50",
    );
    await page.waitForFunction(
      `document.querySelectorAll("#person-events tr[data-event-id]").length === 50`,
    );
    expect(await shown()).toEqual(first.events.map((e) => e.event_id));
    await page.getByRole("button", { name: "Older events" }).click();
    const second = await api<{ events: { event_id: string }[] }>(
      `/users/user_9/events?limit=50&before=${first.next}`,
    );
    await page.waitForFunction(
      `document.querySelectorAll("#person-events tr[data-event-id]").length === ${50 + second.events.length}`,
    );
    expect(await shown()).toEqual([...first.events, ...second.events].map((e) => e.event_id));
    await page.screenshot({ path: join(SCREENSHOTS, "page-person.png"), fullPage: true });
    await panel.getByLabel("User id").fill("nobody-at-all");
    await panel.getByRole("button", { name: "Look up" }).click();
    await page.waitForFunction(
      `document.querySelector("#person-summary")?.textContent === 'Nothing is stored about "nobody-at-all".'`,
    );
    expect(await shown()).toEqual([]);
  });

  it("shows a POST /events in the live panel within a second", async () => {
    await page.waitForFunction(
      `document.querySelector("#live-status")?.textContent?.startsWith("Live")`,
    );
    const id = uuidFrom(rng(1001));
    const posted = performance.now();
    const res = await rest(
      Number(tally.port),
      "/events",
      [
        {
          event_id: id,
          occurred_at: new Date().toISOString(),
          user_id: "live-user",
          event_type: "live_check",
        },
      ],
      auth,
    );
    expect(res.status).toBe(202);
    const item = page.locator(`#live-events li[data-event-id="${id}"]`);
    await item.waitFor({ timeout: 5000 });
    expect(performance.now() - posted).toBeLessThan(LIVE_WITHIN_MS);
    expect(await item.textContent()).toContain("live_check  live-user");
    await page.screenshot({ path: join(SCREENSHOTS, "page-live.png"), fullPage: true });
  });

  it("passes axe's WCAG 2 A and AA checks (labels, contrast, structure)", async () => {
    const axe = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
    await page.addScriptTag({ path: axe });
    const violations = await page.evaluate(
      `axe.run({ runOnly: ["wcag2a", "wcag2aa"] })
         .then((r) => r.violations.map((v) => v.id + " (" + v.nodes.length + " elements)"))`,
    );
    expect(violations).toEqual([]);
  });

  it("renders every annotated REST route in Swagger UI at /docs/", async () => {
    await page.goto(`${base}/docs/`);
    await page.locator(".opblock").first().waitFor();
    const shown = await page.$$eval(".opblock-summary", (ops) =>
      ops.map(
        (op) =>
          `${op.querySelector(".opblock-summary-method")?.textContent} ${op.querySelector(".opblock-summary-path")?.getAttribute("data-path")}`,
      ),
    );
    const annotated = restRoutes([IngestService, AnalyticsService, UsersService]).map(
      (r) => `${r.verb} ${r.path}`,
    );
    expect(shown.sort()).toEqual(annotated.sort());
    await page.screenshot({ path: join(SCREENSHOTS, "docs.png"), fullPage: true });
  });
});
