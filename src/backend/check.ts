// Argument checks every backend runs before a kernel: sizes are integers in [0, MAX_KERNEL_SIZE],
// offsets and strides safe integers, op names known, and every buffer long enough for the elements
// the kernel will touch. A bad call throws a RangeError or TypeError naming the kernel and the
// argument, where it would otherwise read past a buffer (native: a dead process), wrap an int32
// (wasm) or loop for ever (ts). Each check is O(1), O(ndim) for strided operands: nothing per element
// (index values of gatherRows/scatterAddRows are checked inside those kernels' own loops).
import type { AttentionDims, Kernels, MatOperand, PackedMatrix, Strided } from "./kernels.js";
import { BINARY_OPS, REDUCE_OPS, UNARY_GRAD_OPS, UNARY_OPS } from "./kernels.js";

/** The largest size a kernel accepts: int32, as argmax's output and gather indices are. */
export const MAX_KERNEL_SIZE = 2 ** 31 - 1;

const UNARY = new Set<string>(UNARY_OPS), UNARY_GRAD = new Set<string>(UNARY_GRAD_OPS);
const BINARY = new Set<string>(BINARY_OPS), REDUCE = new Set<string>(REDUCE_OPS);

const show = (v: unknown): string => (typeof v === "number" ? String(v) : typeof v);

function size(k: string, name: string, v: number): void {
  if (!(Number.isInteger(v) && v >= 0 && v <= MAX_KERNEL_SIZE)) {
    throw new RangeError(`${k}: ${name} = ${show(v)} is not an integer in [0, ${MAX_KERNEL_SIZE}]`);
  }
}
function offset(k: string, name: string, v: number): void {
  if (!(Number.isSafeInteger(v) && v >= 0)) throw new RangeError(`${k}: ${name} = ${show(v)} is not a non-negative safe integer`);
}
function stride(k: string, name: string, v: number): void {
  if (!Number.isSafeInteger(v)) throw new RangeError(`${k}: ${name} = ${show(v)} is not a safe integer`);
}
function num(k: string, name: string, v: number): void {
  if (typeof v !== "number") throw new TypeError(`${k}: ${name} must be a number, got ${typeof v}`);
}
function op(k: string, set: Set<string>, v: string): void {
  if (!set.has(v)) throw new RangeError(`${k}: unknown op ${JSON.stringify(String(v))}`);
}
function arr(k: string, name: string, v: unknown): void {
  if (!ArrayBuffer.isView(v) || v instanceof DataView) throw new TypeError(`${k}: ${name} must be a typed array, got ${v === null ? "null" : typeof v}`);
}
function i32(k: string, name: string, v: unknown): void {
  if (!(v instanceof Int32Array)) throw new TypeError(`${k}: ${name} must be an Int32Array`);
}
/** `what` (= n elements) must fit in the array `name`. n may be inexact above 2^53; it is then far above any length. */
function need(k: string, what: string, n: number, name: string, a: ArrayLike<unknown>): void {
  if (n > a.length) throw new RangeError(`${k}: ${what} = ${n} exceeds the length ${a.length} of ${name}`);
}
function optional(k: string, name: string, v: ArrayLike<unknown> | null, n: number, what: string): void {
  if (v == null) return;
  arr(k, name, v);
  need(k, what, n, name, v);
}

/** Element count of a shape (0 when any dimension is 0), after checking each dimension. */
function shapeSize(k: string, shape: readonly number[]): number {
  if (!Array.isArray(shape)) throw new TypeError(`${k}: shape must be an array`);
  let n = 1, empty = false;
  for (let d = 0; d < shape.length; d++) {
    size(k, `shape[${d}]`, shape[d]!);
    if (shape[d] === 0) empty = true;
    n = Math.min(n * shape[d]!, 2 ** 64); // saturates instead of reaching Infinity (Infinity * 0 is NaN)
  }
  return empty ? 0 : n;
}

/** Throws unless every element (i0..) at offset + sum i_d * strides[d], i_d < dims[d], lies in [0, len). */
function span(k: string, name: string, len: number, off: number, dims: readonly number[], strides: readonly number[]): void {
  let lo = off, hi = off;
  for (let d = 0; d < dims.length; d++) {
    if (dims[d] === 0) return; // touches nothing
    const s = (dims[d]! - 1) * strides[d]!;
    if (s > 0) hi += s; else lo += s;
  }
  if (lo < 0 || hi >= len) throw new RangeError(`${k}: ${name} reaches elements [${lo}, ${hi}] (offset ${off}, strides [${strides.join(", ")}]), outside its length ${len}`);
}

function strided(k: string, name: string, x: Strided, shape: readonly number[]): void {
  if (typeof x !== "object" || x === null) throw new TypeError(`${k}: ${name} must be a strided operand {data, offset, strides}`);
  arr(k, `${name}.data`, x.data);
  offset(k, `${name}.offset`, x.offset);
  const st = x.strides;
  if (!Array.isArray(st) || st.length < shape.length) throw new RangeError(`${k}: ${name}.strides must be an array of ${shape.length} strides`);
  for (let d = 0; d < shape.length; d++) stride(k, `${name}.strides[${d}]`, st[d]!);
  span(k, name, x.data.length, x.offset, shape, st);
}

/** A matmul operand; `single`: one matrix whose batchStride is unused (packMatrix, matmulPacked). */
function mat(k: string, name: string, x: MatOperand, batch: number, rows: number, cols: number, single = false): void {
  if (typeof x !== "object" || x === null) throw new TypeError(`${k}: ${name} must be a matrix operand {data, offset, batchStride, rowStride, colStride}`);
  arr(k, `${name}.data`, x.data);
  offset(k, `${name}.offset`, x.offset);
  if (!single) stride(k, `${name}.batchStride`, x.batchStride);
  stride(k, `${name}.rowStride`, x.rowStride);
  stride(k, `${name}.colStride`, x.colStride);
  span(k, name, x.data.length, x.offset, [batch, rows, cols], [batch > 1 ? x.batchStride : 0, x.rowStride, x.colStride]);
}

function packedDims(k: string, p: PackedMatrix): void {
  if (typeof p !== "object" || p === null) throw new TypeError(`${k}: packed must be a PackedMatrix from packMatrix`);
  size(k, "packed.K", p.K);
  size(k, "packed.N", p.N);
}

function rowsCols(k: string, rows: number, cols: number): number {
  size(k, "rows", rows);
  size(k, "cols", cols);
  return rows * cols;
}

/** Checks an attention call's geometry and operands; returns the element counts of out/gq, gk/gv and lse. */
function attentionArgs(k: string, d: AttentionDims, q: Strided, kk: Strided, v: Strided, mask: ArrayLike<unknown> | null): { nq: number; nkv: number; nl: number } {
  if (typeof d !== "object" || d === null) throw new TypeError(`${k}: dims must be an object {batch, heads, kvHeads, Tq, Tk, dh, scale}`);
  size(k, "batch", d.batch); size(k, "heads", d.heads); size(k, "kvHeads", d.kvHeads);
  size(k, "Tq", d.Tq); size(k, "Tk", d.Tk); size(k, "dh", d.dh);
  num(k, "scale", d.scale);
  if (d.kvHeads === 0 ? d.heads !== 0 : d.heads % d.kvHeads !== 0) {
    throw new RangeError(`${k}: heads = ${d.heads} is not a multiple of kvHeads = ${d.kvHeads}`);
  }
  strided(k, "q", q, [d.batch, d.Tq, d.heads, d.dh]);
  strided(k, "k", kk, [d.batch, d.Tk, d.kvHeads, d.dh]);
  strided(k, "v", v, [d.batch, d.Tk, d.kvHeads, d.dh]);
  optional(k, "mask", mask, d.batch * d.Tk, "batch*Tk");
  return { nq: d.batch * d.Tq * d.heads * d.dh, nkv: d.batch * d.Tk * d.kvHeads * d.dh, nl: d.batch * d.heads * d.Tq };
}

/**
 * Wraps a backend's kernels with the argument checks, so all backends reject the same bad calls with
 * the same errors. A call whose output is empty returns after its checks without running the kernel.
 */
export function checkedKernels(impl: Partial<Kernels>): Partial<Kernels> {
  const c: Partial<Kernels> = {};
  const i = impl;
  if (i.matmul) {
    const f = i.matmul;
    c.matmul = (batch, M, N, K, a, b, out, bias) => {
      const k = "matmul";
      size(k, "batch", batch); size(k, "M", M); size(k, "N", N); size(k, "K", K);
      mat(k, "a", a, batch, M, K);
      mat(k, "b", b, batch, K, N);
      arr(k, "out", out);
      need(k, "batch*M*N", batch * M * N, "out", out);
      optional(k, "bias", bias, N, "N");
      if (batch * M * N > 0) f(batch, M, N, K, a, b, out, bias);
    };
  }
  if (i.packMatrix) {
    const f = i.packMatrix;
    c.packMatrix = (K, N, b) => {
      const k = "packMatrix";
      size(k, "K", K); size(k, "N", N);
      mat(k, "b", b, 1, K, N, true);
      return f(K, N, b);
    };
  }
  if (i.matmulPacked) {
    const f = i.matmulPacked;
    c.matmulPacked = (M, a, packed, out, bias) => {
      const k = "matmulPacked";
      size(k, "M", M);
      packedDims(k, packed);
      mat(k, "a", a, 1, M, packed.K, true);
      arr(k, "out", out);
      need(k, "M*N", M * packed.N, "out", out);
      optional(k, "bias", bias, packed.N, "N");
      f(M, a, packed, out, bias);
    };
  }
  if (i.unary) {
    const f = i.unary;
    c.unary = (o, x, xOffset, out, n) => {
      const k = "unary";
      op(k, UNARY, o);
      arr(k, "x", x); arr(k, "out", out);
      size(k, "n", n); offset(k, "xOffset", xOffset);
      need(k, "xOffset+n", xOffset + n, "x", x);
      need(k, "n", n, "out", out);
      if (n > 0) f(o, x, xOffset, out, n);
    };
  }
  if (i.unaryGrad) {
    const f = i.unaryGrad;
    c.unaryGrad = (o, x, gy, gx, n) => {
      const k = "unaryGrad";
      op(k, UNARY_GRAD, o);
      arr(k, "x", x); arr(k, "gy", gy); arr(k, "gx", gx);
      size(k, "n", n);
      need(k, "n", n, "x", x); need(k, "n", n, "gy", gy); need(k, "n", n, "gx", gx);
      if (n > 0) f(o, x, gy, gx, n);
    };
  }
  if (i.binary) {
    const f = i.binary;
    c.binary = (o, shape, a, b, out) => {
      const k = "binary";
      op(k, BINARY, o);
      const n = shapeSize(k, shape);
      strided(k, "a", a, shape); strided(k, "b", b, shape);
      arr(k, "out", out);
      need(k, "prod(shape)", n, "out", out);
      if (n > 0) f(o, shape, a, b, out);
    };
  }
  if (i.copy) {
    const f = i.copy;
    c.copy = (shape, x, out) => {
      const k = "copy";
      const n = shapeSize(k, shape);
      strided(k, "x", x, shape);
      arr(k, "out", out);
      need(k, "prod(shape)", n, "out", out);
      if (n > 0) f(shape, x, out);
    };
  }
  if (i.where) {
    const f = i.where;
    c.where = (shape, cond, a, b, out) => {
      const k = "where";
      const n = shapeSize(k, shape);
      strided(k, "cond", cond, shape); strided(k, "a", a, shape); strided(k, "b", b, shape);
      arr(k, "out", out);
      need(k, "prod(shape)", n, "out", out);
      if (n > 0) f(shape, cond, a, b, out);
    };
  }
  if (i.reduce) {
    const f = i.reduce;
    c.reduce = (o, x, outer, red, inner, out) => {
      const k = "reduce";
      op(k, REDUCE, o);
      size(k, "outer", outer); size(k, "red", red); size(k, "inner", inner);
      arr(k, "x", x); arr(k, "out", out);
      need(k, "outer*red*inner", outer * red * inner, "x", x);
      need(k, "outer*inner", outer * inner, "out", out);
      if (outer * inner > 0) f(o, x, outer, red, inner, out);
    };
  }
  if (i.argmax) {
    const f = i.argmax;
    c.argmax = (x, outer, red, inner, out) => {
      const k = "argmax";
      size(k, "outer", outer); size(k, "red", red); size(k, "inner", inner);
      arr(k, "x", x); i32(k, "out", out);
      need(k, "outer*red*inner", outer * red * inner, "x", x);
      need(k, "outer*inner", outer * inner, "out", out);
      if (outer * inner === 0) return;
      if (red === 0) throw new RangeError(`${k}: red = 0: an empty axis has no maximum`);
      f(x, outer, red, inner, out);
    };
  }
  if (i.softmax) {
    const f = i.softmax;
    c.softmax = (x, rows, cols, scale, causalRows, causalOffset, out) => {
      const k = "softmax";
      const n = rowsCols(k, rows, cols);
      num(k, "scale", scale);
      size(k, "causalRows", causalRows);
      if (!(Number.isInteger(causalOffset) && Math.abs(causalOffset) <= MAX_KERNEL_SIZE)) {
        throw new RangeError(`${k}: causalOffset = ${show(causalOffset)} is not an integer in [-${MAX_KERNEL_SIZE}, ${MAX_KERNEL_SIZE}]`);
      }
      arr(k, "x", x); arr(k, "out", out);
      need(k, "rows*cols", n, "x", x); need(k, "rows*cols", n, "out", out);
      if (n > 0) f(x, rows, cols, scale, causalRows, causalOffset, out);
    };
  }
  if (i.attention) {
    const f = i.attention;
    c.attention = (d, q, kk, v, mask, out, lse) => {
      const k = "attention";
      const { nq, nl } = attentionArgs(k, d, q, kk, v, mask);
      arr(k, "out", out); arr(k, "lse", lse);
      need(k, "batch*Tq*heads*dh", nq, "out", out); need(k, "batch*heads*Tq", nl, "lse", lse);
      if (nl > 0) f(d, q, kk, v, mask, out, lse);
    };
  }
  if (i.attentionBackward) {
    const f = i.attentionBackward;
    c.attentionBackward = (d, q, kk, v, mask, out, lse, gOut, gq, gk, gv) => {
      const k = "attentionBackward";
      const { nq, nkv, nl } = attentionArgs(k, d, q, kk, v, mask);
      arr(k, "out", out); arr(k, "lse", lse); arr(k, "gOut", gOut); arr(k, "gq", gq); arr(k, "gk", gk); arr(k, "gv", gv);
      need(k, "batch*Tq*heads*dh", nq, "out", out); need(k, "batch*heads*Tq", nl, "lse", lse);
      need(k, "batch*Tq*heads*dh", nq, "gOut", gOut); need(k, "batch*Tq*heads*dh", nq, "gq", gq);
      need(k, "batch*Tk*kvHeads*dh", nkv, "gk", gk); need(k, "batch*Tk*kvHeads*dh", nkv, "gv", gv);
      if (nq + nkv > 0) f(d, q, kk, v, mask, out, lse, gOut, gq, gk, gv);
    };
  }
  if (i.softmaxBackward) {
    const f = i.softmaxBackward;
    c.softmaxBackward = (y, gy, rows, cols, scale, gx) => {
      const k = "softmaxBackward";
      const n = rowsCols(k, rows, cols);
      num(k, "scale", scale);
      arr(k, "y", y); arr(k, "gy", gy); arr(k, "gx", gx);
      need(k, "rows*cols", n, "y", y); need(k, "rows*cols", n, "gy", gy); need(k, "rows*cols", n, "gx", gx);
      if (n > 0) f(y, gy, rows, cols, scale, gx);
    };
  }
  if (i.logSoftmax) {
    const f = i.logSoftmax;
    c.logSoftmax = (x, rows, cols, out) => {
      const k = "logSoftmax";
      const n = rowsCols(k, rows, cols);
      arr(k, "x", x); arr(k, "out", out);
      need(k, "rows*cols", n, "x", x); need(k, "rows*cols", n, "out", out);
      if (n > 0) f(x, rows, cols, out);
    };
  }
  if (i.logSoftmaxBackward) {
    const f = i.logSoftmaxBackward;
    c.logSoftmaxBackward = (y, gy, rows, cols, gx) => {
      const k = "logSoftmaxBackward";
      const n = rowsCols(k, rows, cols);
      arr(k, "y", y); arr(k, "gy", gy); arr(k, "gx", gx);
      need(k, "rows*cols", n, "y", y); need(k, "rows*cols", n, "gy", gy); need(k, "rows*cols", n, "gx", gx);
      if (n > 0) f(y, gy, rows, cols, gx);
    };
  }
  if (i.layerNorm) {
    const f = i.layerNorm;
    c.layerNorm = (x, w, b, rows, cols, eps, out, mean, rstd) => {
      const k = "layerNorm";
      const n = rowsCols(k, rows, cols);
      num(k, "eps", eps);
      arr(k, "x", x); arr(k, "out", out); arr(k, "mean", mean); arr(k, "rstd", rstd);
      need(k, "rows*cols", n, "x", x); need(k, "rows*cols", n, "out", out);
      need(k, "rows", rows, "mean", mean); need(k, "rows", rows, "rstd", rstd);
      optional(k, "w", w, cols, "cols"); optional(k, "b", b, cols, "cols");
      if (rows > 0) f(x, w, b, rows, cols, eps, out, mean, rstd);
    };
  }
  if (i.layerNormBackward) {
    const f = i.layerNormBackward;
    c.layerNormBackward = (x, w, mean, rstd, gy, rows, cols, gx, gw, gb) => {
      const k = "layerNormBackward";
      const n = rowsCols(k, rows, cols);
      arr(k, "x", x); arr(k, "mean", mean); arr(k, "rstd", rstd); arr(k, "gy", gy); arr(k, "gx", gx);
      need(k, "rows*cols", n, "x", x); need(k, "rows*cols", n, "gy", gy); need(k, "rows*cols", n, "gx", gx);
      need(k, "rows", rows, "mean", mean); need(k, "rows", rows, "rstd", rstd);
      optional(k, "w", w, cols, "cols"); optional(k, "gw", gw, cols, "cols"); optional(k, "gb", gb, cols, "cols");
      if (n > 0) f(x, w, mean, rstd, gy, rows, cols, gx, gw, gb);
    };
  }
  if (i.rmsNorm) {
    const f = i.rmsNorm;
    c.rmsNorm = (x, w, rows, cols, eps, out, rstd) => {
      const k = "rmsNorm";
      const n = rowsCols(k, rows, cols);
      num(k, "eps", eps);
      arr(k, "x", x); arr(k, "out", out); arr(k, "rstd", rstd);
      need(k, "rows*cols", n, "x", x); need(k, "rows*cols", n, "out", out); need(k, "rows", rows, "rstd", rstd);
      optional(k, "w", w, cols, "cols");
      if (rows > 0) f(x, w, rows, cols, eps, out, rstd);
    };
  }
  if (i.rmsNormBackward) {
    const f = i.rmsNormBackward;
    c.rmsNormBackward = (x, w, rstd, gy, rows, cols, gx, gw) => {
      const k = "rmsNormBackward";
      const n = rowsCols(k, rows, cols);
      arr(k, "x", x); arr(k, "rstd", rstd); arr(k, "gy", gy); arr(k, "gx", gx);
      need(k, "rows*cols", n, "x", x); need(k, "rows*cols", n, "gy", gy); need(k, "rows*cols", n, "gx", gx);
      need(k, "rows", rows, "rstd", rstd);
      optional(k, "w", w, cols, "cols"); optional(k, "gw", gw, cols, "cols");
      if (n > 0) f(x, w, rstd, gy, rows, cols, gx, gw);
    };
  }
  if (i.gatherRows) {
    const f = i.gatherRows;
    c.gatherRows = (x, R, C, idx, out) => {
      const k = "gatherRows";
      size(k, "R", R); size(k, "C", C);
      arr(k, "x", x); i32(k, "idx", idx); arr(k, "out", out);
      need(k, "R*C", R * C, "x", x);
      need(k, "idx.length*C", idx.length * C, "out", out);
      f(x, R, C, idx, out); // the kernel checks each index against R
    };
  }
  if (i.scatterAddRows) {
    const f = i.scatterAddRows;
    c.scatterAddRows = (gy, idx, C, gx) => {
      const k = "scatterAddRows";
      size(k, "C", C);
      arr(k, "gy", gy); i32(k, "idx", idx); arr(k, "gx", gx);
      need(k, "idx.length*C", idx.length * C, "gy", gy);
      f(gy, idx, C, gx); // the kernel checks each index against gx.length / C
    };
  }
  if (i.adamw) {
    const f = i.adamw;
    c.adamw = (p, g, m, v, n, lr, beta1, beta2, eps, weightDecay, step) => {
      const k = "adamw";
      size(k, "n", n);
      num(k, "lr", lr); num(k, "beta1", beta1); num(k, "beta2", beta2); num(k, "eps", eps); num(k, "weightDecay", weightDecay); num(k, "step", step);
      arr(k, "p", p); arr(k, "g", g); arr(k, "m", m); arr(k, "v", v);
      need(k, "n", n, "p", p); need(k, "n", n, "g", g); need(k, "n", n, "m", m); need(k, "n", n, "v", v);
      if (n > 0) f(p, g, m, v, n, lr, beta1, beta2, eps, weightDecay, step);
    };
  }
  return c;
}
