// A labelled heatmap as an SVG DOM element: plain data in ([row][col] values, labels, a colour
// function), one <rect class="cell"> per value carrying data-row, data-col and data-value (the exact
// number, so tests and tools can read it back) and a <title> for screen readers; hover calls onHover.
// Plus the colour helpers the views share (viridis, blue–white–red, readable text on a fill).
import { diverging, viridis } from "../plot/svg.js";

export { diverging, viridis };

const NS = "http://www.w3.org/2000/svg";

export function svgEl<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number> = {}, text?: string): SVGElementTagNameMap[K] {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Black or white, whichever reads better on an "rgb(r,g,b)" fill (relative luminance, WCAG). */
export function textOn(fill: string): string {
  const m = /rgb\((\d+),(\d+),(\d+)\)/.exec(fill);
  if (!m) return "#000";
  const lin = (c: number) => { const s = c / 255; return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4; };
  const L = 0.2126 * lin(+m[1]!) + 0.7152 * lin(+m[2]!) + 0.0722 * lin(+m[3]!);
  return L > 0.22 ? "#000" : "#fff";
}

/** Indices of the k largest values, largest first (ties to the lower index). */
export const topDims = (values: readonly number[], k: number): number[] =>
  values.map((_, i) => i).sort((a, b) => values[b]! - values[a]! || a - b).slice(0, k);

export const fmt = (v: number) => (Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(2) : v.toFixed(Math.abs(v) >= 100 ? 1 : 3));

export interface HeatmapSpec {
  values: readonly (readonly number[])[];
  rowLabels: readonly string[];
  colLabels: readonly string[];
  xLabel: string;
  yLabel: string;
  colour: (v: number) => string;
  /** Cell size in px (default 22). */
  cell?: number;
  /** Cells with NaN are drawn grey (e.g. the causal mask's upper triangle when masked = true). */
  title?: string;
  onHover?: (row: number, col: number, value: number) => string;
  /** A colour bar under the map: [lo, hi] and a label. */
  legend?: { lo: number; hi: number; label: string };
}

/** An SVG heatmap: rows top to bottom, columns left to right, labels on both axes. */
export function heatmapSvg(s: HeatmapSpec, tooltip: Tooltip): SVGSVGElement {
  const c = s.cell ?? 22, R = s.values.length, C = s.values[0]?.length ?? 0;
  const rowW = Math.min(140, 14 + 7 * Math.max(1, ...s.rowLabels.map((l) => l.length)));
  const colH = Math.min(120, 14 + 6 * Math.max(1, ...s.colLabels.map((l) => l.length)));
  const legendW = Math.max(220, Math.min(320, C * c));
  // Wide enough for the cells, the legend and the title (about 7.5 px per character at 13 px bold).
  const left = rowW + 22, top = (s.title ? 22 : 4) + colH, H = top + R * c + (s.legend ? 70 : 30);
  const W = Math.max(left + C * c + 10, s.legend ? left + legendW + 30 : 0, s.title ? Math.ceil(7.5 * s.title.length) + 12 : 0);
  const svg = svgEl("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: "heatmap", role: "img", "aria-label": s.title ?? `${s.yLabel} × ${s.xLabel}` });
  if (s.title) svg.append(svgEl("text", { x: 4, y: 15, "font-weight": "bold", style: "font-size:13px" }, s.title));
  s.rowLabels.forEach((l, r) => svg.append(svgEl("text", { x: left - 4, y: top + r * c + c / 2 + 4, "text-anchor": "end", "font-family": "ui-monospace,monospace" }, l)));
  s.colLabels.forEach((l, k) => svg.append(svgEl("text", { transform: `translate(${left + k * c + c / 2 + 4} ${top - 4}) rotate(-60)`, "font-family": "ui-monospace,monospace" }, l)));
  svg.append(svgEl("text", { x: left + (C * c) / 2, y: top + R * c + 18, "text-anchor": "middle", fill: "#5a5a60" }, s.xLabel));
  svg.append(svgEl("text", { transform: `translate(12 ${top + (R * c) / 2}) rotate(-90)`, "text-anchor": "middle", fill: "#5a5a60" }, s.yLabel));
  for (let r = 0; r < R; r++) for (let k = 0; k < C; k++) {
    const v = s.values[r]![k]!;
    const rect = svgEl("rect", { class: "cell", x: left + k * c, y: top + r * c, width: c - 1, height: c - 1, fill: Number.isNaN(v) ? "#e4e4e8" : s.colour(v), "data-row": r, "data-col": k, "data-value": String(v) });
    const text = s.onHover ? s.onHover(r, k, v) : `${s.rowLabels[r]} × ${s.colLabels[k]}: ${fmt(v)}`;
    rect.append(svgEl("title", {}, text));
    rect.addEventListener("mousemove", (e) => tooltip.show(e, text));
    rect.addEventListener("mouseleave", () => tooltip.hide());
    svg.append(rect);
  }
  if (s.legend) {
    const y = top + R * c + 30, w = legendW;
    const id = `g${Math.random().toString(36).slice(2)}`;
    const grad = svgEl("linearGradient", { id });
    for (let i = 0; i <= 10; i++) grad.append(svgEl("stop", { offset: i / 10, "stop-color": s.colour(s.legend.lo + (i / 10) * (s.legend.hi - s.legend.lo)) }));
    const defs = svgEl("defs"); defs.append(grad); svg.append(defs);
    svg.append(svgEl("rect", { x: left, y, width: w, height: 10, fill: `url(#${id})`, stroke: "#999" }));
    svg.append(svgEl("text", { x: left, y: y + 24, "text-anchor": "middle" }, fmt(s.legend.lo)));
    svg.append(svgEl("text", { x: left + w, y: y + 24, "text-anchor": "middle" }, fmt(s.legend.hi)));
    svg.append(svgEl("text", { x: left + w / 2, y: y + 24, "text-anchor": "middle", fill: "#5a5a60" }, s.legend.label));
  }
  return svg;
}

/** The floating tooltip (one per page). */
export class Tooltip {
  constructor(private readonly el: HTMLElement) {}
  show(e: MouseEvent, text: string): void {
    this.el.textContent = text;
    this.el.style.display = "block";
    this.el.style.left = `${Math.min(e.clientX + 14, window.innerWidth - this.el.offsetWidth - 8)}px`;
    this.el.style.top = `${e.clientY + 14}px`;
  }
  hide(): void { this.el.style.display = "none"; }
}
