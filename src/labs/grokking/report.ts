// Renders the grokking lab's results as report.md plus SVG figures, each number beside the paper's
// (Nanda et al. 2023). Pure: returns file names and contents; the CLI writes them. Not the
// experiment (lab.ts) nor the measurements (analysis.ts).
import { heatmap, lineChart, type Series } from "../../plot/index.js";
import { verdict } from "../markdown.js";
import { NEURON_CLUSTER_THRESHOLD, type ModelAnalysis } from "./analysis.js";
import { CRITERIA, criteriaTable } from "./criteria.js";
import type { GrokkingLabResult, TrainingMeasure, TrainingRecord } from "./lab.js";

const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
const e3 = (v: number) => v.toExponential(3);

/** The paper's headline numbers for its main run (p = 113; §4–5). */
export const PAPER = {
  keyFrequencies: [14, 35, 41, 42, 52],
  accuracy: 1, // the grokked model is right on every pair
  logitVarianceExplained: 0.95, // §4.2: the cos(w_k(a+b−c)) terms explain ~95% of the logits' variance
} as const;

/** The loaded model's losses count as reproducing the stored curves' final values within this factor. */
export const REPRODUCE_FACTOR = 1.5;

/** Does the loaded model reproduce its stored curves' final losses? The check and its numbers. */
export function reproducedSentence(a: ModelAnalysis, curves: { train: number[]; test: number[] } | null): string {
  if (!curves) return "No stored loss curves to compare the model's own losses (below) with.";
  const tr = curves.train.at(-1)!, te = curves.test.at(-1)!;
  const within = (x: number, ref: number) => x > 0 && ref > 0 && Math.max(x / ref, ref / x) <= REPRODUCE_FACTOR;
  return verdict(within(a.loss.train, tr) && within(a.loss.test, te),
    "The model's own losses reproduce the stored curves' final values", "The model's own losses do not reproduce the stored curves' final values",
    `train ${e3(a.loss.train)} vs stored ${e3(tr)}, held-out ${e3(a.loss.test)} vs stored ${e3(te)}; bar: within ${REPRODUCE_FACTOR}×`) + ".";
}

/** §5.2: the restricted loss falls and the excluded loss rises before the test loss falls. The check and its numbers. */
export function progressOrderSentence(restrictedEpoch: number | null, excludedEpoch: number | null, testEpoch: number | null): string {
  const n = (x: number | null) => x ?? "never";
  const known = restrictedEpoch !== null && excludedEpoch !== null && testEpoch !== null;
  return verdict(known ? restrictedEpoch <= testEpoch && excludedEpoch <= testEpoch : null,
    "Both progress measures move before the test loss falls, as §5.2 expects", "The progress measures do not both move before the test loss falls, unlike §5.2",
    `restricted loss < 0.01 at snapshot epoch ${n(restrictedEpoch)}, excluded (train) loss > ln p at ${n(excludedEpoch)}, test loss < 0.01 at ${n(testEpoch)}`,
    "Inconclusive against §5.2 (a measure never crosses its bar)") + ".";
}

/** Stem plot of the per-frequency embedding norms (one polyline dropping to 0 between stems). */
function normStems(norms: readonly number[], keys: readonly number[], title: string): string {
  const x: number[] = [], y: number[] = [], kx: number[] = [], ky: number[] = [];
  norms.forEach((v, k) => {
    if (k === 0) return;
    const s = Math.sqrt(v);
    x.push(k, k, k); y.push(0, s, 0);
    if (keys.includes(k)) { kx.push(k, k, k); ky.push(0, s, 0); }
  });
  return lineChart([{ name: "‖W_E on frequency k‖", x, y, color: "#1f77b4" }, { name: `key frequencies ${keys.join(", ")}`, x: kx, y: ky, color: "#d62728" }], {
    title, xLabel: "frequency k", yLabel: "norm",
  });
}

/** [K+1, K+1] per-frequency norms from the [p, p] basis-indexed logit spectrum (cos and sin pooled). */
function pooledSpectrum(spec: Float64Array, p: number): number[][] {
  const K = (p - 1) / 2, out = Array.from({ length: K + 1 }, () => new Array<number>(K + 1).fill(0));
  const f = (i: number) => (i === 0 ? 0 : Math.ceil(i / 2));
  for (let i = 0; i < p; i++) for (let j = 0; j < p; j++) out[f(i)]![f(j)]! += spec[i * p + j]! ** 2;
  return out.map((r) => r.map(Math.sqrt));
}

function analysisTable(a: ModelAnalysis, paper: boolean): string[] {
  const kf = a.keyFrequencies;
  const rows = [
    `| measure | this model | paper |`, `| --- | --- | --- |`,
    `| accuracy, all ${a.p}² pairs | ${pct(a.accuracy.all)} | ${pct(PAPER.accuracy)} after grokking |`,
    `| accuracy, train / held-out | ${pct(a.accuracy.train)} / ${pct(a.accuracy.test)} | |`,
    `| loss, train / held-out | ${e3(a.loss.train)} / ${e3(a.loss.test)} | |`,
    `| key frequencies (§4.1) | ${kf.join(", ")} (${kf.length}) | ${paper ? PAPER.keyFrequencies.join(", ") + " (5; another seed)" : "a handful per run"} |`,
    `| share of ‖W_E‖² on the key frequencies | ${pct(a.embedKeyFraction)} | sparse in the Fourier basis (Fig. 3) |`,
    `| logit variance explained by Σ_k α_k cos(w_k(a+b−c)) (§4.2) | ${pct(a.logitVarianceExplained)} | ~${pct(PAPER.logitVarianceExplained)} |`,
    `| of the rest: a bias over outputs shared by all (a, b) | ${pct(a.logitOutputBiasShare)} of the variance | (none in a clean circuit) |`,
    `| restricted loss, key frequencies only (§5.1) | ${e3(a.progress.restrictedLoss)} | below the full train loss at the end |`,
    `| excluded loss on train pairs (§5.1) | ${e3(a.progress.excludedLoss)} (held-out ${e3(a.progress.excludedTestLoss)}; chance ln ${a.p} = ${Math.log(a.p).toFixed(3)}) | far above the train loss once the circuit forms |`,
  ];
  if (a.neurons) {
    const live = a.neurons.total - a.neurons.dead;
    rows.push(`| MLP neurons ≥ ${100 * NEURON_CLUSTER_THRESHOLD}% explained by one frequency (§4.3) | ${a.neurons.clustered} of ${live} live (${pct(a.neurons.clustered / live)}; mean share of the best frequency ${pct(a.neurons.meanFraction)}); ${Object.entries(a.neurons.perFrequency).map(([k, n]) => `k=${k}: ${n}`).join(", ")} | most neurons; clusters per key frequency |`);
  }
  rows.push("", `α_k per key frequency (§4.2): ${a.alpha.map(([k, v]) => `k=${k}: ${v.toFixed(2)}`).join(", ")}.`);
  const top = a.logitVarianceByFrequency.map((v, k) => [k, v] as const).filter(([k]) => k > 0).sort((x, y) => y[1] - x[1]).slice(0, 8);
  rows.push("", `Largest single cos(w_k(a+b−c)) terms, share of logit variance: ${top.map(([k, v]) => `k=${k}: ${pct(v)}`).join(", ")}.`);
  return rows;
}

function trainingSection(t: TrainingRecord, files: Record<string, string>): string[] {
  const ep = t.epochs;
  const pos = (v: number) => Math.max(v, 1e-12); // log axes need positive values
  files["training-loss.svg"] = lineChart([
    { name: "train loss", x: ep, y: t.trainLoss.map(pos) }, { name: "test loss", x: ep, y: t.testLoss.map(pos) },
    { name: "restricted loss", x: t.measures.map((m) => m.epoch), y: t.measures.map((m) => pos(m.restrictedLoss)), dashed: true },
    { name: "excluded loss (train)", x: t.measures.map((m) => m.epoch), y: t.measures.map((m) => pos(m.excludedLoss)), dashed: true },
  ], { title: `training from scratch, p = ${t.options.p} (progress measures with the final key frequencies)`, xLabel: "epoch", yLabel: "loss", yLog: true });
  files["training-key-fraction.svg"] = lineChart([
    { name: "share of ‖W_E‖² on final key frequencies", x: t.measures.map((m) => m.epoch), y: t.measures.map((m) => m.embedKeyFraction) },
    { name: "logit variance explained", x: t.measures.map((m) => m.epoch), y: t.measures.map((m) => m.logitVarianceExplained) },
  ], { title: "Fourier structure over training", xLabel: "epoch", yLabel: "fraction" });
  files["training-accuracy.svg"] = lineChart([{ name: "train accuracy", x: ep, y: t.trainAcc }, { name: "test accuracy", x: ep, y: t.testAcc }], {
    title: "accuracy over training (before each epoch's update)", xLabel: "epoch", yLabel: "accuracy",
  });
  const firstAt = (ys: number[]) => { const i = ys.findIndex((v) => v < 0.01); return i < 0 ? null : ep[i]!; };
  const first = (ys: number[]) => String(firstAt(ys) ?? "never");
  const o = t.options, sa = t.separation.accuracy, sl = t.separation.loss;
  const ratio = (s: typeof sa) => (s.ratio === null ? "undefined" : s.trainEpoch === 0 ? `ill-conditioned (train reached at epoch 0; ${s.ratio.toFixed(1)}× with the denominator clamped to 1)` : `${s.ratio.toFixed(1)}×`);
  const firstMeasure = (pred: (m: TrainingMeasure) => boolean) => t.measures.find(pred)?.epoch ?? null;
  return [
    `## Training from scratch`, "",
    `p = ${o.p}, d_model ${o.dModel}, ${o.nHeads} heads, d_mlp ${o.dMlp}, ${pct(o.fracTrain)} of pairs for training, full-batch AdamW (lr ${o.lr}, weight decay ${o.weightDecay}, betas 0.9/0.98), ${o.epochs} epochs, seed ${o.seed}: ${t.seconds.toFixed(0)} s.`, "",
    `Acceptance criteria (issue #5) for this run. Separation = (first logged epoch with test accuracy ≥ ${100 * CRITERIA.testAccuracy}%) / (first logged epoch with train accuracy ≥ ${100 * CRITERIA.testAccuracy}%), accuracies measured every ` + `${o.logEvery} epochs before that epoch's update; the final model's Fourier measures are below.`, "",
    ...criteriaTable(t.criteria), "",
    `- accuracy ≥ ${100 * CRITERIA.testAccuracy}% first at epoch ${sa.trainEpoch ?? "never"} (train) and ${sa.testEpoch ?? "never"} (test): ratio ${ratio(sa)}`,
    `- train loss < 0.01 first at epoch ${first(t.trainLoss)}; test loss < 0.01 first at epoch ${first(t.testLoss)}: ratio ${ratio(sl)} (a long gap between the two is grokking)`,
    `- ${progressOrderSentence(firstMeasure((m) => m.restrictedLoss < 0.01), firstMeasure((m) => m.excludedLoss > Math.log(o.p)), firstAt(t.testLoss))}`,
    `- last logged train / test loss (epoch ${ep.at(-1)}, before its update) ${e3(t.trainLoss.at(-1)!)} / ${e3(t.testLoss.at(-1)!)}; the table below is after the last update`, "",
    ...analysisTable(t.final, false), "",
    `![training losses](training-loss.svg)`, "", `![training accuracy](training-accuracy.svg)`, "", `![Fourier structure over training](training-key-fraction.svg)`, "",
    "Progress measures over training (key frequencies of the final model, as §5.1):", "",
    `| epoch | test accuracy | restricted loss | excluded loss (train) | ‖W_E‖² share | logit var. |`, `| --- | --- | --- | --- | --- | --- |`,
    ...t.measures.map((m) => `| ${m.epoch} | ${pct(m.testAccuracy)} | ${e3(m.restrictedLoss)} | ${e3(m.excludedLoss)} | ${pct(m.embedKeyFraction)} | ${pct(m.logitVarianceExplained)} |`),
  ];
}

export function renderReport(r: GrokkingLabResult): Record<string, string> {
  const files: Record<string, string> = {};
  const md: string[] = ["# Grokking lab: Nanda et al. 2023, \"Progress measures for grokking via mechanistic interpretability\"", ""];
  if (r.checkpoint) {
    const { analysis: a, curves, dir, meta } = r.checkpoint;
    md.push(`## The grokked checkpoint (p = ${a.p})`, "", `Loaded from \`${dir}\`${meta ? ` (${meta})` : ""}. Weights mapped from the original [d_out, d_in] layouts to circuitscope's. ${reproducedSentence(a, curves)}`, "");
    md.push(...analysisTable(a, a.p === 113), ""); // the paper's frequencies are for p = 113 only
    const sep = r.checkpoint.separation;
    md.push(`Acceptance criteria (issue #5) on the checkpoint; its stored curves hold losses only, so the separation is (first epoch with test loss < 0.01) / (first epoch with train loss < 0.01)${sep ? "" : " (no stored curves)"}:`, "", ...criteriaTable(r.checkpoint.criteria), "");
    files["embedding-fourier-norms.svg"] = normStems(a.embedNorms, a.keyFrequencies, `embedding norm per frequency, p = ${a.p} (§4.1, Fig. 3)`);
    md.push("![embedding Fourier norms](embedding-fourier-norms.svg)", "");
    if (a.logitSpectrum) {
      files["logit-fourier.svg"] = heatmap(pooledSpectrum(a.logitSpectrum, a.p), {
        title: "‖logits in the 2D Fourier basis over (a, b)‖, cos/sin pooled per frequency", scale: "sequential", xLabel: "frequency of b", yLabel: "frequency of a",
      });
      md.push("![logit Fourier spectrum](logit-fourier.svg)", "");
    }
    md.push(`The excluded loss removes each output's components along cos(w_k(a+b)) and sin(w_k(a+b)) for the key frequencies; the restricted loss keeps only those (plus each output's mean). Both use the logits at "=" on all ${a.p}² pairs; losses are over the ${a.p} residues.`, "");
    if (curves) {
      // Every stride-th point: ~1,000 per curve keeps the SVG small and the shape intact.
      const stride = Math.max(1, Math.floor(curves.train.length / 1000));
      const idx = curves.train.map((_, i) => i).filter((i) => i % stride === 0 || i === curves.train.length - 1);
      const x = idx.map((i) => i * curves.epochsPerPoint);
      const s: Series[] = [{ name: "train loss", x, y: idx.map((i) => curves.train[i]!) }, { name: "test loss", x, y: idx.map((i) => curves.test[i]!) }];
      files["loss-curves.svg"] = lineChart(s, { title: "stored loss curves of the checkpoint's run", xLabel: "epoch", yLabel: "loss", yLog: true });
      const first = (ys: number[], th: number) => { const i = ys.findIndex((v) => v < th); return i < 0 ? "never" : String(i * curves.epochsPerPoint); };
      md.push(`Stored curves (${curves.train.length} points, every ${curves.epochsPerPoint} epochs): train loss < 0.01 first at epoch ${first(curves.train, 0.01)}, test loss < 0.01 first at epoch ${first(curves.test, 0.01)}; final train ${e3(curves.train.at(-1)!)}, test ${e3(curves.test.at(-1)!)}.`, "", "![loss curves](loss-curves.svg)", "");
    }
  }
  if (r.training) md.push(...trainingSection(r.training, files), "");
  files["report.md"] = md.join("\n") + "\n";
  return files;
}
