// Bar charts as standalone SVG strings: horizontal labelled bars for signed contributions (direct
// logit attribution of embeddings, MLPs, biases; red positive, blue negative, a zero line) and a
// histogram over given bin edges (neuron activations). Pure functions of plain data.
import { diverging, esc, fmtTick, frame, niceTicks } from "./svg.js";

export interface Bar { label: string; value: number; color?: string }

export interface BarOptions {
  title?: string;
  /** Label of the value axis. */
  xLabel?: string;
  width?: number; // e.g. 640
}

/** Horizontal bars, one row per label, from 0 to the value; the value printed beside each bar. */
export function barChart(bars: readonly Bar[], opts: BarOptions = {}): string {
  const row = 20, labW = 12 + 7 * Math.max(4, ...bars.map((b) => b.label.length));
  const W = opts.width ?? 640, m = { l: labW, r: 70, t: opts.title ? 40 : 16, b: opts.xLabel ? 52 : 34 };
  const H = m.t + Math.max(1, bars.length) * row + m.b;
  const finite = bars.map((b) => b.value).filter(Number.isFinite);
  const lo = Math.min(0, ...finite), hi = Math.max(0, ...finite);
  const span = hi - lo || 1, x0 = lo - span * 0.02, x1 = hi + span * 0.02;
  const X = (v: number) => m.l + ((v - x0) / (x1 - x0)) * (W - m.l - m.r);
  const absMax = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
  let body = "";
  for (const t of niceTicks(x0, x1)) body += `<line x1="${X(t)}" x2="${X(t)}" y1="${m.t}" y2="${H - m.b}" stroke="#eee"/><text x="${X(t)}" y="${H - m.b + 14}" text-anchor="middle" font-size="10">${fmtTick(t)}</text>`;
  bars.forEach((b, i) => {
    const y = m.t + i * row, v = Number.isFinite(b.value) ? b.value : 0;
    const a = X(Math.min(0, v)), w = Math.abs(X(v) - X(0));
    body += `<text x="${m.l - 6}" y="${y + row / 2 + 4}" text-anchor="end" font-family="monospace" font-size="11">${esc(b.label)}</text>` +
      `<rect x="${a.toFixed(1)}" y="${y + 3}" width="${w.toFixed(1)}" height="${row - 6}" fill="${b.color ?? diverging(Math.sign(v) * (0.25 + 0.75 * Math.abs(v) / absMax))}" stroke="#666" stroke-width="0.5"><title>${esc(b.label)}: ${fmtTick(b.value)}</title></rect>` +
      `<text x="${(v >= 0 ? X(v) + 4 : X(0) + 4).toFixed(1)}" y="${y + row / 2 + 4}" font-size="10" fill="#333">${fmtTick(b.value)}</text>`;
  });
  body += `<line x1="${X(0)}" x2="${X(0)}" y1="${m.t - 4}" y2="${H - m.b}" stroke="#000"/>`;
  if (opts.xLabel) body += `<text x="${(m.l + W - m.r) / 2}" y="${H - 10}" text-anchor="middle">${esc(opts.xLabel)}</text>`;
  return frame(W, H, body, opts.title);
}

export interface HistogramChartOptions {
  title?: string;
  xLabel?: string;
  yLabel?: string;
  /** Counts on a log scale (log10(1 + count)); default false. */
  logCounts?: boolean;
  width?: number; // e.g. 420
  height?: number; // e.g. 240
}

/** Vertical bars over bins [edges[i], edges[i+1]) with counts[i]; a marker line at x = 0 when 0 is in range. */
export function histogramChart(edges: readonly number[], counts: readonly number[], opts: HistogramChartOptions = {}): string {
  if (edges.length !== counts.length + 1) throw new RangeError(`histogramChart: ${edges.length} edges for ${counts.length} counts (need counts + 1)`);
  const W = opts.width ?? 420, H = opts.height ?? 240, m = { l: 56, r: 16, t: opts.title ? 34 : 12, b: opts.xLabel ? 46 : 30 };
  let e0 = edges[0] ?? 0, e1 = edges[edges.length - 1] ?? 1;
  if (!(e1 > e0)) { e0 -= 0.5; e1 += 0.5; }
  const f = (c: number) => (opts.logCounts ? Math.log10(1 + c) : c);
  const top = Math.max(1e-12, ...counts.map(f));
  const X = (v: number) => m.l + ((v - e0) / (e1 - e0)) * (W - m.l - m.r);
  const Y = (c: number) => H - m.b - (f(c) / top) * (H - m.t - m.b);
  let body = `<rect x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}" fill="none" stroke="#999"/>`;
  const flat = !(edges[edges.length - 1]! > edges[0]!);
  counts.forEach((c, i) => {
    const a = flat ? X(e0) : X(edges[i]!), b = flat ? X(e1) : X(edges[i + 1]!);
    body += `<rect x="${a.toFixed(1)}" y="${Y(c).toFixed(1)}" width="${Math.max(0.5, b - a - 0.5).toFixed(1)}" height="${(H - m.b - Y(c)).toFixed(1)}" fill="#4c78a8"><title>[${fmtTick(edges[i]!)}, ${fmtTick(edges[i + 1]!)}): ${c}</title></rect>`;
  });
  for (const t of niceTicks(e0, e1, 5)) body += `<text x="${X(t)}" y="${H - m.b + 14}" text-anchor="middle" font-size="10">${fmtTick(t)}</text>`;
  body += `<text x="${m.l - 4}" y="${m.t + 8}" text-anchor="end" font-size="10">${Math.round(opts.logCounts ? 10 ** top - 1 : top)}</text><text x="${m.l - 4}" y="${H - m.b}" text-anchor="end" font-size="10">0</text>`;
  if (e0 < 0 && e1 > 0) body += `<line x1="${X(0)}" x2="${X(0)}" y1="${m.t}" y2="${H - m.b}" stroke="#d62728" stroke-dasharray="3 3"/>`;
  if (opts.xLabel) body += `<text x="${(m.l + W - m.r) / 2}" y="${H - 10}" text-anchor="middle">${esc(opts.xLabel)}</text>`;
  body += `<text transform="translate(14 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle">${esc(opts.yLabel ?? (opts.logCounts ? "count (log)" : "count"))}</text>`;
  return frame(W, H, body, opts.title);
}
