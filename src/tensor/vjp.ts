// The backward rule of every primitive, in one typed table: a primitive without a rule fails to
// compile. Each rule maps the output's gradient g to one gradient per input (null where an input
// needs none). Rules run under noGrad, so they are built from ordinary ops.
import type { UnaryOp } from "../backend/kernels.js";
import { kernelsFor } from "../backend/registry.js";
import type { AttentionDims, FloatArray } from "../backend/kernels.js";
import { allocate } from "./dtype.js";
import { contiguousStrides, numel } from "./shape.js";
import { Tensor } from "./tensor.js";
import { assignStrided, dense, empty, emptyOutput, stridedOf } from "./ops/core.js";
import type { ArithOp } from "./ops/elementwise.js";
import { reducedShape, sumTo } from "./ops/reduce.js";

export interface Saved {
  binary: { op: ArithOp };
  unary: { op: UnaryOp };
  cast: null;
  where: { cond: Tensor };
  sum: { axes: number[]; keepDims: boolean };
  extremum: { axes: number[]; keepDims: boolean };
  reshape: null;
  permute: { axes: number[] };
  expand: null;
  slice: { axis: number; start: number; step: number };
  contiguous: null;
  alias: null;
  indexSelect: { axis: number; index: Int32Array };
  gather: { axis: number; index: Tensor };
  concat: { axis: number; sizes: number[] };
  matmul: null;
  linear: null;
  softmax: { scale: number };
  attention: { dims: AttentionDims; lse: FloatArray; mask: FloatArray | null };
  logSoftmax: null;
  layerNorm: { mean: FloatArray; rstd: FloatArray; hasW: boolean; hasB: boolean };
  rmsNorm: { rstd: FloatArray };
  jumpRelu: { bandwidth: number };
  step: { bandwidth: number };
}
export type Prim = keyof Saved;

type Rule<P extends Prim> = (g: Tensor, inputs: Tensor[], out: Tensor, saved: Saved[P]) => (Tensor | null)[];

const needs = (t: Tensor | undefined): t is Tensor => !!t && t.requiresGrad;

function unaryVjp(op: UnaryOp, g: Tensor, x: Tensor, out: Tensor): Tensor {
  switch (op) {
    case "gelu_tanh": case "gelu_erf": case "silu": case "tanh": case "sigmoid": case "relu": {
      const gx = emptyOutput(x.shape, x.dtype);
      kernelsFor(x.dtype).unaryGrad(op, dense(x).data as FloatArray, dense(g).data as FloatArray, gx.data as FloatArray, x.size);
      return gx;
    }
    case "neg": return g.neg();
    case "exp": return g.mul(out); // d e^x = e^x dx
    case "log": return g.div(x); // d log x = dx / x
    case "sqrt": return g.mul(0.5).div(out); // d sqrt x = dx / (2 sqrt x)
    case "rsqrt": return g.mul(out.mul(out).mul(out)).mul(-0.5); // d x^-1/2 = -1/2 x^-3/2 dx
    case "recip": return g.mul(out.mul(out)).neg(); // d (1/x) = -x^-2 dx
    case "abs": return g.mul(x.sign());
    case "sin": return g.mul(x.cos());
    case "cos": return g.mul(x.sin()).neg();
    case "square": return g.mul(x).mul(2);
    case "sign": return g.mul(0);
    default: return op satisfies never;
  }
}

function binaryVjp(op: ArithOp, g: Tensor, a: Tensor, b: Tensor, out: Tensor): (Tensor | null)[] {
  const ga = (f: () => Tensor) => (a.requiresGrad ? sumTo(f(), a.shape) : null);
  const gb = (f: () => Tensor) => (b.requiresGrad ? sumTo(f(), b.shape) : null);
  switch (op) {
    case "add": return [ga(() => g), gb(() => g)];
    case "sub": return [ga(() => g), gb(() => g.neg())];
    case "mul": return [ga(() => g.mul(b)), gb(() => g.mul(a))];
    case "div": return [ga(() => g.div(b)), gb(() => g.mul(out).div(b).neg())]; // d(a/b)/db = -a/b^2
    case "pow": return [ga(() => g.mul(b).mul(a.pow(b.sub(1)))), gb(() => g.mul(out).mul(a.log()))];
    // Ties split the gradient evenly, as torch.maximum does.
    case "max": return [ga(() => g.mul(a.gt(b).add(a.eq(b).mul(0.5)))), gb(() => g.mul(b.gt(a).add(a.eq(b).mul(0.5))))];
    case "min": return [ga(() => g.mul(a.lt(b).add(a.eq(b).mul(0.5)))), gb(() => g.mul(b.lt(a).add(a.eq(b).mul(0.5))))];
    default: return op satisfies never;
  }
}

export const vjpRules: { [P in Prim]: Rule<P> } = {
  binary: (g, [a, b], out, { op }) => binaryVjp(op, g, a!, b!, out),
  unary: (g, [x], out, { op }) => [unaryVjp(op, g, x!, out)],
  cast: (g, [x]) => [g.cast(x!.dtype)],
  where: (g, [a, b], _out, { cond }) => [
    needs(a) ? sumTo(g.where(cond, 0), a.shape) : null,
    needs(b) ? sumTo(g.mul(0).where(cond, g), b.shape) : null,
  ],
  sum: (g, [x], _out, { axes, keepDims }) => [(keepDims ? g : g.reshape(reducedShape(x!.shape, axes, true))).expand(x!.shape)],
  extremum: (g, [x], out, { axes }) => {
    // Every position equal to the extremum shares its gradient.
    const keep = reducedShape(x!.shape, axes, true);
    const mask = x!.eq(out.reshape(keep));
    return [mask.mul(g.reshape(keep)).div(mask.sum(axes, true))];
  },
  reshape: (g, [x]) => [g.reshape(x!.shape)],
  permute: (g, _i, _o, { axes }) => {
    const inv = new Array<number>(axes.length);
    axes.forEach((a, i) => { inv[a] = i; });
    return [g.permute(inv)];
  },
  expand: (g, [x]) => [sumTo(g, x!.shape)],
  slice: (g, [x], _out, { axis, start, step }) => {
    const gx = empty(x!.shape, g.dtype);
    const strides = contiguousStrides(x!.shape);
    const region = strides.slice();
    region[axis] = strides[axis]! * step;
    assignStrided(gx.data, start * strides[axis]!, region, g);
    return [gx];
  },
  contiguous: (g) => [g],
  alias: (g) => [g],
  indexSelect: (g, [x], _out, { axis, index }) => {
    const X = x!;
    const R = X.shape[axis]!, rest = X.shape.filter((_, i) => i !== axis), C = numel(rest);
    // g is [...before, n, ...after]; bring the picked axis to the front as rows of length C.
    const g3 = g.reshape([...X.shape.slice(0, axis), index.length, ...X.shape.slice(axis + 1)]);
    const order = [axis, ...X.shape.map((_, i) => i).filter((i) => i !== axis)];
    const rows = dense(g3.permute(order));
    const moved = new Tensor(allocate(X.dtype, R * C), [R, ...rest]);
    kernelsFor(X.dtype).scatterAddRows(rows.data as FloatArray, index, C, moved.data as FloatArray);
    const back = Array.from({ length: X.ndim }, (_, i) => (i < axis ? i + 1 : i === axis ? 0 : i));
    return [axis === 0 ? moved : moved.permute(back)];
  },
  gather: (g, [x], _out, { axis, index }) => {
    const X = x!, gx = empty(X.shape, g.dtype), gs = contiguousStrides(X.shape);
    const gd = dense(g), I = index.data, io = index.offset, nd = X.ndim, n = index.size;
    const pos = new Array<number>(nd).fill(0);
    for (let i = 0; i < n; i++) {
      let o = 0;
      for (let d = 0; d < nd; d++) {
        let p = d === axis ? I[io + i]! : pos[d]!;
        if (p < 0) p += X.shape[d]!;
        o += p * gs[d]!;
      }
      gx.data[o]! += gd.data[i]!;
      for (let d = nd - 1; d >= 0; d--) { if (++pos[d]! < index.shape[d]!) break; pos[d] = 0; }
    }
    return [gx];
  },
  concat: (g, inputs, _out, { axis, sizes }) => {
    let s = 0;
    return inputs.map((t, i) => { const n = sizes[i]!; const gi = t.requiresGrad ? g.slice(axis, s, s + n) : null; s += n; return gi; });
  },
  matmul: (g, [a, b]) => [
    needs(a) ? sumTo(g.matmul(b!.transpose(-2, -1)), a.shape) : null,
    needs(b) ? sumTo(a!.transpose(-2, -1).matmul(g), b.shape) : null,
  ],
  linear: (g, [x, W, b]) => {
    const K = W!.shape[0]!, N = W!.shape[1]!;
    const g2 = g.reshape([g.size / N, N]);
    return [
      // One [rows, N] x [N, K] product, not one tiny product per leading index of g.
      needs(x) ? g2.matmul(W!.transpose(0, 1)).reshape(x!.shape) : null,
      needs(W) ? x!.reshape([x!.size / K, K]).transpose(0, 1).matmul(g2) : null,
      needs(b) ? g2.sum(0) : null,
    ];
  },
  softmax: (g, _i, out, { scale }) => {
    const cols = out.shape[out.ndim - 1]!, rows = out.size / Math.max(cols, 1);
    const gx = emptyOutput(out.shape, out.dtype);
    kernelsFor(out.dtype).softmaxBackward(out.data as FloatArray, dense(g).data as FloatArray, rows, cols, scale, gx.data as FloatArray);
    return [gx];
  },
  // Recomputes each row's probabilities from the saved logsumexp (no [query, key] matrix was kept).
  attention: (g, [q, k, v], out, { dims, lse, mask }) => {
    const dt = out.dtype, K = kernelsFor(dt);
    const gq = emptyOutput(q!.shape, dt), gk = emptyOutput(k!.shape, dt), gv = emptyOutput(v!.shape, dt);
    K.attentionBackward(dims, stridedOf(q!) as never, stridedOf(k!) as never, stridedOf(v!) as never, mask as never, out.data as FloatArray, lse,
      dense(g).data as FloatArray, gq.data as FloatArray, gk.data as FloatArray, gv.data as FloatArray);
    return [needs(q) ? gq : null, needs(k) ? gk : null, needs(v) ? gv : null];
  },
  logSoftmax: (g, _i, out) => {
    const cols = out.shape[out.ndim - 1]!, rows = out.size / Math.max(cols, 1);
    const gx = emptyOutput(out.shape, out.dtype);
    kernelsFor(out.dtype).logSoftmaxBackward(out.data as FloatArray, dense(g).data as FloatArray, rows, cols, gx.data as FloatArray);
    return [gx];
  },
  layerNorm: (g, inputs, out, { mean, rstd, hasW, hasB }) => {
    const x = inputs[0]!, w = hasW ? inputs[1]! : null, b = hasB ? inputs[hasW ? 2 : 1]! : null;
    const cols = x.shape[x.ndim - 1]!, rows = x.size / Math.max(cols, 1), dt = out.dtype;
    const gx = emptyOutput(x.shape, dt);
    const gw = w ? empty([cols], dt) : null, gb = b ? empty([cols], dt) : null;
    kernelsFor(dt).layerNormBackward(dense(x).data as FloatArray, w ? (dense(w.cast(dt)).data as FloatArray) : null, mean, rstd,
      dense(g).data as FloatArray, rows, cols, gx.data as FloatArray, (gw?.data ?? null) as FloatArray | null, (gb?.data ?? null) as FloatArray | null);
    const res: (Tensor | null)[] = [gx];
    if (w) res.push(gw!.cast(w.dtype));
    if (b) res.push(gb!.cast(b.dtype));
    return res;
  },
  rmsNorm: (g, inputs, out, { rstd }) => {
    const x = inputs[0]!, w = inputs[1] ?? null;
    const cols = x.shape[x.ndim - 1]!, rows = x.size / Math.max(cols, 1), dt = out.dtype;
    const gx = emptyOutput(x.shape, dt), gw = w ? empty([cols], dt) : null;
    kernelsFor(dt).rmsNormBackward(dense(x).data as FloatArray, w ? (dense(w.cast(dt)).data as FloatArray) : null, rstd,
      dense(g).data as FloatArray, rows, cols, gx.data as FloatArray, (gw?.data ?? null) as FloatArray | null);
    return w ? [gx, gw!.cast(w.dtype)] : [gx];
  },
  // out = z·H(z − θ): ∂z = H(z − θ); ∂θ = −(θ/ε)·K((z − θ)/ε), K the unit rectangle (Rajamanoharan et al. 2024, eq. 11).
  jumpRelu: (g, [z, t], _out, { bandwidth }) => [
    needs(z) ? sumTo(g.mul(z.gt(t!)), z.shape) : null,
    needs(t) ? sumTo(g.mul(rectangle(z!, t, bandwidth)).mul(t.div(-bandwidth)), t.shape) : null,
  ],
  // out = H(z − θ): ∂z = 0 (the paper passes no gradient to z); ∂θ = −(1/ε)·K((z − θ)/ε).
  step: (g, [z, t], _out, { bandwidth }) => [
    needs(z) ? sumTo(g.mul(0), z.shape) : null,
    needs(t) ? sumTo(g.mul(rectangle(z!, t, bandwidth)).mul(-1 / bandwidth), t.shape) : null,
  ],
};

/** K((z − θ)/ε) with K(u) = 1 for −½ < u < ½, else 0. */
const rectangle = (z: Tensor, t: Tensor, bandwidth: number): Tensor => z.sub(t).div(bandwidth).abs().lt(0.5);
