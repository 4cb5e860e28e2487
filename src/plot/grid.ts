// Small multiples: several standalone SVG plots (e.g. one attention pattern per head) placed in a
// grid inside one SVG document, each nested as an <svg> element at its cell's offset.
import { esc } from "./svg.js";

const dim = (svg: string, name: string): number => {
  const m = new RegExp(`^<svg[^>]*\\s${name}="([0-9.]+)"`).exec(svg);
  if (!m) throw new RangeError(`svgGrid: a panel has no ${name} attribute on its <svg>`);
  return Number(m[1]);
};

/** Panels row by row, `cols` per row (default: as square as possible), under an optional title. */
export function svgGrid(panels: readonly string[], opts: { cols?: number; title?: string; gap?: number } = {}): string {
  const n = panels.length, cols = Math.max(1, Math.min(n, opts.cols ?? Math.ceil(Math.sqrt(n)))), gap = opts.gap ?? 8;
  const sizes = panels.map((p) => [dim(p, "width"), dim(p, "height")] as const);
  const colW = Array.from({ length: cols }, (_, c) => Math.max(0, ...sizes.filter((_, i) => i % cols === c).map((s) => s[0])));
  const rows = Math.ceil(n / cols);
  const rowH = Array.from({ length: rows }, (_, r) => Math.max(0, ...sizes.slice(r * cols, r * cols + cols).map((s) => s[1])));
  const top = opts.title ? 36 : 0;
  const W = colW.reduce((a, b) => a + b + gap, gap), H = top + rowH.reduce((a, b) => a + b + gap, gap);
  const body = panels.map((p, i) => {
    const c = i % cols, r = Math.floor(i / cols);
    const x = gap + colW.slice(0, c).reduce((a, b) => a + b + gap, 0), y = top + gap + rowH.slice(0, r).reduce((a, b) => a + b + gap, 0);
    return p.trim().replace(/^<svg /, `<svg x="${x}" y="${y}" `);
  }).join("");
  const title = opts.title ? `<text x="${W / 2}" y="24" text-anchor="middle" font-size="17" font-weight="bold">${esc(opts.title)}</text>` : "";
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">` +
    `<rect width="${W}" height="${H}" fill="white"/>${title}${body}</svg>\n`;
}
