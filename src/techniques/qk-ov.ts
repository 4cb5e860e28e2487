// Full circuits of chosen heads: the OV circuit W_E W_V W_O W_U and QK circuit W_E W_Q W_Kᵀ W_Eᵀ
// restricted to a few tokens, the positional QK circuit W_pos W_Q W_Kᵀ W_posᵀ over the first
// positions, every head's eigenvalue copying score (Elhage et al. 2021) and the singular value
// spectra of the chosen heads' OV and QK circuits, on the processed weights by default.
import { z } from "zod";
import { noGrad } from "../tensor/autodiff.js";
import { ovCircuit, qkCircuit } from "../analysis/circuits.js";
import { copyingScores, positionalQK, tokenCircuit } from "../analysis/full-circuits.js";
import { barChart } from "../plot/bars.js";
import { cellSize } from "../plot/svg.js";
import { svgGrid } from "../plot/grid.js";
import { heatmap, lineChart, type Series } from "../plot/svg.js";
import { headsField, parseHeads } from "./heads.js";
import { shownToken, singleToken } from "./inputs.js";
import { processedModel } from "./processed.js";
import { defineTechnique, InputError } from "./technique.js";

const input = z.object({
  heads: headsField(),
  tokens: z.array(z.string()).optional().describe(`single tokens for the OV/QK heatmaps, spaces kept (the CLI's " Mary, John" is " Mary" and " John")`),
  first: z.number().int().min(1).optional().describe("else the first N printable tokens of the vocabulary (default 20)"),
  positions: z.number().int().min(1).optional().describe("positions in the positional QK heatmap (default min(24, n_ctx); models with learned positions only)"),
  process: z.boolean().default(true).describe("TransformerLens's weight processing (folding LayerNorm into the circuits; biases are left out, rotary models' QK circuits leave the rotation out)"),
});

/** A token worth a heatmap label: some visible character, no control or replacement characters. */
const printable = (s: string) => s.trim().length > 0 && !/[\u0000-\u001f\u007f-\u009f\ufffd]/.test(s);

/** The ids of the first n printable tokens of the vocabulary. */
function firstPrintable(decode: (id: number) => string, dVocab: number, n: number): number[] {
  const ids: number[] = [];
  for (let id = 0; id < dVocab && ids.length < n; id++) if (printable(decode(id))) ids.push(id);
  return ids;
}

const rows3 = (t: { shape: number[]; get(...i: number[]): number }, h: number) =>
  Array.from({ length: t.shape[1]! }, (_, i) => Array.from({ length: t.shape[2]! }, (_, j) => t.get(h, i, j)));

export const qkOv = defineTechnique({
  name: "qk-ov",
  summary: "full OV and QK circuits of chosen heads on a token subset, positional QK, copying scores, spectra",
  input,
  run(s, inp) {
    const cfg = s.model.cfg;
    if (inp.tokens !== undefined && inp.first !== undefined) throw new InputError("first", "give tokens or first, not both");
    const heads = parseHeads("heads", inp.heads, cfg.n_layers, cfg.n_heads);
    const nPos = inp.positions ?? Math.min(24, cfg.n_ctx);
    if (nPos > cfg.n_ctx) throw new InputError("positions", `must be at most n_ctx = ${cfg.n_ctx}, got ${nPos}`);
    const decode = (id: number) => (s.tokenizer ? s.tokenizer.decode([id]) : `#${id}`);
    let ids: number[];
    if (inp.tokens !== undefined) {
      if (!s.tokenizer) throw new InputError("tokens", `${s.name} has no tokenizer.json; use first N`);
      const parts = inp.tokens.filter((p) => p.length > 0);
      if (parts.length === 0) throw new InputError("tokens", "no tokens given");
      ids = parts.map((p) => singleToken(s, "tokens", p));
    } else ids = firstPrintable(decode, cfg.d_vocab, inp.first ?? 20);
    const { model, steps } = processedModel(s, inp.process);
    const copying = copyingScores(model);
    const layers = [...new Set(heads.map((h) => h.layer))];
    // Per chosen layer, once: the restricted circuits [n_heads, n, n] and the spectra [n_heads, r].
    const perLayer = new Map(layers.map((l) => [l, noGrad(() => ({
      ov: tokenCircuit(model, l, "ov", ids).AB, qk: tokenCircuit(model, l, "qk", ids).AB,
      pos: model.pos_embed ? positionalQK(model, l, nPos).AB : null,
      svOv: ovCircuit(model, l).singularValues(), svQk: qkCircuit(model, l).singularValues(),
    }))]));
    return {
      processedWeights: steps,
      tokens: ids.map((id) => ({ id, str: decode(id), label: shownToken(decode(id)) })),
      positions: model.pos_embed ? nPos : null,
      copyingScores: copying, // [layer][head], Σλ/Σ|λ| of W_E W_V W_O W_U
      // ov[attended token][logit token], qk[query token][key token], qkPos[query pos][key pos]
      heads: heads.map(({ layer, head }) => {
        const c = perLayer.get(layer)!;
        const sv = (t: typeof c.svOv) => Array.from({ length: t.shape[1]! }, (_, i) => t.get(head, i));
        return {
          layer, head, label: `L${layer}H${head}`, copyingScore: copying[layer]![head]!,
          ov: rows3(c.ov, head), qk: rows3(c.qk, head),
          // A query attends only to keys at or before it: later keys are null.
          qkPos: c.pos ? rows3(c.pos, head).map((row, q) => row.map((v, k) => (k <= q ? v : null))) : null,
          singularValues: { ov: sv(c.svOv), qk: sv(c.svQk) },
        };
      }),
    };
  },
  text(r) {
    const f = (v: number) => (v === 0 || Math.abs(v) >= 1e-3 ? v.toFixed(3) : v.toExponential(2));
    return [
      `copying score Σλ/Σ|λ| per head (1 copies, −1 suppresses):`,
      ...r.copyingScores.map((row, l) => `  L${l}  ${row.map((v) => f(v).padStart(7)).join(" ")}`),
      ...r.heads.map((h) => {
        const diag = h.ov.reduce((s, row, i) => s + row[i]!, 0) / h.ov.length;
        return `${h.label}: copying ${f(h.copyingScore)}; OV mean diagonal ${f(diag)} over ${r.tokens.length} tokens; σ_OV ${h.singularValues.ov.slice(0, 4).map(f).join(" ")}; σ_QK ${h.singularValues.qk.slice(0, 4).map(f).join(" ")}`;
      }),
    ].join("\n");
  },
  pictures(r) {
    type Head = (typeof r.heads)[number];
    const labels = r.tokens.map((t) => t.label), cell = cellSize(labels.length, labels.length);
    const grid = (name: string, title: string, m: (h: Head) => number[][] | null, o: { xLabel: string; yLabel: string; row?: string[]; col?: string[] }) => {
      const panels = r.heads.flatMap((h) => {
        const values = m(h);
        return values ? [heatmap(values, { title: h.label, rowLabels: o.row ?? labels, colLabels: o.col ?? labels, xLabel: o.xLabel, yLabel: o.yLabel, scale: "signed", cell: o.row ? cellSize(values.length, values.length) : cell })] : [];
      });
      return panels.length ? [{ name, content: svgGrid(panels, { title }) }] : [];
    };
    const posLabels = Array.from({ length: r.positions ?? 0 }, (_, i) => String(i));
    const spectrum: Series[] = r.heads.flatMap((h) => [
      { name: `${h.label} OV`, x: h.singularValues.ov.map((_, i) => i + 1), y: h.singularValues.ov },
      { name: `${h.label} QK`, x: h.singularValues.qk.map((_, i) => i + 1), y: h.singularValues.qk, dashed: true },
    ]);
    const copying = r.copyingScores;
    return [
      ...grid("ov.svg", "full OV circuit W_E W_V W_O W_U", (h) => h.ov, { xLabel: "logit token", yLabel: "attended token" }),
      ...grid("qk.svg", "full QK circuit W_E W_Q W_Kᵀ W_Eᵀ", (h) => h.qk, { xLabel: "key token", yLabel: "query token" }),
      // Masked (future) keys are NaN in the picture: drawn grey.
      ...grid("qk-pos.svg", "positional QK circuit W_pos W_Q W_Kᵀ W_posᵀ", (h) => h.qkPos && h.qkPos.map((row) => row.map((v) => v ?? NaN)), { xLabel: "key position (grey: future, masked)", yLabel: "query position", row: posLabels, col: posLabels }),
      { name: "copying.svg", content: heatmap(copying, {
        title: "OV copying score Σλ/Σ|λ|", rowLabels: copying.map((_, l) => `L${l}`), colLabels: copying[0]!.map((_, h) => `H${h}`),
        xLabel: "head", yLabel: "layer", scale: "signed", min: -1, max: 1, cell: cellSize(copying.length, copying[0]!.length),
      }) },
      // A rank-1 circuit (d_head = 1) has one singular value: a line of one point draws nothing, so bars.
      { name: "spectrum.svg", content: spectrum.every((x) => x.y.length > 1)
        ? lineChart(spectrum, { title: "singular values of the OV (solid) and QK (dashed) circuits", xLabel: "index", yLabel: "singular value" })
        : barChart(spectrum.flatMap((x) => x.y.map((value, i) => ({ label: `${x.name} σ${i + 1}`, value }))), { title: "singular values of the OV and QK circuits", xLabel: "singular value" }) },
    ];
  },
});
