// Matrix products: matmul with torch.matmul's broadcasting rules, linear (x @ W + b) with packed
// weights, and einsum built on them.
import { record } from "../autodiff.js";
import { allocateOutput } from "../dtype.js";
import { broadcastShapes, broadcastStrides, fmt, numel, ShapeError } from "../shape.js";
import { Tensor } from "../tensor.js";
import { kernelsFor, getBackend } from "../../backend/registry.js";
import type { FloatArray, MatOperand } from "../../backend/kernels.js";
import { cast } from "./elementwise.js";
import { dense } from "./core.js";
import { reshape, unsqueeze, squeeze } from "./movement.js";

const mat = (t: Tensor, batchStride: number): MatOperand<FloatArray> => ({
  data: t.data as FloatArray, offset: t.offset, batchStride,
  rowStride: t.strides[t.ndim - 2]!, colStride: t.strides[t.ndim - 1]!,
});

/**
 * The batched product out[..., M, N] = a[..., M, K] @ b[..., K, N], batch dims broadcast.
 * Strided operands (transposes, slices) are read in place by the kernel.
 */
export function matmulRaw(a: Tensor, b: Tensor): Tensor {
  const M = a.shape[a.ndim - 2]!, K = a.shape[a.ndim - 1]!, K2 = b.shape[b.ndim - 2]!, N = b.shape[b.ndim - 1]!;
  if (K !== K2) throw new ShapeError(`matmul: inner dimensions differ: ${fmt(a.shape)} @ ${fmt(b.shape)} (${K} vs ${K2})`);
  const batchShape = broadcastShapes("matmul", a.shape.slice(0, -2), b.shape.slice(0, -2));
  const batch = numel(batchShape);
  const out = new Tensor(allocateOutput(a.dtype, batch * M * N), [...batchShape, M, N]);
  const k = kernelsFor(a.dtype);
  // One kernel call over the longest run of inner batch dims that collapses to a single stride in
  // both operands (all of them, usually); a loop over the outer ones otherwise.
  const nb = batchShape.length;
  const bsA = broadcastStrides(a.shape.slice(0, -2), a.strides.slice(0, -2), batchShape);
  const bsB = broadcastStrides(b.shape.slice(0, -2), b.strides.slice(0, -2), batchShape);
  let split = nb;
  while (split > 0 && collapses(batchShape, bsA, split - 1) && collapses(batchShape, bsB, split - 1)) split--;
  const inner = numel(batchShape.slice(split)), outerShape = batchShape.slice(0, split);
  const innerStride = (bs: number[]) => (split < nb ? lastNonUnitStride(batchShape, bs, split) : 0);
  const ma = mat(a, innerStride(bsA)), mb = mat(b, innerStride(bsB));
  const outer = numel(outerShape);
  const baseA = a.offset, baseB = b.offset;
  for (let o = 0; o < outer; o++) {
    let oa = baseA, ob = baseB, rem = o;
    for (let d = split - 1; d >= 0; d--) { const i = rem % batchShape[d]!; rem = (rem - i) / batchShape[d]!; oa += i * bsA[d]!; ob += i * bsB[d]!; }
    ma.offset = oa; mb.offset = ob;
    const dst = outer === 1 ? out.data : (out.data as FloatArray).subarray(o * inner * M * N, (o + 1) * inner * M * N);
    k.matmul(inner, M, N, K, ma, mb, dst as FloatArray, null);
  }
  return out;
}

/** Whether batch dims [from, end) walk memory with one stride (size-1 dims are ignored). */
function collapses(shape: number[], strides: number[], from: number): boolean {
  let expect: number | null = null;
  for (let d = shape.length - 1; d >= from; d--) {
    if (shape[d] === 1) continue;
    if (expect !== null && strides[d] !== expect) return false;
    expect = strides[d]! * shape[d]!;
  }
  return true;
}

/** The stride of the innermost non-unit batch dim in [from, end): the step between matrices. */
function lastNonUnitStride(shape: number[], strides: number[], from: number): number {
  for (let d = shape.length - 1; d >= from; d--) if (shape[d] !== 1) return strides[d]!;
  return 0;
}

export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.ndim === 0 || b.ndim === 0) throw new ShapeError("matmul: both operands need at least one dimension");
  if (a.dtype !== b.dtype) { const d = a.dtype === "float64" || b.dtype === "float64" ? "float64" : "float32"; a = cast(a, d); b = cast(b, d); }
  if (a.dtype === "int32") throw new ShapeError("matmul: int32 operands are not supported; cast to float32");
  // 1-D operands act as a row (left) or column (right) vector, dropped from the result.
  // (1-D @ 1-D: the inner product is [1] after the right operand's squeeze, so squeeze that axis.)
  if (a.ndim === 1) return squeeze(matmul(unsqueeze(a, 0), b), b.ndim === 1 ? -1 : -2);
  if (b.ndim === 1) return squeeze(matmul(a, unsqueeze(b, 1)), -1);
  return record("matmul", matmulRaw(a, b), [a, b], null);
}

/**
 * y = x @ W (+ b) with W [d_in, d_out]. When W is a leaf that does not change between calls (a
 * frozen weight), it is packed once for the backend and reused, which matters at small batch.
 */
export function linear(x: Tensor, W: Tensor, b?: Tensor | null): Tensor {
  if (W.ndim !== 2) throw new ShapeError(`linear: weight must be [d_in, d_out], got ${fmt(W.shape)}`);
  const [K, N] = W.shape as [number, number];
  if (x.shape[x.ndim - 1] !== K) throw new ShapeError(`linear: input ${fmt(x.shape)} does not end in d_in = ${K} (weight ${fmt(W.shape)})`);
  if (b && (b.ndim !== 1 || b.shape[0] !== N)) throw new ShapeError(`linear: bias ${fmt(b.shape)} must be [${N}]`);
  const rows = x.size / K;
  const x2 = x.ndim === 2 ? x : reshape(x.detach(), [rows, K]);
  const out = new Tensor(allocateOutput(x.dtype, rows * N), [...x.shape.slice(0, -1), N]);
  const k = kernelsFor(x.dtype);
  const bias = b ? (dense(b).data as FloatArray) : null;
  const packed = x.dtype === "float32" && W.dtype === "float32" ? packedFor(W) : null;
  if (packed && k.matmulPacked) k.matmulPacked(rows, mat(x2, 0) as MatOperand<Float32Array>, packed as never, out.data as Float32Array, bias as Float32Array | null);
  else k.matmul(1, rows, N, K, mat(x2, 0), mat(W, 0), out.data as FloatArray, bias);
  return record("linear", out, b ? [x, W, b] : [x, W], null);
}

/**
 * Pack a [d_in, d_out] weight for the active backend now (a model does this for its weights at load),
 * so even the first linear() call uses the packed form. Returns false when the backend has no packing.
 */
export function prepack(W: Tensor): boolean {
  const backend = getBackend();
  const pack = backend.kernels.packMatrix;
  if (!pack || W.ndim !== 2 || W.dtype !== "float32" || W.node) return false;
  if (W.packed?.handle && W.packed.version === W.version && W.packed.backend === backend.name) return true;
  W.packed = { version: W.version, handle: pack(W.shape[0]!, W.shape[1]!, mat(W, 0) as MatOperand<Float32Array>), backend: backend.name };
  return true;
}

/**
 * The backend's packed copy of W, made when W is seen unchanged for a second time (so a weight being
 * trained, which changes every step, is never packed), and dropped when W changes.
 */
function packedFor(W: Tensor): unknown {
  const backend = getBackend();
  const pack = backend.kernels.packMatrix;
  if (!pack || W.node) return null;
  const p = W.packed;
  if (p && p.version === W.version && p.backend === backend.name) {
    // Second sighting at the same version: pack now (prepack is the one place that packs).
    if (!p.handle) prepack(W);
    return W.packed!.handle;
  }
  W.packed = { version: W.version, handle: null, backend: backend.name };
  return null;
}
