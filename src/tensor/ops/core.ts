// Helpers shared by the op files: output allocation, scalar wrapping, dense data for kernels.
import { allocate, allocateOutput, promote, type DType, type Storage } from "../dtype.js";
import { coalesce, numel, type Shape } from "../shape.js";
import { Tensor, type TensorLike } from "../tensor.js";
import type { Strided } from "../../backend/kernels.js";

/** A zero-filled tensor. */
export function empty(shape: Shape, dtype: DType): Tensor {
  return new Tensor(allocate(dtype, numel(shape)), shape);
}

/** A tensor whose every element the caller is about to overwrite (skips zeroing pooled storage). */
export function emptyOutput(shape: Shape, dtype: DType): Tensor {
  return new Tensor(allocateOutput(dtype, numel(shape)), shape);
}

/** Wrap a number as a 0-d tensor of the given dtype; pass tensors through. */
export function lift(x: TensorLike, dtype: DType): Tensor {
  if (typeof x !== "number") return x;
  const d = allocate(dtype, 1);
  d[0] = x;
  return new Tensor(d, []);
}

/** The dtype of an op on a and b (numbers adopt the tensor's dtype, int tensors with fractional numbers become float32). */
export function resultDType(a: TensorLike, b: TensorLike): DType {
  if (typeof a === "number" && typeof b === "number") return "float32";
  if (typeof a === "number") return numberFits(a, (b as Tensor).dtype);
  if (typeof b === "number") return numberFits(b, a.dtype);
  return promote(a.dtype, b.dtype);
}
const numberFits = (x: number, d: DType): DType => (d === "int32" && !Number.isInteger(x) ? "float32" : d);

/** The tensor's elements as a contiguous array starting at index 0 (a view when possible, else a copy). */
export function denseData(t: Tensor): Storage {
  if (!t.isContiguous) return t.contiguous().data;
  return t.offset === 0 ? t.data : (t.data.subarray(t.offset) as Storage);
}

/** The tensor as a contiguous tensor at offset 0, for kernels that need that. */
export function dense(t: Tensor): Tensor {
  if (t.isContiguous && t.offset === 0) return t;
  if (t.isContiguous) return new Tensor(t.data.subarray(t.offset, t.offset + t.size) as Storage, t.shape);
  return t.contiguous();
}

export const stridedOf = (t: Tensor, strides: readonly number[] = t.strides): Strided => ({ data: t.data, offset: t.offset, strides });

/** Write src (any layout) into the strided region (dst, dstOffset, dstStrides) of the given shape. */
export function assignStrided(dst: Storage, dstOffset: number, dstStrides: readonly number[], src: Tensor): void {
  const n = src.size;
  if (n === 0) return;
  // Merge dims both sides walk contiguously, so inner runs become one memcpy-like set().
  const c = coalesce(src.shape, [dstStrides, src.strides]);
  const shape = c.shape, sd = c.strides[0]!, ss = c.strides[1]!, nd = shape.length;
  const S = src.data;
  if (nd === 0) { dst[dstOffset] = S[src.offset]!; return; }
  const last = nd - 1, L = shape[last]!;
  const rows = n / L;
  const runs = sd[last] === 1 && ss[last] === 1;
  const idx = new Array<number>(nd).fill(0);
  let od = dstOffset, os = src.offset;
  for (let r = 0; r < rows; r++) {
    if (runs) (dst as Float32Array).set((S as Float32Array).subarray(os, os + L), od);
    else for (let j = 0, a = od, b = os; j < L; j++, a += sd[last]!, b += ss[last]!) dst[a] = S[b]!;
    for (let d = last - 1; d >= 0; d--) {
      idx[d]!++; od += sd[d]!; os += ss[d]!;
      if (idx[d]! < shape[d]!) break;
      od -= sd[d]! * shape[d]!; os -= ss[d]! * shape[d]!; idx[d] = 0;
    }
  }
}
