// `circuitscope dla <snapshot-folder> "<prompt>" --answer " Paris" [--wrong " London"]`: direct logit
// attribution at the last position — every term of the final residual stream (embeddings, each head,
// each attention bias, each MLP) read through the cached final LayerNorm scale onto the unembedding
// direction of the answer (minus the wrong token's), plus the accumulated residual stream read the
// same way after each block. The terms sum to the logit (difference) up to `constant` (ln_final.b and
// b_U, which no component owns); the check is printed. --out writes dla-heads.svg (layer × head),
// dla-components.svg (bars), dla-accumulated.svg (per layer), dla.svg (all three) and dla.json.
import { noGrad } from "../../tensor/autodiff.js";
import { fullLogitAttribution, type DlaTarget } from "../../analysis/residual.js";
import { barChart } from "../../plot/bars.js";
import { svgGrid } from "../../plot/grid.js";
import { heatmap, lineChart } from "../../plot/svg.js";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";
import { cellSize, writeOutputFiles } from "../outputs.js";
import { loadWithTokenizer, promptIds, singleToken } from "./patch.js";

const USAGE = `circuitscope dla <snapshot-folder> "<prompt>" --answer " Paris" [--wrong " London"] [--out dir] [--no-bos] [--json]
  --answer T   the token whose last-position logit is decomposed (one token)
  --wrong T    decompose logit(answer) − logit(wrong) instead
  --out dir    write dla-heads.svg, dla-components.svg, dla-accumulated.svg, dla.svg and dla.json there
  --no-bos     do not put the tokenizer's BOS token before the prompt`;

/** x position of an accumulated-residual label: "{l}_pre" → l, "{l}_mid" → l + 0.5, "final_post" → n_layers. */
const layerX = (label: string, nLayers: number) => label === "final_post" ? nLayers : Number(label.split("_")[0]) + (label.endsWith("_mid") ? 0.5 : 0);

export const dla: Command = {
  name: "dla",
  summary: "direct logit attribution per head / MLP / embedding and the accumulated residual, at the last position",
  usage: USAGE,
  run(pos, flags, out) {
    const answerText = flags.str("answer"), wrongText = flags.str("wrong");
    const outDir = flags.str("out");
    const noBos = flags.bool("no-bos");
    flags.checkUnknown();
    const [folder, prompt, ...extra] = pos;
    if (folder === undefined || prompt === undefined) throw new UsageError("dla needs a snapshot folder and a prompt");
    if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(" ")}`);
    if (answerText === undefined) throw new UsageError("dla needs --answer (a single token)");

    const { model, tokenizer, config: cfg } = loadWithTokenizer(folder);
    const ids = promptIds(tokenizer, prompt, cfg.n_ctx, noBos);
    const answer = singleToken(tokenizer, "answer", answerText);
    const wrong = wrongText === undefined ? undefined : singleToken(tokenizer, "wrong", wrongText);
    const target: DlaTarget = wrong === undefined ? { token: answer } : { token: answer, incorrect: wrong };
    const T = ids.length, last = T - 1, L = cfg.n_layers, H = cfg.n_heads;
    const r = noGrad(() => {
      const { logits, cache } = model.runWithCache([ids]);
      const full = fullLogitAttribution(model, cache, target);
      const comps = full.labels.map((label, i) => ({ label, value: full.components.get(i, 0, last) }));
      let acc;
      try { acc = cache.accumulatedResid(undefined, { inclMid: true }); } catch { acc = cache.accumulatedResid(); }
      const accAttr = cache.logitAttrs(cache.applyLnToStack(acc), target);
      const accumulated = acc.labels.map((label, i) => ({ label, value: accAttr.components.get(i, 0, last) + full.constant }));
      const logitDiff = logits.get(0, last, answer) - (wrong === undefined ? 0 : logits.get(0, last, wrong));
      return { comps, accumulated, constant: full.constant, logitDiff };
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
      writeOutputFiles(outDir, [
        ["dla-heads.svg", headsSvg], ["dla-components.svg", barsSvg], ["dla-accumulated.svg", accSvg],
        ["dla.svg", svgGrid([headsSvg, barsSvg, accSvg], { cols: 3, title: `direct logit attribution: ${prompt.length > 60 ? prompt.slice(0, 57) + "…" : prompt}` })],
      ], "dla", doc);
    }
    const f = (v: number) => (v >= 0 ? " " : "") + v.toFixed(5);
    out.result(doc, () => [
      `direct logit attribution of ${what} at position ${last} (${JSON.stringify(doc.tokens[last]!.str)})`,
      ...r.comps.map((c) => `  ${c.label.padEnd(14)} ${f(c.value)}`),
      `  ${"constant".padEnd(14)} ${f(r.constant)}`,
      `sum + constant ${f(sum + r.constant)} vs model ${f(r.logitDiff)} (gap ${doc.check.gap.toExponential(2)})`,
      `accumulated residual: ${r.accumulated.map((a) => `${a.label} ${a.value.toFixed(4)}`).join(", ")}`,
      ...(doc.files.length ? [`files: ${doc.files.join(", ")}`] : []),
    ].join("\n"));
  },
};
