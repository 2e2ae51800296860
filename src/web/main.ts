import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { barChart, lineChart, type Series } from "./chart.ts";
import { analytics, apiKey, ingest, users } from "./client.ts";

const $ = <T extends Element>(selector: string) => document.querySelector(selector) as T;
const controls = $<HTMLFormElement>("#controls");
const field = <T extends Element>(form: HTMLFormElement, name: string) =>
  form.elements.namedItem(name) as unknown as T;
const fromInput = field<HTMLInputElement>(controls, "from");
const toInput = field<HTMLInputElement>(controls, "to");
const tzInput = field<HTMLInputElement>(controls, "tz");
const segmentsInput = field<HTMLTextAreaElement>(controls, "segments");
const keyInput = field<HTMLInputElement>(controls, "key");
const retentionControls = $<HTMLFormElement>("#retention-controls");
const liveControls = $<HTMLFormElement>("#live-controls");
const funnelControls = $<HTMLFormElement>("#funnel-controls");
const trendsControls = $<HTMLFormElement>("#trends-controls");
const lifecycleControls = $<HTMLFormElement>("#lifecycle-controls");
const stickinessControls = $<HTMLFormElement>("#stickiness-controls");
const value = (form: HTMLFormElement, name: string) =>
  field<HTMLInputElement | HTMLSelectElement>(form, name).value.trim();

/** What every stats call is asked, from the controls. */
interface Query {
  from: string;
  to: string;
  tz: string;
  segment: string[];
}

function query(): Query {
  return {
    from: fromInput.value,
    to: toInput.value,
    tz: tzInput.value.trim() || "UTC",
    segment: segmentsInput.value
      .split("\n")
      .map((s) => s.trim())
      .filter((s) => s !== ""),
  };
}

const addDays = (date: string, days: number) =>
  new Date(Date.parse(date) + days * 86_400_000).toISOString().slice(0, 10);

/** A failed call, said so a person can act on it. */
function describe(err: unknown): string {
  const e = ConnectError.from(err);
  if (e.code === Code.Unauthenticated || e.code === Code.PermissionDenied) {
    return `${e.rawMessage}. Enter an API key with the read scope above, then Show.`;
  }
  return e.rawMessage;
}

function showError(err: unknown) {
  const box = $<HTMLParagraphElement>("#error");
  box.textContent = describe(err);
  box.hidden = false;
}

function row(cells: (string | number)[], header = false): HTMLTableRowElement {
  const tr = document.createElement("tr");
  cells.forEach((cell, i) => {
    const td = document.createElement(header || i === 0 ? "th" : "td");
    if (header) td.setAttribute("scope", "col");
    else if (i === 0) td.setAttribute("scope", "row");
    td.textContent = typeof cell === "number" ? cell.toLocaleString("en-US") : cell;
    tr.append(td);
  });
  return tr;
}

/** Replaces a table's rows, keeping its caption. */
function fill(table: HTMLTableElement, rows: HTMLTableRowElement[]) {
  for (const r of [...table.rows]) r.remove();
  table.append(...rows);
}

const SERIES = [
  { window: "day", key: "dau", label: "Daily", colour: "#0b5cad" },
  { window: "week", key: "wau", label: "Weekly (7 days)", colour: "#b3501d" },
  { window: "month", key: "mau", label: "Monthly (30 days)", colour: "#2e7d32" },
] as const;

async function showActiveUsers(q: Query) {
  const answers = await Promise.all(
    SERIES.map((s) => analytics.getActiveUsers({ ...q, window: s.window })),
  );
  const series: Series[] = SERIES.map((s, i) => ({
    ...s,
    points: (answers[i]?.days ?? []).map((d) => ({ date: d.date, value: Number(d.activeUsers) })),
  }));
  $("#active-chart").replaceChildren(
    lineChart(series, `Daily, weekly and monthly active users from ${q.from} to ${q.to}`),
  );
  legend("#active-legend", series);
  fill($<HTMLTableElement>("#active-table"), [
    row(["Day", ...series.map((s) => s.label)], true),
    ...(series[0]?.points ?? []).map((p, i) =>
      row([p.date, ...series.map((s) => s.points[i]?.value ?? 0)]),
    ),
  ]);
}

/** A legend: a swatch of each series' colour and its label. */
function legend(selector: string, series: readonly { label: string; colour: string }[]) {
  $(selector).replaceChildren(
    ...series.map((s) => {
      const li = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.style.background = s.colour;
      li.append(swatch, s.label);
      return li;
    }),
  );
}

/** Dark enough on white, and apart from each other. */
const PALETTE = ["#0b5cad", "#b3501d", "#2e7d32", "#7b1fa2", "#c2185b", "#00796b", "#5d4037"];
const percent = (rate: number) => `${(rate * 100).toFixed(1)}%`;

/** Seconds as the largest unit that keeps them readable. */
function duration(seconds: number | undefined): string {
  if (seconds === undefined) return "–";
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${(seconds / 60).toFixed(1)} min`;
  if (seconds < 86_400) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86_400).toFixed(1)} d`;
}

async function showFunnel(q: Query) {
  const breakdown = value(funnelControls, "breakdown");
  const answer = await analytics.getFunnel({
    ...q,
    step: value(funnelControls, "steps")
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== ""),
    window: value(funnelControls, "window"),
    mode: value(funnelControls, "mode"),
    breakdown,
  });
  const groups = breakdown === "" ? [{ value: "", steps: answer.steps }] : answer.breakdowns;
  const head = ["Step", "Users", "Conversion", "From previous", "Median time from previous"];
  fill($<HTMLTableElement>("#funnel"), [
    row(breakdown === "" ? head : [breakdown, ...head], true),
    ...groups.flatMap((g) =>
      g.steps.map((step, k) => {
        const label = `${k + 1}. ${step.eventType}`;
        const tr = row(
          breakdown === "" ? [label, Number(step.users)] : [g.value, label, Number(step.users)],
        );
        tr.dataset.step = String(k + 1);
        tr.dataset.users = String(step.users);
        const bar = document.createElement("td");
        const fillBar = document.createElement("span");
        fillBar.className = "bar";
        fillBar.style.width = `${(step.rate * 8).toFixed(2)}rem`;
        bar.append(percent(step.rate), fillBar);
        const previous = document.createElement("td");
        previous.textContent = percent(step.rateFromPrevious);
        const time = document.createElement("td");
        time.textContent = duration(step.medianSecondsFromPrevious);
        tr.append(bar, previous, time);
        return tr;
      }),
    ),
  ]);
}

async function showTrends(q: Query) {
  const limit = Number(value(trendsControls, "limit")) || 5;
  const { series } = await analytics.getTrends({
    ...q,
    eventType: value(trendsControls, "eventType"),
    measure: value(trendsControls, "measure"),
    interval: value(trendsControls, "interval"),
    breakdown: value(trendsControls, "breakdown"),
    limit,
  });
  const lines: Series[] = series.map((s, i) => ({
    key: s.breakdown ?? "all",
    label: s.breakdown ?? "All",
    colour: PALETTE[i % PALETTE.length] as string,
    points: s.points.map((p) => ({ date: p.date, value: p.value })),
  }));
  $("#trends-chart").replaceChildren(lineChart(lines, `Trends from ${q.from} to ${q.to}`));
  legend("#trends-legend", lines);
  fill($<HTMLTableElement>("#trends-table"), [
    row(["Period", ...lines.map((s) => s.label)], true),
    ...(lines[0]?.points ?? []).map((p, i) =>
      row([p.date, ...lines.map((s) => Number((s.points[i]?.value ?? 0).toFixed(2)))]),
    ),
  ]);
}

const LIFECYCLE = [
  { key: "new", label: "New", colour: "#2e7d32" },
  { key: "returning", label: "Returning", colour: "#0b5cad" },
  { key: "resurrecting", label: "Resurrecting", colour: "#7b1fa2" },
  { key: "dormant", label: "Dormant", colour: "#b3501d" },
] as const;

async function showLifecycle(q: Query) {
  const { periods } = await analytics.getLifecycle({
    ...q,
    interval: value(lifecycleControls, "interval"),
  });
  const bars = periods.map((p) => ({
    label: p.date,
    parts: LIFECYCLE.map((k) => ({ ...k, value: Number(p[k.key]) })),
  }));
  $("#lifecycle-chart").replaceChildren(
    barChart(bars, `New, returning, resurrecting and dormant users from ${q.from} to ${q.to}`),
  );
  legend("#lifecycle-legend", LIFECYCLE);
  fill($<HTMLTableElement>("#lifecycle-table"), [
    row(["Period", ...LIFECYCLE.map((k) => k.label)], true),
    ...bars.map((b) => row([b.label, ...b.parts.map((p) => p.value)])),
  ]);
}

async function showStickiness(q: Query) {
  const interval = value(stickinessControls, "interval");
  const { periods } = await analytics.getStickiness({ ...q, interval, eventType: "" });
  const unit = interval === "week" ? "week" : "day";
  const bars = periods.map((p) => ({
    label: `${p.periods} ${unit}${p.periods === 1 ? "" : "s"}`,
    parts: [{ key: "users", label: "users", colour: "#0b5cad", value: Number(p.users) }],
  }));
  $("#stickiness-chart").replaceChildren(
    barChart(bars, `Users by how many ${unit}s of the range they were active on`),
  );
  fill($<HTMLTableElement>("#stickiness-table"), [
    row([`Active ${unit}s`, "Users"], true),
    ...bars.map((b) => row([b.label, b.parts[0]?.value ?? 0])),
  ]);
}

// The person panel: what is stored about one user, their events a page at a time.
const personControls = $<HTMLFormElement>("#person-controls");
let personNext: string | undefined;

async function showPerson(more = false) {
  const userId = value(personControls, "userId");
  const summary = $<HTMLParagraphElement>("#person-summary");
  const table = $<HTMLTableElement>("#person-events");
  const older = $<HTMLButtonElement>("#person-older");
  if (!more) {
    personNext = undefined;
    try {
      const u = await users.getUser({ userId });
      summary.textContent = `${u.userId}: ${Number(u.events).toLocaleString("en-US")} events on ${Number(u.activeDays).toLocaleString("en-US")} active days, first seen ${u.firstSeen}, last seen ${u.lastSeen}`;
    } catch (err) {
      if (ConnectError.from(err).code !== Code.NotFound) throw err;
      summary.textContent = `Nothing is stored about "${userId}".`;
      fill(table, []);
      older.hidden = true;
      return;
    }
    fill(table, [row(["Occurred at", "Event type", "Properties", "Event id"], true)]);
  }
  const page = await users.listUserEvents({ userId, limit: 50, before: personNext ?? "" });
  for (const e of page.events) {
    const tr = row([
      e.occurredAt ? timestampDate(e.occurredAt).toISOString() : "",
      e.eventType,
      JSON.stringify(e.properties ?? {}),
      e.eventId,
    ]);
    tr.dataset.eventId = e.eventId;
    table.append(tr);
  }
  personNext = page.next;
  older.hidden = page.next === undefined;
}

async function showTopEvents(q: Query) {
  const { events } = await analytics.getTopEvents({ ...q, limit: 10 });
  fill($<HTMLTableElement>("#top-events"), [
    row(["Event type", "Events"], true),
    ...events.map((e) => row([e.eventType, Number(e.count)])),
  ]);
}

/** Light to dark blue by rate, with black or white text, whichever contrasts more. */
function heat(cell: HTMLElement, rate: number) {
  const [r, g, b] = hslToRgb(212, 0.7, 0.97 - rate * 0.62);
  cell.style.background = `rgb(${r} ${g} ${b})`;
  // WCAG relative luminance: black text wins above ~0.18.
  const lin = (c: number) =>
    c / 255 <= 0.04045 ? c / 255 / 12.92 : ((c / 255 + 0.055) / 1.055) ** 2.4;
  const luminance = 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  cell.style.color = luminance > 0.18 ? "#000" : "#fff";
}

function hslToRgb(h: number, s: number, l: number): [number, number, number] {
  const k = (n: number) => (n + h / 30) % 12;
  const a = s * Math.min(l, 1 - l);
  const f = (n: number) => l - a * Math.max(-1, Math.min(k(n) - 3, 9 - k(n), 1));
  return [f(0), f(8), f(4)].map((v) => Math.round(v * 255)) as [number, number, number];
}

async function showRetention(q: Query) {
  const granularity = field<HTMLSelectElement>(retentionControls, "granularity").value;
  const windows = Number(field<HTMLInputElement>(retentionControls, "windows").value) || 4;
  const { cohorts } = await analytics.getRetention({
    startDate: q.from,
    endDate: q.to,
    windows,
    granularity,
    tz: q.tz,
    segment: q.segment,
  });
  const unit = granularity === "week" ? "Week" : "Day";
  const days = granularity === "week" ? 7 : 1;
  const head = row(
    ["Cohort", "Users", ...Array.from({ length: windows + 1 }, (_, k) => `${unit} ${k}`)],
    true,
  );
  const rows = cohorts.map((c) => {
    const tr = row([c.cohort, Number(c.size)]);
    c.rates.forEach((rate, k) => {
      const td = document.createElement("td");
      const retained = Number(c.retained[k] ?? 0n);
      td.textContent = `${(rate * 100).toFixed(1)}%`;
      td.title = `${retained.toLocaleString("en-US")} of ${Number(c.size).toLocaleString("en-US")}`;
      td.dataset.retained = String(retained);
      if (addDays(c.cohort, k * days) > q.to) {
        // That period has not been reached within the range: no rate to show yet.
        td.textContent = "–";
        td.title = "after the range";
      } else heat(td, rate);
      tr.append(td);
    });
    return tr;
  });
  fill($<HTMLTableElement>("#retention"), [head, ...rows]);
}

async function refresh() {
  $<HTMLParagraphElement>("#error").hidden = true;
  const status = $<HTMLParagraphElement>("#status");
  const q = query();
  status.textContent = "Loading…";
  const url = new URLSearchParams({ from: q.from, to: q.to, tz: q.tz });
  for (const s of q.segment) url.append("segment", s);
  history.replaceState(null, "", `?${url}`);
  const started = performance.now();
  try {
    await Promise.all([
      showActiveUsers(q),
      showTopEvents(q),
      showRetention(q),
      showFunnel(q),
      showTrends(q),
      showLifecycle(q),
      showStickiness(q),
    ]);
    const filters = q.segment.length > 0 ? `, where ${q.segment.join(" and ")}` : "";
    const ms = Math.round(performance.now() - started);
    status.textContent = `${q.from} to ${q.to} (${q.tz})${filters}: answered in ${ms} ms`;
  } catch (err) {
    status.textContent = "";
    showError(err);
  }
}

// The live panel: TailEvents over Connect, newest first, at most 100 kept.
let live: AbortController | undefined;

async function startLive() {
  live?.abort();
  const mine = new AbortController();
  live = mine;
  const status = $<HTMLParagraphElement>("#live-status");
  const list = $<HTMLOListElement>("#live-events");
  $<HTMLButtonElement>("#live-toggle").textContent = "Pause";
  status.textContent = "Connecting…";
  const filter = {
    eventType: field<HTMLInputElement>(liveControls, "eventType").value.trim(),
    userId: field<HTMLInputElement>(liveControls, "userId").value.trim(),
  };
  try {
    for await (const res of ingest.tailEvents(filter, { signal: mine.signal })) {
      status.textContent = "Live: events appear here as they are accepted.";
      const items = res.events.map((e) => {
        const li = document.createElement("li");
        li.dataset.eventId = e.eventId;
        const at = e.occurredAt ? timestampDate(e.occurredAt).toISOString() : "";
        li.textContent = `${at}  ${e.eventType}  ${e.userId}`;
        return li;
      });
      if (res.skipped > 0n) {
        const note = document.createElement("li");
        note.textContent = `… ${res.skipped} events skipped (this page fell behind)`;
        items.unshift(note);
      }
      list.prepend(...items.reverse());
      while (list.children.length > 100) list.lastElementChild?.remove();
    }
  } catch (err) {
    if (mine.signal.aborted) return;
    const code = ConnectError.from(err).code;
    if (code === Code.Unauthenticated || code === Code.PermissionDenied) {
      // Retrying cannot help; Show with a key restarts the tail.
      status.textContent = `Not live: ${describe(err)}`;
      return;
    }
    status.textContent = `Disconnected: ${describe(err)} Retrying in 3 s.`;
    setTimeout(() => live === mine && startLive(), 3000);
  }
}

function stopLive() {
  live?.abort();
  live = undefined;
  $<HTMLButtonElement>("#live-toggle").textContent = "Resume";
  $<HTMLParagraphElement>("#live-status").textContent = "Paused.";
}

/** Sets the range to the last 30 days holding data; false if the service could not say. */
async function pickDefaultRange(): Promise<boolean> {
  const range = await analytics.getDataRange({}).catch((err: unknown) => {
    showError(err);
    return undefined;
  });
  toInput.value = range?.lastDate || new Date().toISOString().slice(0, 10);
  fromInput.value = addDays(toInput.value, -29);
  return range !== undefined;
}

async function init() {
  // Suggestions only: any IANA name the service knows may be typed (Europe/Kyiv too).
  const zones = new Set(["UTC", Intl.DateTimeFormat().resolvedOptions().timeZone]);
  for (const zone of Intl.supportedValuesOf("timeZone")) zones.add(zone);
  $("#zones").replaceChildren(...[...zones].map((z) => new Option(z)));
  const url = new URLSearchParams(location.search);
  keyInput.value = apiKey.get();
  tzInput.value = url.get("tz") ?? "UTC";
  segmentsInput.value = url.getAll("segment").join("\n");
  let rangeKnown = url.has("from") && url.has("to");
  if (rangeKnown) {
    fromInput.value = url.get("from") ?? "";
    toInput.value = url.get("to") ?? "";
  } else rangeKnown = await pickDefaultRange();

  controls.addEventListener("submit", async (e) => {
    e.preventDefault();
    apiKey.set(keyInput.value);
    // Without a key the service could not say where the data is; now it may.
    if (!rangeKnown) rangeKnown = await pickDefaultRange();
    void refresh();
    if (live !== undefined) void startLive(); // the key may have changed
  });
  retentionControls.addEventListener("change", () => void showRetention(query()).catch(showError));
  retentionControls.addEventListener("submit", (e) => e.preventDefault());
  // Each panel's own choices redraw it alone.
  for (const [form, show] of [
    [funnelControls, showFunnel],
    [trendsControls, showTrends],
    [lifecycleControls, showLifecycle],
    [stickinessControls, showStickiness],
  ] as const) {
    const redraw = () => {
      $<HTMLParagraphElement>("#error").hidden = true;
      void show(query()).catch(showError);
    };
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      redraw();
    });
    if (form === lifecycleControls || form === stickinessControls) {
      form.addEventListener("change", redraw);
    }
  }
  personControls.addEventListener("submit", (e) => {
    e.preventDefault();
    $<HTMLParagraphElement>("#error").hidden = true;
    void showPerson().catch(showError);
  });
  $("#person-older").addEventListener("click", () => void showPerson(true).catch(showError));
  liveControls.addEventListener("submit", (e) => {
    e.preventDefault();
    const restart = (e.submitter as HTMLElement | null)?.id !== "live-toggle" || live === undefined;
    if (restart) void startLive();
    else stopLive();
  });
  liveControls.addEventListener("change", () => live !== undefined && void startLive());
  await refresh();
  void startLive();
}

void init();
