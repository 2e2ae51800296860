/** One line of the chart. */
export interface Series {
  key: string;
  label: string;
  colour: string;
  points: { date: string; value: number }[];
}

const SVG = "http://www.w3.org/2000/svg";
const W = 760;
const H = 260;
const PAD = { left: 56, right: 16, top: 12, bottom: 32 };

function el<K extends keyof SVGElementTagNameMap>(
  name: K,
  attrs: Record<string, string | number>,
  text?: string,
): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * A line chart as SVG: one polyline per series over the same dates, a dot
 * per point carrying its date and value (a tooltip, and what tests read).
 */
export function lineChart(series: readonly Series[], description: string): SVGSVGElement {
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": description });
  const dates = series[0]?.points.map((p) => p.date) ?? [];
  const max = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p.value)));
  const x = (i: number) =>
    PAD.left + (dates.length <= 1 ? 0 : (i * (W - PAD.left - PAD.right)) / (dates.length - 1));
  const y = (v: number) => H - PAD.bottom - (v * (H - PAD.top - PAD.bottom)) / max;

  for (const tick of [0, Math.round(max / 2), max]) {
    svg.append(
      el("line", { x1: PAD.left, x2: W - PAD.right, y1: y(tick), y2: y(tick), class: "grid" }),
      el("text", { x: PAD.left - 8, y: y(tick) + 4, "text-anchor": "end" }, tick.toLocaleString()),
    );
  }
  // First, middle and last dates, anchored so none runs off the edge.
  const labels: [number, string][] = [
    [0, "start"],
    [Math.floor((dates.length - 1) / 2), "middle"],
    [dates.length - 1, "end"],
  ];
  for (const [i, anchor] of new Map(labels)) {
    const date = dates[i];
    if (date !== undefined) {
      svg.append(el("text", { x: x(i), y: H - 10, "text-anchor": anchor }, date));
    }
  }
  for (const s of series) {
    const line = s.points.map((p, i) => `${x(i).toFixed(1)},${y(p.value).toFixed(1)}`).join(" ");
    svg.append(el("polyline", { points: line, fill: "none", stroke: s.colour, "stroke-width": 2 }));
    const dots = el("g", { "data-series": s.key, fill: s.colour });
    s.points.forEach((p, i) => {
      const dot = el("circle", {
        cx: x(i).toFixed(1),
        cy: y(p.value).toFixed(1),
        r: 3,
        "data-date": p.date,
        "data-value": p.value,
      });
      dot.append(el("title", {}, `${s.label} on ${p.date}: ${p.value.toLocaleString()}`));
      dots.append(dot);
    });
    svg.append(dots);
  }
  return svg;
}

/** One bar: its label and its parts, stacked up (positive) or down (negative) from zero. */
export interface Bar {
  label: string;
  parts: { key: string; label: string; colour: string; value: number }[];
}

/**
 * A bar chart as SVG, stacked, with a zero line: negative parts (dormant
 * users) hang below it. Each part carries its label and value (a tooltip,
 * and what tests read).
 */
export function barChart(bars: readonly Bar[], description: string): SVGSVGElement {
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": description });
  const sum = (b: Bar, sign: 1 | -1) =>
    b.parts.reduce((t, p) => t + (Math.sign(p.value) === sign ? Math.abs(p.value) : 0), 0);
  const up = Math.max(1, ...bars.map((b) => sum(b, 1)));
  const down = Math.max(0, ...bars.map((b) => sum(b, -1)));
  const scale = (H - PAD.top - PAD.bottom) / (up + down);
  const zero = PAD.top + up * scale;
  const step = (W - PAD.left - PAD.right) / Math.max(1, bars.length);
  for (const [tick, y] of [
    [up, PAD.top],
    [0, zero],
    ...(down > 0 ? [[-down, H - PAD.bottom]] : []),
  ] as [number, number][]) {
    svg.append(
      el("line", { x1: PAD.left, x2: W - PAD.right, y1: y, y2: y, class: "grid" }),
      el("text", { x: PAD.left - 8, y: y + 4, "text-anchor": "end" }, tick.toLocaleString()),
    );
  }
  bars.forEach((bar, i) => {
    const x = PAD.left + i * step + step * 0.15;
    let above = zero;
    let below = zero;
    for (const part of bar.parts) {
      const height = Math.abs(part.value) * scale;
      if (part.value >= 0) above -= height;
      const y = part.value >= 0 ? above : below;
      if (part.value < 0) below += height;
      const rect = el("rect", {
        x: x.toFixed(1),
        y: y.toFixed(1),
        width: (step * 0.7).toFixed(1),
        height: height.toFixed(1),
        fill: part.colour,
        "data-bar": bar.label,
        "data-part": part.key,
        "data-value": part.value,
      });
      rect.append(el("title", {}, `${bar.label}, ${part.label}: ${part.value.toLocaleString()}`));
      svg.append(rect);
    }
    // First, middle and last labels, as the line chart does.
    if (i === 0 || i === bars.length - 1 || i === Math.floor((bars.length - 1) / 2)) {
      svg.append(
        el(
          "text",
          { x: (x + step * 0.35).toFixed(1), y: H - 10, "text-anchor": "middle" },
          bar.label,
        ),
      );
    }
  });
  return svg;
}
