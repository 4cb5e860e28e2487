// Direct logit attribution at the last position: every term of the final residual stream
// (embeddings, each head, each attention bias, each MLP) read through the cached final LayerNorm
// scale onto the unembedding direction of the answer (minus the wrong token's), plus the accumulated
// residual stream read the same way after each block. The terms sum to the logit (difference) up to
// `constant` (ln_final.b and b_U, which no component owns); the check is in the result. With
// neuronLayer also the per-neuron DLA of that MLP.
import { z } from "zod";
import { noGrad } from "../tensor/autodiff.js";
import { fullLogitAttribution, neuronLogitAttribution, type DlaTarget } from "../analysis/residual.js";
import { barChart } from "../plot/bars.js";
import { svgGrid } from "../plot/grid.js";
import { cellSize, heatmap, lineChart } from "../plot/svg.js";
import { bosField, layerOf, promptField, promptIds, singleToken, tokenField, tokenList } from "./inputs.js";
import { defineTechnique, InputError } from "./technique.js";

const input = z.object({
  prompt: promptField(),
  answer: tokenField("the token whose last-position logit is decomposed"),
  wrong: tokenField("decompose logit(answer) − logit(wrong) instead").optional(),
  neuronLayer: z.number().int().min(0).optional().describe("also attribute block L's MLP output to its neurons (they sum to L_mlp_out minus b_out's share)"),
  topNeurons: z.number().int().min(1).default(20).describe("neurons shown in dla-neurons.svg and the text output, by |DLA| (the JSON has all)"),
  bos: bosField,
});

/** Indices of the n largest |values|, largest first (ties by index). */
const topOf = (values: readonly number[], n: number) => values.map((_, i) => i).sort((a, b) => Math.abs(values[b]!) - Math.abs(values[a]!) || a - b).slice(0, n);

/** x position of an accumulated-residual label: "{l}_pre" → l, "{l}_mid" → l + 0.5, "final_post" → n_layers. */
const layerX = (label: string, nLayers: number) => label === "final_post" ? nLayers : Number(label.split("_")[0]) + (label.endsWith("_mid") ? 0.5 : 0);

export const dla = defineTechnique({
  name: "dla",
  summary: "direct logit attribution per head / MLP / embedding and the accumulated residual, at the last position",
  input,
  positionals: ["prompt"],
  run(s, inp) {
    const ids = promptIds(s, "prompt", inp.prompt, inp.bos);
    const answer = singleToken(s, "answer", inp.answer);
    const wrong = inp.wrong === undefined ? undefined : singleToken(s, "wrong", inp.wrong);
    const target: DlaTarget = wrong === undefined ? { token: answer } : { token: answer, incorrect: wrong };
    const cfg = s.model.cfg, last = ids.length - 1, L = cfg.n_layers, H = cfg.n_heads;
    const neuronLayer = inp.neuronLayer === undefined ? undefined : layerOf(s, "neuronLayer", inp.neuronLayer);
    if (neuronLayer !== undefined && cfg.attn_only) throw new InputError("neuronLayer", "this model is attention-only (it has no MLP neurons)");
    const r = noGrad(() => {
      const { logits, cache } = s.model.runWithCache([ids]);
      const full = fullLogitAttribution(s.model, cache, target);
      const comps = full.labels.map((label, i) => ({ label, value: full.components.get(i, 0, last) }));
      let acc;
      try { acc = cache.accumulatedResid(undefined, { inclMid: true }); } catch { acc = cache.accumulatedResid(); }
      const accAttr = cache.logitAttrs(cache.applyLnToStack(acc), target);
      const accumulated = acc.labels.map((label, i) => ({ label, value: accAttr.components.get(i, 0, last) + full.constant }));
      const logitDiff = logits.get(0, last, answer) - (wrong === undefined ? 0 : logits.get(0, last, wrong));
      const nla = neuronLayer === undefined ? null : neuronLogitAttribution(s.model, cache, neuronLayer, target);
      const neurons = nla && { layer: neuronLayer!, bias: nla.bias.get(0, last), values: nla.labels.map((_, n) => nla.components.get(n, 0, last)) };
      return { comps, accumulated, constant: full.constant, logitDiff, neurons };
    });
    const headValue = (l: number, h: number) => r.comps.find((c) => c.label === `L${l}H${h}`)!.value;
    const sum = r.comps.reduce((acc, c) => acc + c.value, 0);
    const tok = (id: number) => tokenList(s, [id])[0]!;
    return {
      prompt: inp.prompt, position: last,
      tokens: tokenList(s, ids),
      answer: tok(answer), wrong: wrong === undefined ? null : tok(wrong),
      /** Σ components + constant = the model's logit (difference); gap is the float error of that identity. */
      check: { logitDiff: r.logitDiff, sum, constant: r.constant, gap: sum + r.constant - r.logitDiff },
      /** [layer][head] */
      heads: Array.from({ length: L }, (_, l) => Array.from({ length: H }, (_, h) => headValue(l, h))),
      /** Every term in residual order: embed, pos_embed, L{l}H{h}, {l}_b_O, {l}_mlp_out. */
      components: r.comps,
      /** The residual after each block (and mid-block) read as a logit (difference), constant included. */
      accumulated: r.accumulated,
      /** With neuronLayer: per-neuron DLA [d_mlp]; Σ values + bias = that layer's mlp_out component. */
      neurons: r.neurons,
    };
  },
  text(r, inp) {
    const what = targetText(r);
    const f = (v: number) => (v >= 0 ? " " : "") + v.toFixed(5);
    const c = r.check;
    return [
      `direct logit attribution of ${what} at position ${r.position} (${JSON.stringify(r.tokens[r.position]!.str)})`,
      ...r.components.map((x) => `  ${x.label.padEnd(14)} ${f(x.value)}`),
      `  ${"constant".padEnd(14)} ${f(c.constant)}`,
      `sum + constant ${f(c.sum + c.constant)} vs model ${f(c.logitDiff)} (gap ${c.gap.toExponential(2)})`,
      ...(r.neurons ? [`top neurons of layer ${r.neurons.layer} by |DLA|: ${topOf(r.neurons.values, inp.topNeurons).map((n) => `N${n} ${r.neurons!.values[n]!.toFixed(5)}`).join(", ")} (b_out ${r.neurons.bias.toFixed(5)})`] : []),
      `accumulated residual: ${r.accumulated.map((a) => `${a.label} ${a.value.toFixed(4)}`).join(", ")}`,
    ].join("\n");
  },
  pictures(r, inp) {
    const what = targetText(r), L = r.heads.length, H = r.heads[0]!.length;
    const headsSvg = heatmap(r.heads, {
      title: `DLA per head → ${what}`, rowLabels: r.heads.map((_, l) => `L${l}`), colLabels: r.heads[0]!.map((_, h) => `H${h}`),
      xLabel: "head", yLabel: "layer", scale: "signed", cell: cellSize(L, H),
    });
    // Heads are summed per layer here (the heatmap shows them one by one).
    const bars: { label: string; value: number; color?: string }[] = [];
    for (const c of r.components) {
      const m = /^L(\d+)H\d+$/.exec(c.label);
      if (!m) { bars.push({ label: c.label, value: c.value }); continue; }
      const name = `${m[1]}_heads`, prev = bars[bars.length - 1];
      if (prev?.label === name) prev.value += c.value; else bars.push({ label: name, value: c.value });
    }
    bars.push({ label: "constant (ln_final.b, b_U)", value: r.check.constant, color: "#bbb" }, { label: "total = logit (diff)", value: r.check.sum + r.check.constant, color: "#777" });
    const barsSvg = barChart(bars, { title: `DLA by component → ${what}`, xLabel: "contribution at the last position" });
    const accSvg = lineChart([{ name: what, x: r.accumulated.map((a) => layerX(a.label, L)), y: r.accumulated.map((a) => a.value) }], {
      title: "accumulated residual read as the logit (diff)", xLabel: `layer (l = resid_pre, l + 0.5 = resid_mid, ${L} = final)`, yLabel: r.wrong === null ? "logit" : "logit difference",
    });
    const n = r.neurons, top = topOf(n?.values ?? [], inp.topNeurons);
    const neuronSvg = n && barChart(top.map((i) => ({ label: `L${n.layer}N${i}`, value: n.values[i]! })), { title: `DLA of layer ${n.layer}'s top ${top.length} neurons (by |value|) → ${what}`, xLabel: "contribution at the last position" });
    return [
      { name: "dla-heads.svg", content: headsSvg }, { name: "dla-components.svg", content: barsSvg }, { name: "dla-accumulated.svg", content: accSvg },
      ...(neuronSvg ? [{ name: "dla-neurons.svg", content: neuronSvg }] : []),
      { name: "dla.svg", content: svgGrid([headsSvg, barsSvg, accSvg], { cols: 3, title: `direct logit attribution: ${r.prompt.length > 60 ? r.prompt.slice(0, 57) + "…" : r.prompt}` }) },
    ];
  },
});

/** logit("a") or logit("a") − logit("b"), as titles name the target. */
function targetText(r: { answer: { str: string }; wrong: { str: string } | null }): string {
  const a = `logit(${JSON.stringify(r.answer.str)})`;
  return r.wrong === null ? a : `${a} − logit(${JSON.stringify(r.wrong.str)})`;
}
