// A causal-scrubbing picture as an SVG string: the hypothesis tree (the output at the top, each
// named node below the input it feeds, annotated with its component and feature; edges labelled
// q / k / v / in), and beside it the losses of the model, the scrubbed model and the random
// baseline as bars, with the fraction of loss recovered. Takes plain data, not a model.

export interface ScrubTreeNode {
  label: string; // e.g. "L1H0"
  feature: string; // e.g. "token[pos-1]"
  /** Which input of the parent this node feeds ("q", "k", "v", "in", or "" under the output). */
  edge: string;
  children: readonly ScrubTreeNode[];
}

export interface ScrubChartData {
  title: string;
  tree: readonly ScrubTreeNode[]; // the output's important parents
  modelLoss: number;
  scrubbedLoss: number;
  randomLoss: number;
  recovered: number;
  recoveredStderr: number;
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const EDGE_COLOR: Record<string, string> = { q: "#1f77b4", k: "#d62728", v: "#2ca02c", in: "#9467bd", "": "#555" };

export function scrubChart(d: ScrubChartData): string {
  const boxW = 124, boxH = 34, colW = 136, rowH = 78, top = 44;
  // Tidy layout: leaves left to right, each parent centred over its children.
  interface Placed { n: ScrubTreeNode | null; x: number; y: number; parent: Placed | null }
  const placed: Placed[] = [];
  let nextLeaf = 0, depthMax = 0;
  const place = (n: ScrubTreeNode | null, kids: readonly ScrubTreeNode[], depth: number, parent: Placed | null): Placed => {
    const me: Placed = { n, x: 0, y: top + depth * rowH, parent };
    placed.push(me);
    depthMax = Math.max(depthMax, depth);
    const xs = kids.map((c) => place(c, c.children, depth + 1, me).x);
    me.x = xs.length ? (Math.min(...xs) + Math.max(...xs)) / 2 : 20 + (nextLeaf++ + 0.5) * colW;
    return me;
  };
  place(null, d.tree, 0, null);
  const treeW = Math.max(nextLeaf, 1) * colW + 40, treeH = top + (depthMax + 1) * rowH;
  let body = "";
  for (const p of placed) {
    if (!p.parent) continue;
    const c = EDGE_COLOR[p.n!.edge] ?? "#555", x1 = p.parent.x, y1 = p.parent.y + boxH / 2, x2 = p.x, y2 = p.y - boxH / 2;
    body += `<line x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2}" stroke="${c}" stroke-width="1.5"/>`;
    if (p.n!.edge) body += `<text x="${(x1 + x2) / 2 + 4}" y="${(y1 + y2) / 2}" fill="${c}" font-size="11" font-weight="bold">${esc(p.n!.edge)}</text>`;
  }
  for (const p of placed) {
    const label = p.n ? p.n.label : "output (logits)", sub = p.n ? p.n.feature : "";
    const fill = p.n ? "#eef4fb" : "#fdf1e1";
    body += `<rect x="${p.x - boxW / 2}" y="${p.y - boxH / 2}" width="${boxW}" height="${boxH}" rx="5" fill="${fill}" stroke="#444"/>`;
    body += `<text x="${p.x}" y="${p.y - (sub ? 3 : -4)}" text-anchor="middle" font-weight="bold">${esc(label)}</text>`;
    if (sub) body += `<text x="${p.x}" y="${p.y + 12}" text-anchor="middle" font-size="10" fill="#333">${esc(sub)}</text>`;
  }
  if (d.tree.length === 0) body += `<text x="20" y="${top + rowH}" fill="#555">(empty hypothesis: every input resampled)</text>`;
  // Loss bars: model, scrubbed, random on one scale.
  const bx = treeW + 90, bw = 220, by = top, barH = 24;
  const max = Math.max(d.modelLoss, d.scrubbedLoss, d.randomLoss, 1e-12);
  const bars: [string, number, string][] = [["model", d.modelLoss, "#2ca02c"], ["scrubbed", d.scrubbedLoss, "#1f77b4"], ["random", d.randomLoss, "#7f7f7f"]];
  body += `<text x="${bx}" y="${by - 14}" font-weight="bold">next-token loss</text>`;
  bars.forEach(([name, v, c], i) => {
    const y = by + i * (barH + 10), w = Number.isFinite(v) ? (v / max) * bw : 0;
    body += `<text x="${bx - 8}" y="${y + barH / 2 + 4}" text-anchor="end">${name}</text>`;
    body += `<rect x="${bx}" y="${y}" width="${w}" height="${barH}" fill="${c}"/>`;
    body += `<text x="${bx + w + 6}" y="${y + barH / 2 + 4}">${Number.isFinite(v) ? v.toFixed(3) : "n/a"}</text>`;
  });
  // The recovered fraction on a 0 (random) … 1 (model) bar.
  const ry = by + 3 * (barH + 10) + 30, f = d.recovered;
  const clamp = (x: number) => Math.max(0, Math.min(1, x));
  const pct = Number.isFinite(f) ? `${(100 * f).toFixed(1)}% ± ${(100 * d.recoveredStderr).toFixed(1)}%` : "n/a (model = random)";
  body += `<text x="${bx}" y="${ry - 8}" font-weight="bold">loss recovered: ${esc(pct)}</text>`;
  body += `<rect x="${bx}" y="${ry}" width="${bw}" height="${barH}" fill="#f2f2f2" stroke="#999"/>`;
  if (Number.isFinite(f)) {
    body += `<rect x="${bx}" y="${ry}" width="${clamp(f) * bw}" height="${barH}" fill="#1f77b4"/>`;
    const lo = clamp(f - d.recoveredStderr) * bw, hi = clamp(f + d.recoveredStderr) * bw;
    body += `<line x1="${bx + lo}" y1="${ry + barH / 2}" x2="${bx + hi}" y2="${ry + barH / 2}" stroke="black" stroke-width="2"/>`;
  }
  body += `<text x="${bx}" y="${ry + barH + 14}" font-size="10">0 = random</text><text x="${bx + bw}" y="${ry + barH + 14}" font-size="10" text-anchor="end">1 = model</text>`;
  const W = bx + bw + 90, H = Math.max(treeH, ry + barH + 30);
  const w = Math.max(W, Math.ceil(8.5 * d.title.length) + 20);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${H}" viewBox="0 0 ${w} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">` +
    `<rect width="${w}" height="${H}" fill="white"/><text x="${w / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">${esc(d.title)}</text>` +
    body + "</svg>\n";
}
