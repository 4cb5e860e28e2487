// The in-context-learning score of Olsson et al. 2022 ("In-context Learning and Induction Heads",
// §"Key Concepts"): the loss at a late token position minus the loss at an early one, averaged over
// held-out text. It goes negative when later tokens are predicted better because the model uses the
// context, and in their models it falls by ~0.4 nats in a phase change as induction heads form.
// Here for a short context: mean loss over positions ≥ ¾·n_ctx minus mean loss over positions
// around ⅛·n_ctx (they take the 500th token minus the 50th at n_ctx 8192).
import { noGrad } from "../../tensor/autodiff.js";
import { scope } from "../../tensor/memory.js";
import { crossEntropy } from "../../tensor/ops/nn.js";
import { slice } from "../../tensor/ops/movement.js";
import type { Tensor } from "../../tensor/tensor.js";
import type { HookedTransformer } from "../../model/transformer.js";

/** Half-open position ranges [start, end) of the early and late losses. */
export interface IclWindows { early: [number, number]; late: [number, number] }

/** Early: [n/16, 3n/16) (centred on n/8); late: [3n/4, n). */
export function iclWindows(nCtx: number): IclWindows {
  if (!(Number.isInteger(nCtx) && nCtx >= 16)) throw new RangeError(`iclWindows: n_ctx must be an integer ≥ 16, got ${nCtx}`);
  return { early: [Math.floor(nCtx / 16), Math.floor((3 * nCtx) / 16)], late: [Math.floor((3 * nCtx) / 4), nCtx] };
}

const meanOver = (xs: readonly number[], [a, b]: [number, number]) => {
  if (!(a >= 0 && b <= xs.length && a < b)) throw new RangeError(`iclScore: window [${a}, ${b}) is outside the ${xs.length} positions`);
  let s = 0;
  for (let i = a; i < b; i++) s += xs[i]!;
  return s / (b - a);
};

/** The ICL score of per-position losses (index = position of the predicting token): late mean − early mean. */
export function iclScore(perPosition: readonly number[], w: IclWindows = iclWindows(perPosition.length)): { early: number; late: number; score: number } {
  const early = meanOver(perPosition, w.early), late = meanOver(perPosition, w.late);
  return { early, late, score: late - early };
}

/**
 * Mean next-token loss at each position over windows [batch, ctx + 1] (inputs: the first ctx
 * columns, targets: the last ctx, as lmObjective): [ctx] nats.
 */
export function perPositionLoss(model: HookedTransformer, windows: readonly Tensor[]): number[] {
  let sum: Float64Array | null = null, rows = 0;
  for (const w of windows) {
    const [B, W] = w.shape as [number, number], T = W - 1;
    const nll = noGrad(() => scope(() => crossEntropy(model.forward(slice(w, 1, 0, T).contiguous()), slice(w, 1, 1, W).contiguous(), { reduction: "none" }).toArray()));
    sum ??= new Float64Array(T);
    if (sum.length !== T) throw new RangeError(`perPositionLoss: windows of ${T} and ${sum.length} positions`);
    for (let i = 0; i < nll.length; i++) sum[i % T]! += nll[i]!;
    rows += B;
  }
  if (!sum) throw new RangeError("perPositionLoss: no windows");
  return Array.from(sum, (s) => s / rows);
}
