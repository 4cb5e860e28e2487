// Analysis for the emergence lab (Wei et al. 2022 vs Schaeffer et al. 2023): for each model size and
// each metric (answer-token loss, per-digit accuracy, p(full answer), exact match), the eval steps at
// which the metric has covered 10% and 90% of its way from its initial to its final value — when it
// starts to move and how sharp its transition is — and the exact match at the step the loss started to
// move. Also the exact match predicted from per-digit accuracy (acc^answerDigits), Schaeffer et al.'s
// argument that a nonlinear metric turns a smooth per-token improvement into an apparent jump.
import type { AnswerMetrics, EmergenceTraining, SizeRun } from "./train.js";
import { encodeProblem, evalSetOf, layout } from "./train.js";

export type MetricName = keyof AnswerMetrics;
export const METRICS: MetricName[] = ["loss", "digitAccuracy", "pAnswer", "exactMatch"];

export interface Transition {
  /** First eval step at which the metric has covered ≥ 10% / ≥ 90% of its total change, or null. */
  start: number | null;
  end: number | null;
  width: number | null;
  initial: number;
  final: number;
}

/** First step at which `ys` has covered `frac` of its way from ys[0] to ys[last] (either direction). */
export function crossing(steps: readonly number[], ys: readonly number[], frac: number): number | null {
  const a = ys[0]!, b = ys[ys.length - 1]!;
  if (Math.abs(b - a) < 1e-9) return null;
  const i = ys.findIndex((y) => (y - a) / (b - a) >= frac);
  return i < 0 ? null : steps[i]!;
}

export function transition(steps: readonly number[], ys: readonly number[]): Transition {
  const start = crossing(steps, ys, 0.1), end = crossing(steps, ys, 0.9);
  return { start, end, width: start !== null && end !== null ? end - start : null, initial: ys[0]!, final: ys[ys.length - 1]! };
}

export interface SizeAnalysis {
  dModel: number;
  params: number;
  transitions: Record<MetricName, Transition>;
  final: AnswerMetrics;
  /** First eval step with exact match ≥ 0.5, or null. */
  exactHalfStep: number | null;
  /** Exact match and p(answer) when the loss had covered 10% of its drop. */
  exactAtLossStart: number;
  /** Max over evals of |exactMatch − digitAccuracy^answerDigits|: how well the per-digit accuracy predicts exact match. */
  independenceGap: number;
  /** Evals whose loss is within BASELINE_BAND (relative) of the digit-frequency baseline's loss: how many, and the first and last such step. */
  atBaseline: { evals: number; first: number | null; last: number | null };
}

/** The loss and per-digit accuracy of predicting each answer position's digit by its frequency on the held-out set (digit frequencies learnt, addition not). */
export interface FrequencyBaseline { loss: number; digitAccuracy: number }

/** Relative band around the baseline loss within which an eval counts as sitting at it. */
export const BASELINE_BAND = 0.05;

export interface EmergenceAnalysis { answerDigits: number; baseline: FrequencyBaseline; sizes: SizeAnalysis[] }

/** Cross-entropy and argmax accuracy of each answer position's empirical digit distribution over `problems`. */
export function frequencyBaseline(problems: readonly (readonly [number, number])[], digits: number): FrequencyBaseline {
  const { prompt, answer } = layout(digits), n = problems.length;
  if (n === 0) throw new RangeError("frequencyBaseline: no problems");
  const counts = Array.from({ length: answer }, () => new Array<number>(10).fill(0));
  for (const [a, b] of problems) encodeProblem(a, b, digits).slice(prompt).forEach((d, k) => { counts[k]![d]!++; });
  let loss = 0, right = 0;
  for (const c of counts) for (const m of c) { if (m > 0) loss -= m * Math.log(m / n); }
  for (const c of counts) right += Math.max(...c);
  return { loss: loss / (n * answer), digitAccuracy: right / (n * answer) };
}

export function analyseSize(r: SizeRun, answerDigits: number, baseline?: FrequencyBaseline): SizeAnalysis {
  const series = (m: MetricName) => r.evals.map((e) => e[m]);
  const transitions = Object.fromEntries(METRICS.map((m) => [m, transition(r.steps, series(m))])) as Record<MetricName, Transition>;
  const ls = transitions.loss.start, li = ls === null ? 0 : r.steps.indexOf(ls);
  const half = r.evals.findIndex((e) => e.exactMatch >= 0.5);
  return {
    dModel: r.dModel, params: r.params, transitions, final: r.evals[r.evals.length - 1]!,
    exactHalfStep: half < 0 ? null : r.steps[half]!, exactAtLossStart: r.evals[li]!.exactMatch,
    independenceGap: Math.max(...r.evals.map((e) => Math.abs(e.exactMatch - e.digitAccuracy ** answerDigits))),
    atBaseline: baseline ? nearBaseline(r, baseline.loss) : { evals: 0, first: null, last: null },
  };
}

function nearBaseline(r: SizeRun, loss: number): SizeAnalysis["atBaseline"] {
  const steps = r.steps.filter((_, i) => Math.abs(r.evals[i]!.loss - loss) <= BASELINE_BAND * loss);
  return { evals: steps.length, first: steps[0] ?? null, last: steps.at(-1) ?? null };
}

export function analyseEmergence(t: EmergenceTraining): EmergenceAnalysis {
  const answerDigits = layout(t.options.digits).answer;
  const baseline = frequencyBaseline(evalSetOf(t.options).problems, t.options.digits);
  return { answerDigits, baseline, sizes: t.runs.map((r) => analyseSize(r, answerDigits, baseline)) };
}
