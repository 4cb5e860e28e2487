// The native (C N-API) backend against the reference kernels (tsKernels) on seeded random inputs of
// awkward shapes: sizes not multiples of the 6x16 tile or the KC/MC/NC blocks, size 1, strided and
// transposed operands, stride-0 broadcasts, offsets, bias on and off, causal masks. Skips (never
// fails) when the addon is not built. Matmul error is measured relative to the largest |reference|.
import { mulberry32 } from "./helpers.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadNativeBackend, nativeLoadError, nativeThreads, setNativeAvx2, setNativeThreads } from "../src/backend/native.js";
import { tsKernels } from "../src/backend/ts.js";
import { BINARY_OPS, UNARY_GRAD_OPS, UNARY_OPS } from "../src/backend/kernels.js";
import type { BinaryOp, Kernels, MatOperand, Strided } from "../src/backend/kernels.js";

const backend = loadNativeBackend();
const skip: string | false = backend ? false : `native backend unavailable: ${nativeLoadError() ?? "unknown reason"}`;
const nk = (backend?.kernels ?? {}) as Kernels;
const ref = tsKernels;

/** mulberry32: a tiny seeded PRNG, so failures reproduce. */
const rng = mulberry32;
function rand(n: number, r: () => number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * r();
  return a;
}

/** Largest |a - e| / (atol + rtol |e|); NaNs must match. Passes when <= 1. */
function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, atol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let worst = 0, at = -1;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!, e = expected[i]!;
    if (Number.isNaN(e) || Number.isNaN(a)) {
      assert.ok(Number.isNaN(a) && Number.isNaN(e), `${what}[${i}]: got ${a}, want ${e}`);
      continue;
    }
    if (a === e) continue;
    const q = Math.abs(a - e) / (atol + rtol * Math.abs(e));
    if (!(q <= worst)) { worst = q; at = i; }
  }
  assert.ok(worst <= 1, `${what}: worst at [${at}] got ${actual[at]} want ${expected[at]} (ratio ${worst.toFixed(2)})`);
}

/** Max |a - e| relative to max |e|, the matmul criterion. */
function relToMax(actual: Float32Array, expected: Float32Array): number {
  let md = 0, mx = 0;
  for (let i = 0; i < expected.length; i++) {
    md = Math.max(md, Math.abs(actual[i]! - expected[i]!));
    mx = Math.max(mx, Math.abs(expected[i]!));
  }
  return mx === 0 ? md : md / mx;
}

type Layout = "row" | "col" | "gappy"; // row-major, transposed (column-major), row-major with column stride 2
/** A [batch, rows, cols] operand with the given layout, offset and batch stride (0 = broadcast). */
function makeOperand(batch: number, rows: number, cols: number, layout: Layout, offset: number, broadcast: boolean, r: () => number): MatOperand<Float32Array> {
  const rowStride = layout === "row" ? cols : layout === "col" ? 1 : 2 * cols + 3;
  const colStride = layout === "row" ? 1 : layout === "col" ? rows : 2;
  const span = layout === "gappy" ? rows * rowStride : rows * cols;
  const batchStride = broadcast ? 0 : span + 5;
  const nb = broadcast ? 1 : batch;
  const data = rand(offset + nb * (span + 5), r);
  return { data, offset, batchStride, rowStride, colStride };
}

const MATMUL_TOL = 1e-5; // max |native - reference| / max |reference|

test("native: backend describes itself", { skip }, () => {
  assert.equal(backend!.name, "native");
  assert.match(backend!.description, /^native \((AVX2\/FMA|portable C), \d+ threads?\)$/);
});

function checkMatmul(): void {
  const r = rng(1);
  // [batch, M, N, K, A layout, B layout, A offset, B offset, A broadcast, B broadcast, bias]
  const cases: [number, number, number, number, Layout, Layout, number, number, boolean, boolean, boolean][] = [
    [1, 1, 1, 1, "row", "row", 0, 0, false, false, false],
    [1, 1, 1, 1, "row", "row", 3, 2, false, false, true],
    [1, 7, 13, 5, "row", "row", 1, 0, false, false, true],
    [1, 6, 16, 256, "row", "row", 0, 0, false, false, false],
    [1, 13, 33, 300, "col", "row", 0, 7, false, false, true],
    [1, 13, 33, 300, "row", "col", 4, 0, false, false, false],
    [1, 19, 47, 11, "gappy", "gappy", 2, 3, false, false, true],
    [1, 150, 50, 20, "row", "row", 0, 0, false, false, true], // M > MC, split over M
    [1, 64, 3100, 70, "row", "col", 0, 1, false, false, true], // N > NC, split over N
    [1, 16, 700, 530, "col", "col", 5, 5, false, false, true], // K over two KC blocks
    [2, 5, 17, 3, "row", "row", 0, 0, false, true, true],
    [3, 20, 40, 9, "col", "col", 1, 2, false, false, false],
    [4, 40, 40, 40, "row", "col", 0, 0, true, false, true], // batch split, broadcast A
    [12, 33, 33, 64, "row", "col", 3, 0, false, false, false], // attention-like
    [1, 5, 9, 0, "row", "row", 0, 0, false, false, true], // K = 0: bias only
  ];
  for (const [batch, M, N, K, la, lb, oa, ob, ba, bb, hasBias] of cases) {
    const a = makeOperand(batch, M, K, la, oa, ba, r), b = makeOperand(batch, K, N, lb, ob, bb, r);
    const bias = hasBias ? rand(N, r) : null;
    const want = new Float32Array(batch * M * N), got = new Float32Array(batch * M * N).fill(NaN);
    ref.matmul(batch, M, N, K, a, b, want, bias);
    nk.matmul(batch, M, N, K, a, b, got, bias);
    const err = relToMax(got, want);
    assert.ok(err < MATMUL_TOL, `matmul ${JSON.stringify([batch, M, N, K, la, lb, oa, ob, ba, bb, hasBias])}: rel err ${err}`);
  }
}
test("native: matmul matches the reference on awkward shapes and strides", { skip }, checkMatmul);

test("native: matmul is bit-identical run to run and across thread counts", { skip }, () => {
  const r = rng(2);
  const M = 100, N = 900, K = 333;
  const a = makeOperand(1, M, K, "row", 0, false, r), b = makeOperand(1, K, N, "row", 0, false, r);
  const run = () => { const out = new Float32Array(M * N); nk.matmul(1, M, N, K, a, b, out, null); return out; };
  const first = run();
  assert.deepEqual(run(), first);
  const threads = nativeThreads();
  try {
    setNativeThreads(1);
    assert.deepEqual(run(), first); // static partitioning: each element summed in the same order
  } finally {
    setNativeThreads(threads);
  }
});

function checkPacked(): void {
  const r = rng(3);
  // [M, N, K, A layout, B layout, A offset, B offset, bias]
  const cases: [number, number, number, Layout, Layout, number, number, boolean][] = [
    [1, 1, 1, "row", "row", 0, 0, false],
    [5, 17, 3, "row", "row", 2, 1, true],
    [16, 2304, 768, "row", "row", 0, 0, true],
    [16, 771, 300, "col", "col", 1, 4, true],
    [37, 3201, 257, "gappy", "row", 3, 0, false],
    [7, 40, 530, "row", "gappy", 0, 2, true],
  ];
  for (const [M, N, K, la, lb, oa, ob, hasBias] of cases) {
    const a = makeOperand(1, M, K, la, oa, false, r), b = makeOperand(1, K, N, lb, ob, false, r);
    const bias = hasBias ? rand(N, r) : null;
    const want = new Float32Array(M * N), got = new Float32Array(M * N).fill(NaN);
    ref.matmul(1, M, N, K, a, b, want, bias);
    const packed = nk.packMatrix!(K, N, b);
    assert.equal(packed.K, K); assert.equal(packed.N, N); assert.equal(packed.backend, "native");
    nk.matmulPacked!(M, a, packed, got, bias);
    const err = relToMax(got, want);
    assert.ok(err < MATMUL_TOL, `matmulPacked ${JSON.stringify([M, N, K, la, lb, oa, ob, hasBias])}: rel err ${err}`);
  }
  assert.throws(() => nk.matmulPacked!(1, makeOperand(1, 1, 1, "row", 0, false, r), { K: 1, N: 1, backend: "wasm" }, new Float32Array(1), null), TypeError);
}
test("native: packMatrix + matmulPacked match the reference", { skip }, checkPacked);

test("native: packed matrices are freed by the garbage collector", { skip }, async () => {
  const r = rng(4);
  const K = 1024, N = 1024; // 4 MiB each; 300 of them would be 1.2 GiB if leaked
  const b = makeOperand(1, K, N, "row", 0, false, r);
  const before = process.memoryUsage().rss;
  for (let i = 0; i < 300; i++) {
    nk.packMatrix!(K, N, b);
    // N-API finalizers run from the event loop, so a real program frees between turns as well.
    if (i % 10 === 9) await new Promise((resolve) => setImmediate(resolve));
  }
  const grown = process.memoryUsage().rss - before;
  assert.ok(grown < 600 * 2 ** 20, `rss grew by ${(grown / 2 ** 20).toFixed(0)} MiB`);
});

const SPECIALS = [0, -0, 1e-30, -1e-30, 100, -100, Infinity, -Infinity, NaN, 0.625, -0.625, 88.5, -87.5, 9, -9];

function checkUnary(): void {
  const r = rng(5);
  for (const op of UNARY_OPS) {
    const positive = op === "log" || op === "sqrt" || op === "rsqrt";
    for (const n of [1, 7, 8, 9, 100, 70001]) {
      const off = n % 3;
      const x = rand(off + n, r, positive ? 0.01 : -6, 6);
      // The reference's erf(±Infinity) is NaN, so gelu_erf skips the infinities.
      if (n === 100) x.set(op === "gelu_erf" ? SPECIALS.map((v) => (Number.isFinite(v) ? v : 0)) : SPECIALS, off);
      const want = new Float32Array(n), got = new Float32Array(n).fill(NaN);
      ref.unary(op, x, off, want, n);
      nk.unary(op, x, off, got, n);
      assertClose(got, want, 2e-6, 1e-6, `unary ${op} n=${n}`);
    }
  }
}
test("native: unary ops match the reference", { skip }, checkUnary);

function checkUnaryGrad(): void {
  const r = rng(6);
  for (const op of UNARY_GRAD_OPS) {
    for (const n of [1, 13, 100, 70001]) {
      const x = rand(n, r, -6, 6), gy = rand(n, r);
      if (n === 100) x.set(SPECIALS.filter((v) => Number.isFinite(v)), 0);
      const want = new Float32Array(n), got = new Float32Array(n).fill(NaN);
      ref.unaryGrad(op, x, gy, want, n);
      nk.unaryGrad(op, x, gy, got, n);
      assertClose(got, want, 4e-6, 1e-6, `unaryGrad ${op} n=${n}`);
    }
  }
}
test("native: unary gradients match the reference", { skip }, checkUnaryGrad);

/** A strided view over fresh random data: shape with the given strides (may be 0) and offset. */
function strided(shape: number[], strides: number[], offset: number, r: () => number, lo = -2, hi = 2): Strided<Float32Array> {
  let maxIdx = offset;
  for (let d = 0; d < shape.length; d++) maxIdx += (shape[d]! - 1) * strides[d]!;
  return { data: rand(maxIdx + 1, r, lo, hi), offset, strides };
}
const contiguousStrides = (shape: number[]) => shape.map((_, d) => shape.slice(d + 1).reduce((p, q) => p * q, 1));

test("native: binary ops with broadcasts, strides and offsets match the reference", { skip }, () => {
  const r = rng(7);
  // [shape, a strides, b strides, a offset, b offset]
  const layouts: [number[], number[], number[], number, number][] = [
    [[16, 768], [768, 1], [768, 1], 0, 0],
    [[], [], [], 2, 1],
    [[1], [1], [0], 0, 3],
    [[7], [0], [1], 4, 0],
    [[3, 1, 5], [5, 0, 1], [0, 0, 1], 1, 2],
    [[4, 9], [1, 4], [9, 1], 0, 0], // a transposed
    [[2, 3, 4, 5], [60, 1, 3, 12], [0, 5, 0, 1], 7, 0],
    [[5, 6], [12, 2], [1, 0], 3, 1],
    [[300, 301], [301, 1], [0, 1], 0, 0], // big enough to use both threads, row broadcast
    [[301, 300], [1, 301], [300, 1], 2, 0], // big and transposed
  ];
  for (const op of BINARY_OPS) {
    for (const [shape, sa, sb, oa, ob] of layouts) {
      const positive = op === "pow";
      const a = strided(shape, sa, oa, r, positive ? 0.1 : -2, 2), b = strided(shape, sb, ob, r, positive ? -2 : -2, 2);
      // Make ties and NaNs appear for comparisons and max/min.
      if (a.data.length > 4 && b.data.length > 4) { b.data[ob] = a.data[oa]!; if (op === "max" || op === "min") a.data[a.data.length - 1] = NaN; }
      const n = shape.reduce((p, q) => p * q, 1);
      const want = new Float32Array(n), got = new Float32Array(n).fill(-12345);
      ref.binary(op as BinaryOp, shape, a, b, want);
      nk.binary(op as BinaryOp, shape, a, b, got);
      assertClose(got, want, 2e-6, 1e-7, `binary ${op} ${JSON.stringify(shape)}`);
    }
  }
});

test("native: copy materialises strided views", { skip }, () => {
  const r = rng(8);
  const layouts: [number[], number[], number][] = [
    [[13, 17], [1, 13], 0],
    [[13, 17], [17, 1], 5],
    [[4, 1, 6], [0, 0, 1], 2],
    [[3, 4, 5], [1, 15, 3], 1],
    [[2, 2, 2, 2, 2, 2, 2, 2], [128, 64, 32, 16, 8, 4, 2, 1], 0],
    [[400, 300], [1, 400], 3], // big transposed copy, both threads
    [[], [], 4],
  ];
  for (const [shape, st, off] of layouts) {
    const x = strided(shape, st, off, r);
    const n = shape.reduce((p, q) => p * q, 1);
    const want = new Float32Array(n), got = new Float32Array(n).fill(NaN);
    ref.copy(shape, x, want);
    nk.copy(shape, x, got);
    assert.deepEqual(got, want, `copy ${JSON.stringify(shape)}`);
  }
  // More than 8 dimensions falls back to the reference.
  const shape9 = [2, 1, 2, 1, 2, 1, 2, 1, 2];
  const x9 = strided(shape9, contiguousStrides(shape9), 0, r);
  const want9 = new Float32Array(32), got9 = new Float32Array(32);
  ref.copy(shape9, x9, want9); nk.copy(shape9, x9, got9);
  assert.deepEqual(got9, want9);
});

test("native: reduce and argmax match the reference", { skip }, () => {
  const r = rng(9);
  const dims: [number, number, number][] = [[1, 1, 1], [1, 37, 1], [5, 768, 1], [3, 7, 600], [2, 1, 9], [4, 33, 5], [300, 300, 1], [1, 0, 3]];
  for (const [outer, red, inner] of dims) {
    const x = rand(outer * red * inner, r, -3, 3);
    if (x.length > 10) { x[5] = x[4]!; }
    for (const op of ["sum", "max", "min"] as const) {
      const want = new Float32Array(outer * inner), got = new Float32Array(outer * inner).fill(NaN);
      ref.reduce(op, x, outer, red, inner, want);
      nk.reduce(op, x, outer, red, inner, got);
      assertClose(got, want, 1e-6, 1e-6, `reduce ${op} ${outer}x${red}x${inner}`);
    }
    if (red > 0) {
      const want = new Int32Array(outer * inner), got = new Int32Array(outer * inner).fill(-1);
      ref.argmax(x, outer, red, inner, want);
      nk.argmax(x, outer, red, inner, got);
      assert.deepEqual(got, want, `argmax ${outer}x${red}x${inner}`);
    }
  }
  // NaN propagates through max/min and wins argmax; ties pick the first index.
  const x = new Float32Array([1, NaN, 3, 2, 5, 5, -1, 0]);
  for (const op of ["max", "min"] as const) {
    const want = new Float32Array(2), got = new Float32Array(2);
    ref.reduce(op, x, 2, 4, 1, want); nk.reduce(op, x, 2, 4, 1, got);
    assertClose(got, want, 0, 0, `reduce ${op} with NaN`);
  }
  const wantI = new Int32Array(2), gotI = new Int32Array(2);
  ref.argmax(x, 2, 4, 1, wantI); nk.argmax(x, 2, 4, 1, gotI);
  assert.deepEqual(gotI, wantI);
});

function checkSoftmax(): void {
  const r = rng(10);
  // [rows, cols, scale, causalRows, causalOffset]
  const cases: [number, number, number, number, number][] = [
    [1, 1, 1, 0, 0], [3, 7, 1, 0, 0], [5, 50257, 1, 0, 0], [8, 8, 0.125, 8, 0], [24, 13, 0.3, 12, 1],
    [6, 10, 1, 3, -1], [6, 4, 2, 6, 7], [400, 200, 0.125, 200, 0],
  ];
  for (const [rows, cols, scale, cr, co] of cases) {
    const x = rand(rows * cols, r, -8, 8);
    const want = new Float32Array(rows * cols), got = new Float32Array(rows * cols).fill(NaN);
    ref.softmax(x, rows, cols, scale, cr, co, want);
    nk.softmax(x, rows, cols, scale, cr, co, got);
    assertClose(got, want, 1e-5, 1e-7, `softmax ${JSON.stringify([rows, cols, scale, cr, co])}`);
    const gy = rand(rows * cols, r);
    const gw = new Float32Array(rows * cols), gg = new Float32Array(rows * cols).fill(NaN);
    ref.softmaxBackward(want, gy, rows, cols, scale, gw);
    nk.softmaxBackward(want, gy, rows, cols, scale, gg);
    assertClose(gg, gw, 1e-5, 1e-7, `softmaxBackward ${rows}x${cols}`);
  }
}
test("native: softmax (plain, scaled, causal) and its backward match the reference", { skip }, checkSoftmax);

function checkLogSoftmax(): void {
  const r = rng(11);
  for (const [rows, cols] of [[1, 1], [4, 9], [3, 50257], [300, 257]] as const) {
    const x = rand(rows * cols, r, -10, 10);
    const want = new Float32Array(rows * cols), got = new Float32Array(rows * cols).fill(NaN);
    ref.logSoftmax(x, rows, cols, want);
    nk.logSoftmax(x, rows, cols, got);
    assertClose(got, want, 1e-6, 1e-5, `logSoftmax ${rows}x${cols}`);
    const gy = rand(rows * cols, r);
    const gw = new Float32Array(rows * cols), gg = new Float32Array(rows * cols).fill(NaN);
    ref.logSoftmaxBackward(want, gy, rows, cols, gw);
    nk.logSoftmaxBackward(want, gy, rows, cols, gg);
    assertClose(gg, gw, 1e-5, 1e-6, `logSoftmaxBackward ${rows}x${cols}`);
  }
}
test("native: logSoftmax and its backward match the reference", { skip }, checkLogSoftmax);

test("native: layerNorm and rmsNorm (forward and backward) match the reference", { skip }, () => {
  const r = rng(12);
  for (const [rows, cols] of [[1, 1], [3, 7], [5, 768], [200, 769]] as const) {
    for (const affine of [true, false]) {
      const x = rand(rows * cols, r, -3, 5);
      const w = affine ? rand(cols, r) : null, b = affine ? rand(cols, r) : null;
      const eps = 1e-5;
      const o1 = new Float32Array(rows * cols), m1 = new Float32Array(rows), s1 = new Float32Array(rows);
      const o2 = new Float32Array(rows * cols).fill(NaN), m2 = new Float32Array(rows), s2 = new Float32Array(rows);
      ref.layerNorm(x, w, b, rows, cols, eps, o1, m1, s1);
      nk.layerNorm(x, w, b, rows, cols, eps, o2, m2, s2);
      const tag = `${rows}x${cols} affine=${affine}`;
      assertClose(o2, o1, 1e-5, 1e-5, `layerNorm out ${tag}`);
      assertClose(m2, m1, 1e-6, 1e-6, `layerNorm mean ${tag}`);
      assertClose(s2, s1, 1e-6, 1e-6, `layerNorm rstd ${tag}`);
      const gy = rand(rows * cols, r);
      const seed = rand(cols, r); // gw/gb accumulate into existing values
      const gx1 = new Float32Array(rows * cols), gw1 = affine ? seed.slice() : null, gb1 = affine ? seed.slice() : null;
      const gx2 = new Float32Array(rows * cols).fill(NaN), gw2 = affine ? seed.slice() : null, gb2 = affine ? seed.slice() : null;
      ref.layerNormBackward(x, w, m1, s1, gy, rows, cols, gx1, gw1, gb1);
      nk.layerNormBackward(x, w, m1, s1, gy, rows, cols, gx2, gw2, gb2);
      assertClose(gx2, gx1, 1e-5, 1e-5, `layerNormBackward gx ${tag}`);
      if (gw1 && gw2 && gb1 && gb2) { assertClose(gw2, gw1, 1e-5, 1e-5, `layerNormBackward gw ${tag}`); assertClose(gb2, gb1, 1e-5, 1e-5, `layerNormBackward gb ${tag}`); }

      const r1 = new Float32Array(rows * cols), rs1 = new Float32Array(rows);
      const r2 = new Float32Array(rows * cols).fill(NaN), rs2 = new Float32Array(rows);
      ref.rmsNorm(x, w, rows, cols, eps, r1, rs1);
      nk.rmsNorm(x, w, rows, cols, eps, r2, rs2);
      assertClose(r2, r1, 1e-5, 1e-6, `rmsNorm out ${tag}`);
      assertClose(rs2, rs1, 1e-6, 1e-7, `rmsNorm rstd ${tag}`);
      const hx1 = new Float32Array(rows * cols), hw1 = affine ? seed.slice() : null;
      const hx2 = new Float32Array(rows * cols).fill(NaN), hw2 = affine ? seed.slice() : null;
      ref.rmsNormBackward(x, w, rs1, gy, rows, cols, hx1, hw1);
      nk.rmsNormBackward(x, w, rs1, gy, rows, cols, hx2, hw2);
      assertClose(hx2, hx1, 1e-5, 1e-6, `rmsNormBackward gx ${tag}`);
      if (hw1 && hw2) assertClose(hw2, hw1, 1e-5, 1e-5, `rmsNormBackward gw ${tag}`);
    }
  }
});

test("native: adamw matches the reference", { skip }, () => {
  const r = rng(13);
  for (const n of [1, 9, 70001]) {
    const p = rand(n, r), g = rand(n, r), m = rand(n, r, -0.1, 0.1), v = rand(n, r, 0, 0.01);
    const [p1, m1, v1, p2, m2, v2] = [p.slice(), m.slice(), v.slice(), p.slice(), m.slice(), v.slice()];
    for (const step of [1, 2, 7]) {
      ref.adamw(p1, g, m1, v1, n, 3e-3, 0.9, 0.95, 1e-8, 0.1, step);
      nk.adamw(p2, g, m2, v2, n, 3e-3, 0.9, 0.95, 1e-8, 0.1, step);
    }
    assertClose(p2, p1, 1e-6, 1e-6, `adamw p n=${n}`);
    assertClose(m2, m1, 1e-6, 1e-7, `adamw m n=${n}`);
    assertClose(v2, v1, 1e-6, 1e-9, `adamw v n=${n}`);
  }
});

test("native: gatherRows and scatterAddRows match the reference", { skip }, () => {
  const r = rng(14);
  const R = 11, C = 7;
  const x = rand(R * C, r), idx = new Int32Array([3, 0, 10, 3, 3, 7]);
  const want = new Float32Array(idx.length * C), got = new Float32Array(idx.length * C);
  ref.gatherRows(x, R, C, idx, want); nk.gatherRows!(x, R, C, idx, got);
  assert.deepEqual(got, want);
  const gy = rand(idx.length * C, r), base = rand(R * C, r);
  const g1 = base.slice(), g2 = base.slice();
  ref.scatterAddRows(gy, idx, C, g1); nk.scatterAddRows!(gy, idx, C, g2);
  assertClose(g2, g1, 1e-6, 1e-7, "scatterAddRows");
  assert.throws(() => nk.gatherRows!(x, R, C, new Int32Array([R]), new Float32Array(C)), RangeError);
});

test("native: non-float32 data is delegated to the reference, bad sizes throw", { skip }, () => {
  const r = rng(15);
  const x64 = Float64Array.from(rand(12, r)), a = { data: x64, offset: 0, batchStride: 0, rowStride: 4, colStride: 1 };
  const b = { data: Float64Array.from(rand(20, r)), offset: 0, batchStride: 0, rowStride: 5, colStride: 1 };
  const want = new Float64Array(15), got = new Float64Array(15);
  ref.matmul(1, 3, 5, 4, a, b, want, null); nk.matmul(1, 3, 5, 4, a, b, got, null);
  assert.deepEqual(got, want);
  const ia = { data: new Int32Array([1, 2, 3]), offset: 0, strides: [1] }, ib = { data: new Int32Array([4, 5, 6]), offset: 0, strides: [1] };
  const io1 = new Int32Array(3), io2 = new Int32Array(3);
  ref.binary("mul", [3], ia, ib, io1); nk.binary("mul", [3], ia, ib, io2);
  assert.deepEqual(io2, io1);
  const u1 = new Float64Array(12), u2 = new Float64Array(12);
  ref.unary("gelu_tanh", x64, 0, u1, 12); nk.unary("gelu_tanh", x64, 0, u2, 12);
  assert.deepEqual(u2, u1);
  // Out-of-bounds views are refused by the addon rather than read past the array.
  const small = { data: new Float32Array(4), offset: 0, batchStride: 0, rowStride: 2, colStride: 1 };
  assert.throws(() => nk.matmul(1, 3, 2, 2, small, small, new Float32Array(6), null), RangeError);
  assert.throws(() => nk.binary("add", [5], { data: new Float32Array(4), offset: 0, strides: [1] }, { data: new Float32Array(5), offset: 0, strides: [1] }, new Float32Array(5)), RangeError);
});

test("native: a worker thread can load and use the addon alongside the main thread", { skip }, async () => {
  const { Worker } = await import("node:worker_threads");
  const url = new URL("../src/backend/native.js", import.meta.url).href;
  // The worker sums a [64, 64] x [64, 64] product of ones (every entry 64) while the main thread keeps calling.
  const src = `
    const { parentPort } = require("node:worker_threads");
    import(${JSON.stringify(url)}).then(({ loadNativeBackend }) => {
      const k = loadNativeBackend().kernels;
      const one = new Float32Array(64 * 64).fill(1), out = new Float32Array(64 * 64);
      const op = { data: one, offset: 0, batchStride: 0, rowStride: 64, colStride: 1 };
      let ok = true;
      for (let i = 0; i < 200; i++) { k.matmul(1, 64, 64, 64, op, op, out, null); ok = ok && out.every((v) => v === 64); }
      parentPort.postMessage(ok);
    });`;
  const worker = new Worker(src, { eval: true });
  const done = new Promise<boolean>((resolve, reject) => { worker.once("message", resolve); worker.once("error", reject); });
  const r = rng(16);
  const a = makeOperand(1, 40, 50, "row", 0, false, r), b = makeOperand(1, 50, 60, "row", 0, false, r);
  const want = new Float32Array(40 * 60), got = new Float32Array(40 * 60);
  ref.matmul(1, 40, 60, 50, a, b, want, null);
  for (let i = 0; i < 200; i++) {
    nk.matmul(1, 40, 60, 50, a, b, got, null);
    assert.ok(relToMax(got, want) < MATMUL_TOL);
    if (i % 20 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  assert.equal(await done, true);
  await worker.terminate();
});

test("native: the portable C kernels (used without AVX2, e.g. on arm64) match the reference", { skip }, () => {
  const hadAvx2 = setNativeAvx2(true);
  try {
    assert.equal(setNativeAvx2(false), false);
    assert.match(backend!.description, /portable C/);
    checkMatmul(); checkPacked(); checkUnary(); checkUnaryGrad(); checkSoftmax(); checkLogSoftmax();
  } finally {
    assert.equal(setNativeAvx2(hadAvx2), hadAvx2);
  }
});
