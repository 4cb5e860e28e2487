// Analysis for the text variant of the induction-heads lab: where the ICL score and the repeated-
// random-text loss fall fastest (detectPhaseChange over checkpoints), when the best layer-1 induction
// score crosses a threshold, and the final heads and their K-composition (Olsson et al. 2022,
// Argument 1: the ICL phase change coincides with the formation of induction heads).
import { compositionBaseline, detectHead, topHead } from "../../analysis/index.js";
import { attnHook } from "../../model/hooks.js";
import { noGrad } from "../../tensor/autodiff.js";
import { scope } from "../../tensor/memory.js";
import { Tensor } from "../../tensor/tensor.js";
import { detectPhaseChange } from "./analysis.js";
import type { TextTraining } from "./text-train.js";

/** The steepest fall of a checkpoint series, in steps. */
export interface SteepestDrop { step: number; start: number; end: number; before: number; after: number; drop: number }

/** The window of `window` checkpoints over which `series` (lightly smoothed) falls the most. */
export function steepestDrop(steps: readonly number[], series: readonly number[], window: number): SteepestDrop {
  const pc = detectPhaseChange(series, series, window, 3);
  return { step: steps[pc.step]!, start: steps[pc.start]!, end: steps[pc.end]!, before: pc.repeatedBefore, after: pc.repeatedAfter, drop: pc.drop };
}

export interface TextInductionAnalysis {
  /** Steepest fall of the ICL score and of the repeated-random-text loss. */
  icl: SteepestDrop;
  repeated: SteepestDrop;
  /** First checkpoint step where a layer-1 head's induction score is ≥ threshold (null: never). */
  threshold: number;
  inductionCrossStep: number | null;
  initial: { icl: number; repeated: number; induction: number; early: number; late: number };
  final: { icl: number; repeated: number; firstHalf: number; induction: number; early: number; late: number };
  induction: number[][];
  previousToken: number[][];
  inductionHead: { layer: number; head: number; score: number };
  previousTokenHead: { layer: number; head: number; score: number };
  kComposition: number[][];
  kPair: number;
  baseline: { mean: number; std: number };
  /** The induction head's attention on the held-out snippet written twice ([query][key]), and its induction score there. */
  snippet: { chars: string[]; pattern: number[][]; score: number };
  /** Does the ICL drop window overlap the repeated-loss drop window and contain (±1 window) the induction crossing? */
  coincide: boolean;
}

export function analyseInductionText(t: TextTraining, opts: { window?: number; threshold?: number } = {}): TextInductionAnalysis {
  const cps = t.checkpoints, steps = cps.map((c) => c.step), last = t.model.cfg.n_layers - 1;
  // Default window: a fifth of training, at least two checkpoints.
  const window = opts.window ?? Math.max(2, Math.round(cps.length / 5)), threshold = opts.threshold ?? 0.3;
  const icl = steepestDrop(steps, cps.map((c) => c.icl), window), repeated = steepestDrop(steps, cps.map((c) => c.repeated), window);
  const best = (c: (typeof cps)[number]) => Math.max(...c.induction[last]!);
  const cross = cps.find((c) => best(c) >= threshold);
  const first = cps[0]!, end = cps[cps.length - 1]!;
  const inductionHead = topHead(end.induction, last), previousTokenHead = topHead(end.previousToken, 0);
  const span = icl.end - icl.start;
  const coincide = repeated.start <= icl.end && icl.start <= repeated.end && cross !== undefined && Math.abs(cross.step - icl.step) <= span;
  return {
    icl, repeated, threshold, inductionCrossStep: cross?.step ?? null,
    initial: { icl: first.icl, repeated: first.repeated, induction: best(first), early: first.early, late: first.late },
    final: { icl: end.icl, repeated: end.repeated, firstHalf: end.firstHalf, induction: best(end), early: end.early, late: end.late },
    induction: end.induction, previousToken: end.previousToken, inductionHead, previousTokenHead,
    kComposition: end.kComposition, kPair: end.kComposition[previousTokenHead.head]![inductionHead.head]!,
    baseline: compositionBaseline({ d_model: t.model.cfg.d_model, d_head: t.model.cfg.d_head }), coincide,
    snippet: snippetAttention(t, inductionHead.layer, inductionHead.head),
  };
}

/** One head's attention pattern on the training's held-out snippet repeated once. */
export function snippetAttention(t: TextTraining, layer: number, head: number): { chars: string[]; pattern: number[][]; score: number } {
  const ids = [...t.snippet, ...t.snippet], T = ids.length, toks = new Tensor(Int32Array.from(ids), [1, T]);
  return noGrad(() => scope(() => {
    const name = attnHook(layer, "pattern");
    const p = t.model.runWithCache(toks, { names: [name] }).cache.get(name).contiguous().toArray(); // [1, head_index, query_pos, key_pos]
    const pattern = Array.from({ length: T }, (_, q) => Array.from(p.subarray((head * T + q) * T, (head * T + q + 1) * T)));
    return { chars: ids.map((i) => t.tokenizer.decode([i])), pattern, score: detectHead(t.model, toks, "induction_head")[layer]![head]! };
  }));
}
