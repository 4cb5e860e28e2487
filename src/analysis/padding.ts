// Padded prompts in patching and attribution: the attention mask and positions every run of a sweep
// gets (repeated for the copies stacked along the batch axis), and a "last"-position metric read at
// each row's last real token, so a left- or right-padded batch gives each prompt's unpadded result.
import { concat, slice } from "../tensor/ops/movement.js";
import { ShapeError } from "../tensor/shape.js";
import type { Tensor } from "../tensor/tensor.js";
import type { Metric } from "./patching-metrics.js";

/**
 * The padding of the target (= source) prompts: the mask and positions every run gets, and each row's
 * last real position, where a "last"-position metric reads (null when every row ends on a real token).
 */
export interface Padding { attentionMask?: Tensor; positionIds?: Tensor; lastReal: number[] | null }

/** Padding of prompts [batch, pos] from the options, or undefined when there is none; errors name `who`. */
export function paddingOf(o: { attentionMask?: Tensor; positionIds?: Tensor }, B: number, T: number, who = "patching"): Padding | undefined {
  if (!o.attentionMask && !o.positionIds) return undefined;
  let lastReal: number[] | null = null;
  if (o.attentionMask) {
    const m = o.attentionMask;
    if (m.ndim !== 2 || m.shape[0] !== B || m.shape[1] !== T) throw new ShapeError(`${who}: attentionMask must be [batch, pos] = [${B}, ${T}], got [${m.shape}]`);
    const md = m.toArray();
    const last = Array.from({ length: B }, (_, b) => { let j = T - 1; while (j >= 0 && md[b * T + j] === 0) j--; return j; });
    const empty = last.indexOf(-1);
    if (empty >= 0) throw new ShapeError(`${who}: attentionMask row ${empty} has no real token`);
    if (last.some((j) => j !== T - 1)) lastReal = last;
  }
  return { attentionMask: o.attentionMask, positionIds: o.positionIds, lastReal };
}

/** Forward options for K stacked copies of the padded prompts. */
export function padRuns(pad: Padding | undefined, K: number): { attentionMask?: Tensor; positionIds?: Tensor } {
  if (!pad) return {};
  const rep = (t: Tensor | undefined) => (t && K > 1 ? concat(Array.from({ length: K }, () => t), 0) : t);
  return { attentionMask: rep(pad.attentionMask), positionIds: rep(pad.positionIds) };
}

/**
 * metric on logits [K * batch, pos, d_vocab]: a "last" metric reads each row's last real token under
 * right padding; an "all" metric gets the mask (repeated K times) and so skips padded targets.
 */
export function metricOn(metric: Metric, logits: Tensor, pad: Padding | undefined): Tensor {
  if (metric.positions === "all") {
    const m = pad?.attentionMask;
    if (!m) return metric.compute(logits);
    const K = logits.shape[0]! / m.shape[0]!;
    if (!Number.isInteger(K)) throw new ShapeError(`metricOn: logits batch ${logits.shape[0]} is not a multiple of the attentionMask's ${m.shape[0]} rows`);
    return metric.compute(logits, padRuns(pad, K).attentionMask);
  }
  const last = pad?.lastReal;
  if (!last) return metric.compute(logits);
  const B = last.length, R = logits.shape[0]!;
  const rows = Array.from({ length: R }, (_, r) => slice(slice(logits, 0, r, r + 1), 1, last[r % B]!, last[r % B]! + 1));
  return metric.compute(concat(rows, 0)); // [K * batch, 1, d_vocab]
}
