// Reductions over any set of axes: sum, mean, max, min, argmax, logsumexp, variance; and sumTo,
// which undoes broadcasting in backward rules.
import { noGrad, record } from "../autodiff.js";
import { allocateOutput as allocate } from "../dtype.js";
import { normAxis, numel, ShapeError, type Shape } from "../shape.js";
import { Tensor } from "../tensor.js";
import { kernelsFor } from "../../backend/registry.js";
import type { ReduceOp } from "../../backend/kernels.js";
import { dense } from "./core.js";
import { permute, reshape } from "./movement.js";

export function normAxes(op: string, axes: number | number[] | undefined, ndim: number): number[] {
  if (axes === undefined) return Array.from({ length: ndim }, (_, i) => i);
  const list = (typeof axes === "number" ? [axes] : axes).map((a) => normAxis(op, a, ndim));
  if (new Set(list).size !== list.length) throw new ShapeError(`${op}: repeated axis in [${axes}]`);
  return list.sort((a, b) => a - b);
}

export function reducedShape(shape: Shape, axes: number[], keepDims: boolean): number[] {
  return keepDims ? shape.map((d, i) => (axes.includes(i) ? 1 : d)) : shape.filter((_, i) => !axes.includes(i));
}

/** Lay x out as [outer, red, inner] (permuting reduced axes together if needed). */
function asBlock(x: Tensor, axes: number[]): { t: Tensor; outer: number; red: number; inner: number } {
  const contiguousBlock = axes.length === 0 || axes[axes.length - 1]! - axes[0]! === axes.length - 1;
  if (contiguousBlock && axes.length > 0) {
    const t = dense(x);
    const a0 = axes[0]!, a1 = axes[axes.length - 1]!;
    return { t, outer: numel(x.shape.slice(0, a0)), red: numel(x.shape.slice(a0, a1 + 1)), inner: numel(x.shape.slice(a1 + 1)) };
  }
  const keep = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const t = dense(noGrad(() => permute(x, [...keep, ...axes])));
  return { t, outer: numel(keep.map((i) => x.shape[i]!)), red: numel(axes.map((i) => x.shape[i]!)), inner: 1 };
}

function reduceRaw(op: ReduceOp, x: Tensor, axes: number[], keepDims: boolean): Tensor {
  const { t, outer, red, inner } = asBlock(x, axes);
  if (red === 0 && op !== "sum") throw new ShapeError(`${op}: cannot reduce over an empty axis (shape [${x.shape}])`);
  const out = new Tensor(allocate(x.dtype, outer * inner), reducedShape(x.shape, axes, keepDims));
  kernelsFor(x.dtype).reduce(op, t.data, outer, red, inner, out.data);
  return out;
}

export function sum(x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  const ax = normAxes("sum", axes, x.ndim);
  return record("sum", reduceRaw("sum", x, ax, keepDims), [x], { axes: ax, keepDims });
}

export function mean(x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  const ax = normAxes("mean", axes, x.ndim);
  const n = numel(ax.map((a) => x.shape[a]!));
  return sum(x, ax, keepDims).mul(1 / n);
}

export function max(x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  const ax = normAxes("max", axes, x.ndim);
  return record("extremum", reduceRaw("max", x, ax, keepDims), [x], { axes: ax, keepDims });
}

export function min(x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  const ax = normAxes("min", axes, x.ndim);
  return record("extremum", reduceRaw("min", x, ax, keepDims), [x], { axes: ax, keepDims });
}

/** Index of the largest element along one axis (first on ties), as int32. */
export function argmax(x: Tensor, axis: number, keepDims = false): Tensor {
  const a = normAxis("argmax", axis, x.ndim);
  const { t, outer, red, inner } = asBlock(x, [a]);
  const out = new Int32Array(outer * inner);
  kernelsFor(x.dtype).argmax(t.data, outer, red, inner, out);
  return new Tensor(out, reducedShape(x.shape, [a], keepDims));
}

/** log(sum(exp(x))) computed stably: the max is subtracted first (and treated as a constant). */
export function logsumexp(x: Tensor, axes: number | number[], keepDims = false): Tensor {
  const ax = normAxes("logsumexp", axes, x.ndim);
  const m = noGrad(() => max(x, ax, true));
  // Rows that are all -inf give -inf, not NaN.
  const mSafe = noGrad(() => m.where(m.ne(-Infinity), 0).where(m.eq(m), 0));
  const out = x.sub(mSafe).exp().sum(ax, true).log().add(mSafe);
  return keepDims ? out : reshape(out, reducedShape(x.shape, ax, false));
}

/** Variance with `correction` subtracted from the count (0 = population, 1 = sample, like torch). */
export function variance(x: Tensor, axes?: number | number[], keepDims = false, correction = 0): Tensor {
  const ax = normAxes("var", axes, x.ndim);
  const n = numel(ax.map((a) => x.shape[a]!));
  const d = x.sub(mean(x, ax, true));
  return d.mul(d).sum(ax, keepDims).mul(1 / Math.max(n - correction, 0));
}

/** Sum a broadcast gradient back down to `shape` (the inverse of broadcasting). */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const lead = g.ndim - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.ndim; i++) if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  return reshape(sum(g, axes, true), shape);
}
