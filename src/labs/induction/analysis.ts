// Analysis for the induction-heads lab (Olsson et al. 2022, "In-context Learning and Induction Heads"):
// finds the phase change in a training log (the window where the repeated-half loss falls fastest,
// and the first step where a layer-1 head's induction score crosses 0.5), the final detector scores
// (layer × head) and the K-composition of layer-0 heads into layer-1 heads against random matrices.
import { compositionBaseline, compositionScoresBetween, headDetectorScores, topHead } from "../../analysis/index.js";
import { noGrad } from "../../tensor/autodiff.js";
import { scope } from "../../tensor/memory.js";
import { detectorTokens, type InductionTraining } from "./train.js";

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** Centred moving average over `w` steps (shorter at the ends). */
export function smooth(xs: readonly number[], w: number): number[] {
  const h = Math.floor(w / 2);
  return xs.map((_, i) => mean(xs.slice(Math.max(0, i - h), Math.min(xs.length, i + h + 1))));
}

export interface PhaseChange {
  /** Middle of the `window`-step span over which the smoothed repeated-half loss drops the most. */
  step: number;
  window: number;
  start: number;
  end: number;
  /** Smoothed repeated-half loss at start and end, and the drop between (nats). */
  repeatedBefore: number;
  repeatedAfter: number;
  drop: number;
  /** Mean first-half loss over the window (stays near ln(d_vocab) if nothing there is learnt from context). */
  firstDuring: number;
  /** Smoothed first-half loss at the window's start and end: how much of the drop is not in-context. */
  firstBefore: number;
  firstAfter: number;
}

/** Steps averaged at each end of training for the before/after losses. */
export const EDGE_STEPS = 20;

/** The window of `window` steps over which the (smoothed) repeated-half loss falls fastest. */
export function detectPhaseChange(repeated: readonly number[], first: readonly number[], window: number, smoothing = 9): PhaseChange {
  const s = smooth(repeated, smoothing), f = smooth(first, smoothing);
  const w = Math.min(window, s.length - 1);
  let best = 0, drop = -Infinity;
  for (let t = 0; t + w < s.length; t++) if (s[t]! - s[t + w]! > drop) { drop = s[t]! - s[t + w]!; best = t; }
  return {
    step: best + Math.floor(w / 2), window: w, start: best, end: best + w, repeatedBefore: s[best]!, repeatedAfter: s[best + w]!, drop,
    firstDuring: mean(first.slice(best, best + w + 1)), firstBefore: f[best]!, firstAfter: f[best + w]!,
  };
}

/** First logged step at which the best layer-1 head's induction score is ≥ threshold, or null. */
/** The induction score a head must reach to count as formed. */
export const INDUCTION_THRESHOLD = 0.5;

export function inductionCrossing(t: InductionTraining, threshold = INDUCTION_THRESHOLD): number | null {
  const L = t.model.cfg.n_layers - 1;
  const i = t.detectors.induction.findIndex((s) => Math.max(...s[L]!) >= threshold);
  return i < 0 ? null : t.detectors.steps[i]!;
}

export interface InductionAnalysis {
  lnVocab: number;
  phaseChange: PhaseChange;
  inductionCrossStep: number | null;
  /** Best layer-1 induction score at initialisation and after training. */
  initialInduction: number;
  finalInduction: number;
  /** Final detectors, [layer][head]. */
  induction: number[][];
  previousToken: number[][];
  inductionHead: { layer: number; head: number; score: number };
  previousTokenHead: { layer: number; head: number; score: number };
  /** K-composition [layer-0 head][layer-1 head] and of the detected (previous-token, induction) pair. */
  kComposition: number[][];
  kPair: number;
  baseline: { mean: number; std: number };
  /** Mean losses over the first and last EDGE_STEPS steps. */
  early: { first: number; repeated: number };
  late: { first: number; repeated: number };
}

export function analyseInduction(t: InductionTraining, opts: { window?: number } = {}): InductionAnalysis {
  const m = t.model, last = m.cfg.n_layers - 1;
  const s = noGrad(() => scope(() => headDetectorScores(m, detectorTokens(t.options.dVocab, t.options.seed, t.options.bos))));
  const inductionHead = topHead(s.induction_head, last), previousTokenHead = topHead(s.previous_token_head, 0);
  const kComposition = compositionScoresBetween(m, "K", 0, last);
  return {
    lnVocab: Math.log(t.options.dVocab),
    phaseChange: detectPhaseChange(t.repeatedLoss, t.firstLoss, opts.window ?? 100),
    inductionCrossStep: inductionCrossing(t),
    initialInduction: Math.max(...t.detectors.induction[0]![last]!),
    finalInduction: inductionHead.score,
    induction: s.induction_head, previousToken: s.previous_token_head, inductionHead, previousTokenHead,
    kComposition, kPair: kComposition[previousTokenHead.head]![inductionHead.head]!,
    baseline: compositionBaseline({ d_model: m.cfg.d_model, d_head: m.cfg.d_head }),
    early: { first: mean(t.firstLoss.slice(0, EDGE_STEPS)), repeated: mean(t.repeatedLoss.slice(0, EDGE_STEPS)) },
    late: { first: mean(t.firstLoss.slice(-EDGE_STEPS)), repeated: mean(t.repeatedLoss.slice(-EDGE_STEPS)) },
  };
}
