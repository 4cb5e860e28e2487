// Shared test helpers: tolerance comparison with a useful failure message, a finite-difference
// gradient checker for float64 tensors, and seeded random inputs built on cs.Rng.
import assert from "node:assert/strict";
import * as cs from "../src/index.js";

type Tensor = cs.Tensor;
type Arrayish = Tensor | ArrayLike<number> | number;

/** A seeded generator (cs.Rng), so every test run draws the same inputs. */
export const seeded = (seed: number): cs.Rng => new cs.Rng(seed);

/** Standard-normal float64 tensor (times scale, plus shift). */
export function randn64(rng: cs.Rng, shape: readonly number[], scale = 1, shift = 0): Tensor {
  return cs.randn(shape, { rng, dtype: "float64", std: scale, mean: shift });
}

/** Uniform float64 tensor in [low, high). */
export function rand64(rng: cs.Rng, shape: readonly number[], low = 0, high = 1): Tensor {
  return cs.rand(shape, { rng, dtype: "float64", low, high });
}

/** Uniform float64 values in [lo, hi) with a random sign: magnitudes stay away from 0 (kinks of relu, abs). */
export function awayFromZero(rng: cs.Rng, shape: readonly number[], lo = 0.1, hi = 2): Tensor {
  const t = rand64(rng, shape, lo, hi);
  for (let i = 0; i < t.data.length; i++) if (rng.uniform() < 0.5) t.data[i] = -t.data[i]!;
  return t;
}

/** Multi-index of flat row-major position i in shape. */
export function unravel(i: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length).fill(0);
  for (let d = shape.length - 1; d >= 0; d--) { idx[d] = i % shape[d]!; i = Math.floor(i / shape[d]!); }
  return idx;
}

/** Logical elements in row-major order, read through the tensor's strides (independent of the engine's copy kernels). */
export function elems(x: Arrayish): number[] {
  if (typeof x === "number") return [x];
  if (!(x instanceof cs.Tensor)) return Array.from(x);
  const out: number[] = [];
  for (let i = 0; i < x.size; i++) out.push(x.data[storageOffset(x, unravel(i, x.shape))]!);
  return out;
}

/** Storage position of a multi-index. */
export function storageOffset(x: Tensor, idx: readonly number[]): number {
  let o = x.offset;
  for (let d = 0; d < idx.length; d++) o += idx[d]! * x.strides[d]!;
  return o;
}

export interface CloseOptions { rtol?: number; atol?: number; msg?: string }

/**
 * Assert |actual - expected| <= atol + rtol |expected| elementwise (NaN matches NaN, infinities must
 * match exactly). Tensors must also agree in shape. On failure the message gives the worst element's
 * index and both values, and the max absolute and relative differences.
 */
export function assertClose(actual: Arrayish, expected: Arrayish, opts: CloseOptions = {}): void {
  const rtol = opts.rtol ?? 1e-6, atol = opts.atol ?? 1e-9;
  const pre = opts.msg ? `${opts.msg}: ` : "";
  const shapeOf = (x: Arrayish) => (x instanceof cs.Tensor ? x.shape : null);
  const sa = shapeOf(actual), se = shapeOf(expected);
  if (sa && se) assert.deepEqual(sa, se, `${pre}shape [${sa}] != expected [${se}]`);
  const a = elems(actual), e = elems(expected);
  assert.equal(a.length, e.length, `${pre}${a.length} elements != expected ${e.length}`);
  let worst = -1, worstExcess = 0, maxAbs = 0, maxRel = 0, bad = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!, y = e[i]!;
    if (Number.isNaN(x) && Number.isNaN(y)) continue;
    let excess: number;
    if (!Number.isFinite(x) || !Number.isFinite(y)) excess = x === y ? 0 : Infinity;
    else {
      const d = Math.abs(x - y);
      maxAbs = Math.max(maxAbs, d);
      maxRel = Math.max(maxRel, d / Math.max(Math.abs(y), 1e-300));
      excess = d - (atol + rtol * Math.abs(y));
    }
    if (Number.isNaN(x) !== Number.isNaN(y)) excess = Infinity;
    if (excess > 0) { bad++; if (worst < 0 || excess > worstExcess) { worst = i; worstExcess = excess; } }
  }
  if (bad > 0) {
    const where = sa ? `[${unravel(worst, sa)}]` : `${worst}`;
    assert.fail(`${pre}${bad}/${a.length} elements differ (rtol ${rtol}, atol ${atol}); worst at ${where}: actual ${a[worst]} expected ${e[worst]}; max abs diff ${maxAbs.toExponential(3)}, max rel diff ${maxRel.toExponential(3)}`);
  }
}

/** A fixed pseudo-random weighting of a tensor's elements, summed: turns any output into a scalar with a generic upstream gradient. */
export function project(y: Tensor, seed = 12345): Tensor {
  const w = randn64(seeded(seed + y.size), y.shape);
  return y.mul(w).sum();
}

export interface GradcheckOptions {
  /** Finite-difference step. */
  eps?: number;
  /** Largest accepted relative error (see relErr). */
  rtol?: number;
  /** Floor of relErr's denominator. */
  floor?: number;
  /** Also run cs.backward on a fresh graph and require .grad to equal cs.grad's answer. */
  viaBackward?: boolean;
  msg?: string;
}

export interface GradcheckResult { maxRelErr: number; where: string }

/**
 * Relative error of an analytic derivative a against a numerical one n:
 *   |a - n| / max(|a|, |n|, floor)      (floor = 1e-3 by default)
 * so large derivatives are compared relatively and derivatives near 0 absolutely (to floor * rtol),
 * where the finite difference's own rounding error (~1e-16 |f| / eps) would dominate a pure ratio.
 */
export const relErr = (a: number, n: number, floor = 1e-3): number => Math.abs(a - n) / Math.max(Math.abs(a), Math.abs(n), floor);

/**
 * Check the autodiff gradients of a scalar-valued f at float64 `inputs` against central finite
 * differences (f(x + h e_i) - f(x - h e_i)) / 2h, h = eps max(1, |x_i|), for every element of every input. Inputs
 * may be non-contiguous views (permuted, sliced) that are leaves (detach().requireGrad()); each
 * logical element is perturbed in place through its strides, so inputs must not alias themselves
 * (no expanded leaves: put expand inside f instead). Returns the max relative error and asserts it
 * is below rtol.
 */
export function gradcheck(f: (...xs: Tensor[]) => Tensor, inputs: Tensor[], opts: GradcheckOptions = {}): GradcheckResult {
  const eps = opts.eps ?? 1e-6, rtol = opts.rtol ?? 1e-6, floor = opts.floor ?? 1e-3;
  const pre = opts.msg ? `${opts.msg}: ` : "";
  for (const [k, x] of inputs.entries()) {
    assert.equal(x.dtype, "float64", `${pre}gradcheck input ${k} must be float64`);
    const offs = new Set<number>();
    for (let i = 0; i < x.size; i++) offs.add(storageOffset(x, unravel(i, x.shape)));
    assert.equal(offs.size, x.size, `${pre}gradcheck input ${k} aliases its own storage (expanded?)`);
    x.requireGrad();
    x.grad = null;
  }
  const y = f(...inputs);
  assert.equal(y.size, 1, `${pre}gradcheck needs a scalar f, got shape [${y.shape}]`);
  const analytic = cs.grad(y, inputs);
  for (const [k, g] of analytic.entries()) {
    assert.deepEqual(g.shape, inputs[k]!.shape, `${pre}grad ${k} has shape [${g.shape}], input [${inputs[k]!.shape}]`);
  }
  if (opts.viaBackward ?? true) {
    const y2 = f(...inputs);
    cs.backward(y2);
    for (const [k, x] of inputs.entries()) {
      assert.ok(x.grad, `${pre}backward left input ${k}'s .grad empty`);
      assertClose(x.grad!, analytic[k]!, { rtol: 1e-12, atol: 1e-14, msg: `${pre}backward vs grad, input ${k}` });
      x.grad = null;
    }
  }
  const fval = (): number => cs.noGrad(() => f(...inputs)).item();
  let maxRelErr = 0, where = "";
  for (const [k, x] of inputs.entries()) {
    const ga = elems(analytic[k]!);
    for (let i = 0; i < x.size; i++) {
      const o = storageOffset(x, unravel(i, x.shape));
      const orig = x.data[o]!;
      // The step scales with the element (eps for |x| <= 1), keeping the rounding error of f(x +- h),
      // about ulp(f) / h, from swamping small derivatives when inputs (hence f) are large.
      const h = eps * Math.max(1, Math.abs(orig));
      x.data[o] = orig + h; const fp = fval();
      x.data[o] = orig - h; const fm = fval();
      const step = (orig + h) - (orig - h); // the step actually taken, after rounding x +- h
      x.data[o] = orig;
      const num = (fp - fm) / step;
      const err = relErr(ga[i]!, num, floor);
      if (!(err <= maxRelErr)) { maxRelErr = err; where = `input ${k} [${unravel(i, x.shape)}]: autodiff ${ga[i]} vs numeric ${num}`; }
    }
  }
  assert.ok(maxRelErr < rtol, `${pre}gradcheck max relative error ${maxRelErr.toExponential(3)} >= ${rtol} at ${where}`);
  recordErr(opts.msg ?? "?", maxRelErr);
  if (process.env.GRADCHECK_VERBOSE) console.log(`${opts.msg}: ${maxRelErr.toExponential(2)} at ${where}`);
  return { maxRelErr, where };
}

/** Max relative error per labelled check, for the report printed at the end of grad.test. */
export const gradErrors = new Map<string, number>();
function recordErr(label: string, err: number): void {
  const group = label.split(/[ :(]/)[0]!;
  gradErrors.set(group, Math.max(gradErrors.get(group) ?? 0, err));
}

/** Non-contiguous views of fresh float64 data with the given logical shape, as leaves. */
export const layouts = {
  /** Stored transposed (last two axes swapped), read back through permute. */
  permuted(rng: cs.Rng, shape: readonly number[], make = (r: cs.Rng, s: readonly number[]) => randn64(r, s)): Tensor {
    if (shape.length < 2) return make(rng, shape);
    const s = shape.slice(); const n = s.length;
    [s[n - 1], s[n - 2]] = [s[n - 2]!, s[n - 1]!];
    return make(rng, s).transpose(-1, -2).detach();
  },
  /** Every other element of the last axis of a bigger buffer, with a nonzero offset. */
  strided(rng: cs.Rng, shape: readonly number[], make = (r: cs.Rng, s: readonly number[]) => randn64(r, s)): Tensor {
    const s = shape.slice(); const n = s.length;
    s[n - 1] = 2 * s[n - 1]! + 1;
    return make(rng, s).slice(-1, 1, undefined, 2).detach();
  },
};

/** mulberry32: a tiny seeded PRNG, uniform in [0, 1), so a failing case reproduces from its seed. */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
