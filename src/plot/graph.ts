// A circuit drawn over a transformer's edge graph, as an SVG string: the input at the bottom, then per
// layer a row of attention heads and a row for the MLP, the logits on top. Each head box has three
// ports underneath (q, k, v, left to right) where its input edges end; edges leave a node from its
// top. Every edge of the graph is a faint grey line (when there are not too many); the circuit's
// edges are drawn over them, blue where the score is positive and red where negative, their width
// growing with |score|, and the circuit's nodes are filled. Pure function of plain data.

export interface DrawnNode {
  kind: "input" | "head" | "mlp" | "logits";
  name: string;
  layer?: number;
  head?: number;
  /** Receivers of a head: which of its inputs. */
  input?: "q" | "k" | "v";
}

/** The parts of an edge graph the drawing needs (an analysis EdgeGraph fits). */
export interface DrawnGraph {
  n_layers: number;
  senders: readonly DrawnNode[];
  receivers: readonly DrawnNode[];
  edges: readonly { from: number; to: number }[];
}

export interface GraphDrawOptions {
  title?: string;
  /** Draw the non-circuit edges as grey lines when there are at most this many edges (default 3000). */
  maxBackgroundEdges?: number;
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const f = (x: number) => x.toFixed(1);

/** The circuit `mask` (1 = kept) of graph g with one score per edge, as an SVG string. */
export function circuitGraphSvg(g: DrawnGraph, scores: ArrayLike<number>, mask: ArrayLike<number>, opts: GraphDrawOptions = {}): string {
  const L = g.n_layers;
  const heads = Math.max(1, ...g.senders.map((s) => (s.kind === "head" ? s.head! + 1 : 0)));
  const kvHeads = Math.max(1, ...g.receivers.map((r) => (r.kind === "head" && r.input === "k" ? r.head! + 1 : 0)));
  const group = heads / kvHeads;
  const hasMlp = g.senders.some((s) => s.kind === "mlp");
  const boxW = 46, boxH = 22, gapX = 18, rowH = 64;
  const W = Math.max(420, 60 + heads * (boxW + gapX));
  const rowsPerLayer = hasMlp ? 2 : 1, rows = 2 + L * rowsPerLayer;
  const top = opts.title ? 40 : 16, H = top + rows * rowH + 20;
  // Row 0 is the logits (top), the last row the input.
  const rowY = (row: number) => top + row * rowH + rowH / 2;
  const attnRow = (l: number) => rows - 2 - l * rowsPerLayer - (hasMlp ? 1 : 0);
  const mlpRow = (l: number) => rows - 2 - l * rowsPerLayer;
  const headX = (h: number) => W / 2 + (h - (heads - 1) / 2) * (boxW + gapX);
  const center = (n: DrawnNode): [number, number] => {
    switch (n.kind) {
      case "input": return [W / 2, rowY(rows - 1)];
      case "logits": return [W / 2, rowY(0)];
      case "mlp": return [W / 2, rowY(mlpRow(n.layer!))];
      case "head": return [headX(n.head!), rowY(attnRow(n.layer!))];
    }
  };
  const out = (n: DrawnNode): [number, number] => { const [x, y] = center(n); return [x, y - boxH / 2]; };
  // Receivers: a head's q/k/v ports along its bottom edge (k, v of a key/value head: the first head it serves).
  const port = (r: DrawnNode): [number, number] => {
    if (r.kind !== "head") { const [x, y] = center(r); return [x, y + boxH / 2]; }
    const h = r.input === "q" ? r.head! : r.head! * group;
    const dx = { q: -boxW / 3, k: 0, v: boxW / 3 }[r.input!];
    return [headX(h) + dx, rowY(attnRow(r.layer!)) + boxH / 2];
  };
  const path = (e: { from: number; to: number }) => {
    const [x1, y1] = out(g.senders[e.from]!), [x2, y2] = port(g.receivers[e.to]!);
    const my = (y1 + y2) / 2;
    return `M${f(x1)},${f(y1)} C${f(x1)},${f(my)} ${f(x2)},${f(my)} ${f(x2)},${f(y2)}`;
  };
  let maxAbs = 0;
  g.edges.forEach((_, i) => { if (mask[i] && Number.isFinite(scores[i]!)) maxAbs = Math.max(maxAbs, Math.abs(scores[i]!)); });
  const used = new Set<string>();
  let bg = "", fg = "";
  if (g.edges.length <= (opts.maxBackgroundEdges ?? 3000)) g.edges.forEach((e, i) => { if (!mask[i]) bg += `<path d="${path(e)}" stroke="#ddd" stroke-width="0.6" fill="none"/>`; });
  // The circuit's edges, weakest first so the strongest are on top.
  const kept = g.edges.map((_, i) => i).filter((i) => mask[i]).sort((a, b) => Math.abs(scores[a]!) - Math.abs(scores[b]!));
  for (const i of kept) {
    const e = g.edges[i]!, s = scores[i]!, rel = maxAbs > 0 && Number.isFinite(s) ? Math.abs(s) / maxAbs : 1;
    const colour = s < 0 ? "#d62728" : "#1f77b4";
    const sName = g.senders[e.from]!.name, rName = g.receivers[e.to]!.name;
    used.add(sName); used.add(nodeOf(g.receivers[e.to]!, group));
    fg += `<path d="${path(e)}" stroke="${colour}" stroke-width="${f(0.8 + 4 * rel)}" stroke-opacity="${(0.35 + 0.6 * rel).toFixed(2)}" fill="none"><title>${esc(`${sName} → ${rName}: ${s}`)}</title></path>`;
  }
  let nodes = "";
  const box = (name: string, label: string, [x, y]: [number, number], w: number) => {
    const on = used.has(name);
    nodes += `<rect x="${f(x - w / 2)}" y="${f(y - boxH / 2)}" width="${w}" height="${boxH}" rx="4" fill="${on ? "#fff3c4" : "#f4f4f4"}" stroke="${on ? "#333" : "#bbb"}"/>`;
    nodes += `<text x="${f(x)}" y="${f(y + 4)}" text-anchor="middle" font-size="11" fill="${on ? "#000" : "#999"}">${esc(label)}</text>`;
  };
  box("input", "input", center({ kind: "input", name: "input" }), 90);
  box("logits", "logits", center({ kind: "logits", name: "logits" }), 90);
  for (const s of g.senders) {
    if (s.kind === "head") box(s.name, s.name, center(s), boxW);
    if (s.kind === "mlp") box(s.name, `MLP ${s.layer}`, center(s), 90);
  }
  // Port letters under the first layer's heads, so the q/k/v order is readable.
  let ports = "";
  for (let h = 0; h < heads; h++) (["q", "k", "v"] as const).forEach((p, j) => {
    ports += `<text x="${f(headX(h) + (j - 1) * (boxW / 3))}" y="${f(rowY(attnRow(0)) + boxH / 2 + 10)}" text-anchor="middle" font-size="8" fill="#888">${p}</text>`;
  });
  const title = opts.title ? `<text x="${W / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${esc(opts.title)}</text>` : "";
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">` +
    `<rect width="${W}" height="${H}" fill="white"/>${title}${bg}${fg}${nodes}${ports}</svg>`;
}

/** The sender node a receiver belongs to ("a1.h0" for "a1.h0<k>", the group's first head for a key/value head; "m0"; "logits"). */
function nodeOf(r: DrawnNode, group: number): string {
  if (r.kind === "head") return `a${r.layer}.h${r.input === "q" ? r.head : r.head! * group}`;
  if (r.kind === "mlp") return `m${r.layer}`;
  return "logits";
}
