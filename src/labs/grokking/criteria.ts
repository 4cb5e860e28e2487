// The grokking lab's acceptance criteria (issue #5), computed from a run's curves and the final
// model's analysis: > 99% held-out accuracy; train and test curves separated by ≥ 5× in epochs; ≤ 6
// key frequencies holding ≥ 80% of ‖W_E‖²; the cos(w_k(a+b−c)) terms of those frequencies explaining
// ≥ 90% of the centred logits' variance (Nanda et al. 2023 §4.2 report ~95%). Plain data, no I/O.
import type { ModelAnalysis } from "./analysis.js";

export const CRITERIA = { testAccuracy: 0.99, separation: 5, maxKeyFrequencies: 6, embedKeyFraction: 0.8, logitVarianceExplained: 0.9 } as const;

/**
 * When a curve first reaches its threshold, for train and test, and their ratio. "Reached" is the first
 * logged epoch (updates done) at which the value satisfies the threshold, e.g. accuracy ≥ 99% or loss
 * < 0.01; ratio = testEpoch / max(trainEpoch, 1), null when either never gets there.
 */
export interface Separation {
  basis: string; // e.g. "accuracy ≥ 99%"
  trainEpoch: number | null;
  testEpoch: number | null;
  ratio: number | null;
}

/** The first epochs[i] with reached(ys[i]), or null. */
export function firstReached(epochs: readonly number[], ys: readonly number[], reached: (v: number) => boolean): number | null {
  if (epochs.length !== ys.length) throw new RangeError(`firstReached: ${epochs.length} epochs but ${ys.length} values`);
  const i = ys.findIndex(reached);
  return i < 0 ? null : epochs[i]!;
}

export function separation(basis: string, epochs: readonly number[], train: readonly number[], test: readonly number[], reached: (v: number) => boolean): Separation {
  const trainEpoch = firstReached(epochs, train, reached), testEpoch = firstReached(epochs, test, reached);
  const ratio = trainEpoch === null || testEpoch === null ? null : testEpoch / Math.max(trainEpoch, 1);
  return { basis, trainEpoch, testEpoch, ratio };
}

/** Accuracy curves: first epoch at ≥ 99% (the same bar as the final test accuracy). */
export const accuracySeparation = (epochs: readonly number[], train: readonly number[], test: readonly number[]) =>
  separation(`accuracy ≥ ${100 * CRITERIA.testAccuracy}%`, epochs, train, test, (v) => v >= CRITERIA.testAccuracy);

/** Loss curves (all a stored checkpoint has): first epoch below 0.01. */
export const lossSeparation = (epochs: readonly number[], train: readonly number[], test: readonly number[]) =>
  separation("loss < 0.01", epochs, train, test, (v) => v < 0.01);

export interface Criterion {
  name: string;
  /** The measured value (a fraction, a count or a ratio; null when the curve never got there). */
  value: number | null;
  unit: "fraction" | "count" | "ratio";
  /** The bar, as text, e.g. "> 99%". */
  bar: string;
  pass: boolean;
  /** What the value is read from, e.g. "first epoch at accuracy ≥ 99%: train 310, test 3720". */
  detail: string;
}

export function grokkingCriteria(a: ModelAnalysis, sep: Separation | null): Criterion[] {
  const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
  const c = CRITERIA;
  const out: Criterion[] = [
    { name: "held-out accuracy", value: a.accuracy.test, unit: "fraction", bar: `> ${100 * c.testAccuracy}%`, pass: a.accuracy.test > c.testAccuracy, detail: `final model, ${pct(a.accuracy.test)} of the held-out pairs` },
  ];
  if (sep) out.push({
    // A train epoch of 0 makes the ratio's denominator (clamped to 1) meaningless: no pass on it.
    name: "train/test separation", value: sep.ratio, unit: "ratio", bar: `≥ ${c.separation}×`, pass: sep.ratio !== null && sep.trainEpoch !== 0 && sep.ratio >= c.separation,
    detail: `first epoch at ${sep.basis}: train ${sep.trainEpoch ?? "never"}, test ${sep.testEpoch ?? "never"}${sep.trainEpoch === 0 ? "; ratio ill-conditioned (train reached at epoch 0)" : ""}`,
  });
  const k = a.keyFrequencies.length;
  out.push(
    { name: "key frequencies", value: k, unit: "count", bar: `≤ ${c.maxKeyFrequencies}`, pass: k >= 1 && k <= c.maxKeyFrequencies, detail: a.keyFrequencies.join(", ") },
    { name: "share of ‖W_E‖² on them", value: a.embedKeyFraction, unit: "fraction", bar: `≥ ${100 * c.embedKeyFraction}%`, pass: a.embedKeyFraction >= c.embedKeyFraction, detail: pct(a.embedKeyFraction) },
    {
      name: "logit variance explained by their cos(w_k(a+b−c))", value: a.logitVarianceExplained, unit: "fraction", bar: `≥ ${100 * c.logitVarianceExplained}%`,
      pass: a.logitVarianceExplained >= c.logitVarianceExplained, detail: `${pct(a.logitVarianceExplained)} (paper ~95%)`,
    },
  );
  return out;
}

/** The criteria as a markdown table. */
export function criteriaTable(cs: readonly Criterion[]): string[] {
  const show = ({ value: v, unit }: Criterion) => v === null ? "never" : unit === "ratio" ? `${v.toFixed(1)}×` : unit === "count" ? String(v) : `${(100 * v).toFixed(2)}%`;
  return [`| criterion | measured | bar | result | from |`, `| --- | --- | --- | --- | --- |`, ...cs.map((c) => `| ${c.name} | ${show(c)} | ${c.bar} | ${c.pass ? "pass" : "FAIL"} | ${c.detail} |`)];
}
