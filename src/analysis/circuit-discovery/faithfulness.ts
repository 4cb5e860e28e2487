// How much of the model's behaviour a circuit keeps: run the circuit alone (every other edge carrying
// the corrupted run's values, run.ts) and normalise its metric, (M(circuit) − M(corrupted)) /
// (M(clean) − M(corrupted)): 1 = the full model, 0 = the corrupted model (Wang et al. 2022's and Hanna
// et al. 2024's faithfulness). The curve keeps the top-n edges by |score| for a range of n.
import { noGrad } from "../../tensor/autodiff.js";
import { scope } from "../../tensor/memory.js";
import { countEdges, pruneDangling, topNEdges, type EdgeMask } from "./graph.js";
import type { CircuitRunner } from "./run.js";

export interface Faithfulness {
  /** Edges in the circuit. */
  edges: number;
  /** The metric of the circuit alone. */
  metric: number;
  /** (metric − corrupted) / (clean − corrupted). */
  normalized: number;
  /** clean − corrupted is ~0 (runner.conditioning): `normalized` is noise; report `metric` instead. */
  illConditioned: boolean;
  /** KL(clean model ‖ circuit), mean over prompts (and positions the metric reads). */
  kl: number;
}

export function faithfulness(runner: CircuitRunner, mask: EdgeMask): Faithfulness {
  return scope(() => noGrad(() => {
    const logits = runner.logits(mask);
    const metric = runner.metricOn(logits).item();
    return { edges: countEdges(mask), metric, normalized: runner.normalize(metric), illConditioned: runner.conditioning.illConditioned, kl: runner.klToClean(logits) };
  }));
}

export interface CurvePoint extends Faithfulness {
  /** n: the top-n edges by |score| were kept (before pruning dangling nodes; `edges` counts after). */
  topN: number;
}

/** About `points` edge counts from 0 to every edge, spaced evenly on a log scale (denser where circuits are small). */
export function curveCounts(totalEdges: number, points = 16): number[] {
  const set = new Set<number>([0, totalEdges]);
  for (let i = 0; i < points; i++) set.add(Math.min(totalEdges, Math.round(Math.exp((Math.log(totalEdges + 1) * i) / (points - 1))) - 1));
  return [...set].filter((n) => n >= 0 && n <= totalEdges).sort((a, b) => a - b);
}

/** Faithfulness of the top-n edges by |score| (dangling nodes pruned), for each n in `counts`. */
export function faithfulnessCurve(runner: CircuitRunner, scores: ArrayLike<number>, counts = curveCounts(scores.length)): CurvePoint[] {
  return counts.map((n) => ({ topN: n, ...faithfulness(runner, pruneDangling(runner.graph, topNEdges(scores, n))) }));
}
