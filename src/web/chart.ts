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
