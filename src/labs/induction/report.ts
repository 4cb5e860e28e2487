// Renders an InductionLabResult as report.md plus SVG figures, comparing the numbers with Olsson et al.
// 2022, "In-context Learning and Induction Heads" (a phase change in which in-context learning —
// the loss on repeated tokens — improves abruptly, together with the formation of induction heads).
// Pure: returns file names and contents; the CLI writes them.
import { figureSection } from "../markdown.js";
import { heatmap, lineChart, type Series } from "../../plot/index.js";
import { smooth } from "./analysis.js";
import type { InductionLabResult } from "./lab.js";

const f2 = (v: number) => v.toFixed(2), f3 = (v: number) => v.toFixed(3);
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];

/** The JSON-able summary (no model, no per-step arrays beyond the detector log). */
export function summary(r: InductionLabResult) {
  const t = r.training, a = r.analysis;
  return {
    seconds: r.seconds, options: t.options, phaseChange: a.phaseChange, inductionCrossStep: a.inductionCrossStep,
    initialInduction: a.initialInduction, finalInduction: a.finalInduction, inductionHead: a.inductionHead, previousTokenHead: a.previousTokenHead,
    induction: a.induction, previousToken: a.previousToken, kComposition: a.kComposition, kPair: a.kPair, baseline: a.baseline,
    lnVocab: a.lnVocab, early: a.early, late: a.late,
  };
}

export function renderReport(r: InductionLabResult): Record<string, string> {
  const files: Record<string, string> = {};
  const t = r.training, a = r.analysis, o = t.options, pc = a.phaseChange;
  const steps = t.loss.map((_, i) => i), nL = a.induction.length, nH = a.induction[0]!.length;
  const sm = (xs: number[]) => smooth(xs, 9);
  const top = Math.max(a.lnVocab + 0.5, ...sm(t.loss));
  const mark = (x: number | null, name: string, color: string): Series[] => (x === null ? [] : [{ name, x: [x, x], y: [0, top], dashed: true, color }]);
  files["loss-curves.svg"] = lineChart([
    { name: "first segment (unpredictable)", x: steps, y: sm(t.firstLoss) },
    { name: "repeated tokens", x: steps, y: sm(t.repeatedLoss) },
    { name: "total", x: steps, y: sm(t.loss), color: "#999" },
    { name: `ln(d_vocab) = ${f2(a.lnVocab)}`, x: [0, steps.length], y: [a.lnVocab, a.lnVocab], dashed: true, color: "#bbb" },
    ...mark(pc.step, `phase change (step ${pc.step})`, "#d62728"),
  ], { title: "loss over training (9-step moving average)", xLabel: "step", yLabel: "cross-entropy (nats)" });
  const series: Series[] = [];
  for (let l = 0; l < nL; l++) for (let h = 0; h < nH; h++) {
    const color = PALETTE[(l * nH + h) % PALETTE.length];
    series.push({ name: `L${l}H${h} induction`, x: t.detectors.steps, y: t.detectors.induction.map((s) => s[l]![h]!), color });
    series.push({ name: `L${l}H${h} prev-token`, x: t.detectors.steps, y: t.detectors.previousToken.map((s) => s[l]![h]!), color, dashed: true });
  }
  files["detector-scores.svg"] = lineChart([...series, ...mark(pc.step, "phase change", "#000").map((s) => ({ ...s, y: [0, 1] }))], {
    title: "head detector scores over training (solid: induction, dashed: previous token)", xLabel: "step", yLabel: "score",
  });
  const rows = a.induction.map((_, l) => `layer ${l}`), cols = a.induction[0]!.map((_, h) => `H${h}`);
  files["detectors-final.svg"] = heatmap([...a.induction, ...a.previousToken], {
    title: "final detector scores (top: induction, bottom: previous token)", scale: "sequential", min: 0, max: 1,
    rowLabels: [...rows.map((x) => `ind ${x}`), ...rows.map((x) => `prev ${x}`)], colLabels: cols, xLabel: "head",
  });
  files["k-composition.svg"] = heatmap(a.kComposition, {
    title: `K-composition, layer-0 → layer-1 heads (random baseline ${f3(a.baseline.mean)})`, scale: "sequential", min: 0,
    rowLabels: cols.map((c) => `L0${c}`), colLabels: cols.map((c) => `L1${c}`), xLabel: "layer-1 head (keys)", yLabel: "layer-0 head",
  });
  const table = (m: number[][], name: string) => [`| ${name} | ${cols.join(" | ")} |`, `|---|${cols.map(() => "---").join("|")}|`, ...m.map((row, i) => `| ${i} | ${row.map(f3).join(" | ")} |`)];
  const sharp = a.inductionCrossStep !== null && Math.abs(a.inductionCrossStep - pc.step) <= pc.window;
  files["report.md"] = [
    `# Induction heads and the in-context-learning phase change`,
    "",
    `Reproduces the central observation of Olsson et al. 2022, "In-context Learning and Induction Heads" (https://transformer-circuits.pub/2022/in-context-learning-and-induction-heads/index.html): early in training there is a phase change in which in-context learning improves abruptly, at the same time as induction heads form (Argument 1; in small attention-only models, the induction circuit is a previous-token head in layer 0 K-composing with an induction head in layer 1, Elhage et al. 2021).`,
    "",
    `Model: 2-layer attention-only transformer, ${o.nHeads} heads × d_head ${o.dHead} per layer, d_model 32, d_vocab ${o.dVocab}, no LayerNorm or biases. Data: each sequence a random segment of length L ∈ [4, ${o.half}] repeated to fill ${2 * o.half} tokens${o.bos ? " after a BOS token" : ""} (L varies, so only induction predicts the repeats). ${o.steps} AdamW steps (lr ${o.lr}, weight decay ${o.weightDecay}), batch ${o.batch}, seed ${o.seed}, trained on the loss over every token; ${r.seconds.toFixed(1)} s.`,
    "",
    "## Findings vs the paper",
    "",
    `- **Phase change:** the repeated-token loss falls fastest around step ${pc.step}: from ${f2(pc.repeatedBefore)} to ${f2(pc.repeatedAfter)} nats (a drop of ${f2(pc.drop)}) within the ${pc.window} steps ${pc.start}–${pc.end}. Over the same window the first-segment loss is ${f2(pc.firstDuring)} (ln(d_vocab) = ${f2(a.lnVocab)}): nothing there can be learnt from context, so the whole improvement is in-context learning, as in the paper's phase change (loss on later tokens improves abruptly, early tokens do not).`,
    `- **Induction heads form at the phase change:** the best layer-1 induction score is ${f3(a.initialInduction)} at initialisation and ${f3(a.finalInduction)} after training (L${a.inductionHead.layer}H${a.inductionHead.head}); it crosses 0.5 at step ${a.inductionCrossStep ?? "— (never)"}${sharp ? `, within one window of the loss drop (the paper: the two coincide)` : ""}.`,
    `- **The circuit:** previous-token head L0H${a.previousTokenHead.head} (score ${f3(a.previousTokenHead.score)}) K-composes with the induction head: K = ${f3(a.kPair)} vs random matrices ${f3(a.baseline.mean)} ± ${f3(a.baseline.std)} (${f2(a.kPair / a.baseline.mean)}× the baseline).`,
    `- **Before/after:** first 20 steps — first segment ${f2(a.early.first)}, repeats ${f2(a.early.repeated)}; last 20 steps — first segment ${f2(a.late.first)}, repeats ${f2(a.late.repeated)} nats. The paper's in-context-learning score (late-token loss minus early-token loss) goes from ${f2(a.early.repeated - a.early.first)} to ${f2(a.late.repeated - a.late.first)} nats.`,
    "",
    "## Final detector scores (detector tokens: a random 10-token segment and its copy)",
    "",
    ...table(a.induction, "induction, layer"),
    "",
    ...table(a.previousToken, "previous token, layer"),
    "",
    "## K-composition (rows: layer-0 head, columns: layer-1 head)",
    "",
    ...table(a.kComposition, "L0 head"),
    "",
    ...figureSection(files),
  ].join("\n");
  return files;
}
