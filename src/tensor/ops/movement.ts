// Shape and layout ops. reshape (of contiguous data), permute, expand, slice, squeeze and unsqueeze
// are views sharing storage; contiguous, indexSelect, gather and concat copy.
import { record } from "../autodiff.js";
import { allocate } from "../dtype.js";
import { contiguousStrides, fmt, normAxis, numel, ShapeError, type Shape } from "../shape.js";
import { Tensor } from "../tensor.js";
import { kernelsFor } from "../../backend/registry.js";
import { assignStrided, dense, empty, emptyOutput, stridedOf } from "./core.js";

/** A new tensor object over the same data: a distinct node on the graph (hook points use it). */
export function alias(x: Tensor): Tensor {
  return record("alias", new Tensor(x.data, x.shape, x.strides, x.offset), [x], null);
}

/** Resolve a single -1 in a requested shape. */
function inferShape(x: Tensor, shape: readonly number[]): number[] {
  const out = shape.slice();
  const neg = out.indexOf(-1);
  if (neg !== out.lastIndexOf(-1)) throw new ShapeError(`reshape: at most one -1 allowed, got ${fmt(shape)}`);
  if (neg >= 0) {
    const rest = numel(out.filter((_, i) => i !== neg));
    if (rest === 0 || x.size % rest !== 0) throw new ShapeError(`reshape: cannot infer -1 in ${fmt(shape)} for ${x.size} elements`);
    out[neg] = x.size / rest;
  }
  if (numel(out) !== x.size) throw new ShapeError(`reshape: cannot reshape ${fmt(x.shape)} (${x.size} elements) to ${fmt(shape)}`);
  return out;
}

export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const s = inferShape(x, shape);
  const src = x.isContiguous ? x : contiguous(x);
  const out = new Tensor(src.data, s, contiguousStrides(s), src.offset);
  return record("reshape", out, [x], null);
}

export function permute(x: Tensor, axes: readonly number[]): Tensor {
  if (axes.length !== x.ndim) throw new ShapeError(`permute: ${axes.length} axes given for a ${x.ndim}-dim tensor`);
  const ax = axes.map((a) => normAxis("permute", a, x.ndim));
  if (new Set(ax).size !== ax.length) throw new ShapeError(`permute: axes ${fmt(axes)} are not a permutation`);
  const out = new Tensor(x.data, ax.map((a) => x.shape[a]!), ax.map((a) => x.strides[a]!), x.offset);
  return record("permute", out, [x], { axes: ax });
}

export function transpose(x: Tensor, a: number, b: number): Tensor {
  const axes = x.shape.map((_, i) => i);
  const i = normAxis("transpose", a, x.ndim), j = normAxis("transpose", b, x.ndim);
  [axes[i], axes[j]] = [axes[j]!, axes[i]!];
  return permute(x, axes);
}

/** Broadcast to a larger shape without copying (-1 keeps a size). */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  if (shape.length < x.ndim) throw new ShapeError(`expand: target ${fmt(shape)} has fewer dims than ${fmt(x.shape)}`);
  const lead = shape.length - x.ndim;
  const s = shape.map((d, i) => (d === -1 ? x.shape[i - lead]! : d));
  const strides = s.map((d, i) => {
    if (i < lead) return 0;
    const xd = x.shape[i - lead]!;
    if (xd === d) return x.strides[i - lead]!;
    if (xd === 1) return 0;
    throw new ShapeError(`expand: cannot expand ${fmt(x.shape)} to ${fmt(shape)} (axis ${i}: ${xd} vs ${d})`);
  });
  return record("expand", new Tensor(x.data, s, strides, x.offset), [x], null);
}

export function squeeze(x: Tensor, axis?: number): Tensor {
  if (axis === undefined) return reshape(x, x.shape.filter((d) => d !== 1));
  const a = normAxis("squeeze", axis, x.ndim);
  if (x.shape[a] !== 1) throw new ShapeError(`squeeze: axis ${axis} has size ${x.shape[a]}, not 1`);
  return reshape(x, x.shape.filter((_, i) => i !== a));
}

export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = normAxis("unsqueeze", axis, x.ndim + 1);
  const s = x.shape.slice();
  s.splice(a, 0, 1);
  return reshape(x, s);
}

/** Python-style slice of one axis: [start, end) with a positive step; negatives count from the end. */
export function slice(x: Tensor, axis: number, start: number, end?: number, step = 1): Tensor {
  const a = normAxis("slice", axis, x.ndim);
  const n = x.shape[a]!;
  if (!(step >= 1) || !Number.isInteger(step)) throw new ShapeError(`slice: step must be a positive integer, got ${step}`);
  const clamp = (i: number) => Math.min(Math.max(i < 0 ? i + n : i, 0), n);
  const s = clamp(start), e = Math.max(clamp(end ?? n), s);
  const len = Math.ceil((e - s) / step);
  const shape = x.shape.slice(), strides = x.strides.slice();
  shape[a] = len;
  strides[a] = x.strides[a]! * step;
  const out = new Tensor(x.data, shape, strides, x.offset + (len > 0 ? s * x.strides[a]! : 0));
  return record("slice", out, [x], { axis: a, start: s, step });
}

export function select(x: Tensor, axis: number, i: number): Tensor {
  const a = normAxis("select", axis, x.ndim);
  const n = x.shape[a]!;
  const j = i < 0 ? i + n : i;
  if (j < 0 || j >= n) throw new RangeError(`select: index ${i} out of range for axis ${axis} of size ${n}`);
  return squeeze(slice(x, a, j, j + 1), a);
}

export function contiguous(x: Tensor): Tensor {
  if (x.isContiguous) return x;
  const out = emptyOutput(x.shape, x.dtype);
  kernelsFor(x.dtype).copy(x.shape, stridedOf(x), out.data);
  return record("contiguous", out, [x], null);
}

function toIndex(op: string, index: Tensor | readonly number[], size: number): Int32Array {
  // Always a copy: toArray() can return the caller's storage, which negative indices are rewritten in.
  const idx = Int32Array.from(Array.isArray(index) ? (index as number[]) : (index as Tensor).toArray());
  for (let i = 0; i < idx.length; i++) {
    const v = idx[i]!;
    if (v < -size || v >= size) throw new RangeError(`${op}: index ${v} out of range for an axis of size ${size}`);
    if (v < 0) idx[i] = v + size;
  }
  return idx;
}

/** Pick entries of one axis by index (embedding lookup is indexSelect(0, tokens)). */
export function indexSelect(x: Tensor, axis: number, index: Tensor | readonly number[]): Tensor {
  const a = normAxis("indexSelect", axis, x.ndim);
  const idxShape = Array.isArray(index) ? [index.length] : (index as Tensor).shape;
  const idx = toIndex("indexSelect", index, x.shape[a]!);
  // Bring the axis to the front so each pick is one contiguous row.
  const moved = a === 0 ? dense(x.detach()) : dense(permute(x.detach(), [a, ...x.shape.map((_, i) => i).filter((i) => i !== a)]));
  const R = x.shape[a]!, C = x.size / Math.max(R, 1);
  const out = new Tensor(allocate(x.dtype, idx.length * C), [idx.length, ...moved.shape.slice(1)]);
  kernelsFor(x.dtype).gatherRows(moved.data, R, C, idx, out.data);
  // Put the picked axis back, then give it the index's shape.
  const back = Array.from({ length: x.ndim }, (_, i) => (i < a ? i + 1 : i === a ? 0 : i));
  const placed = a === 0 ? out : dense(permute(out, back));
  const res = new Tensor(placed.data, [...x.shape.slice(0, a), ...idxShape, ...x.shape.slice(a + 1)]);
  return record("indexSelect", res, [x], { axis: a, index: idx });
}

/** torch.gather: out[i][j][k] = x[i][index[i][j][k]][k] for axis 1 (index has x's rank). */
export function gather(x: Tensor, axis: number, index: Tensor): Tensor {
  const a = normAxis("gather", axis, x.ndim);
  if (index.ndim !== x.ndim) throw new ShapeError(`gather: index rank ${index.ndim} differs from input rank ${x.ndim}`);
  const idx = index.dtype === "int32" ? index.contiguous() : index.cast("int32").contiguous();
  const out = empty(index.shape, x.dtype);
  const n = out.size, nd = x.ndim, I = idx.data, io = idx.offset;
  const pos = new Array<number>(nd).fill(0);
  for (let i = 0; i < n; i++) {
    let o = x.offset;
    for (let d = 0; d < nd; d++) {
      let p = pos[d]!;
      if (d === a) {
        p = I[io + i]!;
        if (p < 0) p += x.shape[a]!;
        if (p < 0 || p >= x.shape[a]!) throw new RangeError(`gather: index ${I[io + i]} out of range for axis ${axis} of size ${x.shape[a]}`);
      } else if (p >= x.shape[d]!) throw new ShapeError(`gather: index shape ${fmt(index.shape)} exceeds input ${fmt(x.shape)} on axis ${d}`);
      o += p * x.strides[d]!;
    }
    out.data[i] = x.data[o]!;
    for (let d = nd - 1; d >= 0; d--) { if (++pos[d]! < index.shape[d]!) break; pos[d] = 0; }
  }
  return record("gather", out, [x], { axis: a, index: idx });
}

/** Join tensors along an existing axis. */
export function concat(xs: Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new ShapeError("concat: no tensors given");
  const first = xs[0]!;
  const a = normAxis("concat", axis, first.ndim);
  for (const t of xs) {
    if (t.ndim !== first.ndim || t.shape.some((d, i) => i !== a && d !== first.shape[i]))
      throw new ShapeError(`concat: shapes ${fmt(first.shape)} and ${fmt(t.shape)} differ outside axis ${axis}`);
  }
  const dtype = xs.some((t) => t.dtype === "float64") ? "float64" : first.dtype;
  const shape = first.shape.slice();
  shape[a] = xs.reduce((s, t) => s + t.shape[a]!, 0);
  const out = empty(shape, dtype);
  const strides = contiguousStrides(shape);
  let off = 0;
  for (const t of xs) {
    assignStrided(out.data, off * strides[a]!, strides, t);
    off += t.shape[a]!;
  }
  return record("concat", out, xs, { axis: a, sizes: xs.map((t) => t.shape[a]!) });
}

export function stack(xs: Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new ShapeError("stack: no tensors given");
  // unsqueeze normalises a negative axis against ndim + 1 itself (-1 = a new last axis).
  return concat(xs.map((t) => unsqueeze(t, axis)), axis < 0 ? axis + xs[0]!.ndim + 1 : axis);
}

/** Split one axis into pieces of the given sizes (views). */
export function split(x: Tensor, sizes: number[], axis: number): Tensor[] {
  const a = normAxis("split", axis, x.ndim);
  if (sizes.reduce((s, v) => s + v, 0) !== x.shape[a]) throw new ShapeError(`split: sizes [${sizes}] do not add up to ${x.shape[a]} on axis ${axis}`);
  let s = 0;
  return sizes.map((n) => { const t = slice(x, a, s, s + n); s += n; return t; });
}

export type { Shape };
