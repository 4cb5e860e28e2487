// `circuitscope dla <snapshot-folder> "<prompt>" --answer " Paris" [--wrong " London"]`: direct logit
// attribution at the last position — every term of the final residual stream (embeddings, each head,
// each attention bias, each MLP) read through the cached final LayerNorm scale onto the unembedding
// direction of the answer (minus the wrong token's), plus the accumulated residual stream read the
// same way after each block. The terms sum to the logit (difference) up to `constant` (ln_final.b and
// b_U, which no component owns); the check is printed. --out writes dla-heads.svg (layer × head),
// dla-components.svg (bars), dla-accumulated.svg (per layer), dla.svg (all three) and dla.json;
// with --neuron-layer L also the per-neuron DLA of that MLP (dla-neurons.svg, the largest |values|).
import { noGrad } from "../../tensor/autodiff.js";
import { fullLogitAttribution, neuronLogitAttribution, type DlaTarget } from "../../analysis/residual.js";
import { barChart } from "../../plot/bars.js";
import { svgGrid } from "../../plot/grid.js";
import { heatmap, lineChart } from "../../plot/svg.js";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";
import { cellSize, writeOutputFiles } from "../outputs.js";
import { loadWithTokenizer, promptIds, singleToken } from "../legacy-inputs.js";

const USAGE = `circuitscope dla <snapshot-folder> "<prompt>" --answer " Paris" [--wrong " London"] [--neuron-layer L] [--top-neurons 20] [--out dir] [--no-bos] [--json]
  --answer T   the token whose last-position logit is decomposed (one token)
  --wrong T    decompose logit(answer) − logit(wrong) instead
  --neuron-layer L  also attribute block L's MLP output to its neurons (they sum to L_mlp_out minus b_out's share)
  --top-neurons N   neurons shown in dla-neurons.svg and the text output, by |DLA| (default 20; the JSON has all)
  --out dir    write dla-heads.svg, dla-components.svg, dla-accumulated.svg, dla.svg and dla.json there
  --no-bos     do not put the tokenizer's BOS token before the prompt`;

/** Indices of the n largest |values|, largest first (ties by index). */
const topOf = (values: readonly number[], n: number) => values.map((_, i) => i).sort((a, b) => Math.abs(values[b]!) - Math.abs(values[a]!) || a - b).slice(0, n);

/** x position of an accumulated-residual label: "{l}_pre" → l, "{l}_mid" → l + 0.5, "final_post" → n_layers. */
const layerX = (label: string, nLayers: number) => label === "final_post" ? nLayers : Number(label.split("_")[0]) + (label.endsWith("_mid") ? 0.5 : 0);

export const dla: Command = {
  name: "dla",
  summary: "direct logit attribution per head / MLP / embedding and the accumulated residual, at the last position",
  usage: USAGE,
  run(pos, flags, out) {
    const answerText = flags.str("answer"), wrongText = flags.str("wrong");
    const neuronLayerText = flags.str("neuron-layer");
    const topNeurons = flags.num("top-neurons", 20);
    const outDir = flags.str("out");
    const noBos = flags.bool("no-bos");
    flags.checkUnknown();
    const [folder, prompt, ...extra] = pos;
    if (folder === undefined || prompt === undefined) throw new UsageError("dla needs a snapshot folder and a prompt");
    if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(" ")}`);
    if (answerText === undefined) throw new UsageError("dla needs --answer (a single token)");
    if (!Number.isInteger(topNeurons) || topNeurons < 1) throw new UsageError(`--top-neurons must be an integer >= 1, got ${topNeurons}`);

    const { model, tokenizer, config: cfg } = loadWithTokenizer(folder);
    const ids = promptIds(tokenizer, prompt, cfg.n_ctx, noBos);
    const answer = singleToken(tokenizer, "answer", answerText);
    const wrong = wrongText === undefined ? undefined : singleToken(tokenizer, "wrong", wrongText);
    const target: DlaTarget = wrong === undefined ? { token: answer } : { token: answer, incorrect: wrong };
    const T = ids.length, last = T - 1, L = cfg.n_layers, H = cfg.n_heads;
    const neuronLayer = neuronLayerText === undefined ? undefined : Number(neuronLayerText);
    if (neuronLayer !== undefined && !(Number.isInteger(neuronLayer) && neuronLayer >= 0 && neuronLayer < L)) throw new UsageError(`--neuron-layer ${neuronLayerText} is out of range: the model has layers 0..${L - 1}`);
    if (neuronLayer !== undefined && cfg.attn_only) throw new UsageError("--neuron-layer: this model is attention-only (it has no MLP neurons)");
    const r = noGrad(() => {
      const { logits, cache } = model.runWithCache([ids]);
      const full = fullLogitAttribution(model, cache, target);
      const comps = full.labels.map((label, i) => ({ label, value: full.components.get(i, 0, last) }));
      let acc;
      try { acc = cache.accumulatedResid(undefined, { inclMid: true }); } catch { acc = cache.accumulatedResid(); }
      const accAttr = cache.logitAttrs(cache.applyLnToStack(acc), target);
      const accumulated = acc.labels.map((label, i) => ({ label, value: accAttr.components.get(i, 0, last) + full.constant }));
      const logitDiff = logits.get(0, last, answer) - (wrong === undefined ? 0 : logits.get(0, last, wrong));
      const nla = neuronLayer === undefined ? null : neuronLogitAttribution(model, cache, neuronLayer, target);
      const neurons = nla && { layer: neuronLayer!, bias: nla.bias.get(0, last), values: nla.labels.map((_, n) => nla.components.get(n, 0, last)) };
      return { comps, accumulated, constant: full.constant, logitDiff, neurons };
    });
    const headValue = (l: number, h: number) => r.comps.find((c) => c.label === `L${l}H${h}`)!.value;
    const heads = Array.from({ length: L }, (_, l) => Array.from({ length: H }, (_, h) => headValue(l, h)));
    const sum = r.comps.reduce((s, c) => s + c.value, 0);
    const str = (id: number) => tokenizer.decode([id]);
    const what = wrong === undefined ? `logit(${JSON.stringify(str(answer))})` : `logit(${JSON.stringify(str(answer))}) − logit(${JSON.stringify(str(wrong))})`;
    out.info(`direct logit attribution of ${what} at position ${last} over ${r.comps.length} components`);
    const doc = {
      model: folder, prompt, position: last,
      tokens: ids.map((id) => ({ id, str: str(id) })),
      answer: { id: answer, str: str(answer) }, wrong: wrong === undefined ? null : { id: wrong, str: str(wrong) },
      // Σ components + constant = the model's logit (difference); gap is the float error of that identity.
      check: { logitDiff: r.logitDiff, sum, constant: r.constant, gap: sum + r.constant - r.logitDiff },
      heads, // [layer][head]
      components: r.comps, // every term in residual order: embed, pos_embed, L{l}H{h}, {l}_b_O, {l}_mlp_out
      accumulated: r.accumulated, // the residual after each block (and mid-block) read as a logit (difference), constant included
      // --neuron-layer: per-neuron DLA [d_mlp]; Σ values + bias = that layer's mlp_out component.
      neurons: r.neurons,
      files: [] as string[],
    };
    if (outDir !== undefined) {
      const headsSvg = heatmap(heads, {
        title: `DLA per head → ${what}`, rowLabels: heads.map((_, l) => `L${l}`), colLabels: heads[0]!.map((_, h) => `H${h}`),
        xLabel: "head", yLabel: "layer", scale: "signed", cell: cellSize(L, H),
      });
      // Heads are summed per layer here (the heatmap shows them one by one).
      const bars: { label: string; value: number; color?: string }[] = [];
      for (const c of r.comps) {
        const m = /^L(\d+)H\d+$/.exec(c.label);
        if (!m) { bars.push({ label: c.label, value: c.value }); continue; }
        const name = `${m[1]}_heads`, prev = bars[bars.length - 1];
        if (prev?.label === name) prev.value += c.value; else bars.push({ label: name, value: c.value });
      }
      bars.push({ label: "constant (ln_final.b, b_U)", value: r.constant, color: "#bbb" }, { label: "total = logit (diff)", value: sum + r.constant, color: "#777" });
      const barsSvg = barChart(bars, { title: `DLA by component → ${what}`, xLabel: "contribution at the last position" });
      const accSvg = lineChart([{ name: what, x: r.accumulated.map((a) => layerX(a.label, L)), y: r.accumulated.map((a) => a.value) }], {
        title: "accumulated residual read as the logit (diff)", xLabel: `layer (l = resid_pre, l + 0.5 = resid_mid, ${L} = final)`, yLabel: wrong === undefined ? "logit" : "logit difference",
      });
      const top = topOf(r.neurons?.values ?? [], topNeurons);
      const neuronSvg = r.neurons && barChart(top.map((n) => ({ label: `L${r.neurons!.layer}N${n}`, value: r.neurons!.values[n]! })), { title: `DLA of layer ${r.neurons.layer}'s top ${top.length} neurons (by |value|) → ${what}`, xLabel: "contribution at the last position" });
      writeOutputFiles(outDir, [
        ["dla-heads.svg", headsSvg], ["dla-components.svg", barsSvg], ["dla-accumulated.svg", accSvg],
        ...(neuronSvg ? [["dla-neurons.svg", neuronSvg] as const] : []),
        ["dla.svg", svgGrid([headsSvg, barsSvg, accSvg], { cols: 3, title: `direct logit attribution: ${prompt.length > 60 ? prompt.slice(0, 57) + "…" : prompt}` })],
      ], "dla", doc);
    }
    const f = (v: number) => (v >= 0 ? " " : "") + v.toFixed(5);
    out.result(doc, () => [
      `direct logit attribution of ${what} at position ${last} (${JSON.stringify(doc.tokens[last]!.str)})`,
      ...r.comps.map((c) => `  ${c.label.padEnd(14)} ${f(c.value)}`),
      `  ${"constant".padEnd(14)} ${f(r.constant)}`,
      `sum + constant ${f(sum + r.constant)} vs model ${f(r.logitDiff)} (gap ${doc.check.gap.toExponential(2)})`,
      ...(r.neurons ? [`top neurons of layer ${r.neurons.layer} by |DLA|: ${topOf(r.neurons.values, topNeurons).map((n) => `N${n} ${r.neurons!.values[n]!.toFixed(5)}`).join(", ")} (b_out ${r.neurons.bias.toFixed(5)})`] : []),
      `accumulated residual: ${r.accumulated.map((a) => `${a.label} ${a.value.toFixed(4)}`).join(", ")}`,
      ...(doc.files.length ? [`files: ${doc.files.join(", ")}`] : []),
    ].join("\n"));
  },
};
