// Elementwise ops with NumPy broadcasting: unary math, binary arithmetic, comparisons, where, cast.
import { record } from "../autodiff.js";
import { allocate, allocateOutput, type DType } from "../dtype.js";
import { broadcastShapes, broadcastStrides, coalesce, contiguousStrides, numel, shapeEq } from "../shape.js";
import { Tensor, type TensorLike } from "../tensor.js";
import { kernelsFor } from "../../backend/registry.js";
import type { BinaryOp, UnaryOp } from "../../backend/kernels.js";
import { lift, resultDType, stridedOf } from "./core.js";

export type ArithOp = "add" | "sub" | "mul" | "div" | "max" | "min" | "pow";
export type CompareOp = "eq" | "ne" | "lt" | "le" | "gt" | "ge";

const UNIT: readonly number[] = [1]; // the stride of a flat contiguous operand (shared, never mutated)

/** Compute op(a, b) with broadcasting into a new contiguous tensor of dtype `dtype`. */
function binaryRaw(op: BinaryOp, a: Tensor, b: Tensor, dtype: DType): Tensor {
  if (a.dtype !== dtype) a = cast(a, dtype);
  if (b.dtype !== dtype) b = cast(b, dtype);
  const k = kernelsFor(dtype);
  // Fast path: same shape, both contiguous (the common case in a forward pass).
  if (shapeEq(a.shape, b.shape) && a.isContiguous && b.isContiguous) {
    const n = a.size;
    const out = new Tensor(allocateOutput(dtype, n), a.shape);
    k.binary(op, [n], { data: a.data, offset: a.offset, strides: UNIT }, { data: b.data, offset: b.offset, strides: UNIT }, out.data);
    return out;
  }
  const shape = broadcastShapes(op, a.shape, b.shape);
  const out = new Tensor(allocateOutput(dtype, numel(shape)), shape);
  const sa = broadcastStrides(a.shape, a.strides, shape), sb = broadcastStrides(b.shape, b.strides, shape);
  const c = coalesce(shape, [sa, sb, contiguousStrides(shape)]);
  k.binary(op, c.shape, stridedOf(a, c.strides[0]), stridedOf(b, c.strides[1]), out.data);
  return out;
}

function arith(op: ArithOp, a: TensorLike, b: TensorLike): Tensor {
  // Two tensors of one dtype (the hot case) skip the promotion logic.
  const same = typeof a !== "number" && typeof b !== "number" && a.dtype === b.dtype;
  const dtype = same ? (a as Tensor).dtype : resultDType(a, b);
  const ta = same ? (a as Tensor) : lift(a, dtype), tb = same ? (b as Tensor) : lift(b, dtype);
  return record("binary", binaryRaw(op, ta, tb, dtype), [ta, tb], { op });
}

export const add = (a: TensorLike, b: TensorLike): Tensor => arith("add", a, b);
export const sub = (a: TensorLike, b: TensorLike): Tensor => arith("sub", a, b);
export const mul = (a: TensorLike, b: TensorLike): Tensor => arith("mul", a, b);
export const div = (a: TensorLike, b: TensorLike): Tensor => arith("div", a, b);
export const pow = (a: TensorLike, b: TensorLike): Tensor => arith("pow", a, b);
export const maximum = (a: TensorLike, b: TensorLike): Tensor => arith("max", a, b);
export const minimum = (a: TensorLike, b: TensorLike): Tensor => arith("min", a, b);

/** Comparisons give 1/0 in the operands' dtype and carry no gradient. */
export function compare(op: CompareOp, a: TensorLike, b: TensorLike): Tensor {
  const dtype = resultDType(a, b);
  return binaryRaw(op, lift(a, dtype), lift(b, dtype), dtype);
}

export function unary(op: UnaryOp, x: Tensor): Tensor {
  if (x.dtype === "int32") {
    if (op === "neg" || op === "abs" || op === "sign" || op === "square") return unary(op, cast(x, "float32")).cast("int32");
    x = cast(x, "float32");
  }
  const src = x.isContiguous ? x : x.contiguous();
  const out = new Tensor(allocateOutput(x.dtype, x.size), x.shape);
  kernelsFor(x.dtype).unary(op, src.data as Float32Array, src.offset, out.data as Float32Array, x.size);
  return record("unary", out, [x], { op });
}

/** Convert to another dtype (float→int truncates toward zero, as a C cast). */
export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return x;
  const src = x.isContiguous ? x : x.contiguous();
  const out = new Tensor(allocate(dtype, x.size), x.shape);
  const n = x.size, S = src.data, D = out.data, o = src.offset;
  if (dtype === "int32") for (let i = 0; i < n; i++) D[i] = Math.trunc(S[o + i]!);
  else for (let i = 0; i < n; i++) D[i] = S[o + i]!;
  return dtype === "int32" ? out : record("cast", out, [x], null);
}

/** cond ? a : b elementwise, with broadcasting over all three. */
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  const dtype = resultDType(a, b);
  let ta = lift(a, dtype), tb = lift(b, dtype);
  if (ta.dtype !== dtype) ta = cast(ta, dtype);
  if (tb.dtype !== dtype) tb = cast(tb, dtype);
  const shape = broadcastShapes("where", broadcastShapes("where", cond.shape, ta.shape), tb.shape);
  const out = new Tensor(allocate(dtype, numel(shape)), shape);
  const c = coalesce(shape, [
    broadcastStrides(cond.shape, cond.strides, shape), broadcastStrides(ta.shape, ta.strides, shape),
    broadcastStrides(tb.shape, tb.strides, shape), contiguousStrides(shape),
  ]);
  kernelsFor(dtype).where(c.shape, stridedOf(cond, c.strides[0]), stridedOf(ta, c.strides[1]), stridedOf(tb, c.strides[2]), out.data);
  return record("where", out, [ta, tb], { cond });
}
