// Metrics for activation patching: functions of logits giving one number (a scalar tensor, so
// attribution patching can differentiate them), composable via normalizedMetric. Each states which
// positions it reads, so patching can unembed only the last position when that is all it needs.
import { crossEntropy, logSoftmax } from "../tensor/ops/nn.js";
import { slice } from "../tensor/ops/movement.js";
import { Tensor } from "../tensor/tensor.js";
import { fmt, ShapeError } from "../tensor/shape.js";
import { spanConditioning, type Conditioning } from "./conditioning.js";

export interface Metric {
  name: string;
  /** "last": reads logits[:, -1] only (patching may then pass logits [batch, 1, d_vocab]); "all": every position. */
  positions: "last" | "all";
  /**
   * logits [batch, pos, d_vocab] → a scalar tensor (averaged over the batch). An "all" metric given
   * `attentionMask` [batch, pos] (1 = real token; metricOn passes it for padded prompts) counts only
   * what the mask keeps: position t's next-token target when tokens t and t + 1 are both real, as model.loss.
   */
  compute(logits: Tensor, attentionMask?: Tensor): Tensor;
  /** Set by normalizedMetric: whether clean − corrupted is ~0 (conditioning.ts), so the normalised values are noise. */
  conditioning?: Conditioning;
}

/** An answer pair [correct, incorrect] for every prompt, or one per prompt. */
export type AnswerPairs = readonly [number, number] | readonly (readonly [number, number])[];

const lastLogits = (logits: Tensor): Tensor => {
  if (logits.ndim !== 3) throw new ShapeError(`metric: logits must be [batch, pos, d_vocab], got ${fmt(logits.shape)}`);
  const T = logits.shape[1]!;
  return slice(logits, 1, T - 1, T).reshape([logits.shape[0]!, logits.shape[2]!]); // [batch, d_vocab]
};

/** mask [B, T] as 0/1 numbers per row, checked against the logits; null without a mask. */
function maskRows(mask: Tensor | undefined, B: number, T: number, who: string): ArrayLike<number> | null {
  if (!mask) return null;
  if (mask.ndim !== 2 || mask.shape[0] !== B || mask.shape[1] !== T) throw new ShapeError(`${who}: attentionMask must be [batch, pos] = [${B}, ${T}] like the logits, got ${fmt(mask.shape)}`);
  return mask.toArray();
}

/** Targets [B, T − 1] with -1 (ignored) wherever token t or t + 1 is padding; throws when nothing is left. */
function maskTargets(tgt: Int32Array, mask: ArrayLike<number> | null, B: number, T: number, who: string): Int32Array {
  if (!mask) return tgt;
  let left = 0;
  for (let b = 0; b < B; b++) for (let t = 0; t < T - 1; t++) {
    const i = b * (T - 1) + t;
    if (mask[b * T + t] === 0 || mask[b * T + t + 1] === 0) tgt[i] = -1;
    else if (tgt[i] !== -1) left++;
  }
  if (left === 0) throw new RangeError(`${who}: the attentionMask leaves no target position whose token and next token are both real`);
  return tgt;
}

/** A [batch, d_vocab] weighting with +w at each prompt's token(s): a dot product picks logits and stays differentiable. */
function selector(batch: number, d_vocab: number, picks: readonly (readonly (readonly [number, number])[])[], dtype: Tensor["dtype"]): Tensor {
  const sel = new (dtype === "float64" ? Float64Array : Float32Array)(batch * d_vocab);
  for (let b = 0; b < batch; b++) {
    for (const [tok, w] of picks[b % picks.length]!) {
      if (!Number.isInteger(tok) || tok < 0 || tok >= d_vocab) throw new RangeError(`metric: token ${tok} is outside [0, ${d_vocab})`);
      sel[b * d_vocab + tok]! += w;
    }
  }
  return new Tensor(sel, [batch, d_vocab]);
}

const asPairs = (a: AnswerPairs): readonly (readonly [number, number])[] =>
  typeof a[0] === "number" ? [a as readonly [number, number]] : (a as readonly (readonly [number, number])[]);

/**
 * Mean over the batch of logit[correct] − logit[incorrect] at the last position. With one pair per
 * prompt, prompt b uses pair b; a batched patching run repeats the prompts, and so the pairs, in order.
 */
export function logitDiffMetric(answers: AnswerPairs): Metric {
  const pairs = asPairs(answers);
  return {
    name: "logit difference",
    positions: "last",
    compute(logits) {
      const last = lastLogits(logits);
      const [B, V] = last.shape as [number, number];
      if (pairs.length !== 1 && B % pairs.length !== 0) throw new ShapeError(`logitDiffMetric: ${pairs.length} answer pairs for batch ${B}`);
      const sel = selector(B, V, pairs.map(([c, i]) => [[c, 1], [i, -1]] as const), last.dtype);
      return last.mul(sel).sum().div(B);
    },
  };
}

/** Mean over the batch of the probability of `token` (one, or one per prompt) at the last position. */
export function tokenProbMetric(token: number | readonly number[]): Metric {
  const toks = typeof token === "number" ? [token] : token;
  return {
    name: "probability",
    positions: "last",
    compute(logits) {
      const last = lastLogits(logits);
      const [B, V] = last.shape as [number, number];
      const sel = selector(B, V, toks.map((t) => [[t, 1]] as const), last.dtype);
      return logSoftmax(last, -1).exp().mul(sel).sum().div(B);
    },
  };
}

/**
 * Mean next-token cross-entropy on `tokens` [batch, pos] (the prompts the patched run sees; repeated
 * to fill a larger batch). Given a mask, the mean over real targets only (model.loss's rule).
 */
export function lossMetric(tokens: readonly (readonly number[])[]): Metric {
  return {
    name: "loss",
    positions: "all",
    compute(logits, attentionMask) {
      const [B, T] = logits.shape as [number, number, number];
      const rows = tokens.length;
      if (B % rows !== 0 || tokens[0]!.length !== T) throw new ShapeError(`lossMetric: logits ${fmt(logits.shape)} do not match ${rows} prompts of ${tokens[0]!.length} tokens`);
      const mask = maskRows(attentionMask, B, T, "lossMetric");
      const tgt = new Int32Array(B * (T - 1));
      for (let b = 0; b < B; b++) for (let t = 1; t < T; t++) tgt[b * (T - 1) + t - 1] = tokens[b % rows]![t]!;
      return crossEntropy(slice(logits, 1, 0, T - 1), new Tensor(maskTargets(tgt, mask, B, T, "lossMetric"), [B, T - 1]), mask ? { ignoreIndex: -1 } : {});
    },
  };
}

/**
 * (m − corrupted) / (clean − corrupted): 0 at the corrupted baseline, 1 at the clean one. Carries
 * `conditioning`: when |clean − corrupted| is ~0 (spanConditioning) the values are flagged, and a
 * report should show the raw metric instead.
 */
export function normalizedMetric(metric: Metric, clean: number, corrupted: number): Metric & { conditioning: Conditioning } {
  const span = clean - corrupted;
  if (span === 0) throw new RangeError(`normalizedMetric: clean and corrupted baselines are equal (${clean}), so there is nothing to normalise by; use the raw ${metric.name}`);
  return {
    name: `normalized ${metric.name}`, positions: metric.positions, conditioning: spanConditioning(clean, corrupted),
    compute: (logits, attentionMask) => metric.compute(logits, attentionMask).sub(corrupted).div(span),
  };
}

/**
 * Mean cross-entropy of next tokens at chosen positions only: position p predicts tokens[p + 1] (e.g.
 * the copied half of a repeated sequence, where only induction can predict). Rows repeat to fill a larger batch.
 * Positions index the (padded) columns; given a mask, a position counts in a row only where tokens p and p + 1 are real.
 */
export function positionLossMetric(tokens: readonly (readonly number[])[], positions: readonly number[]): Metric {
  const T0 = tokens[0]?.length ?? 0;
  if (positions.length === 0 || positions.some((p) => !Number.isInteger(p) || p < 0 || p >= T0 - 1)) throw new RangeError(`positionLossMetric: positions must be integers in [0, ${T0 - 1}), got ${JSON.stringify(positions)}`);
  return {
    name: "loss",
    positions: "all",
    compute(logits, attentionMask) {
      const [B, T] = logits.shape as [number, number, number];
      if (B % tokens.length !== 0 || T !== T0) throw new ShapeError(`positionLossMetric: logits ${fmt(logits.shape)} do not match ${tokens.length} prompts of ${T0} tokens`);
      const mask = maskRows(attentionMask, B, T, "positionLossMetric");
      // Every other position is ignored (-1).
      const tgt = new Int32Array(B * (T - 1)).fill(-1);
      for (let b = 0; b < B; b++) for (const p of positions) tgt[b * (T - 1) + p] = tokens[b % tokens.length]![p + 1]!;
      return crossEntropy(slice(logits, 1, 0, T - 1), new Tensor(maskTargets(tgt, mask, B, T, "positionLossMetric"), [B, T - 1]), { ignoreIndex: -1 });
    },
  };
}
