// Runs a modular-addition transformer on every (a, b) pair, input [a, b, =] with "=" = token p, and
// returns what the analysis reads as plain Float64Arrays: the logits over residues at "=" (the "="
// logit is dropped, as in the paper's code), the MLP neurons there, and the residue embeddings.
import type { HookName } from "../../model/hooks.js";
import type { HookedTransformer } from "../../model/transformer.js";
import { noGrad } from "../../tensor/autodiff.js";
import { Tensor } from "../../tensor/tensor.js";

export interface AllPairs {
  p: number;
  /** [p², p], row a·p+b: logits for c = 0..p−1 at the last position. */
  logits: Float64Array;
  /** [p², d_mlp]: blocks.0.mlp.hook_post at the last position. */
  neurons: Float64Array;
  /** [p, d_model]: W_E rows of the residue tokens. */
  embed: Float64Array;
}

/** Every (a, b) as [a, b, p]: [p², 3] int32. */
export function allPairTokens(p: number): Tensor {
  const d = new Int32Array(p * p * 3);
  for (let a = 0; a < p; a++) for (let b = 0; b < p; b++) d.set([a, b, p], (a * p + b) * 3);
  return new Tensor(d, [p * p, 3]);
}

/** Take [batch, pos, n] at the last position as a Float64Array [batch, n], keeping the first `keep` columns. */
function lastPos(t: Tensor, keep: number): Float64Array {
  const [B, T, n] = t.shape as [number, number, number];
  const d = t.contiguous().toArray(), out = new Float64Array(B * keep);
  for (let b = 0; b < B; b++) for (let j = 0; j < keep; j++) out[b * keep + j] = d[(b * T + T - 1) * n + j]!;
  return out;
}

export function evaluateAllPairs(model: HookedTransformer, p: number): AllPairs {
  if (model.cfg.d_vocab !== p + 1) throw new RangeError(`evaluateAllPairs: model has d_vocab ${model.cfg.d_vocab}, expected p + 1 = ${p + 1}`);
  const post = "blocks.0.mlp.hook_post" as HookName;
  return noGrad(() => {
    const { logits, cache } = model.runWithCache(allPairTokens(p), { names: [post] });
    const W = model.embed.W_E.contiguous().toArray(), D = model.cfg.d_model;
    return { p, logits: lastPos(logits, p), neurons: lastPos(cache.get(post), model.cfg.d_mlp), embed: Float64Array.from(W.subarray(0, p * D)) };
  });
}

/** Fraction of the pairs chosen by keep whose argmax logit is (a+b) mod p. */
export function accuracyOn(logits: Float64Array, p: number, keep: (pair: number) => boolean): number {
  let right = 0, n = 0;
  for (let r = 0; r < p * p; r++) {
    if (!keep(r)) continue;
    let best = 0;
    for (let c = 1; c < p; c++) if (logits[r * p + c]! > logits[r * p + best]!) best = c;
    if (best === (Math.floor(r / p) + (r % p)) % p) right++;
    n++;
  }
  return right / n;
}
