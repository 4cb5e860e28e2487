// Fused causal attention: scores, scale, causal and padding masks, softmax and the weighted sum of
// values in one kernel, so the [query_pos, key_pos] matrices are never materialised. The backward
// recomputes the probabilities per query row from the saved logsumexp (flash-attention style).
import { record } from "../autodiff.js";
import { allocateOutput as allocate } from "../dtype.js";
import { fmt, ShapeError } from "../shape.js";
import { Tensor } from "../tensor.js";
import { getBackend, kernelsFor } from "../../backend/registry.js";
import type { AttentionDims, FloatArray } from "../../backend/kernels.js";
import { dense, stridedOf } from "./core.js";
import { cast } from "./elementwise.js";

export interface CausalAttentionOptions {
  /** Multiplies q·k (plus the mask) before the softmax; 1 / sqrt(d_head) in a standard transformer. */
  scale: number;
  /** Additive key mask [batch, 1, 1, key_pos] (0 = real, a large negative = padding), or null. */
  keyMask?: Tensor | null;
}

/**
 * softmax(scale * (q kᵀ + mask)) v with key j hidden from query i when j > i + (key_pos - query_pos).
 * q [batch, query_pos, n_heads, d_head], k and v [batch, key_pos, n_kv_heads, d_head] with n_heads a
 * multiple of n_kv_heads (grouped-query attention) → z [batch, query_pos, n_heads, d_head]. Equal to
 * causalSoftmax(q·kᵀ + mask, scale) @ v per head; the mask gets no gradient.
 */
export function causalAttention(q: Tensor, k: Tensor, v: Tensor, opts: CausalAttentionOptions): Tensor {
  if (q.ndim !== 4 || k.ndim !== 4 || v.ndim !== 4) {
    throw new ShapeError(`causalAttention: q, k, v must be [batch, pos, heads, d_head], got ${fmt(q.shape)}, ${fmt(k.shape)}, ${fmt(v.shape)}`);
  }
  const [B, Tq, H, dh] = q.shape as [number, number, number, number];
  const [Bk, Tk, Hkv, dhk] = k.shape as [number, number, number, number];
  if (Bk !== B || dhk !== dh || !v.shapeEquals(k.shape)) {
    throw new ShapeError(`causalAttention: k ${fmt(k.shape)} and v ${fmt(v.shape)} must be [${B}, key_pos, n_kv_heads, ${dh}] for q ${fmt(q.shape)}`);
  }
  if (Hkv === 0 ? H !== 0 : H % Hkv !== 0) throw new ShapeError(`causalAttention: n_heads = ${H} is not a multiple of n_kv_heads = ${Hkv}`);
  const dt = q.dtype;
  if (dt === "int32" || k.dtype !== dt || v.dtype !== dt) throw new ShapeError(`causalAttention: q, k, v must share one float dtype, got ${q.dtype}, ${k.dtype}, ${v.dtype}`);
  const km = opts.keyMask ?? null;
  if (km && (km.size !== B * Tk || km.shape[0] !== B || km.shape[km.ndim - 1] !== Tk)) {
    throw new ShapeError(`causalAttention: keyMask must be [${B}, 1, 1, ${Tk}], got ${fmt(km.shape)}`);
  }
  const mask = km ? (dense(cast(km, dt)).data as FloatArray) : null;
  const dims: AttentionDims = { batch: B, heads: H, kvHeads: Hkv, Tq, Tk, dh, scale: opts.scale };
  const out = new Tensor(allocate(dt, B * Tq * H * dh), [B, Tq, H, dh]);
  const lse = allocate(dt, B * H * Tq) as FloatArray;
  kernelsFor(dt).attention(dims, stridedOf(q) as never, stridedOf(k) as never, stridedOf(v) as never, mask as never, out.data as FloatArray, lse);
  return record("attention", out, [q, k, v], { dims, lse, mask });
}

/**
 * Whether causalAttention has a fast kernel for this dtype: float32 on a backend that implements it
 * (native; wasm does not and would fall back to the plain-TypeScript reference, slower than its own
 * matmuls), or float64, which runs on the reference either way.
 */
export const fastAttention = (dtype: string): boolean => dtype !== "float32" || getBackend().kernels.attention !== undefined;
