// Fused neural-network ops with their own kernels and backward rules: softmax (with the causal,
// scaled variant attention uses), log-softmax, LayerNorm, RMSNorm, cross-entropy, embedding.
import { record } from "../autodiff.js";
import { allocateOutput as allocate } from "../dtype.js";
import { fmt, normAxis, ShapeError } from "../shape.js";
import { Tensor } from "../tensor.js";
import { kernelsFor } from "../../backend/registry.js";
import type { FloatArray } from "../../backend/kernels.js";
import { dense } from "./core.js";
import { cast } from "./elementwise.js";
import { gather, indexSelect, transpose } from "./movement.js";

function floatInput(op: string, x: Tensor): Tensor {
  if (x.dtype === "int32") throw new ShapeError(`${op}: needs a float tensor, got int32`);
  return x;
}

/** Softmax along the last axis of a contiguous copy; `axis` elsewhere is moved there and back. */
function lastAxis(x: Tensor, axis: number, f: (t: Tensor) => Tensor): Tensor {
  const a = normAxis("softmax", axis, x.ndim);
  if (a === x.ndim - 1) return f(x);
  return transpose(f(transpose(x, a, -1)), a, -1);
}

function softmaxLast(x: Tensor, scale: number, causal: boolean): Tensor {
  const src = dense(x);
  const cols = x.shape[x.ndim - 1]!, rows = x.size / Math.max(cols, 1);
  const out = new Tensor(allocate(x.dtype, x.size), x.shape);
  // Causal rows are the query axis (second to last); keys may be longer than queries (KV cache).
  const q = causal ? x.shape[x.ndim - 2]! : 0;
  kernelsFor(x.dtype).softmax(src.data as FloatArray, rows, cols, scale, q, causal ? cols - q : 0, out.data as FloatArray);
  return record("softmax", out, [x], { scale });
}

export function softmax(x: Tensor, axis = -1): Tensor {
  floatInput("softmax", x);
  return lastAxis(x, axis, (t) => softmaxLast(t, 1, false));
}

/**
 * Attention probabilities from scores [..., query_pos, key_pos]: softmax(scale * scores) with key j
 * hidden from query i when j > i + (key_pos - query_pos). Fused so the mask costs nothing.
 */
export function causalSoftmax(scores: Tensor, scale = 1): Tensor {
  floatInput("causalSoftmax", scores);
  if (scores.ndim < 2) throw new ShapeError(`causalSoftmax: scores must be [..., query_pos, key_pos], got ${fmt(scores.shape)}`);
  return softmaxLast(scores, scale, true);
}

export function logSoftmax(x: Tensor, axis = -1): Tensor {
  floatInput("logSoftmax", x);
  return lastAxis(x, axis, (t) => {
    const src = dense(t);
    const cols = t.shape[t.ndim - 1]!, rows = t.size / Math.max(cols, 1);
    const out = new Tensor(allocate(t.dtype, t.size), t.shape);
    kernelsFor(t.dtype).logSoftmax(src.data as FloatArray, rows, cols, out.data as FloatArray);
    return record("logSoftmax", out, [t], null);
  });
}

function checkParam(op: string, p: Tensor | null | undefined, d: number, what: string): void {
  if (p && (p.ndim !== 1 || p.shape[0] !== d)) throw new ShapeError(`${op}: ${what} has shape ${fmt(p.shape)}, expected [${d}]`);
}

/** LayerNorm over the last axis: (x - mean) / sqrt(var + eps) * w + b. */
export function layerNorm(x: Tensor, w: Tensor | null, b: Tensor | null, eps = 1e-5): Tensor {
  floatInput("layerNorm", x);
  const cols = x.shape[x.ndim - 1]!, rows = x.size / Math.max(cols, 1);
  checkParam("layerNorm", w, cols, "weight"); checkParam("layerNorm", b, cols, "bias");
  const src = dense(x), dt = x.dtype;
  const out = new Tensor(allocate(dt, x.size), x.shape);
  const mean = allocate(dt, rows) as FloatArray, rstd = allocate(dt, rows) as FloatArray;
  const wd = w ? (dense(cast(w, dt)).data as FloatArray) : null, bd = b ? (dense(cast(b, dt)).data as FloatArray) : null;
  kernelsFor(dt).layerNorm(src.data as FloatArray, wd, bd, rows, cols, eps, out.data as FloatArray, mean, rstd);
  const inputs = [x]; if (w) inputs.push(w); if (b) inputs.push(b);
  return record("layerNorm", out, inputs, { mean, rstd, hasW: !!w, hasB: !!b });
}

/** RMSNorm over the last axis: x / sqrt(mean(x^2) + eps) * w (Llama). */
export function rmsNorm(x: Tensor, w: Tensor | null, eps = 1e-6): Tensor {
  floatInput("rmsNorm", x);
  const cols = x.shape[x.ndim - 1]!, rows = x.size / Math.max(cols, 1);
  checkParam("rmsNorm", w, cols, "weight");
  const src = dense(x), dt = x.dtype;
  const out = new Tensor(allocate(dt, x.size), x.shape);
  const rstd = allocate(dt, rows) as FloatArray;
  const wd = w ? (dense(cast(w, dt)).data as FloatArray) : null;
  kernelsFor(dt).rmsNorm(src.data as FloatArray, wd, rows, cols, eps, out.data as FloatArray, rstd);
  return record("rmsNorm", out, w ? [x, w] : [x], { rstd });
}

/** Rows of the embedding matrix W_E [d_vocab, d_model] for token ids of any shape. */
export function embedding(W: Tensor, ids: Tensor | number[]): Tensor {
  return indexSelect(W, 0, ids);
}

/**
 * Mean (or summed, or per-item) cross-entropy of logits [..., d_vocab] against int targets [...].
 * Targets equal to ignoreIndex are skipped (their loss is 0 and they do not count in the mean).
 */
export function crossEntropy(logits: Tensor, targets: Tensor, opts: { reduction?: "mean" | "sum" | "none"; ignoreIndex?: number } = {}): Tensor {
  const V = logits.shape[logits.ndim - 1]!;
  const lead = logits.shape.slice(0, -1);
  if (targets.ndim !== lead.length || targets.shape.some((d, i) => d !== lead[i]))
    throw new ShapeError(`crossEntropy: targets ${fmt(targets.shape)} must match logits ${fmt(logits.shape)} without the last axis`);
  const t = targets.dtype === "int32" ? targets : cast(targets, "int32");
  const ignore = opts.ignoreIndex;
  const tIdx = t.toArray() as Int32Array;
  const safe = new Int32Array(tIdx.length);
  let count = 0;
  for (let i = 0; i < tIdx.length; i++) {
    const v = tIdx[i]!;
    if (v === ignore) { safe[i] = 0; continue; }
    if (v < 0 || v >= V) throw new RangeError(`crossEntropy: target ${v} out of range for d_vocab = ${V}`);
    safe[i] = v; count++;
  }
  const lp = logSoftmax(logits, -1);
  let nll = gather(lp, -1, new Tensor(safe, [...lead, 1])).neg().reshape(lead);
  if (ignore !== undefined && count < tIdx.length) {
    const keep = new (logits.dtype === "float64" ? Float64Array : Float32Array)(tIdx.length);
    for (let i = 0; i < tIdx.length; i++) keep[i] = tIdx[i] === ignore ? 0 : 1;
    nll = nll.mul(new Tensor(keep, lead));
  }
  const red = opts.reduction ?? "mean";
  if (red === "none") return nll;
  const s = nll.sum();
  return red === "sum" ? s : s.div(Math.max(count, 1));
}
