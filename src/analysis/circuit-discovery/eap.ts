// Edge attribution patching: a first-order estimate, for every edge at once, of how much the metric
// moves when that edge alone carries the corrupted value instead of the clean one.
//   EAP (Syed et al. 2023, "Attribution Patching Outperforms Automated Circuit Discovery"):
//     score(s → r) = (c_s − a_s) · ∂M/∂input_r, summed over prompts and positions, where a_s / c_s are
//     the sender's clean / corrupted outputs and the gradient is taken on the clean run
//     (one forward and backward on clean, one forward on corrupted).
//   EAP-IG (Hanna et al. 2024, "Have Faith in Faithfulness"): the gradient averaged over m points on
//     the straight line between the corrupted and the clean input embeddings (embedding + positional
//     embedding), x_k = x_corr + (k/m)(x_clean − x_corr) for k = 1..m (a right Riemann sum, so m = 1
//     is EAP), the activation difference still taken between the clean and corrupted runs.
// Scores are in the metric's own units (an estimate of metric(clean with the edge corrupted) −
// metric(clean)); rank edges by |score|.
import { noGrad } from "../../tensor/autodiff.js";
import { scope } from "../../tensor/memory.js";
import { einsum } from "../../tensor/ops/einsum.js";
import { select, slice } from "../../tensor/ops/movement.js";
import type { Tensor } from "../../tensor/tensor.js";
import type { CircuitRunner } from "./run.js";

/** EAP scores, one per edge of runner.graph. */
export function eapScores(runner: CircuitRunner): Float64Array {
  return scoresFromGrads(runner, runner.receiverGrads());
}

/** EAP-IG scores with `steps` points on the input path (Hanna et al. use 5 to 20), one per edge. */
export function eapIgScores(runner: CircuitRunner, steps = 10): Float64Array {
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`eapIg: steps must be a positive integer, got ${steps}`);
  const clean = select(runner.cleanSenders, 2, 0), corr = select(runner.corruptedSenders, 2, 0); // the input node, [batch, pos, d_model]
  let sum: Tensor[] | null = null;
  for (let k = 1; k <= steps; k++) {
    const g = scope(() => {
      const x = noGrad(() => corr.add(clean.sub(corr).mul(k / steps)).contiguous());
      return runner.receiverGrads(x);
    });
    sum = sum === null ? g : noGrad(() => sum!.map((s, i) => s.add(g[i]!)));
  }
  return scoresFromGrads(runner, noGrad(() => sum!.map((s) => s.div(steps))));
}

/** score(s → r) = Σ_{batch, pos, d_model} (c_s − a_s) · grad_r for every edge. */
function scoresFromGrads(runner: CircuitRunner, grads: readonly Tensor[]): Float64Array {
  const g = runner.graph, R = g.receivers.length;
  const scores = new Float64Array(g.edges.length);
  noGrad(() => scope(() => {
    const diff = runner.corruptedSenders.sub(runner.cleanSenders); // [batch, pos, senders, d_model]
    runner.groups.forEach((grp, gi) => {
      const d = grp.prefix === diff.shape[2] ? diff : slice(diff, 2, 0, grp.prefix);
      const sj = einsum("btsd,btjd->sj", d, grads[gi]!).toArray(); // [prefix, receivers]
      const n = grp.receivers.length;
      for (let s = 0; s < grp.prefix; s++) grp.receivers.forEach((r, j) => {
        const e = g.edgeAt[s * R + r]!;
        if (e >= 0) scores[e] = sj[s * n + j]!;
      });
    });
  }));
  return scores;
}
