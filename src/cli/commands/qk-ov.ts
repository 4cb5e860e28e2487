// `circuitscope qk-ov <snapshot-folder> --heads 1.0,1.1 [--tokens " Mary, John, the" | --first N]`:
// the full OV circuit W_E W_V W_O W_U and full QK circuit W_E W_Q W_Kᵀ W_Eᵀ of chosen heads restricted
// to a few tokens (token-labelled heatmaps), the positional QK circuit W_pos W_Q W_Kᵀ W_posᵀ over the
// first positions, every head's eigenvalue copying score (Elhage et al. 2021) as a layer × head
// heatmap, and the singular value spectra of the chosen heads' OV and QK circuits as a line chart.
// With --out writes ov.svg, qk.svg, qk-pos.svg, copying.svg, spectrum.svg and qk-ov.json.
import { loadPretrained } from "../../io/snapshot.js";
import { processWeights } from "../../model/weight-processing.js";
import { noGrad } from "../../tensor/autodiff.js";
import { heatmap, lineChart, type Series } from "../../plot/svg.js";
import { svgGrid } from "../../plot/grid.js";
import { barChart } from "../../plot/bars.js";
import { ovCircuit, qkCircuit } from "../../analysis/circuits.js";
import { copyingScores, positionalQK, tokenCircuit } from "../../analysis/full-circuits.js";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";
import { cellSize, writeOutputFiles } from "../outputs.js";
import { headList } from "../../techniques/inputs.js";
import { shownToken, singleToken } from "./patch.js";

const USAGE = `circuitscope qk-ov <snapshot-folder> [--heads all|L.H,...] [--tokens "a,b,c" | --first N] [--positions N] [--no-process] [--out dir] [--json]
  --heads H       comma-separated heads L.H (e.g. 1.0,1.1), or all (default)
  --tokens T      comma-separated single tokens for the OV/QK heatmaps, spaces kept (" Mary, John" is " Mary" and " John")
  --first N       else the first N printable tokens of the vocabulary (default 20)
  --positions N   positions in the positional QK heatmap (default min(24, n_ctx); models with learned positions only)
  --no-process    skip TransformerLens's weight processing (folding LayerNorm into the circuits)
                  (biases are left out; rotary models' QK circuits leave the rotation out)
  --out dir       write ov.svg, qk.svg, qk-pos.svg, copying.svg, spectrum.svg and qk-ov.json there`;

/** A token worth a heatmap label: some visible character, no control or replacement characters. */
const printable = (s: string) => s.trim().length > 0 && !/[\u0000-\u001f\u007f-\u009f\ufffd]/.test(s);

/** The ids of the first n printable tokens of the vocabulary. */
export function firstPrintable(decode: (id: number) => string, dVocab: number, n: number): number[] {
  const ids: number[] = [];
  for (let id = 0; id < dVocab && ids.length < n; id++) if (printable(decode(id))) ids.push(id);
  return ids;
}

const rows3 = (t: { shape: number[]; get(...i: number[]): number }, h: number) =>
  Array.from({ length: t.shape[1]! }, (_, i) => Array.from({ length: t.shape[2]! }, (_, j) => t.get(h, i, j)));

export const qkOv: Command = {
  name: "qk-ov",
  summary: "full OV and QK circuits of chosen heads on a token subset, positional QK, copying scores, spectra",
  usage: USAGE,
  run(pos, flags, out) {
    const headsText = flags.str("heads", "all");
    const tokensText = flags.str("tokens");
    const firstText = flags.str("first");
    const first = firstText === undefined ? 20 : Number(firstText);
    const positionsFlag = flags.str("positions");
    const noProcess = flags.bool("no-process");
    const outDir = flags.str("out");
    flags.checkUnknown();
    const [folder, ...extra] = pos;
    if (folder === undefined) throw new UsageError("qk-ov needs a snapshot folder");
    if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(" ")}`);
    if (tokensText !== undefined && firstText !== undefined) throw new UsageError("give --tokens or --first, not both");
    if (!Number.isInteger(first) || first < 1) throw new UsageError(`--first must be an integer >= 1, got ${firstText}`);

    out.info(`loading ${folder}`);
    const { model, config: cfg, tokenizer } = loadPretrained(folder);
    let heads;
    try { heads = headList({ model, tokenizer: null, name: folder }, "heads", headsText); } catch (e) { throw new UsageError(`--heads: ${(e as Error).message}`); }
    const nPos = positionsFlag === undefined ? Math.min(24, cfg.n_ctx) : Number(positionsFlag);
    if (!Number.isInteger(nPos) || nPos < 1 || nPos > cfg.n_ctx) throw new UsageError(`--positions must be an integer in [1, n_ctx = ${cfg.n_ctx}], got ${positionsFlag}`);
    const decode = (id: number) => (tokenizer ? tokenizer.decode([id]) : `#${id}`);
    let ids: number[];
    if (tokensText !== undefined) {
      if (!tokenizer) throw new UsageError(`--tokens: ${folder} has no tokenizer.json; use --first N`);
      const parts = tokensText.split(",").filter((p) => p.length > 0);
      if (parts.length === 0) throw new UsageError("--tokens: no tokens given");
      ids = parts.map((p) => singleToken(tokenizer, "tokens", p));
    } else ids = firstPrintable(decode, cfg.d_vocab, first);
    const labels = ids.map((id) => shownToken(decode(id)));
    const steps = noProcess ? [] : processWeights(model);
    out.info(`${heads.length} heads × ${ids.length} tokens${steps.length ? `; processed weights: ${steps.join(", ")}` : ""}`);

    const t0 = performance.now();
    const copying = copyingScores(model);
    out.info(`copying scores of ${cfg.n_layers * cfg.n_heads} heads in ${(performance.now() - t0).toFixed(0)} ms`);
    const layers = [...new Set(heads.map((h) => h.layer))];
    // Per chosen layer, once: the restricted circuits [n_heads, n, n] and the spectra [n_heads, r].
    const perLayer = new Map(layers.map((l) => [l, noGrad(() => ({
      ov: tokenCircuit(model, l, "ov", ids).AB, qk: tokenCircuit(model, l, "qk", ids).AB,
      pos: model.pos_embed ? positionalQK(model, l, nPos).AB : null,
      svOv: ovCircuit(model, l).singularValues(), svQk: qkCircuit(model, l).singularValues(),
    }))]));
    const headDocs = heads.map(({ layer, head }) => {
      const c = perLayer.get(layer)!;
      const sv = (t: typeof c.svOv) => Array.from({ length: t.shape[1]! }, (_, i) => t.get(head, i));
      return {
        layer, head, label: `L${layer}H${head}`, copyingScore: copying[layer]![head]!,
        ov: rows3(c.ov, head), qk: rows3(c.qk, head),
        // A query attends only to keys at or before it: later keys are null (NaN in the picture).
        qkPos: c.pos ? rows3(c.pos, head).map((row, q) => row.map((v, k) => (k <= q ? v : NaN))) : null,
        singularValues: { ov: sv(c.svOv), qk: sv(c.svQk) },
      };
    });
    const doc = {
      model: folder, processedWeights: steps,
      tokens: ids.map((id, i) => ({ id, str: decode(id), label: labels[i]! })),
      positions: model.pos_embed ? nPos : null,
      copyingScores: copying, // [layer][head], Σλ/Σ|λ| of W_E W_V W_O W_U
      heads: headDocs, // ov[attended token][logit token], qk[query token][key token], qkPos[query pos][key pos]
      files: [] as string[],
    };

    if (outDir !== undefined) {
      const cell = cellSize(ids.length, ids.length);
      const grid = (name: string, title: string, m: (h: (typeof headDocs)[number]) => number[][] | null, o: { xLabel: string; yLabel: string; row?: string[]; col?: string[] }) => {
        const panels = headDocs.flatMap((h) => {
          const values = m(h);
          return values ? [heatmap(values, { title: h.label, rowLabels: o.row ?? labels, colLabels: o.col ?? labels, xLabel: o.xLabel, yLabel: o.yLabel, scale: "signed", cell: o.row ? cellSize(values.length, values.length) : cell })] : [];
        });
        return panels.length ? [[name, svgGrid(panels, { title })] as [string, string]] : [];
      };
      const posLabels = Array.from({ length: nPos }, (_, i) => String(i));
      const spectrum: Series[] = headDocs.flatMap((h) => [
        { name: `${h.label} OV`, x: h.singularValues.ov.map((_, i) => i + 1), y: h.singularValues.ov },
        { name: `${h.label} QK`, x: h.singularValues.qk.map((_, i) => i + 1), y: h.singularValues.qk, dashed: true },
      ]);
      writeOutputFiles(outDir, [
        ...grid("ov.svg", "full OV circuit W_E W_V W_O W_U", (h) => h.ov, { xLabel: "logit token", yLabel: "attended token" }),
        ...grid("qk.svg", "full QK circuit W_E W_Q W_Kᵀ W_Eᵀ", (h) => h.qk, { xLabel: "key token", yLabel: "query token" }),
        ...grid("qk-pos.svg", "positional QK circuit W_pos W_Q W_Kᵀ W_posᵀ", (h) => h.qkPos, { xLabel: "key position (grey: future, masked)", yLabel: "query position", row: posLabels, col: posLabels }),
        ["copying.svg", heatmap(copying, {
          title: "OV copying score Σλ/Σ|λ|", rowLabels: copying.map((_, l) => `L${l}`), colLabels: copying[0]!.map((_, h) => `H${h}`),
          xLabel: "head", yLabel: "layer", scale: "signed", min: -1, max: 1, cell: cellSize(cfg.n_layers, cfg.n_heads),
        })],
        // A rank-1 circuit (d_head = 1) has one singular value: a line of one point draws nothing, so bars.
        ["spectrum.svg", spectrum.every((s) => s.y.length > 1)
          ? lineChart(spectrum, { title: "singular values of the OV (solid) and QK (dashed) circuits", xLabel: "index", yLabel: "singular value" })
          : barChart(spectrum.flatMap((s) => s.y.map((value, i) => ({ label: `${s.name} σ${i + 1}`, value }))), { title: "singular values of the OV and QK circuits", xLabel: "singular value" })],
      ], "qk-ov", doc);
    }

    const f = (v: number) => (v === 0 || Math.abs(v) >= 1e-3 ? v.toFixed(3) : v.toExponential(2));
    out.result(doc, () => [
      `copying score Σλ/Σ|λ| per head (1 copies, −1 suppresses):`,
      ...copying.map((row, l) => `  L${l}  ${row.map((v) => f(v).padStart(7)).join(" ")}`),
      ...headDocs.map((h) => {
        const diag = h.ov.reduce((s, row, i) => s + row[i]!, 0) / h.ov.length;
        return `${h.label}: copying ${f(h.copyingScore)}; OV mean diagonal ${f(diag)} over ${ids.length} tokens; σ_OV ${h.singularValues.ov.slice(0, 4).map(f).join(" ")}; σ_QK ${h.singularValues.qk.slice(0, 4).map(f).join(" ")}`;
      }),
      ...(doc.files.length ? [`files: ${doc.files.join(", ")}`] : []),
    ].join("\n"));
  },
};
