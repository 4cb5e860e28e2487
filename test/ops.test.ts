// Forward correctness of the op set against straightforward float64 loops written here (not the
// engine's code): broadcasting and its errors, reductions (with NaN), argmax/topk order, einsum and
// matmul, softmax and causal masking, norms, GELU, views vs copies, int32, the seeded RNG, and
// float32 vs float64 agreement of every op on the reference backend.
import { test, describe, before, beforeEach } from "node:test";
import assert from "node:assert/strict";
import * as cs from "../src/index.js";
import { assertClose, elems, layouts, randn64, rand64, seeded, unravel } from "./helpers.js";

type Tensor = cs.Tensor;
let R = seeded(7);
beforeEach((t) => { R = seeded([...t.name].reduce((h, c) => (Math.imul(h, 31) + c.charCodeAt(0)) >>> 0, 7)); });
const i32 = (v: number[], shape?: number[]) => cs.tensor(v, shape ?? [v.length], "int32");
const f64 = (v: number[], shape?: number[]) => cs.tensor(v, shape ?? [v.length], "float64");

before(() => { cs.setBackend("ts"); });

// ---- reference helpers: plain loops over multi-indices ------------------------------------------
const numelOf = (s: readonly number[]) => s.reduce((p, d) => p * d, 1);
const ravel = (idx: readonly number[], shape: readonly number[]) => idx.reduce((o, i, d) => o * shape[d]! + i, 0);
function forEachIndex(shape: readonly number[], f: (idx: number[]) => void): void {
  const n = numelOf(shape);
  for (let i = 0; i < n; i++) f(unravel(i, shape));
}
/** Element of (flat, shape) at an index of a broadcast shape (right-aligned, size-1 axes repeat). */
function bcastAt(flat: number[], shape: readonly number[], idx: readonly number[]): number {
  const lead = idx.length - shape.length;
  return flat[ravel(shape.map((d, k) => (d === 1 ? 0 : idx[lead + k]!)), shape)]!;
}
function refBroadcast(a: Tensor, b: Tensor, outShape: number[], f: (x: number, y: number) => number): number[] {
  const A = elems(a), B = elems(b), out: number[] = [];
  forEachIndex(outShape, (idx) => out.push(f(bcastAt(A, a.shape, idx), bcastAt(B, b.shape, idx))));
  return out;
}
/** Reduce flat data of `shape` over `axes` with f(acc list) -> value. */
function refReduce(flat: number[], shape: readonly number[], axes: number[], f: (xs: number[]) => number, keepDims = false): { shape: number[]; data: number[] } {
  const outShape = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const groups: number[][] = Array.from({ length: numelOf(outShape) }, () => []);
  forEachIndex(shape, (idx) => groups[ravel(idx.map((v, i) => (axes.includes(i) ? 0 : v)), outShape)]!.push(flat[ravel(idx, shape)]!));
  return { shape: keepDims ? outShape : shape.filter((_, i) => !axes.includes(i)), data: groups.map(f) };
}
const fsum = (xs: number[]) => xs.reduce((s, v) => s + v, 0);
const fmax = (xs: number[]) => (xs.some(Number.isNaN) ? NaN : Math.max(...xs));
const fmin = (xs: number[]) => (xs.some(Number.isNaN) ? NaN : Math.min(...xs));
function refMatmul(A: number[], B: number[], M: number, K: number, N: number): number[] {
  const out = new Array<number>(M * N).fill(0);
  for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) { let s = 0; for (let k = 0; k < K; k++) s += A[i * K + k]! * B[k * N + j]!; out[i * N + j] = s; }
  return out;
}
function erfRef(x: number): number {
  // Independent of the engine's erf: the Maclaurin series summed in double (fine to ~1e-13 for |x| < 2.5).
  let s = 0, t = x;
  for (let n = 0; n < 200; n++) { s += t / (2 * n + 1); t *= (-x * x) / (n + 1); if (Math.abs(t) < 1e-18) break; }
  return (2 / Math.sqrt(Math.PI)) * s;
}

describe("broadcasting", () => {
  test("binary ops follow NumPy broadcasting, including non-contiguous and scalar operands", () => {
    const ops: [string, (a: cs.TensorLike, b: cs.TensorLike) => Tensor, (x: number, y: number) => number][] = [
      ["add", cs.add, (x, y) => x + y], ["sub", cs.sub, (x, y) => x - y], ["mul", cs.mul, (x, y) => x * y],
      ["div", cs.div, (x, y) => x / y], ["maximum", cs.maximum, Math.max], ["minimum", cs.minimum, Math.min],
      ["pow", cs.pow, Math.pow],
    ];
    const pairs: [number[], number[], number[]][] = [[[3, 1, 5], [4, 1], [3, 4, 5]], [[1], [2, 3], [2, 3]], [[2, 1], [1, 3], [2, 3]], [[4], [4], [4]], [[], [2, 2], [2, 2]], [[2, 0, 3], [1, 3], [2, 0, 3]]];
    for (const [name, op, f] of ops) {
      for (const [sa, sb, so] of pairs) {
        const a = rand64(R, sa, 0.5, 2), b = randn64(R, sb);
        const out = op(a, b);
        assert.deepEqual(out.shape, so, `${name} ${sa} ${sb}`);
        assertClose(out, refBroadcast(a, b, so, f), { rtol: 1e-15, msg: `${name} [${sa}] [${sb}]` });
      }
      const a = layouts.permuted(R, [3, 4], (r, s) => rand64(r, s, 0.5, 2)), b = layouts.strided(R, [4]);
      assertClose(op(a, b), refBroadcast(a, b, [3, 4], f), { rtol: 1e-15, msg: `${name} strided` });
      assertClose(op(a, 1.5), elems(a).map((x) => f(x, 1.5)), { rtol: 1e-15, msg: `${name} scalar` });
      assertClose(op(2.5, a), elems(a).map((x) => f(2.5, x)), { rtol: 1e-15, msg: `${name} scalar lhs` });
    }
  });
  test("shape errors are ShapeErrors naming both shapes", () => {
    const a = cs.zeros([2, 3]), b = cs.zeros([4]);
    for (const op of [cs.add, cs.sub, cs.mul, cs.div, cs.maximum]) {
      assert.throws(() => op(a, b), (e: Error) => e instanceof cs.ShapeError && e.message.includes("[2, 3]") && e.message.includes("[4]"));
    }
    assert.throws(() => cs.where(cs.zeros([2, 3]), cs.zeros([3]), cs.zeros([2, 1, 2])), cs.ShapeError);
    assert.throws(() => cs.broadcastShapes("op", [3, 2], [2, 3]), /\[3, 2\].*\[2, 3\]/);
    assert.throws(() => cs.matmul(cs.zeros([2, 3]), cs.zeros([4, 5])), (e: Error) => e instanceof cs.ShapeError && /\[2, 3\].*\[4, 5\]/.test(e.message));
    assert.throws(() => cs.matmul(cs.zeros([2, 2, 3]), cs.zeros([3, 3, 1])), (e: Error) => e instanceof cs.ShapeError && /\[2\].*\[3\]/.test(e.message));
    assert.throws(() => cs.expand(cs.zeros([2, 3]), [2, 4]), (e: Error) => e instanceof cs.ShapeError && /\[2, 3\].*\[2, 4\]/.test(e.message));
    assert.throws(() => cs.reshape(cs.zeros([2, 3]), [4, 2]), (e: Error) => e instanceof cs.ShapeError && /\[2, 3\].*\[4, 2\]/.test(e.message));
    assert.throws(() => cs.concat([cs.zeros([2, 3]), cs.zeros([3, 3])], 1), (e: Error) => e instanceof cs.ShapeError && /\[2, 3\].*\[3, 3\]/.test(e.message));
    assert.throws(() => cs.linear(cs.zeros([2, 3]), cs.zeros([4, 5])), (e: Error) => e instanceof cs.ShapeError && /\[2, 3\].*\[4, 5\]/.test(e.message));
    assert.throws(() => cs.einsum("ij,jk->ik", cs.zeros([2, 3]), cs.zeros([4, 5])), cs.ShapeError);
    assert.throws(() => cs.sum(cs.zeros([2, 3]), 2), cs.ShapeError);
  });
});

describe("reductions", () => {
  test("sum, mean, max, min over single and multiple axes vs loops (contiguous and permuted)", () => {
    const shape = [3, 4, 2];
    for (const x of [randn64(R, shape), layouts.permuted(R, shape), layouts.strided(R, shape)]) {
      const X = elems(x);
      for (const axes of [[0], [1], [2], [0, 2], [1, 2], [0, 1, 2]]) {
        for (const keep of [false, true]) {
          for (const [name, op, f] of [["sum", cs.sum, fsum], ["mean", cs.mean, (xs: number[]) => fsum(xs) / xs.length], ["max", cs.max, fmax], ["min", cs.min, fmin]] as const) {
            const ref = refReduce(X, shape, axes, f, keep);
            const out = op(x, axes, keep);
            assert.deepEqual(out.shape, ref.shape);
            assertClose(out, ref.data, { rtol: 1e-14, msg: `${name} axes ${axes} keep ${keep}` });
          }
        }
      }
      assertClose(cs.sum(x), [fsum(X)], { rtol: 1e-14 });
      assert.deepEqual(cs.sum(x).shape, []);
      assertClose(cs.sum(x, -1), refReduce(X, shape, [2], fsum).data, { rtol: 1e-14 });
    }
  });
  test("NaN propagates through sum/mean/max/min of its own row only; -inf and empty axes", () => {
    const x = f64([1, NaN, 3, 4, 5, 6], [2, 3]);
    for (const op of [cs.sum, cs.mean, cs.max, cs.min]) assert.deepEqual(op(x, 1).toList().map(Number.isNaN), [true, false]);
    assert.ok(Number.isNaN(cs.max(x).item()));
    assert.deepEqual(cs.max(x, 0).toList().map(Number.isNaN), [false, true, false]);
    assert.equal(cs.max(f64([-Infinity, -Infinity])).item(), -Infinity);
    assert.equal(cs.sum(cs.zeros([2, 0], "float64"), 1).toList().join(), "0,0");
    assert.throws(() => cs.max(cs.zeros([2, 0]), 1), cs.ShapeError);
  });
  test("argmax: first index on ties, any axis, NaN counts as the maximum", () => {
    assert.deepEqual(cs.argmax(f64([1, 3, 3, 2, 5, 5, 5, 0], [2, 4]), 1).toList(), [1, 0]);
    assert.deepEqual(cs.argmax(f64([2, 2, 2, 2], [4]), 0).toList(), [0]);
    const x = randn64(R, [3, 4, 5]);
    const ref = refReduce(elems(x), [3, 4, 5], [1], (xs) => xs.indexOf(Math.max(...xs)));
    const am = cs.argmax(x, 1);
    assert.equal(am.dtype, "int32");
    assert.deepEqual(am.toList(), ref.data);
    assert.deepEqual(cs.argmax(x, 1, true).shape, [3, 1, 5]);
    const p = x.permute(2, 0, 1);
    assert.deepEqual(cs.argmax(p, -1).toList(), refReduce(elems(p), p.shape, [2], (xs) => xs.indexOf(Math.max(...xs))).data);
    assert.deepEqual(cs.argmax(f64([1, NaN, 7, NaN]), 0).toList(), [1]);
    assert.deepEqual(cs.argmax(cs.tensor([3, 9, 9, 1], [4], "int32"), 0).toList(), [1]);
  });
  test("logsumexp is stable for large inputs and gives -inf for all -inf rows", () => {
    const x = f64([1000, 1000, -1000, 0, 1, 2], [2, 3]);
    assertClose(cs.logsumexp(x, 1), [1000 + Math.log(2), Math.log(Math.exp(0) + Math.exp(1) + Math.exp(2))], { rtol: 1e-15 });
    assert.deepEqual(cs.logsumexp(f64([-Infinity, -Infinity, 0, 0], [2, 2]), -1).toList(), [-Infinity, Math.log(2)]);
    const y = randn64(R, [2, 3, 4]);
    assertClose(cs.logsumexp(y, [0, 2], true), refReduce(elems(y), y.shape, [0, 2], (xs) => Math.log(fsum(xs.map(Math.exp))), true).data, { rtol: 1e-14 });
  });
  test("variance vs the definition (population and sample)", () => {
    const x = randn64(R, [3, 5, 2]);
    const v = (c: number) => (xs: number[]) => { const m = fsum(xs) / xs.length; return fsum(xs.map((t) => (t - m) ** 2)) / (xs.length - c); };
    assertClose(cs.variance(x, 1), refReduce(elems(x), x.shape, [1], v(0)).data, { rtol: 1e-13 });
    assertClose(cs.variance(x, [0, 2], true, 1), refReduce(elems(x), x.shape, [0, 2], v(1), true).data, { rtol: 1e-13 });
    assertClose(cs.variance(x), [v(0)(elems(x))], { rtol: 1e-13 });
  });
});

describe("topk", () => {
  test("sorted largest/smallest with indices; stable on ties; NaN sorts first among the largest", () => {
    const x = f64([3, 1, 4, 1, 5, 9, 2, 6], [2, 4]);
    const { values, indices } = cs.topk(x, 3);
    assert.deepEqual(values.toList(), [4, 3, 1, 9, 6, 5]);
    assert.deepEqual(indices.toList(), [2, 0, 1, 1, 3, 0]);
    const s = cs.topk(x, 2, -1, false);
    assert.deepEqual(s.values.toList(), [1, 1, 2, 5]);
    assert.deepEqual(s.indices.toList(), [1, 3, 2, 0]);
    assert.deepEqual(cs.topk(f64([2, 7, 7, 2, 7]), 4).indices.toList(), [1, 2, 4, 0]);
    assert.deepEqual(cs.topk(f64([1, NaN, 3]), 2).indices.toList(), [1, 2]);
    const y = randn64(R, [5, 3]);
    const t0 = cs.topk(y, 2, 0);
    assert.deepEqual(t0.values.shape, [2, 3]);
    for (let c = 0; c < 3; c++) {
      const col = [0, 1, 2, 3, 4].map((r) => y.get(r, c)).sort((p, q) => q - p);
      assert.deepEqual([t0.values.get(0, c), t0.values.get(1, c)], col.slice(0, 2));
      assert.equal(y.get(t0.indices.get(0, c), c), col[0]);
    }
    assert.deepEqual(cs.topk(x, 0).values.shape, [2, 0]);
    assert.throws(() => cs.topk(x, 5), cs.ShapeError);
  });
});

describe("matmul, linear and einsum vs loops", () => {
  test("matmul vs a triple loop: 2-D, batched with broadcast batch, 1-D operands, transposed views", () => {
    const a = randn64(R, [3, 4]), b = randn64(R, [4, 5]);
    assertClose(cs.matmul(a, b), refMatmul(elems(a), elems(b), 3, 4, 5), { rtol: 1e-13 });
    const at = layouts.permuted(R, [3, 4]), bt = layouts.strided(R, [4, 5]);
    assertClose(cs.matmul(at, bt), refMatmul(elems(at), elems(bt), 3, 4, 5), { rtol: 1e-13 });
    const A = randn64(R, [2, 1, 3, 4]), B = randn64(R, [5, 4, 2]);
    const out = cs.matmul(A, B);
    assert.deepEqual(out.shape, [2, 5, 3, 2]);
    for (let i = 0; i < 2; i++) for (let j = 0; j < 5; j++) {
      assertClose(out.select(0, i).select(0, j), refMatmul(elems(A.select(0, i).select(0, 0)), elems(B.select(0, j)), 3, 4, 2), { rtol: 1e-13 });
    }
    const v = randn64(R, [4]), w = randn64(R, [4]);
    const dot = cs.matmul(v, w);
    assert.deepEqual(dot.shape, []);
    assertClose(dot, [fsum(elems(v).map((x, i) => x * elems(w)[i]!))], { rtol: 1e-14 });
    assert.deepEqual(cs.matmul(v, b).shape, [5]);
    assertClose(cs.matmul(v, b), refMatmul(elems(v), elems(b), 1, 4, 5), { rtol: 1e-13 });
    assert.deepEqual(cs.matmul(a, v).shape, [3]);
    assertClose(cs.matmul(a, v), refMatmul(elems(a), elems(v), 3, 4, 1), { rtol: 1e-13 });
    assert.deepEqual(cs.matmul(v, randn64(R, [2, 4, 3])).shape, [2, 3]);
  });
  test("matmul propagates NaN and Inf like the sum it defines (0 * NaN = NaN)", () => {
    const a = f64([0, 1, 1, 0], [2, 2]), b = f64([NaN, 1, 2, 3], [2, 2]);
    assertClose(cs.matmul(a, b), refMatmul(elems(a), elems(b), 2, 2, 2));
    const c = f64([0, 1], [1, 2]), d = f64([Infinity, 1, 2, 3], [2, 2]);
    assertClose(cs.matmul(c, d), refMatmul(elems(c), elems(d), 1, 2, 2));
    assertClose(cs.linear(c, d), refMatmul(elems(c), elems(d), 1, 2, 2));
  });
  test("linear = x @ W + b on 3-D input", () => {
    const x = randn64(R, [2, 3, 4]), W = randn64(R, [4, 5]), b = randn64(R, [5]);
    const ref = refMatmul(elems(x), elems(W), 6, 4, 5).map((v, i) => v + elems(b)[i % 5]!);
    assertClose(cs.linear(x, W, b), ref, { rtol: 1e-13 });
    assert.deepEqual(cs.linear(x, W, b).shape, [2, 3, 5]);
    const xp = layouts.permuted(R, [3, 4]), Wp = layouts.permuted(R, [4, 5]);
    assertClose(cs.linear(xp, Wp, b), refMatmul(elems(xp), elems(Wp), 3, 4, 5).map((v, i) => v + elems(b)[i % 5]!), { rtol: 1e-13 });
  });
  test("einsum vs explicit loops", () => {
    // Generic reference: sum over all index assignments.
    function refEinsum(spec: string, xs: Tensor[]): { shape: number[]; data: number[] } {
      const [lhs, rhs] = spec.split("->") as [string, string];
      const terms = lhs.split(",");
      const size = new Map<string, number>();
      terms.forEach((t, k) => t.split("").forEach((c, d) => size.set(c, xs[k]!.shape[d]!)));
      const letters = [...size.keys()], outL = rhs.split("").filter(Boolean);
      const outShape = outL.map((c) => size.get(c)!);
      const out = new Array<number>(numelOf(outShape)).fill(0);
      const data = xs.map(elems);
      forEachIndex(letters.map((c) => size.get(c)!), (idx) => {
        const val = (c: string) => idx[letters.indexOf(c)]!;
        let p = 1;
        terms.forEach((t, k) => { p *= data[k]![ravel(t.split("").map(val), xs[k]!.shape)]!; });
        out[ravel(outL.map(val), outShape)]! += p;
      });
      return { shape: outShape, data: out };
    }
    const cases: [string, string, number[][]][] = [
      ["bij,bjk->bik", "bij,bjk->bik", [[2, 3, 4], [2, 4, 2]]],
      ["bhqd,bhkd->bhqk", "bhqd,bhkd->bhqk", [[1, 2, 3, 4], [1, 2, 5, 4]]],
      ["ij,jk,kl->il", "ij,jk,kl->il", [[2, 3], [3, 4], [4, 2]]],
      ["i,j->ij", "i,j->ij", [[3], [2]]],
      ["ijk->kj", "ijk->kj", [[2, 3, 4]]],
      ["ij,jk", "ij,jk->ik", [[2, 3], [3, 4]]],
      ["...d,dv->...v", "bsd,dv->bsv", [[2, 3, 4], [4, 5]]],
      ["...i,...i->...", "si,bsi->bs", [[3, 4], [2, 3, 4]]],
      ["b...,b...->b", "bxy,bxy->b", [[2, 3, 2], [2, 3, 2]]],
      ["i,i,i->", "i,i,i->", [[5], [5], [5]]],
    ];
    for (const [spec, explicit, shapes] of cases) {
        const xs = shapes.map((s, k) => (k % 2 ? layouts.permuted(R, s) : randn64(R, s)));
      const ref = refEinsum(explicit, xs);
      const out = cs.einsum(spec, ...xs);
      assert.deepEqual(out.shape, ref.shape, spec);
      assertClose(out, ref.data, { rtol: 1e-12, atol: 1e-12, msg: spec });
    }
    assert.throws(() => cs.einsum("ii->i", cs.zeros([2, 2])), /diagonal/);
  });
});

describe("softmax family and norms vs definitions", () => {
  const softmaxRef = (xs: number[]) => { const m = Math.max(...xs); const e = xs.map((v) => Math.exp(v - m)); const s = fsum(e); return e.map((v) => v / s); };
  test("softmax: rows sum to 1, matches the definition on every axis", () => {
    const x = randn64(R, [3, 4, 5], 3);
    for (const axis of [0, 1, 2]) {
      const out = cs.softmax(x, axis);
      const sums = cs.sum(out, axis);
      assertClose(sums, new Array(sums.size).fill(1), { rtol: 1e-14 });
      const perm = [0, 1, 2].filter((a) => a !== axis).concat(axis);
      const xp = x.permute(perm), op = out.permute(perm);
      const rows = elems(xp), n = x.shape[axis]!;
      const ref: number[] = [];
      for (let r = 0; r < rows.length; r += n) ref.push(...softmaxRef(rows.slice(r, r + n)));
      assertClose(op, ref, { rtol: 1e-13, msg: `axis ${axis}` });
    }
    assertClose(cs.softmax(f64([1000, 1001, -1000])), softmaxRef([1000, 1001, -1000]), { rtol: 1e-14 });
  });
  test("causalSoftmax masks future keys to exactly 0 (queries shorter than keys), with scale", () => {
    const Q = 3, K = 5, scale = 0.7;
    const x = randn64(R, [2, Q, K]);
    const out = cs.causalSoftmax(x, scale);
    for (let b = 0; b < 2; b++) for (let q = 0; q < Q; q++) {
      const limit = q + (K - Q) + 1;
      const row = [...Array(K).keys()].map((k) => x.get(b, q, k) * scale);
      const ref = [...softmaxRef(row.slice(0, limit)), ...new Array(K - limit).fill(0)];
      assertClose([...Array(K).keys()].map((k) => out.get(b, q, k)), ref, { rtol: 1e-14, msg: `b${b} q${q}` });
      for (let k = limit; k < K; k++) assert.equal(out.get(b, q, k), 0);
    }
    const sq = cs.causalSoftmax(randn64(R, [4, 4]));
    for (let q = 0; q < 4; q++) for (let k = q + 1; k < 4; k++) assert.equal(sq.get(q, k), 0);
    assertClose(sq.sum(-1), [1, 1, 1, 1], { rtol: 1e-14 });
    assertClose(sq.get(0, 0), [1]);
    // Non-contiguous scores give the same result as their contiguous copy.
    const p = layouts.permuted(R, [3, 3]);
    assertClose(cs.causalSoftmax(p), cs.causalSoftmax(p.contiguous()), { rtol: 0, atol: 0 });
  });
  test("logSoftmax = log(softmax) and stable", () => {
    const x = randn64(R, [4, 6], 5);
    assertClose(cs.logSoftmax(x), cs.softmax(x).log(), { rtol: 1e-12, atol: 1e-13 });
    assertClose(cs.logSoftmax(f64([1000, 0])), [0, -1000], { rtol: 1e-15 });
    assertClose(cs.logSoftmax(x, 0), cs.softmax(x, 0).log(), { rtol: 1e-12, atol: 1e-13 });
  });
  test("layerNorm and rmsNorm vs definitions", () => {
    const x = randn64(R, [2, 3, 6], 2, 1), w = randn64(R, [6]), b = randn64(R, [6]), eps = 1e-5;
    const X = elems(x), W = elems(w), B = elems(b);
    const ln: number[] = [], lnPlain: number[] = [], rms: number[] = [], rmsPlain: number[] = [];
    for (let r = 0; r < X.length; r += 6) {
      const row = X.slice(r, r + 6);
      const m = fsum(row) / 6, v = fsum(row.map((t) => (t - m) ** 2)) / 6;
      const ms = fsum(row.map((t) => t * t)) / 6;
      row.forEach((t, c) => {
        lnPlain.push((t - m) / Math.sqrt(v + eps)); ln.push(((t - m) / Math.sqrt(v + eps)) * W[c]! + B[c]!);
        rmsPlain.push(t / Math.sqrt(ms + 1e-6)); rms.push((t / Math.sqrt(ms + 1e-6)) * W[c]!);
      });
    }
    assertClose(cs.layerNorm(x, w, b, eps), ln, { rtol: 1e-12, atol: 1e-13 });
    assertClose(cs.layerNorm(x, null, null, eps), lnPlain, { rtol: 1e-12, atol: 1e-13 });
    assertClose(cs.rmsNorm(x, w), rms, { rtol: 1e-12, atol: 1e-13 });
    assertClose(cs.rmsNorm(x, null), rmsPlain, { rtol: 1e-12, atol: 1e-13 });
    const xp = layouts.permuted(R, [4, 6]);
    assertClose(cs.layerNorm(xp, w, b), cs.layerNorm(xp.contiguous(), w, b), { rtol: 0, atol: 0 });
    assert.throws(() => cs.layerNorm(x, randn64(R, [5]), null), /\[5\].*\[6\]/);
  });
  test("crossEntropy vs -log softmax[target], with ignoreIndex", () => {
    const x = randn64(R, [4, 5], 2), t = [0, 4, -100, 2];
    const nll = t.map((c, r) => (c === -100 ? 0 : -Math.log(softmaxRef(elems(x).slice(r * 5, r * 5 + 5))[c]!)));
    const ti = i32(t);
    assertClose(cs.crossEntropy(x, ti, { ignoreIndex: -100, reduction: "none" }), nll, { rtol: 1e-13 });
    assertClose(cs.crossEntropy(x, ti, { ignoreIndex: -100, reduction: "sum" }), [fsum(nll)], { rtol: 1e-13 });
    assertClose(cs.crossEntropy(x, ti, { ignoreIndex: -100 }), [fsum(nll) / 3], { rtol: 1e-13 });
    assert.throws(() => cs.crossEntropy(x, i32([0, 1, 5, 2])), RangeError);
    assert.throws(() => cs.crossEntropy(x, i32([0, 1, 2])), cs.ShapeError);
  });
});

describe("elementwise math", () => {
  test("gelu_tanh matches GPT-2's formula; gelu_erf matches known values", () => {
    const x = randn64(R, [50], 3);
    const k = Math.sqrt(2 / Math.PI);
    assertClose(cs.unary("gelu_tanh", x), elems(x).map((v) => 0.5 * v * (1 + Math.tanh(k * (v + 0.044715 * v ** 3)))), { rtol: 1e-14, atol: 1e-16 });
    const known: [number, number][] = [[1, 0.8413447460685429], [-1, -0.15865525393145707], [3, 2.99595030590511], [-3, -0.00404969409489031],
      [0.5, 0.34573123063700656], [-2.7, -0.00936082926820982], [5, 4.999998566742141], [0, 0]];
    assertClose(cs.unary("gelu_erf", f64(known.map((p) => p[0]))), known.map((p) => p[1]), { rtol: 1e-13, atol: 1e-16 });
    const y = rand64(R, [40], -3.5, 3.5);
    assertClose(cs.unary("gelu_erf", y), elems(y).map((v) => 0.5 * v * (1 + erfRef(v / Math.SQRT2))), { rtol: 1e-12, atol: 1e-15 });
    assertClose(f64([1]).gelu(), [0.8413447460685429], { rtol: 1e-15 });
  });
  test("every unary op vs Math", () => {
    const x = rand64(R, [3, 7], 0.1, 3).mul(f64([1, -1, 1, -1, 1, -1, 1])), p = rand64(R, [21], 0.1, 3);
    const refs: [cs.Tensor, string, (v: number) => number][] = [
      [x, "neg", (v) => -v], [x, "exp", Math.exp], [p, "log", Math.log], [p, "sqrt", Math.sqrt], [p, "rsqrt", (v) => 1 / Math.sqrt(v)],
      [x, "recip", (v) => 1 / v], [x, "tanh", Math.tanh], [x, "sigmoid", (v) => 1 / (1 + Math.exp(-v))], [x, "relu", (v) => Math.max(v, 0)],
      [x, "silu", (v) => v / (1 + Math.exp(-v))], [x, "abs", Math.abs], [x, "sin", Math.sin], [x, "cos", Math.cos], [x, "square", (v) => v * v], [x, "sign", Math.sign],
    ];
    for (const [t, op, f] of refs) assertClose(cs.unary(op as never, t), elems(t).map(f), { rtol: 1e-14, msg: op });
    assertClose(cs.unary("relu", f64([0, -0, -1e-300])), [0, 0, 0]);
  });
  test("where and comparisons", () => {
    const a = randn64(R, [3, 4]), b = randn64(R, [4]);
    const c = a.gt(b);
    assert.equal(c.dtype, "float64");
    assertClose(c, refBroadcast(a, b, [3, 4], (x, y) => (x > y ? 1 : 0)));
    assertClose(cs.where(c, a, b), refBroadcast(a, b, [3, 4], (x, y) => (x > y ? x : y)));
    for (const [op, f] of [["eq", (x: number, y: number) => x === y], ["ne", (x: number, y: number) => x !== y], ["lt", (x: number, y: number) => x < y],
      ["le", (x: number, y: number) => x <= y], ["ge", (x: number, y: number) => x >= y]] as const) {
      assertClose(cs.compare(op, a, a.select(0, 1)), refBroadcast(a, a.select(0, 1), [3, 4], (x, y) => (f(x, y) ? 1 : 0)), { msg: op });
    }
    assert.deepEqual(cs.compare("eq", f64([NaN, 1]), f64([NaN, 1])).toList(), [0, 1]);
  });
});

describe("views and copies", () => {
  test("slice, permute, transpose, expand, squeeze and reshape of contiguous data share storage", () => {
    const x = cs.arange(0, 24, 1, "float64").reshape(2, 3, 4);
    const views = [x.slice(2, 1, 4, 2), x.permute(2, 0, 1), x.transpose(0, 1), x.reshape(6, 4), x.select(0, 1), x.unsqueeze(0), cs.expand(x.slice(0, 0, 1), [3, 3, 4]), x.slice(0, 1).reshape(3, 4), x.slice(1, 1).slice(0, 1, 2).reshape(2, 4)];
    for (const v of views) assert.equal(v.data, x.data, `${v} shares storage`);
    assert.equal(x.reshape(24).squeeze().data, x.data);
    // Writes through the base are seen by the views.
    const s = x.slice(2, 1, 4, 2), p = x.permute(2, 0, 1);
    x.data[1 * 12 + 2 * 4 + 3] = -5;
    assert.equal(s.get(1, 2, 1), -5);
    assert.equal(p.get(3, 1, 2), -5);
    assert.deepEqual(x.slice(2, 1, 4, 2).shape, [2, 3, 2]);
    assert.deepEqual(elems(x.slice(-1, 0, undefined, 3).select(0, 0)), [0, 3, 4, 7, 8, 11]);
    assert.deepEqual(x.slice(1, 5).shape, [2, 0, 4]);
  });
  test("reshape of non-contiguous data copies the logical order", () => {
    const base = cs.arange(0, 12, 1, "float64").reshape(3, 4);
    const t = base.transpose(0, 1); // [4, 3]
    assert.equal(t.isContiguous, false);
    const r = t.reshape(2, 6);
    assert.deepEqual(r.toList(), [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    assert.notEqual(r.data, base.data);
    const sl = base.slice(1, 1, 4, 2).reshape(-1);
    assert.deepEqual(sl.toList(), [1, 3, 5, 7, 9, 11]);
    const ex = cs.expand(f64([1, 2]), [3, 2]).reshape(6);
    assert.deepEqual(ex.toList(), [1, 2, 1, 2, 1, 2]);
    assert.deepEqual(t.contiguous().toList(), [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    assert.deepEqual(t.toNested(), [[0, 4, 8], [1, 5, 9], [2, 6, 10], [3, 7, 11]]);
  });
  test("concat, stack, split, indexSelect, gather values and shapes", () => {
    const a = cs.arange(0, 6, 1, "float64").reshape(2, 3), b = cs.arange(6, 12, 1, "float64").reshape(2, 3);
    assert.deepEqual(cs.concat([a, b], 0).toList(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    assert.deepEqual(cs.concat([a, b.T.contiguous().T], 1).toNested(), [[0, 1, 2, 6, 7, 8], [3, 4, 5, 9, 10, 11]]);
    assert.deepEqual(cs.stack([a, b], 0).shape, [2, 2, 3]);
    assert.deepEqual(cs.stack([a, b], 1).toNested(), [[[0, 1, 2], [6, 7, 8]], [[3, 4, 5], [9, 10, 11]]]);
    assert.deepEqual(cs.stack([a, b], 2).shape, [2, 3, 2]);
    assert.deepEqual(cs.stack([a, b], -1).shape, [2, 3, 2]);
    assert.deepEqual(cs.stack([a, b], -1).toNested(), [[[0, 6], [1, 7], [2, 8]], [[3, 9], [4, 10], [5, 11]]]);
    assert.deepEqual(cs.stack([a, b], -3).shape, [2, 2, 3]);
    assert.deepEqual(cs.stack([a, b], -2).toNested(), cs.stack([a, b], 1).toNested());
    const [p, q] = cs.split(b, [1, 2], 1) as [Tensor, Tensor];
    assert.deepEqual(p.toNested(), [[6], [9]]);
    assert.deepEqual(q.toNested(), [[7, 8], [10, 11]]);
    assert.throws(() => cs.split(b, [1, 1], 1), cs.ShapeError);
    const x = randn64(R, [4, 3, 2]);
    const idx = [3, 0, 3, -1];
    const sel = cs.indexSelect(x, 0, idx);
    for (let i = 0; i < 4; i++) assert.deepEqual(elems(sel.select(0, i)), elems(x.select(0, (idx[i]! + 4) % 4)));
    const sel1 = cs.indexSelect(x, 1, i32([2, 2, 0, 1, 0, 0], [2, 3]));
    assert.deepEqual(sel1.shape, [4, 2, 3, 2]);
    forEachIndex(sel1.shape, ([i, j, k, l]) => assert.equal(sel1.get(i!, j!, k!, l!), x.get(i!, [2, 2, 0, 1, 0, 0][j! * 3 + k!]!, l!)));
    const gi = i32([0, 2, 1, 1, 2, 0, 0, 0], [4, 1, 2]);
    const g = cs.gather(x, 1, gi);
    forEachIndex(g.shape, ([i, j, k]) => assert.equal(g.get(i!, j!, k!), x.get(i!, gi.get(i!, j!, k!), k!)));
    assert.throws(() => cs.indexSelect(x, 0, [4]), RangeError);
    assert.throws(() => cs.gather(x, 1, i32([3], [1, 1, 1])), RangeError);
  });
});

describe("int32 tensors", () => {
  test("arange, arithmetic and comparisons stay int32; indexSelect with int indices", () => {
    const a = cs.arange(5);
    assert.equal(a.dtype, "int32");
    assert.deepEqual(a.toList(), [0, 1, 2, 3, 4]);
    assert.deepEqual(cs.arange(2, 11, 3).toList(), [2, 5, 8]);
    assert.deepEqual(cs.arange(0, 1, 0.25, "float32").toList(), [0, 0.25, 0.5, 0.75]);
    assert.deepEqual(cs.arange(3, 0).toList(), []);
    const s = a.add(a).mul(3);
    assert.equal(s.dtype, "int32");
    assert.deepEqual(s.toList(), [0, 6, 12, 18, 24]);
    assert.equal(a.add(0.5).dtype, "float32");
    const c = a.gt(2);
    assert.equal(c.dtype, "int32");
    assert.deepEqual(c.toList(), [0, 0, 0, 1, 1]);
    assert.deepEqual(a.eq(cs.tensor([0, 0, 2, 0, 4], [5], "int32")).toList(), [1, 0, 1, 0, 1]);
    assert.deepEqual(a.le(2).toList(), [1, 1, 1, 0, 0]);
    assert.deepEqual(a.neg().toList(), [0, -1, -2, -3, -4]);
    assert.equal(a.neg().dtype, "int32");
    assert.deepEqual(cs.sum(a).toList(), [10]);
    assert.deepEqual(cs.max(a.reshape(5, 1), 0).toList(), [4]);
    const table = cs.arange(0, 12).reshape(4, 3);
    const picked = cs.indexSelect(table, 0, cs.tensor([3, 1, 3], [3], "int32"));
    assert.equal(picked.dtype, "int32");
    assert.deepEqual(picked.toNested(), [[9, 10, 11], [3, 4, 5], [9, 10, 11]]);
    assert.deepEqual(cs.embedding(cs.arange(0, 6, 1, "float64").reshape(3, 2), i32([2, 0], [1, 2])).toNested(), [[[4, 5], [0, 1]]]);
    assert.deepEqual(cs.cast(f64([-1.7, 2.9]), "int32").toList(), [-1, 2]);
  });
  test("an int32 index tensor with negative entries is not modified by indexSelect", () => {
    const idx = cs.tensor([-1, 0, -2], [3], "int32");
    const x = cs.arange(0, 8, 1, "float64").reshape(4, 2);
    const out = cs.indexSelect(x, 0, idx);
    assert.deepEqual(out.toNested(), [[6, 7], [0, 1], [4, 5]]);
    assert.deepEqual(idx.toList(), [-1, 0, -2]);
  });
});

describe("seeded RNG", () => {
  test("same seed, same draws; different seeds differ; manualSeed resets the default generator", () => {
    const a = new cs.Rng(42), b = new cs.Rng(42), c = new cs.Rng(43);
    const da = Array.from({ length: 100 }, () => a.nextU32()), db = Array.from({ length: 100 }, () => b.nextU32());
    assert.deepEqual(da, db);
    assert.notDeepEqual(da, Array.from({ length: 100 }, () => c.nextU32()));
    assert.deepEqual(cs.randn([10], { rng: new cs.Rng(5) }).toList(), cs.randn([10], { rng: new cs.Rng(5) }).toList());
    cs.manualSeed(9); const r1 = cs.rand([8], { dtype: "float64" }).toList();
    cs.manualSeed(9); const r2 = cs.rand([8], { dtype: "float64" }).toList();
    assert.deepEqual(r1, r2);
    assert.deepEqual(cs.randint(0, 10, [20], new cs.Rng(3)).toList(), cs.randint(0, 10, [20], new cs.Rng(3)).toList());
  });
  test("normal draws: mean 0 and variance 1 within tolerance on 1e5 draws; uniform in [0,1) with mean 1/2", () => {
    const n = 100000, rng = new cs.Rng(123);
    const x = cs.randn([n], { rng, dtype: "float64" });
    const m = cs.mean(x).item(), v = cs.variance(x).item();
    assert.ok(Math.abs(m) < 5 / Math.sqrt(n), `mean ${m}`);
    assert.ok(Math.abs(v - 1) < 5 * Math.sqrt(2 / n), `variance ${v}`);
    const y = cs.randn([n], { rng, dtype: "float64", mean: 3, std: 2 });
    assert.ok(Math.abs(cs.mean(y).item() - 3) < 5 * 2 / Math.sqrt(n));
    assert.ok(Math.abs(cs.variance(y).item() - 4) < 5 * 4 * Math.sqrt(2 / n));
    // Tail mass: P(|z| > 2) = 0.0455.
    const tail = elems(x).filter((t) => Math.abs(t) > 2).length / n;
    assert.ok(Math.abs(tail - 0.0455) < 0.004, `tail ${tail}`);
    const u = Array.from({ length: n }, () => rng.uniform());
    assert.ok(u.every((t) => t >= 0 && t < 1));
    assert.ok(Math.abs(fsum(u) / n - 0.5) < 5 * Math.sqrt(1 / 12 / n));
    const ints = Array.from({ length: 10000 }, () => rng.int(-3, 4));
    assert.ok(ints.every((t) => Number.isInteger(t) && t >= -3 && t < 4));
    assert.equal(new Set(ints).size, 7);
  });
  test("categorical and multinomial frequencies follow the weights", () => {
    const rng = new cs.Rng(77), w = [1, 0, 2, 3, 4], n = 100000;
    const counts = new Array<number>(w.length).fill(0);
    for (let i = 0; i < n; i++) counts[rng.categorical(w)]!++;
    assert.equal(counts[1], 0);
    w.forEach((wi, i) => {
      const p = wi / 10;
      assert.ok(Math.abs(counts[i]! / n - p) < 5 * Math.sqrt(p * (1 - p) / n) + 1e-12, `category ${i}: ${counts[i]! / n} vs ${p}`);
    });
    const probs = f64([0, 1, 0, 0.5, 0.5, 0], [2, 3]);
    const draws = Array.from({ length: 2000 }, () => cs.multinomial(probs, rng).toList());
    assert.ok(draws.every(([a, b]) => a === 1 && (b === 0 || b === 1)));
    const frac0 = draws.filter(([, b]) => b === 0).length / draws.length;
    assert.ok(Math.abs(frac0 - 0.5) < 0.06, `${frac0}`);
    assert.throws(() => rng.categorical([0, 0]), RangeError);
    const perm = rng.shuffle([...Array(20).keys()]);
    assert.deepEqual([...perm].sort((a, b) => a - b), [...Array(20).keys()]);
  });
});

describe("float32 vs float64 agreement on the reference backend", () => {
  // Each case builds its output (and a scalar for backward) from float64 inputs; the same inputs cast to
  // float32 must give the same values to float32 precision, and the same gradients.
  const cases: [string, number[][], (...xs: Tensor[]) => Tensor, { positive?: boolean }?][] = [
    ["add", [[3, 1, 4], [4, 1]], (a, b) => a!.add(b!)], ["sub", [[2, 3], [3]], (a, b) => a!.sub(b!)],
    ["mul", [[2, 3], [2, 1]], (a, b) => a!.mul(b!)], ["div", [[2, 3], [3]], (a, b) => a!.div(b!.abs().add(0.5))],
    ["pow", [[2, 3], [2, 3]], (a, b) => a!.pow(b!), { positive: true }], ["maximum", [[3, 4], [4]], (a, b) => a!.maximum(b!)],
    ["minimum", [[3, 4], [4]], (a, b) => a!.minimum(b!)],
    ...(["neg", "exp", "tanh", "sigmoid", "relu", "gelu_tanh", "gelu_erf", "silu", "abs", "sin", "cos", "square"] as const)
      .map((op): [string, number[][], (...xs: Tensor[]) => Tensor] => [op, [[3, 5]], (a) => cs.unary(op, a!)]),
    ...(["log", "sqrt", "rsqrt", "recip"] as const).map((op): [string, number[][], (...xs: Tensor[]) => Tensor, { positive: boolean }] => [op, [[3, 5]], (a) => cs.unary(op, a!), { positive: true }]),
    ["where", [[3, 4], [4]], (a, b) => cs.where(a!.gt(0), a!, b!)],
    ["sum", [[3, 4, 5]], (a) => a!.sum([0, 2])], ["mean", [[3, 4, 5]], (a) => a!.mean(1, true)], ["max", [[3, 4, 5]], (a) => a!.max([1, 2])],
    ["min", [[3, 4, 5]], (a) => a!.min(0)], ["logsumexp", [[3, 4, 5]], (a) => a!.logsumexp(-1)], ["variance", [[3, 4, 5]], (a) => a!.var([0, 1])],
    ["reshape", [[3, 4]], (a) => a!.T.reshape(2, 6)], ["permute", [[2, 3, 4]], (a) => a!.permute(2, 0, 1)], ["expand", [[3, 1]], (a) => a!.expand(2, 3, 4)],
    ["squeeze", [[3, 1]], (a) => a!.squeeze()], ["unsqueeze", [[3]], (a) => a!.unsqueeze(1)], ["slice", [[3, 8]], (a) => a!.slice(1, 1, 7, 2)],
    ["select", [[3, 4]], (a) => a!.select(1, 2)], ["contiguous", [[3, 4]], (a) => a!.T.contiguous()],
    ["indexSelect", [[4, 3]], (a) => a!.indexSelect(1, [2, 0, 2])], ["gather", [[3, 4]], (a) => a!.gather(1, i32([0, 3, 3, 1, 2, 0], [3, 2]))],
    ["concat", [[2, 3], [2, 2]], (a, b) => cs.concat([a!, b!], 1)], ["stack", [[2, 3], [2, 3]], (a, b) => cs.stack([a!, b!], 1)],
    ["split", [[2, 5]], (a) => cs.split(a!, [2, 3], 1)[1]!.mul(2)],
    ["matmul", [[2, 3, 4], [4, 5]], (a, b) => a!.matmul(b!)], ["matmul-T", [[4, 3], [5, 4]], (a, b) => a!.T.matmul(b!.T)],
    ["linear", [[2, 3, 4], [4, 5], [5]], (x, W, b) => cs.linear(x!, W!, b!)], ["einsum", [[2, 3, 4], [2, 5, 4]], (a, b) => cs.einsum("bqd,bkd->bqk", a!, b!)],
    ["softmax", [[3, 5]], (a) => a!.softmax(0)], ["causalSoftmax", [[2, 3, 5]], (a) => cs.causalSoftmax(a!, 0.5)], ["logSoftmax", [[3, 5]], (a) => a!.logSoftmax()],
    ["layerNorm", [[3, 5], [5], [5]], (x, w, b) => cs.layerNorm(x!, w!, b!)], ["rmsNorm", [[3, 5], [5]], (x, w) => cs.rmsNorm(x!, w!)],
    ["embedding", [[5, 3]], (W) => cs.embedding(W!, i32([4, 0, 4]))], ["crossEntropy", [[4, 5]], (x) => cs.crossEntropy(x!, i32([1, 0, 4, -1]), { ignoreIndex: -1 })],
    ["topk", [[3, 6]], (a) => cs.topk(a!, 3).values],
  ];
  for (const [name, shapes, f, opt] of cases) {
    test(name, () => {
      const rng = seeded(name.length * 1000 + shapes.length);
      const x64 = shapes.map((s) => (opt?.positive ? rand64(rng, s, 0.5, 2) : randn64(rng, s)));
      const x32 = x64.map((t) => t.cast("float32"));
      // Both runs start from the same (float32-representable) values.
      const xs64 = x32.map((t) => t.cast("float64").requireGrad());
      x32.forEach((t) => t.requireGrad());
      const y64 = f(...xs64), y32 = f(...x32);
      assert.equal(y32.dtype, "float32");
      assert.equal(y64.dtype, "float64");
      assertClose(y32, y64, { rtol: 2e-5, atol: 2e-6, msg: `${name} forward` });
      const w = randn64(rng, y64.shape);
      cs.backward(y64.mul(w).sum());
      cs.backward(y32.mul(w.cast("float32")).sum());
      x32.forEach((t, k) => {
        assert.equal(t.grad!.dtype, "float32", `${name} grad ${k} dtype`);
        assertClose(t.grad!, xs64[k]!.grad!, { rtol: 1e-4, atol: 1e-5, msg: `${name} grad ${k}` });
      });
    });
  }
});

test("Rng state()/setState() resumes the exact sequence, normals included", () => {
  const a = new cs.Rng(42);
  for (let i = 0; i < 7; i++) a.normal(); // leaves a spare normal pending
  const st = a.state();
  const expected = [a.normal(), a.uniform(), a.nextU32(), a.int(0, 100)];
  const b = new cs.Rng(0).setState(st);
  assert.deepEqual([b.normal(), b.uniform(), b.nextU32(), b.int(0, 100)], expected);
  assert.throws(() => new cs.Rng(0).setState({ s: [0, 0, 0, 0], spare: null }), /not all zero/);
});
