// Analysis for the emergence lab (Wei et al. 2022 vs Schaeffer et al. 2023): for each model size and
// each metric (answer-token loss, per-digit accuracy, p(full answer), exact match), the eval steps at
// which the metric has covered 10% and 90% of its way from its initial to its final value — when it
// starts to move and how sharp its transition is — and the exact match at the step the loss started to
// move. Also the exact match predicted from per-digit accuracy (acc^answerDigits), Schaeffer et al.'s
// argument that a nonlinear metric turns a smooth per-token improvement into an apparent jump.
import type { AnswerMetrics, EmergenceTraining, SizeRun } from "./train.js";
import { layout } from "./train.js";

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
}

export interface EmergenceAnalysis { answerDigits: number; sizes: SizeAnalysis[] }

export function analyseSize(r: SizeRun, answerDigits: number): SizeAnalysis {
  const series = (m: MetricName) => r.evals.map((e) => e[m]);
  const transitions = Object.fromEntries(METRICS.map((m) => [m, transition(r.steps, series(m))])) as Record<MetricName, Transition>;
  const ls = transitions.loss.start, li = ls === null ? 0 : r.steps.indexOf(ls);
  const half = r.evals.findIndex((e) => e.exactMatch >= 0.5);
  return {
    dModel: r.dModel, params: r.params, transitions, final: r.evals[r.evals.length - 1]!,
    exactHalfStep: half < 0 ? null : r.steps[half]!, exactAtLossStart: r.evals[li]!.exactMatch,
    independenceGap: Math.max(...r.evals.map((e) => Math.abs(e.exactMatch - e.digitAccuracy ** answerDigits))),
  };
}

export function analyseEmergence(t: EmergenceTraining): EmergenceAnalysis {
  const answerDigits = layout(t.options.digits).answer;
  return { answerDigits, sizes: t.runs.map((r) => analyseSize(r, answerDigits)) };
}
