// Plots as standalone SVG strings: line charts (training curves, sweeps), heatmaps (patching
// results, attention patterns) and scatter plots. Pure functions of plain data, no DOM, so the CLI
// writes them to files and the web workbench inlines them. Colours: viridis for sequential values,
// blue–white–red for signed ones (as CircuitsVis and TransformerLens notebooks show patching).

export interface Series { name: string; x: readonly number[]; y: readonly number[]; color?: string; dashed?: boolean }

export interface Axes {
  title?: string;
  xLabel?: string;
  yLabel?: string;
  xLog?: boolean;
  yLog?: boolean;
  width?: number; // e.g. 640
  height?: number; // e.g. 400
}

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"];

export const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** Round tick values: about n of them spanning [lo, hi]. */
export function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const step0 = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(step0)));
  // The 1-2-5 step nearest (in ratio) to the ideal one.
  const step = [1, 2, 5, 10].map((m) => m * mag).reduce((a, b) => (Math.abs(Math.log(b / step0)) < Math.abs(Math.log(a / step0)) ? b : a));
  const out: number[] = [];
  // Ticks as k * step (not repeated addition), rounded, so 0.6 is not 0.6000000000000001.
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) out.push(Number((k * step).toPrecision(12)));
  return out;
}

export const fmtTick = (v: number) => {
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(0);
  return String(Number(v.toPrecision(4)));
};

export function frame(w0: number, h: number, body: string, title?: string): string {
  // Never narrower than the title (about 8.5 px per character at 15 px bold).
  const w = Math.max(w0, title ? Math.ceil(8.5 * title.length) + 20 : 0);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="Helvetica, Arial, sans-serif" font-size="12">` +
    `<rect width="${w}" height="${h}" fill="white"/>` +
    (title ? `<text x="${w / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>` : "") +
    body + "</svg>\n";
}

interface Plot { body: string; X: (v: number) => number; Y: (v: number) => number; tx: (v: number) => number; ty: (v: number) => number; W: number; H: number }

/** Axes, grid, ticks and labels for the points' range; returns the scales that map data to pixels. */
function plotArea(xs: readonly number[], ys: readonly number[], axes: Axes, legendWidth: number, W: number, H: number): Plot | null {
  const m = { l: 70, r: 20 + legendWidth, t: axes.title ? 36 : 16, b: 50 };
  const tx = (v: number) => (axes.xLog ? Math.log10(v) : v), ty = (v: number) => (axes.yLog ? Math.log10(v) : v);
  const pts = xs.map((x, i) => [tx(x), ty(ys[i]!)] as const).filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b));
  if (pts.length === 0) return null;
  let [x0, x1] = [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1]))];
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) { y0 -= 1; y1 += 1; }
  const pad = (y1 - y0) * 0.05; y0 -= pad; y1 += pad;
  const X = (v: number) => m.l + ((v - x0) / (x1 - x0)) * (W - m.l - m.r);
  const Y = (v: number) => H - m.b - ((v - y0) / (y1 - y0)) * (H - m.t - m.b);
  let body = `<rect x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}" fill="none" stroke="#999"/>`;
  const xt = axes.xLog ? logTicks(x0, x1) : niceTicks(x0, x1).map((v) => [v, fmtTick(v)] as const);
  const yt = axes.yLog ? logTicks(y0, y1) : niceTicks(y0, y1).map((v) => [v, fmtTick(v)] as const);
  for (const [v, label] of xt) body += `<line x1="${X(v)}" x2="${X(v)}" y1="${m.t}" y2="${H - m.b}" stroke="#eee"/><text x="${X(v)}" y="${H - m.b + 16}" text-anchor="middle">${label}</text>`;
  for (const [v, label] of yt) body += `<line x1="${m.l}" x2="${W - m.r}" y1="${Y(v)}" y2="${Y(v)}" stroke="#eee"/><text x="${m.l - 6}" y="${Y(v) + 4}" text-anchor="end">${label}</text>`;
  if (axes.xLabel) body += `<text x="${(m.l + W - m.r) / 2}" y="${H - 12}" text-anchor="middle">${esc(axes.xLabel)}</text>`;
  if (axes.yLabel) body += `<text transform="translate(16 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle">${esc(axes.yLabel)}</text>`;
  return { body, X, Y, tx, ty, W, H };
}

/** A line chart of one or more series, with axes, ticks, a legend and optional log scales. */
export function lineChart(series: readonly Series[], axes: Axes = {}): string {
  // Legend wide enough for the longest name (about 6.5 px per character at 12 px); the chart widens for it.
  const legend = series.length > 1 ? 50 + Math.ceil(6.5 * Math.max(...series.map((x) => x.name.length))) : 0;
  const W = (axes.width ?? 640) + Math.max(0, legend - 140), H = axes.height ?? 400;
  const p = plotArea(series.flatMap((s) => s.x), series.flatMap((s) => s.y), axes, legend, W, H);
  if (!p) return frame(W, H, `<text x="${W / 2}" y="${H / 2}" text-anchor="middle">no data</text>`, axes.title);
  let body = p.body;
  series.forEach((s, k) => {
    const c = s.color ?? PALETTE[k % PALETTE.length]!;
    const d = s.x.map((x, i) => [p.tx(x), p.ty(s.y[i]!)] as const).filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b))
      .map(([a, b], i) => `${i ? "L" : "M"}${p.X(a).toFixed(1)},${p.Y(b).toFixed(1)}`).join("");
    body += `<path d="${d}" fill="none" stroke="${c}" stroke-width="1.8"${s.dashed ? ' stroke-dasharray="6 4"' : ""}/>`;
    if (legend) {
      const ly = (axes.title ? 36 : 16) + 14 + k * 18, lx = W - 20 - legend;
      body += `<line x1="${lx + 12}" x2="${lx + 36}" y1="${ly - 4}" y2="${ly - 4}" stroke="${c}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ""}/><text x="${lx + 42}" y="${ly}">${esc(s.name)}</text>`;
    }
  });
  return frame(W, H, body, axes.title);
}

function logTicks(lo: number, hi: number): (readonly [number, string])[] {
  const out: (readonly [number, string])[] = [];
  for (let e = Math.ceil(lo); e <= Math.floor(hi); e++) out.push([e, e >= -2 && e <= 4 ? String(10 ** e) : `1e${e}`]);
  // Less than two decades: round values in data space, placed on the log axis.
  return out.length >= 2 ? out : niceTicks(10 ** lo, 10 ** hi).filter((v) => v > 0).map((v) => [Math.log10(v), fmtTick(v)] as const);
}

/** Viridis, sampled at 9 stops and interpolated: t in [0, 1]. */
export function viridis(t: number): string {
  const stops = ["#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c", "#28ae80", "#5ec962", "#addc30", "#fde725"];
  return interp(stops, t);
}

/** Blue (−1) – white (0) – red (+1). */
export function diverging(t: number): string {
  return interp(["#2166ac", "#67a9cf", "#d1e5f0", "#f7f7f7", "#fddbc7", "#ef8a62", "#b2182b"], (t + 1) / 2);
}

function interp(stops: string[], t: number): string {
  const u = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(u)), f = u - i;
  const a = hex(stops[i]!), b = hex(stops[i + 1]!);
  return `rgb(${a.map((v, k) => Math.round(v + (b[k]! - v) * f)).join(",")})`;
}
const hex = (h: string) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16));

/** Heatmap cell size for an R × C grid: large for a tiny model (readable), shrinking to fit ~480 px. */
export const cellSize = (R: number, C: number) => Math.max(8, Math.min(48, Math.floor(480 / Math.max(R, C, 1))));

export interface HeatmapOptions {
  title?: string;
  rowLabels?: readonly string[];
  colLabels?: readonly string[];
  xLabel?: string;
  yLabel?: string;
  /** "signed" centres a blue–white–red scale on 0 (patching effects); "sequential" uses viridis. */
  scale?: "signed" | "sequential";
  /** Colour range; defaults to the data's (symmetric around 0 for signed). */
  min?: number;
  max?: number;
  cell?: number; // pixels per cell, e.g. 24
}

/** A heatmap of values[row][col] with labels and a colour bar; NaN cells are grey. */
export function heatmap(values: readonly (readonly number[])[], opts: HeatmapOptions = {}): string {
  const R = values.length, C = values[0]?.length ?? 0;
  const finite = values.flat().filter(Number.isFinite);
  const signed = (opts.scale ?? (finite.some((v) => v < 0) ? "signed" : "sequential")) === "signed";
  const absMax = Math.max(1e-12, ...finite.map(Math.abs));
  const lo = opts.min ?? (signed ? -absMax : Math.min(...finite)), hi = opts.max ?? (signed ? absMax : Math.max(...finite));
  const cell = opts.cell ?? Math.max(6, Math.min(28, Math.floor(560 / Math.max(R, C, 1))));
  const labW = opts.rowLabels ? 8 + 7 * Math.max(...opts.rowLabels.map((s) => s.length)) : 30;
  const labH = opts.colLabels ? 8 + 6 * Math.max(...opts.colLabels.map((s) => s.length)) : 24;
  const m = { l: labW + (opts.yLabel ? 20 : 0), t: (opts.title ? 34 : 10), r: 90, b: labH + (opts.xLabel ? 20 : 0) };
  const W = m.l + C * cell + m.r, H = m.t + R * cell + m.b;
  let body = "";
  const color = (v: number) => (!Number.isFinite(v) ? "#bbb" : signed ? diverging(v / Math.max(Math.abs(lo), Math.abs(hi))) : viridis((v - lo) / (hi - lo || 1)));
  for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) {
    const v = values[r]![c]!;
    body += `<rect x="${m.l + c * cell}" y="${m.t + r * cell}" width="${cell}" height="${cell}" fill="${color(v)}"><title>${esc(opts.rowLabels?.[r] ?? String(r))} × ${esc(opts.colLabels?.[c] ?? String(c))}: ${fmtTick(v)}</title></rect>`;
  }
  const every = Math.max(1, Math.ceil(11 / cell));
  for (let r = 0; r < R; r += every) body += `<text x="${m.l - 4}" y="${m.t + r * cell + cell / 2 + 4}" text-anchor="end" font-size="10">${esc(opts.rowLabels?.[r] ?? String(r))}</text>`;
  for (let c = 0; c < C; c += every) {
    const x = m.l + c * cell + cell / 2, y = m.t + R * cell + 6;
    body += `<text transform="translate(${x} ${y}) rotate(60)" font-size="10">${esc(opts.colLabels?.[c] ?? String(c))}</text>`;
  }
  if (opts.xLabel) body += `<text x="${m.l + (C * cell) / 2}" y="${H - 6}" text-anchor="middle">${esc(opts.xLabel)}</text>`;
  if (opts.yLabel) body += `<text transform="translate(14 ${m.t + (R * cell) / 2}) rotate(-90)" text-anchor="middle">${esc(opts.yLabel)}</text>`;
  // Colour bar.
  const bx = m.l + C * cell + 20, bh = Math.max(60, R * cell);
  for (let i = 0; i < 50; i++) {
    const t = 1 - i / 49, v = lo + (hi - lo) * t;
    body += `<rect x="${bx}" y="${m.t + (i * bh) / 50}" width="14" height="${bh / 50 + 0.5}" fill="${color(v)}"/>`;
  }
  body += `<text x="${bx + 18}" y="${m.t + 10}" font-size="10">${fmtTick(hi)}</text><text x="${bx + 18}" y="${m.t + bh}" font-size="10">${fmtTick(lo)}</text>`;
  return frame(W, Math.max(H, m.t + bh + 10), body, opts.title);
}

export interface ScatterPoint { x: number; y: number; label?: string; color?: string }

/** A scatter plot (e.g. fitted vs observed loss). */
export function scatter(points: readonly ScatterPoint[], axes: Axes = {}): string {
  const W = axes.width ?? 560, H = axes.height ?? 420;
  const p = plotArea(points.map((q) => q.x), points.map((q) => q.y), axes, 0, W, H);
  if (!p) return frame(W, H, `<text x="${W / 2}" y="${H / 2}" text-anchor="middle">no data</text>`, axes.title);
  const dots = points.filter((q) => Number.isFinite(p.tx(q.x)) && Number.isFinite(p.ty(q.y)))
    .map((q) => `<circle cx="${p.X(p.tx(q.x)).toFixed(1)}" cy="${p.Y(p.ty(q.y)).toFixed(1)}" r="3" fill="${q.color ?? PALETTE[0]}" fill-opacity="0.75">${q.label ? `<title>${esc(q.label)}</title>` : ""}</circle>`).join("");
  return frame(W, H, p.body + dots, axes.title);
}
