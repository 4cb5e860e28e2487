// The kernel contract every backend implements. Kernels work on flat typed arrays with explicit
// sizes and strides; they know nothing of Tensor, autodiff or models. The plain-TypeScript backend
// (ts.ts) implements every kernel for float32 and float64 and is the living definition of the
// semantics; faster backends implement a subset for float32 and are tested against it.
//
// Conventions
// - "contiguous" means row-major with no gaps, starting at the given offset.
// - Outputs are always contiguous, start at offset 0 and are fully overwritten (unless a kernel says
//   it accumulates).
// - Sizes are element counts, not bytes, and integers in [0, 2^31 - 1]. Everything is synchronous.
// - Every backend's kernels run behind checkedKernels (check.ts): a call with a bad size, offset,
//   stride, op or too short a buffer throws a RangeError/TypeError naming the kernel and argument.

export type FloatArray = Float32Array | Float64Array;
export type NumArray = Float32Array | Float64Array | Int32Array;

/** Elementwise unary ops. gelu_tanh is GPT-2's approximation; gelu_erf is the exact one. */
export const UNARY_OPS = [
  "neg", "exp", "log", "sqrt", "rsqrt", "recip", "tanh", "sigmoid", "relu",
  "gelu_tanh", "gelu_erf", "silu", "abs", "sin", "cos", "square", "sign",
] as const;
export type UnaryOp = (typeof UNARY_OPS)[number];

/** Unary ops with a fused backward kernel: gx = gy * f'(x). */
export const UNARY_GRAD_OPS = ["gelu_tanh", "gelu_erf", "silu", "tanh", "sigmoid", "relu"] as const;
export type UnaryGradOp = (typeof UNARY_GRAD_OPS)[number];

/** Elementwise binary ops. Comparisons produce 1 or 0 in the output dtype. */
export const BINARY_OPS = ["add", "sub", "mul", "div", "max", "min", "pow", "eq", "ne", "lt", "le", "gt", "ge"] as const;
export type BinaryOp = (typeof BINARY_OPS)[number];

export const REDUCE_OPS = ["sum", "max", "min"] as const;
export type ReduceOp = (typeof REDUCE_OPS)[number];

/**
 * A strided read-only operand: element (i0, …, i_{n-1}) lives at
 * data[offset + i0*strides[0] + … + i_{n-1}*strides[n-1]]. A stride of 0 broadcasts.
 */
export interface Strided<A extends NumArray = NumArray> {
  data: A;
  offset: number;
  strides: readonly number[];
}

/**
 * A 2-D strided matrix operand of a batched matmul: element (b, i, j) lives at
 * data[offset + b*batchStride + i*rowStride + j*colStride]. Transposes are just swapped strides;
 * batchStride 0 broadcasts one matrix over the batch.
 */
export interface MatOperand<A extends FloatArray = FloatArray> {
  data: A;
  offset: number;
  batchStride: number;
  rowStride: number;
  colStride: number;
}

/**
 * Geometry of a fused causal attention call: queries q [batch, Tq, heads, dh], keys and values k, v
 * [batch, Tk, kvHeads, dh] (strided, strides in that axis order); query head h reads key/value head
 * floor(h / (heads / kvHeads)) (grouped-query attention), so heads must be a multiple of kvHeads.
 */
export interface AttentionDims {
  batch: number; heads: number; kvHeads: number; Tq: number; Tk: number; dh: number;
  /** Multiplies q·k plus the mask, as causalSoftmax(scores + mask, scale) does. */
  scale: number;
}

/** A right-hand matrix packed once (e.g. a weight at model load) for repeated products. */
export interface PackedMatrix {
  readonly K: number; // rows of the packed matrix, e.g. 768
  readonly N: number; // columns, e.g. 2304
  readonly backend: string; // which backend packed it; only that backend may consume it
}

export interface Kernels {
  /**
   * out[b, i, j] = sum_k A[b, i, k] * B[b, k, j] (+ bias[j] when bias is given).
   * A is [batch, M, K], B is [batch, K, N], out is contiguous [batch, M, N].
   */
  matmul<A extends FloatArray>(
    batch: number, M: number, N: number, K: number,
    a: MatOperand<A>, b: MatOperand<A>, out: A, bias: A | null,
  ): void;

  /** Pack B ([K, N], strided) once; the result is consumed by matmulPacked. Optional. */
  packMatrix?(K: number, N: number, b: MatOperand<Float32Array>): PackedMatrix;
  /** out[M, N] = A[M, K] @ packed (+ bias). A is strided as in matmul (batchStride unused). */
  matmulPacked?(M: number, a: MatOperand<Float32Array>, packed: PackedMatrix, out: Float32Array, bias: Float32Array | null): void;

  /** out[i] = op(x[xOffset + i]) for i < n (contiguous input). */
  unary<A extends FloatArray>(op: UnaryOp, x: A, xOffset: number, out: A, n: number): void;

  /** gx[i] = gy[i] * op'(x[i]) for i < n; all contiguous from offset 0. */
  unaryGrad<A extends FloatArray>(op: UnaryGradOp, x: A, gy: A, gx: A, n: number): void;

  /**
   * out (contiguous, the given shape) = op(a, b) with a and b strided to that shape (stride 0 on
   * broadcast axes). Callers coalesce dimensions first, so shapes are usually short.
   */
  binary<A extends NumArray>(op: BinaryOp, shape: readonly number[], a: Strided<A>, b: Strided<A>, out: A): void;

  /** out (contiguous, shape) = x strided; the materialisation behind contiguous(). */
  copy<A extends NumArray>(shape: readonly number[], x: Strided<A>, out: A): void;

  /** out[c ? a : b] elementwise with all three strided to shape. */
  where<A extends NumArray>(shape: readonly number[], cond: Strided, a: Strided<A>, b: Strided<A>, out: A): void;

  /** x contiguous viewed as [outer, red, inner]; out[outer, inner] = reduce over red. */
  reduce<A extends NumArray>(op: ReduceOp, x: A, outer: number, red: number, inner: number, out: A): void;

  /** Index of the maximum over red (first one on ties), x viewed as [outer, red, inner]. */
  argmax(x: NumArray, outer: number, red: number, inner: number, out: Int32Array): void;

  /**
   * Row softmax of x [rows, cols] scaled by `scale` before the exponent. When causalRows > 0 the rows
   * are queries: row r has query index q = r % causalRows and column c is masked (probability 0)
   * when c > q + causalOffset. Fully masked rows give all zeros.
   */
  softmax<A extends FloatArray>(x: A, rows: number, cols: number, scale: number, causalRows: number, causalOffset: number, out: A): void;
  /** gx = y * (gy - sum(gy * y)) per row, times scale (the forward's scale). */
  softmaxBackward<A extends FloatArray>(y: A, gy: A, rows: number, cols: number, scale: number, gx: A): void;
  /**
   * Fused causal attention. With s_ij = scale * (q_i · k_j + mask[b * Tk + j]) for key j visible from
   * query i (j <= i + Tk - Tq), out_i = sum_j softmax_j(s_i) v_j, written contiguous [batch, Tq,
   * heads, dh], and lse[(b * heads + h) * Tq + i] = logsumexp_j s_ij (-Infinity, and out_i = 0, for a
   * query with no visible key). mask (contiguous [batch, Tk]) is additive and may be null.
   */
  attention<A extends FloatArray>(d: AttentionDims, q: Strided<A>, k: Strided<A>, v: Strided<A>, mask: A | null, out: A, lse: A): void;
  /**
   * Gradients of attention from its forward output `out` and `lse`, given gOut (contiguous like out):
   * gq contiguous [batch, Tq, heads, dh], gk and gv contiguous [batch, Tk, kvHeads, dh], overwritten.
   * The mask is a constant (no gradient).
   */
  attentionBackward<A extends FloatArray>(d: AttentionDims, q: Strided<A>, k: Strided<A>, v: Strided<A>, mask: A | null,
    out: A, lse: A, gOut: A, gq: A, gk: A, gv: A): void;
  /** out = x - logsumexp(x) per row. */
  logSoftmax<A extends FloatArray>(x: A, rows: number, cols: number, out: A): void;
  /** gx = gy - softmax(x) * sum(gy) per row, from the forward output y = logSoftmax(x). */
  logSoftmaxBackward<A extends FloatArray>(y: A, gy: A, rows: number, cols: number, gx: A): void;

  /**
   * LayerNorm over the last axis of x [rows, cols]: out = (x - mean) * rstd * w + b, with w and b
   * optional. Writes mean[rows] and rstd[rows] = 1/sqrt(var + eps) for the backward.
   */
  layerNorm<A extends FloatArray>(x: A, w: A | null, b: A | null, rows: number, cols: number, eps: number, out: A, mean: A, rstd: A): void;
  /** Gradients of layerNorm. gx is overwritten; gw and gb (when given) are accumulated into. */
  layerNormBackward<A extends FloatArray>(x: A, w: A | null, mean: A, rstd: A, gy: A, rows: number, cols: number, gx: A, gw: A | null, gb: A | null): void;

  /** RMSNorm: out = x * rstd * w with rstd = 1/sqrt(mean(x^2) + eps). Writes rstd[rows]. */
  rmsNorm<A extends FloatArray>(x: A, w: A | null, rows: number, cols: number, eps: number, out: A, rstd: A): void;
  /** Gradients of rmsNorm. gx is overwritten; gw (when given) is accumulated into. */
  rmsNormBackward<A extends FloatArray>(x: A, w: A | null, rstd: A, gy: A, rows: number, cols: number, gx: A, gw: A | null): void;

  /** out[i, :] = x[idx[i], :] with x contiguous [R, C]; idx values must be in [0, R). */
  gatherRows<A extends NumArray>(x: A, R: number, C: number, idx: Int32Array, out: A): void;
  /** gx[idx[i], :] += gy[i, :] (gx contiguous [R, C], accumulated into). */
  scatterAddRows<A extends FloatArray>(gy: A, idx: Int32Array, C: number, gx: A): void;

  /**
   * One AdamW step in place over n parameters (decoupled weight decay, Loshchilov & Hutter 2019):
   * m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr * (m/(1-b1^t) / (sqrt(v/(1-b2^t)) + eps) + wd p).
   */
  adamw(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, n: number,
    lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number): void;
}

/** A backend is a name plus the kernels it implements; missing ones fall back to the reference. */
export interface Backend {
  readonly name: "ts" | "wasm" | "native";
  /** Human-readable detail, e.g. "native (AVX2/FMA, 2 threads)". */
  readonly description: string;
  /** float32 kernels this backend accelerates. float64 and int32 always run on the reference. */
  readonly kernels: Partial<Kernels>;
}
