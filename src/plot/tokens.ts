// Token-coloured text: each token a box (SVG) or span (HTML) whose background is its value on a
// blue–white–red scale centred at 0, as CircuitsVis's colored_tokens and Neuronpedia's feature cards
// show attributions and activations. Pure functions of strings and numbers; whitespace is made
// visible (" Paris" shows as "·Paris") so tokens that differ only by a space can be told apart.
import { diverging, esc, fmtTick } from "./svg.js";

export interface TokenColourOptions {
  title?: string;
  /** Extra lines under the title (e.g. a completeness check). */
  caption?: readonly string[];
  /** The value that maps to full colour (default max |value|); the scale runs −max … +max. */
  max?: number;
  /** Width in px at which the boxes wrap (SVG only; default 800). */
  width?: number;
  /** Label of the colour legend (default "value"); false for no legend. */
  legend?: string | false;
}

/** A token as shown: spaces and newlines visible. */
export const visibleToken = (s: string) => s.replace(/ /g, "·").replace(/\n/g, "↵");

/** Background for v on a scale symmetric around 0 (blue negative, red positive). */
export const tokenColour = (v: number, max: number) => diverging(max > 0 && Number.isFinite(v) ? v / max : 0);

const maxAbs = (values: readonly number[]) => Math.max(0, ...values.filter(Number.isFinite).map(Math.abs));

function check(what: string, tokens: readonly string[], values: readonly number[]): void {
  if (tokens.length !== values.length) throw new RangeError(`${what}: ${tokens.length} tokens but ${values.length} values`);
}

/** A horizontal colour legend −max … 0 … +max as an SVG fragment at (x, y), 200 px wide. */
export function colourLegend(x: number, y: number, max: number, label: string, id = "legend"): string {
  const stops = [-1, -2 / 3, -1 / 3, 0, 1 / 3, 2 / 3, 1].map((t, i) => `<stop offset="${(i / 6).toFixed(3)}" stop-color="${diverging(t)}"/>`).join("");
  return `<defs><linearGradient id="${id}">${stops}</linearGradient></defs>` +
    `<rect x="${x}" y="${y}" width="200" height="10" fill="url(#${id})" stroke="#999"/>` +
    `<text x="${x}" y="${y + 22}" font-size="10" text-anchor="middle">${fmtTick(-max)}</text>` +
    `<text x="${x + 100}" y="${y + 22}" font-size="10" text-anchor="middle">0</text>` +
    `<text x="${x + 200}" y="${y + 22}" font-size="10" text-anchor="middle">${fmtTick(max)}</text>` +
    `<text x="${x + 210}" y="${y + 9}" font-size="11">${esc(label)}</text>`;
}

/** One box per token coloured by its value, wrapped into lines of at most `width` px; title, caption and legend above. */
export function tokensSvg(tokens: readonly string[], values: readonly number[], opts: TokenColourOptions = {}): string {
  check("tokensSvg", tokens, values);
  const width = opts.width ?? 800, h = 28, gap = 4, charW = 8;
  const max = opts.max ?? maxAbs(values);
  const lines = opts.caption ?? [];
  let y = (opts.title ? 30 : 8) + lines.length * 16;
  let head = opts.title ? `<text x="8" y="20" font-size="14" font-weight="bold">${esc(opts.title)}</text>` : "";
  lines.forEach((l, i) => { head += `<text x="8" y="${(opts.title ? 30 : 8) + 12 + i * 16}" font-size="12" fill="#333">${esc(l)}</text>`; });
  if (opts.legend !== false) { head += colourLegend(30, y + 4, max, opts.legend ?? "value"); y += 36; }
  let x = 8;
  const boxes: string[] = [];
  tokens.forEach((t, i) => {
    const w = Math.max(24, visibleToken(t).length * charW + 12);
    if (x + w > width - 8 && x > 8) { x = 8; y += h + gap; }
    const v = values[i]!;
    boxes.push(`<g><title>${esc(`${JSON.stringify(t)}: ${v.toPrecision(4)}`)}</title><rect class="tok" x="${x}" y="${y}" width="${w}" height="${h}" rx="3" fill="${tokenColour(v, max)}" stroke="#999"/>` +
      `<text x="${x + w / 2}" y="${y + h / 2 + 5}" text-anchor="middle" font-family="monospace" font-size="13">${esc(visibleToken(t))}</text></g>`);
    x += w + gap;
  });
  const height = y + h + 8;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">` +
    `<rect width="${width}" height="${height}" fill="white"/>${head}${boxes.join("")}</svg>\n`;
}

/** One line of token spans (hover shows the value); `mark` outlines one token (e.g. the max position). */
export function tokenSpans(tokens: readonly string[], values: readonly number[], max: number, mark?: number): string {
  check("tokenSpans", tokens, values);
  return tokens.map((t, i) => `<span title="${esc(`${JSON.stringify(t)}: ${values[i]!.toPrecision(4)}`)}" style="background:${tokenColour(values[i]!, max)};padding:1px 2px;margin:0 1px;border-radius:3px;white-space:pre${i === mark ? ";outline:2px solid #000" : ""}">${esc(t.replace(/\n/g, "↵"))}</span>`).join("");
}

/** An HTML page: title, caption lines, a legend and the tokens as coloured spans. */
export function tokensHtml(tokens: readonly string[], values: readonly number[], opts: Omit<TokenColourOptions, "width"> = {}): string {
  check("tokensHtml", tokens, values);
  const max = opts.max ?? maxAbs(values);
  const body = (opts.caption ?? []).map((l) => `<p>${esc(l)}</p>`).join("") +
    (opts.legend === false ? "" : legendSvg(max, opts.legend ?? "value")) +
    `<p style="font-family:monospace;line-height:1.9">${tokenSpans(tokens, values, max)}</p>`;
  return htmlPage(opts.title ?? "tokens", body);
}

/** The colour legend as a small standalone inline SVG. */
export const legendSvg = (max: number, label: string, id = "legend") =>
  `<svg xmlns="http://www.w3.org/2000/svg" width="${330 + 7 * label.length}" height="36">${colourLegend(30, 4, max, label, id)}</svg>`;

/** A minimal standalone HTML page with readable defaults. */
export function htmlPage(title: string, body: string): string {
  return `<!doctype html>\n<html><head><meta charset="utf-8"><title>${esc(title)}</title>` +
    `<style>body{font-family:Helvetica,Arial,sans-serif;margin:24px;max-width:1100px}h1{font-size:20px}h2{font-size:16px;margin-top:28px}` +
    `.ex{font-family:monospace;font-size:13px;line-height:1.9;white-space:nowrap;overflow-x:auto}.v{display:inline-block;width:80px;color:#555}</style></head>` +
    `<body><h1>${esc(title)}</h1>${body}</body></html>\n`;
}
