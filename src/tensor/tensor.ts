// The Tensor: a strided view (shape, strides, offset) over a typed-array storage, plus the autodiff
// fields. Methods are thin sugar over the op functions in ops/, so `x.add(y).relu()` and
// `relu(add(x, y))` are the same thing. Views (reshape of contiguous data, permute, slice, expand)
// share storage; everything else allocates a fresh contiguous output.
import type { Node } from "./autodiff.js";
import { allocate, dtypeOf, type DType, type Storage } from "./dtype.js";
import { RELEASED, track, inScope } from "./memory.js";
import { contiguousStrides, fmt, numel, shapeEq, ShapeError, type Shape } from "./shape.js";
import * as E from "./ops/elementwise.js";
import * as M from "./ops/movement.js";
import * as R from "./ops/reduce.js";
import * as L from "./ops/linalg.js";
import * as N from "./ops/nn.js";
import type { UnaryOp } from "../backend/kernels.js";

export type Scalar = number;
export type TensorLike = Tensor | number;

export class Tensor {
  readonly shape: number[];
  readonly strides: number[];
  readonly offset: number;
  private _data: Storage;
  readonly dtype: DType;
  /** Leaves that require grad get .grad filled by backward(). */
  requiresGrad = false;
  grad: Tensor | null = null;
  /** How this tensor was computed, when it is on the autodiff graph. */
  node: Node | null = null;
  /** Called with this tensor's gradient during backward; a returned tensor replaces it. */
  gradHooks: ((g: Tensor) => Tensor | void)[] | null = null;
  /** Keep .grad for this intermediate during backward (set by retainGrad). */
  retainsGrad = false;
  /** Bumped by in-place writes, so caches derived from the data (packed weights) know they are stale. */
  version = 0;
  /** Backend-packed form of this matrix, valid while version matches. */
  packed: { version: number; handle: unknown; backend: string } | null = null;
  /** Optional label used in error messages and debugging (e.g. a parameter name). */
  name: string | undefined;

  constructor(data: Storage, shape: Shape, strides?: readonly number[], offset = 0) {
    this._data = data;
    this.dtype = dtypeOf(data);
    this.shape = shape.slice();
    this.strides = strides ? strides.slice() : contiguousStrides(shape);
    this.offset = offset;
    for (let i = 0; i < shape.length; i++) {
      const d = shape[i]!;
      if (!(d >= 0 && Number.isInteger(d))) throw new ShapeError(`Tensor: invalid shape ${fmt(shape)}`);
    }
    track(this);
  }

  /** The storage this tensor views (shared with other views). Throws if a scope released it. */
  get data(): Storage {
    const d = this._data;
    if (d === RELEASED) throw new Error(`${this.toString()} was released when its scope() ended; return it from the scope or keep() it`);
    return d;
  }
  /** The storage without the released check (memory bookkeeping only). */
  get rawData(): Storage { return this._data; }
  /** Invalidate this tensor (its storage went back to the pool). */
  release(): void { this._data = RELEASED; this.node = null; }
  get isReleased(): boolean { return this._data === RELEASED; }
  /**
   * Take over src's storage instead of copying it (loading weights into freshly built parameters), when
   * both are whole contiguous arrays of one dtype and size and src is GC-owned (created outside any
   * scope(), so no scope recycles it). The caller gives src up. Returns false (nothing changed) otherwise.
   */
  adoptStorage(src: Tensor): boolean {
    const d = src._data;
    if (d === RELEASED || this._data === RELEASED || inScope() || src.dtype !== this.dtype || !src.shapeEquals(this.shape)) return false;
    if (!(src.isContiguous && src.offset === 0 && d.length === src.size && this.isContiguous && this.offset === 0 && this._data.length === this.size)) return false;
    this._data = d;
    this.packed = null;
    this.version++;
    return true;
  }

  get ndim(): number { return this.shape.length; }
  get size(): number { return numel(this.shape); }

  /** True when the elements are laid out row-major without gaps (from offset). */
  get isContiguous(): boolean {
    let acc = 1;
    for (let i = this.shape.length - 1; i >= 0; i--) {
      if (this.shape[i] !== 1 && this.strides[i] !== acc) return false;
      acc *= this.shape[i]!;
    }
    return true;
  }

  shapeEquals(s: Shape): boolean { return shapeEq(this.shape, s); }

  toString(): string { return `Tensor(${this.dtype}, ${fmt(this.shape)}${this.requiresGrad ? ", requiresGrad" : ""})`; }

  // ---- autodiff --------------------------------------------------------------------------
  /** Mark this tensor as a leaf whose gradient backward() should compute. Returns this. */
  requireGrad(on = true): this { this.requiresGrad = on; return this; }
  /** Keep this intermediate's gradient in .grad after backward(). */
  retainGrad(): this { this.retainsGrad = true; return this; }
  /** The same data, cut from the graph. */
  detach(): Tensor { return new Tensor(this.data, this.shape, this.strides, this.offset); }

  // ---- reading --------------------------------------------------------------------------
  /** A contiguous copy of the elements as a typed array of this dtype. */
  toArray(): Storage {
    const c = this.contiguous();
    const n = c.size;
    // Inside a scope the storage may be recycled later, so hand out a copy.
    if (inScope()) return c.data.slice(c.offset, c.offset + n) as Storage;
    return c.offset === 0 && c.data.length === n ? c.data : (c.data.subarray(c.offset, c.offset + n) as Storage);
  }
  /** The elements as a flat JS array of numbers. */
  toList(): number[] { return Array.from(this.toArray()); }
  /** The only element of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new ShapeError(`item: tensor has ${this.size} elements, expected 1 (shape ${fmt(this.shape)})`);
    return this.data[this.offset]!;
  }
  /** Nested JS arrays, like torch's tolist(). */
  toNested(): unknown {
    const flat = this.toList();
    const build = (dim: number, off: number): unknown => {
      if (dim === this.ndim) return flat[off];
      const stride = numel(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim]! }, (_, i) => build(dim + 1, off + i * stride));
    };
    return build(0, 0);
  }

  /** Element at a multi-index (negative indices count from the end). */
  get(...idx: number[]): number {
    if (idx.length !== this.ndim) throw new ShapeError(`get: ${idx.length} indices for a ${this.ndim}-dim tensor`);
    let o = this.offset;
    idx.forEach((i, d) => {
      const n = this.shape[d]!, j = i < 0 ? i + n : i;
      if (j < 0 || j >= n) throw new RangeError(`get: index ${i} out of range for axis ${d} of size ${n}`);
      o += j * this.strides[d]!;
    });
    return this.data[o]!;
  }

  // ---- creation helpers ---------------------------------------------------------------------
  zerosLike(): Tensor { return new Tensor(allocate(this.dtype, this.size), this.shape); }
  onesLike(): Tensor { const t = this.zerosLike(); t.data.fill(1); return t; }

  // ---- elementwise --------------------------------------------------------------------------
  add(b: TensorLike): Tensor { return E.add(this, b); }
  sub(b: TensorLike): Tensor { return E.sub(this, b); }
  mul(b: TensorLike): Tensor { return E.mul(this, b); }
  div(b: TensorLike): Tensor { return E.div(this, b); }
  pow(b: TensorLike): Tensor { return E.pow(this, b); }
  maximum(b: TensorLike): Tensor { return E.maximum(this, b); }
  minimum(b: TensorLike): Tensor { return E.minimum(this, b); }
  eq(b: TensorLike): Tensor { return E.compare("eq", this, b); }
  ne(b: TensorLike): Tensor { return E.compare("ne", this, b); }
  lt(b: TensorLike): Tensor { return E.compare("lt", this, b); }
  le(b: TensorLike): Tensor { return E.compare("le", this, b); }
  gt(b: TensorLike): Tensor { return E.compare("gt", this, b); }
  ge(b: TensorLike): Tensor { return E.compare("ge", this, b); }
  unary(op: UnaryOp): Tensor { return E.unary(op, this); }
  neg(): Tensor { return E.unary("neg", this); }
  exp(): Tensor { return E.unary("exp", this); }
  log(): Tensor { return E.unary("log", this); }
  sqrt(): Tensor { return E.unary("sqrt", this); }
  rsqrt(): Tensor { return E.unary("rsqrt", this); }
  reciprocal(): Tensor { return E.unary("recip", this); }
  tanh(): Tensor { return E.unary("tanh", this); }
  sigmoid(): Tensor { return E.unary("sigmoid", this); }
  relu(): Tensor { return E.unary("relu", this); }
  gelu(approximate: "tanh" | "none" = "none"): Tensor { return E.unary(approximate === "tanh" ? "gelu_tanh" : "gelu_erf", this); }
  silu(): Tensor { return E.unary("silu", this); }
  abs(): Tensor { return E.unary("abs", this); }
  sin(): Tensor { return E.unary("sin", this); }
  cos(): Tensor { return E.unary("cos", this); }
  square(): Tensor { return E.unary("square", this); }
  sign(): Tensor { return E.unary("sign", this); }
  cast(dtype: DType): Tensor { return E.cast(this, dtype); }

  // ---- reductions ---------------------------------------------------------------------------
  sum(axes?: number | number[], keepDims = false): Tensor { return R.sum(this, axes, keepDims); }
  mean(axes?: number | number[], keepDims = false): Tensor { return R.mean(this, axes, keepDims); }
  max(axes?: number | number[], keepDims = false): Tensor { return R.max(this, axes, keepDims); }
  min(axes?: number | number[], keepDims = false): Tensor { return R.min(this, axes, keepDims); }
  argmax(axis: number, keepDims = false): Tensor { return R.argmax(this, axis, keepDims); }
  logsumexp(axes: number | number[], keepDims = false): Tensor { return R.logsumexp(this, axes, keepDims); }
  var(axes?: number | number[], keepDims = false, correction = 0): Tensor { return R.variance(this, axes, keepDims, correction); }

  // ---- movement -----------------------------------------------------------------------------
  reshape(...shape: number[] | [number[]]): Tensor { return M.reshape(this, flatArgs(shape)); }
  view(...shape: number[] | [number[]]): Tensor { return M.reshape(this, flatArgs(shape)); }
  flatten(): Tensor { return M.reshape(this, [this.size]); }
  permute(...axes: number[] | [number[]]): Tensor { return M.permute(this, flatArgs(axes)); }
  transpose(a = -2, b = -1): Tensor { return M.transpose(this, a, b); }
  get T(): Tensor { return M.transpose(this, -2, -1); }
  expand(...shape: number[] | [number[]]): Tensor { return M.expand(this, flatArgs(shape)); }
  squeeze(axis?: number): Tensor { return M.squeeze(this, axis); }
  unsqueeze(axis: number): Tensor { return M.unsqueeze(this, axis); }
  /** Slice one axis: [start, end) with step (negative start/end count from the end). */
  slice(axis: number, start: number, end?: number, step = 1): Tensor { return M.slice(this, axis, start, end, step); }
  /** Pick index i of an axis, dropping it. */
  select(axis: number, i: number): Tensor { return M.select(this, axis, i); }
  contiguous(): Tensor { return M.contiguous(this); }
  indexSelect(axis: number, index: Tensor | number[]): Tensor { return M.indexSelect(this, axis, index); }
  gather(axis: number, index: Tensor): Tensor { return M.gather(this, axis, index); }
  where(cond: Tensor, other: TensorLike): Tensor { return E.where(cond, this, other); }

  // ---- linear algebra and nn ----------------------------------------------------------------
  matmul(b: Tensor): Tensor { return L.matmul(this, b); }
  softmax(axis = -1): Tensor { return N.softmax(this, axis); }
  logSoftmax(axis = -1): Tensor { return N.logSoftmax(this, axis); }
}

function flatArgs(a: number[] | [number[]]): number[] {
  return Array.isArray(a[0]) ? (a[0] as number[]) : (a as number[]);
}
