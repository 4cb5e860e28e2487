// Renders an InductionLabResult as report.md plus SVG figures, comparing the numbers with Olsson et al.
// 2022, "In-context Learning and Induction Heads" (a phase change in which in-context learning —
// the loss on repeated tokens — improves abruptly, together with the formation of induction heads).
// Pure: returns file names and contents; the CLI writes them.
import { figureSection, illConditioned, verdict } from "../markdown.js";
import { heatmap, lineChart, type Series } from "../../plot/index.js";
import { EDGE_STEPS, INDUCTION_THRESHOLD, smooth, type InductionAnalysis } from "./analysis.js";
import type { InductionLabResult } from "./lab.js";
import { DETECTOR_BATCH, DETECTOR_SEGMENT, MIN_SEGMENT } from "./train.js";

const f2 = (v: number) => v.toFixed(2), f3 = (v: number) => v.toFixed(3);
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];

/** The first-segment loss may move by at most this fraction of the repeated-token drop for the drop to count as in-context learning only. */
export const ICL_ONLY_FRACTION = 0.1;
/** K-composition counts as above chance this many baseline standard deviations over the baseline mean. */
export const K_SIGMAS = 2;

/** The findings' conclusion sentences, each chosen by a check whose numbers stand beside it. */
export function inductionFindings(a: InductionAnalysis): string[] {
  const pc = a.phaseChange, dFirst = pc.firstBefore - pc.firstAfter;
  const iclOnly = illConditioned(pc.drop, pc.repeatedBefore) || pc.drop < 0 ? null : Math.abs(dFirst) <= ICL_ONLY_FRACTION * pc.drop;
  const cross = a.inductionCrossStep;
  const together = cross === null ? null : Math.abs(cross - pc.step) <= pc.window;
  const kAbove = a.kPair > a.baseline.mean + K_SIGMAS * a.baseline.std;
  const kRatio = illConditioned(a.baseline.mean, a.kPair) ? "ratio to the baseline ill-conditioned: its mean is ~0" : `${f2(a.kPair / a.baseline.mean)}× the baseline`;
  return [
    `- **Phase change:** the repeated-token loss falls fastest around step ${pc.step}: from ${f2(pc.repeatedBefore)} to ${f2(pc.repeatedAfter)} nats (a drop of ${f2(pc.drop)}) within the ${pc.window} steps ${pc.start}–${pc.end}. ` + verdict(iclOnly,
      "Over the same window the first-segment loss, where nothing can be learnt from context, stays put, so the improvement is in-context learning, as in the paper's phase change (loss on later tokens improves abruptly, early tokens do not)",
      "Over the same window the first-segment loss moves too, so the drop is not in-context learning alone, unlike the paper's phase change",
      `first-segment loss ${f2(pc.firstBefore)} → ${f2(pc.firstAfter)}, change ${f2(-dFirst)} vs the bar ±${ICL_ONLY_FRACTION} × ${f2(pc.drop)}; mean ${f2(pc.firstDuring)}, ln(d_vocab) = ${f2(a.lnVocab)}`,
      "Inconclusive: the repeated-token loss does not fall, so there is no drop to attribute") + ".",
    `- **Induction heads:** the best layer-${a.inductionHead.layer} induction score is ${f3(a.initialInduction)} at initialisation and ${f3(a.finalInduction)} after training (L${a.inductionHead.layer}H${a.inductionHead.head}). ` + verdict(together,
      "It forms at the phase change, as the paper finds", "It does not form at the phase change, unlike the paper",
      `crosses ${INDUCTION_THRESHOLD} at step ${cross ?? "— (never)"}; the loss drop is centred on step ${pc.step}, window ${pc.window}`,
      `No induction head formed (the score never crosses ${INDUCTION_THRESHOLD}), so this is not the paper's phase change`) + ".",
    `- **The circuit:** previous-token head L0H${a.previousTokenHead.head} (score ${f3(a.previousTokenHead.score)}) ` + verdict(kAbove,
      "K-composes with the induction head", "does not K-compose with the induction head above chance",
      `K = ${f3(a.kPair)} vs random matrices ${f3(a.baseline.mean)} ± ${f3(a.baseline.std)}, bar mean + ${K_SIGMAS} std; ${kRatio}`) + ".",
    `- **Before/after:** first ${EDGE_STEPS} steps — first segment ${f2(a.early.first)}, repeats ${f2(a.early.repeated)}; last ${EDGE_STEPS} steps — first segment ${f2(a.late.first)}, repeats ${f2(a.late.repeated)} nats. The paper's in-context-learning score (late-token loss minus early-token loss) goes from ${f2(a.early.repeated - a.early.first)} to ${f2(a.late.repeated - a.late.first)} nats.`,
  ];
}

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
  files["report.md"] = [
    `# Induction heads and the in-context-learning phase change`,
    "",
    `Reproduces the central observation of Olsson et al. 2022, "In-context Learning and Induction Heads" (https://transformer-circuits.pub/2022/in-context-learning-and-induction-heads/index.html): early in training there is a phase change in which in-context learning improves abruptly, at the same time as induction heads form (Argument 1; in small attention-only models, the induction circuit is a previous-token head in layer 0 K-composing with an induction head in layer 1, Elhage et al. 2021).`,
    "",
    `Model: ${t.model.cfg.n_layers}-layer attention-only transformer, ${o.nHeads} heads × d_head ${o.dHead} per layer, d_model ${t.model.cfg.d_model}, d_vocab ${o.dVocab}, no LayerNorm or biases. Data: each sequence a random segment of length L ∈ [${MIN_SEGMENT}, ${o.half}] repeated to fill ${2 * o.half} tokens${o.bos ? " after a BOS token" : ""} (L varies, so only induction predicts the repeats). ${o.steps} AdamW steps (lr ${o.lr}, weight decay ${o.weightDecay}), batch ${o.batch}, seed ${o.seed}, trained on the loss over every token; ${r.seconds.toFixed(1)} s.`,
    "",
    "## Findings vs the paper",
    "",
    ...inductionFindings(a),
    "",
    `## Final detector scores (detector tokens: ${DETECTOR_BATCH} rows of a random ${DETECTOR_SEGMENT}-token segment and its copy)`,
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
