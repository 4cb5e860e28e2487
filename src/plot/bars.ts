// Bar charts (one signed value per labelled item: per-component effects, ablation of MLPs or
// neurons) and side-by-side composition of finished SVGs into one file. Pure functions of plain
// data returning SVG strings, like svg.ts, whose ticks and colours they reuse.
import { diverging, niceTicks } from "./svg.js";

export interface Bar { label: string; value: number }

export interface BarOptions {
  title?: string;
  /** Label of the value axis. */
  valueLabel?: string;
  width?: number; // e.g. 560
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const num = (v: number) => String(Number(v.toPrecision(4)));

/** Horizontal bars, one row per item (in the given order), around a zero line; colour by sign and size. */
export function barChart(bars: readonly Bar[], opts: BarOptions = {}): string {
  const row = 18, labW = 12 + 7 * Math.max(4, ...bars.map((b) => b.label.length));
  const W = Math.max(opts.width ?? 560, opts.title ? Math.ceil(8.5 * opts.title.length) + 20 : 0);
  const m = { l: labW, r: 70, t: opts.title ? 40 : 16, b: 44 };
  const H = m.t + Math.max(1, bars.length) * row + m.b;
  const finite = bars.map((b) => b.value).filter(Number.isFinite);
  const lo = Math.min(0, ...finite), hi = Math.max(0, ...finite);
  // Room beyond the longest bar on each side for its value label.
  const pad = (hi - lo) * 0.18;
  const [x0, x1] = lo === hi ? [-1, 1] : [lo < 0 ? lo - pad : 0, hi > 0 ? hi + pad : 0];
  const X = (v: number) => m.l + ((v - x0) / (x1 - x0)) * (W - m.l - m.r);
  const absMax = Math.max(1e-12, ...finite.map(Math.abs));
  let body = "";
  for (const t of niceTicks(x0, x1)) body += `<line x1="${X(t).toFixed(1)}" x2="${X(t).toFixed(1)}" y1="${m.t}" y2="${H - m.b}" stroke="#eee"/><text x="${X(t).toFixed(1)}" y="${H - m.b + 16}" text-anchor="middle" font-size="10">${num(t)}</text>`;
  bars.forEach((b, i) => {
    const y = m.t + i * row, v = Number.isFinite(b.value) ? b.value : 0;
    const a = X(Math.min(0, v)), w = Math.abs(X(v) - X(0));
    const fill = Number.isFinite(b.value) ? diverging(Math.sign(v) * (0.35 + 0.65 * Math.abs(v) / absMax)) : "#bbb";
    body += `<rect x="${a.toFixed(1)}" y="${y + 2}" width="${w.toFixed(1)}" height="${row - 4}" fill="${fill}"><title>${esc(b.label)}: ${num(b.value)}</title></rect>`;
    body += `<text x="${m.l - 6}" y="${y + row / 2 + 4}" text-anchor="end" font-size="11">${esc(b.label)}</text>`;
    body += `<text x="${(v >= 0 ? X(v) + 4 : X(v) - 4).toFixed(1)}" y="${y + row / 2 + 4}" text-anchor="${v >= 0 ? "start" : "end"}" font-size="9" fill="#555">${num(b.value)}</text>`;
  });
  body += `<line x1="${X(0).toFixed(1)}" x2="${X(0).toFixed(1)}" y1="${m.t}" y2="${H - m.b}" stroke="#333"/>`;
  if (opts.valueLabel) body += `<text x="${(m.l + W - m.r) / 2}" y="${H - 10}" text-anchor="middle">${esc(opts.valueLabel)}</text>`;
  const title = opts.title ? `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(opts.title)}</text>` : "";
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">` +
    `<rect width="${W}" height="${H}" fill="white"/>${title}${body}</svg>\n`;
}

/** Finished SVGs (from this folder's charts) placed left to right in one SVG, tops aligned. */
export function sideBySide(svgs: readonly string[], gap = 16): string {
  const sizes = svgs.map((s) => {
    const w = /<svg[^>]*\swidth="([\d.]+)"/.exec(s), h = /<svg[^>]*\sheight="([\d.]+)"/.exec(s);
    if (!w || !h) throw new Error("sideBySide: an input is not an SVG with width and height");
    return [Number(w[1]), Number(h[1])] as const;
  });
  const W = sizes.reduce((a, [w]) => a + w, 0) + gap * Math.max(0, svgs.length - 1), H = Math.max(0, ...sizes.map(([, h]) => h));
  let x = 0, body = "";
  svgs.forEach((s, i) => {
    // A nested <svg> is positioned by x; the inner one keeps its own viewBox and coordinates.
    body += s.trim().replace(/^<svg /, `<svg x="${x}" y="0" `);
    x += sizes[i]![0] + gap;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}"><rect width="${W}" height="${H}" fill="white"/>${body}</svg>\n`;
}
