// Tests the wasm backend's float32 kernels against the reference (tsKernels): matmul, packMatrix and
// matmulPacked on seeded random operands of awkward shapes and layouts with 1 and 2 threads; unary
// (exp, tanh, sigmoid, silu, gelu_tanh) and their backward including inf/NaN/overflow inputs;
// causal softmax; freeing of packed matrices.
// Tolerance: max |wasm - ref| <= 1e-5 * max |ref| over the whole output (float32 sums in another
// order, polynomial exp); non-finite reference values must match exactly.
// Not covered here: browser workers (no browser in CI).
import { mulberry32 } from "./helpers.js";
import { test, after } from "node:test";
import { execFileSync } from "node:child_process";
import assert from "node:assert/strict";
import type { MatOperand, UnaryOp } from "../src/backend/kernels.js";
import { tsKernels } from "../src/backend/ts.js";
import { createWasmBackend, createWasmBackendAsync, type WasmBackend } from "../src/backend/wasm.js";

// mulberry32: a tiny seeded RNG, uniform in [-1, 1).
function rng(seed: number): () => number {
  const u = mulberry32(seed);
  return () => u() * 2 - 1;
}

interface Layout {
  trans?: boolean; // store the [rows, cols] matrix transposed (colStride > 1, rowStride 1)
  offset?: number; // elements before the first one
  pad?: number; // extra elements per stored row (a view into a wider matrix)
  skip?: number; // step between used elements of a stored row (>1: a sparse view, gathered by the backend)
  flip?: boolean; // negative row stride: rows stored bottom-up
  broadcast?: boolean; // batchStride 0: one matrix for every batch item
}

/** A [batch, rows, cols] operand with the given layout, filled from rand. */
function operand(batch: number, rows: number, cols: number, lay: Layout, rand: () => number): MatOperand<Float32Array> {
  const nb = lay.broadcast ? 1 : batch;
  const skip = lay.skip ?? 1, pad = lay.pad ?? 0, offset = lay.offset ?? 0;
  const [outer, inner] = lay.trans ? [cols, rows] : [rows, cols];
  const lineLen = inner * skip + pad; // one stored line
  const matLen = outer * lineLen;
  const data = new Float32Array(offset + nb * matLen + 3);
  for (let i = 0; i < data.length; i++) data[i] = rand();
  const innerStride = skip, outerStride = lineLen;
  let rowStride = lay.trans ? innerStride : outerStride;
  const colStride = lay.trans ? outerStride : innerStride;
  let start = offset;
  if (lay.flip) { start += (rows - 1) * rowStride; rowStride = -rowStride; }
  return { data, offset: start, batchStride: lay.broadcast ? 0 : matLen, rowStride, colStride };
}

/** Non-finite reference values (inf, NaN) must match exactly; finite ones within the tolerance. */
function assertClose(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, what);
  let maxRef = 0, maxErr = 0;
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!, g = got[i]!;
    if (!Number.isFinite(w)) { assert.ok(Object.is(w, g) || (Number.isNaN(w) && Number.isNaN(g)), `${what}: [${i}] is ${g}, want ${w}`); continue; }
    maxRef = Math.max(maxRef, Math.abs(w));
    maxErr = Math.max(maxErr, Math.abs(g - w));
  }
  assert.ok(Number.isFinite(maxErr) && maxErr <= 1e-5 * Math.max(maxRef, 1e-30), `${what}: max error ${maxErr} vs max |ref| ${maxRef}`);
}

interface Case { batch: number; M: number; N: number; K: number; a: Layout; b: Layout; bias: boolean }
const cases: Case[] = [
  { batch: 1, M: 1, N: 1, K: 1, a: {}, b: {}, bias: false },
  { batch: 1, M: 1, N: 1, K: 1, a: {}, b: {}, bias: true },
  { batch: 1, M: 1, N: 37, K: 19, a: {}, b: {}, bias: true }, // a single row (decoding one token)
  { batch: 1, M: 29, N: 1, K: 33, a: {}, b: { trans: true }, bias: false }, // a single column
  { batch: 1, M: 5, N: 13, K: 7, a: { offset: 3 }, b: { offset: 11 }, bias: true },
  { batch: 1, M: 4, N: 8, K: 256, a: {}, b: {}, bias: false }, // exactly one tile, one depth block
  { batch: 1, M: 9, N: 17, K: 257, a: {}, b: {}, bias: true }, // one past tile and depth block
  { batch: 1, M: 37, N: 70, K: 300, a: { trans: true }, b: {}, bias: false },
  { batch: 1, M: 37, N: 70, K: 300, a: {}, b: { trans: true, offset: 5 }, bias: true },
  { batch: 1, M: 23, N: 45, K: 31, a: { trans: true, pad: 3 }, b: { trans: true, pad: 2 }, bias: true },
  { batch: 1, M: 21, N: 19, K: 40, a: { skip: 3, pad: 5, offset: 7 }, b: { skip: 2, pad: 9 }, bias: false }, // sparse views
  { batch: 1, M: 18, N: 27, K: 22, a: { flip: true }, b: { flip: true, offset: 4 }, bias: true }, // negative strides
  { batch: 1, M: 6, N: 10, K: 0, a: {}, b: {}, bias: true }, // empty sum: the bias alone
  { batch: 1, M: 6, N: 10, K: 0, a: {}, b: {}, bias: false },
  { batch: 3, M: 7, N: 9, K: 11, a: {}, b: { broadcast: true }, bias: true },
  { batch: 4, M: 33, N: 17, K: 64, a: { broadcast: true }, b: { trans: true }, bias: false },
  { batch: 5, M: 64, N: 64, K: 64, a: { offset: 1 }, b: { trans: true }, bias: false }, // attention-like, shared by batch
  { batch: 2, M: 131, N: 67, K: 517, a: {}, b: { broadcast: true }, bias: true }, // 1 batch per thread
  { batch: 1, M: 67, N: 523, K: 401, a: { offset: 2 }, b: { pad: 1 }, bias: true }, // shared by columns
  { batch: 1, M: 301, N: 45, K: 389, a: { trans: true }, b: {}, bias: false }, // shared by rows
  { batch: 1, M: 130, N: 2101, K: 200, a: {}, b: { trans: true }, bias: true }, // more than one column block
];

const backends: WasmBackend[] = [];
after(() => { for (const b of backends) b.dispose(); });

async function backend(threads: number): Promise<WasmBackend> {
  const be = createWasmBackend({ threads });
  backends.push(be);
  // Workers start asynchronously; until then the caller computes their shares, which would leave
  // the worker path untested.
  for (let i = 0; i < 500 && !be.description.startsWith(`wasm (SIMD128, ${threads} thread`); i++) await new Promise((r) => setTimeout(r, 10));
  assert.match(be.description, new RegExp(`^wasm \\(SIMD128, ${threads} threads?\\)$`));
  return be;
}

function reference(c: Case, a: MatOperand<Float32Array>, b: MatOperand<Float32Array>, bias: Float32Array | null): Float32Array {
  const want = new Float32Array(c.batch * c.M * c.N);
  tsKernels.matmul(c.batch, c.M, c.N, c.K, a, b, want, bias);
  return want;
}

const results = new Map<string, Float32Array>(); // per case, the 1-thread output, to compare bit for bit

for (const threads of [1, 2]) {
  test(`wasm matmul matches the reference (${threads} thread${threads > 1 ? "s" : ""})`, async () => {
    const be = await backend(threads);
    cases.forEach((c, i) => {
      const rand = rng(1000 + i);
      const a = operand(c.batch, c.M, c.K, c.a, rand), b = operand(c.batch, c.K, c.N, c.b, rand);
      const bias = c.bias ? Float32Array.from({ length: c.N }, rand) : null;
      const got = new Float32Array(c.batch * c.M * c.N).fill(NaN); // outputs must be fully overwritten
      be.kernels.matmul!(c.batch, c.M, c.N, c.K, a, b, got, bias);
      const what = `case ${i} ${JSON.stringify(c)}`;
      assertClose(got, reference(c, a, b, bias), what);
      const key = `u${i}`;
      if (threads === 1) results.set(key, got);
      else assert.deepEqual(got, results.get(key), `${what}: 2 threads must give the 1-thread bits`);
    });
  });

  test(`wasm matmulPacked matches the reference (${threads} thread${threads > 1 ? "s" : ""})`, async () => {
    const be = await backend(threads);
    cases.filter((c) => c.batch === 1).forEach((c, i) => {
      const rand = rng(2000 + i);
      const a = operand(1, c.M, c.K, c.a, rand), b = operand(1, c.K, c.N, c.b, rand);
      const bias = c.bias ? Float32Array.from({ length: c.N }, rand) : null;
      const packed = be.kernels.packMatrix!(c.K, c.N, b);
      assert.deepEqual([packed.K, packed.N, packed.backend], [c.K, c.N, "wasm"]);
      const want = new Map([[true, reference(c, a, b, bias)], [false, reference(c, a, b, null)]]);
      b.data.fill(7); // scribble over the source: the packed copy must not depend on it
      for (const withBias of [bias, null]) {
        const got = new Float32Array(c.M * c.N).fill(NaN);
        be.kernels.matmulPacked!(c.M, a, packed, got, withBias);
        const what = `packed case ${i} ${JSON.stringify(c)} bias ${withBias !== null}`;
        assertClose(got, want.get(withBias !== null)!, what);
        const key = `p${i}${withBias ? "b" : ""}`;
        if (threads === 1) results.set(key, got);
        else assert.deepEqual(got, results.get(key), `${what}: 2 threads must give the 1-thread bits`);
      }
    });
  });
}

test("wasm packed and unpacked products agree bit for bit", async () => {
  const be = await backend(2);
  const rand = rng(7);
  const [M, N, K] = [70, 300, 530];
  const a = operand(1, M, K, {}, rand), b = operand(1, K, N, { trans: true }, rand);
  const bias = Float32Array.from({ length: N }, rand);
  const u = new Float32Array(M * N), p = new Float32Array(M * N);
  be.kernels.matmul!(1, M, N, K, a, b, u, bias);
  be.kernels.matmulPacked!(M, a, be.kernels.packMatrix!(K, N, b), p, bias);
  assert.deepEqual(p, u);
});

test("wasm rows do not depend on how many rows share the product (single-row kernel)", async () => {
  // Row r of [M, K] @ B must be bit-identical whether computed alone (M = 1, the decode case) or
  // inside a full 4-row tile or a 1-row remainder tile; K > 256 crosses a depth block.
  const be = await backend(1);
  const rand = rng(23);
  const [K, N] = [300, 70]; // 70 columns: 2 groups of 4 full panels, then a partial panel
  const a = operand(1, 9, K, {}, rand), b = operand(1, K, N, { offset: 1 }, rand);
  const bias = Float32Array.from({ length: N }, rand);
  const packed = be.kernels.packMatrix!(K, N, b);
  const all = new Float32Array(9 * N), allPacked = new Float32Array(9 * N);
  be.kernels.matmul!(1, 9, N, K, a, b, all, bias);
  be.kernels.matmulPacked!(9, a, packed, allPacked, bias);
  assert.deepEqual(allPacked, all);
  assertClose(all, reference({ batch: 1, M: 9, N, K, a: {}, b: {}, bias: true }, a, b, bias), "9 rows");
  for (const r of [0, 5, 8]) { // in a full tile, in a full tile, the single-row remainder
    const row = { ...a, offset: a.offset + r * a.rowStride };
    const one = new Float32Array(N), onePacked = new Float32Array(N);
    be.kernels.matmul!(1, 1, N, K, row, b, one, bias);
    be.kernels.matmulPacked!(1, row, packed, onePacked, bias);
    assert.deepEqual(one, all.subarray(r * N, (r + 1) * N), `row ${r} alone`);
    assert.deepEqual(onePacked, all.subarray(r * N, (r + 1) * N), `row ${r} alone, packed`);
  }
});

test("wasm backend delegates float64 to the reference and rejects foreign packed matrices", async () => {
  const be = await backend(1);
  const rand = rng(11);
  const [M, N, K] = [3, 5, 4];
  const a64 = Float64Array.from({ length: M * K }, rand), b64 = Float64Array.from({ length: K * N }, rand);
  const A = { data: a64, offset: 0, batchStride: 0, rowStride: K, colStride: 1 };
  const B = { data: b64, offset: 0, batchStride: 0, rowStride: N, colStride: 1 };
  const got = new Float64Array(M * N), want = new Float64Array(M * N);
  be.kernels.matmul!(1, M, N, K, A, B, got, null);
  tsKernels.matmul(1, M, N, K, A, B, want, null);
  assert.deepEqual(got, want);

  const other = createWasmBackend({ threads: 1 });
  backends.push(other);
  const b32 = { data: Float32Array.from(b64), offset: 0, batchStride: 0, rowStride: N, colStride: 1 };
  const foreign = other.kernels.packMatrix!(K, N, b32);
  const a32 = { data: Float32Array.from(a64), offset: 0, batchStride: 0, rowStride: K, colStride: 1 };
  assert.throws(() => be.kernels.matmulPacked!(M, a32, foreign, new Float32Array(M * N), null), /another wasm backend instance/);
  assert.throws(() => be.kernels.matmulPacked!(M, a32, { K, N, backend: "native" }, new Float32Array(M * N), null), /native backend/);
});

test("createWasmBackendAsync (for browser main threads) gives the same bits as createWasmBackend", async () => {
  const sync = await backend(1);
  const asyncBe = await createWasmBackendAsync({ threads: 1 });
  backends.push(asyncBe);
  const rand = rng(17);
  const [M, N, K] = [33, 65, 129];
  const a = operand(1, M, K, {}, rand), b = operand(1, K, N, { trans: true }, rand);
  const x = new Float32Array(M * N), y = new Float32Array(M * N);
  sync.kernels.matmul!(1, M, N, K, a, b, x, null);
  asyncBe.kernels.matmul!(1, M, N, K, a, b, y, null);
  assert.deepEqual(y, x);
  assert.equal(asyncBe.description, "wasm (SIMD128, 1 thread)");
});

test("wasm backend keeps working after dispose, on one thread", async () => {
  const be = await backend(2);
  be.dispose();
  assert.equal(be.threads, 1);
  const rand = rng(13);
  const c: Case = { batch: 1, M: 90, N: 200, K: 300, a: {}, b: {}, bias: true };
  const a = operand(1, c.M, c.K, {}, rand), b = operand(1, c.K, c.N, {}, rand);
  const bias = Float32Array.from({ length: c.N }, rand);
  const got = new Float32Array(c.M * c.N);
  be.kernels.matmul!(1, c.M, c.N, c.K, a, b, got, bias);
  assertClose(got, reference(c, a, b, bias), "after dispose");
});

test("wasm unary ops match the reference, including extremes", async () => {
  const be = await backend(1);
  const extremes = [0, -0, 1e-4, -1e-4, 0.624, 0.626, -3, 10, -10, 88.3, 88.7, 88.8, -87.5, -100, -104, -110,
    1e20, -1e20, Infinity, -Infinity, NaN];
  const ops: UnaryOp[] = ["exp", "tanh", "sigmoid", "silu", "gelu_tanh", "log", "relu"]; // the last two are delegated
  for (const n of [1, 63, 64, 67, 1000]) {
    const rand = rng(n);
    const x = new Float32Array(n + 5);
    for (let i = 0; i < x.length; i++) x[i] = i % 3 === 0 ? extremes[i % extremes.length]! : rand() * 12;
    for (const op of ops) {
      const want = new Float32Array(n), got = new Float32Array(n).fill(7);
      tsKernels.unary(op, x, 5, want, n);
      be.kernels.unary!(op, x, 5, got, n);
      assertClose(got, want, `${op} n=${n}`);
    }
  }
});

test("wasm unary backward matches the reference, including extremes", async () => {
  const be = await backend(1);
  const extremes = [0, -0, 1e-4, 0.624, 0.626, -3, 10, -10, 50, -50, 1e20, -1e20, Infinity, -Infinity, NaN];
  for (const n of [3, 64, 67, 1000]) {
    const rand = rng(50 + n);
    const x = Float32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? extremes[i % extremes.length]! : rand() * 12));
    const gy = Float32Array.from({ length: n }, rand);
    for (const op of ["gelu_tanh", "tanh", "sigmoid", "silu", "relu", "gelu_erf"] as const) { // the last two are delegated
      const want = new Float32Array(n), got = new Float32Array(n).fill(7);
      tsKernels.unaryGrad(op, x, gy, want, n);
      be.kernels.unaryGrad!(op, x, gy, got, n);
      assertClose(got, want, `${op}' n=${n}`);
    }
  }
});

test("wasm softmax matches the reference, with causal masks", async () => {
  const be = await backend(1);
  const shapes: [rows: number, cols: number, scale: number, causalRows: number, causalOffset: number][] = [
    [7, 13, 0.5, 0, 0], // not a multiple of 4 columns
    [3, 50257, 1, 0, 0], // a vocabulary row
    [12, 67, 0.125, 4, 0], // 3 heads of 4 queries over 67 keys
    [8, 8, 1, 8, -3], // negative offset: the first rows are fully masked (all zeros)
    [10, 105, 0.3, 5, 100], // queries after a 100-token cache
  ];
  shapes.forEach(([rows, cols, scale, causalRows, causalOffset], i) => {
    const rand = rng(300 + i);
    const x = Float32Array.from({ length: rows * cols }, () => rand() * 20);
    x[1] = -Infinity; // a masked score from the caller
    const want = new Float32Array(rows * cols), got = new Float32Array(rows * cols).fill(NaN);
    tsKernels.softmax(x, rows, cols, scale, causalRows, causalOffset, want);
    be.kernels.softmax!(x, rows, cols, scale, causalRows, causalOffset, got);
    assertClose(got, want, `softmax ${[rows, cols, scale, causalRows, causalOffset]}`);
  });
});

test("wasm packed matrices are freed when their handles are collected", () => {
  // A child with --expose-gc packs 200 matrices of 1 MiB, dropping each handle; with the blocks
  // returned to the heap by the FinalizationRegistry, linear memory stays far below 200 MiB.
  const url = new URL("../src/backend/wasm.js", import.meta.url).href;
  const script = `
    const { createWasmBackend } = await import(${JSON.stringify(url)});
    const be = createWasmBackend({ threads: 1 });
    const b = { data: new Float32Array(512 * 512), offset: 0, batchStride: 0, rowStride: 512, colStride: 1 };
    for (let i = 0; i < 200; i++) {
      be.kernels.packMatrix(512, 512, b);
      if (i % 10 === 9) { globalThis.gc(); await new Promise((r) => setTimeout(r, 0)); }
    }
    console.log(be.memoryBytes);`;
  const out = execFileSync(process.execPath, ["--expose-gc", "--input-type=module", "-e", script], { encoding: "utf8" });
  const bytes = Number(out.trim());
  assert.ok(bytes > 0 && bytes < 40 * 2 ** 20, `linear memory grew to ${bytes} bytes`);
});

test("wasm workers start without process.getBuiltinModule (Node < 20.16) and never keep the process alive", () => {
  // The child hides getBuiltinModule, so the backend loads worker_threads by dynamic import; it then
  // exits without dispose(): execFileSync's timeout fails the test if an idle worker held it open.
  const url = new URL("../src/backend/wasm.js", import.meta.url).href;
  const script = `
    process.getBuiltinModule = undefined;
    const { createWasmBackend } = await import(${JSON.stringify(url)});
    const be = createWasmBackend({ threads: 2 });
    for (let i = 0; i < 500 && be.description !== "wasm (SIMD128, 2 threads)"; i++) await new Promise((r) => setTimeout(r, 10));
    const one = createWasmBackend({ threads: 1 });
    const [M, N, K] = [100, 200, 300];
    const a = { data: Float32Array.from({ length: M * K }, (_, i) => Math.sin(i)), offset: 0, batchStride: 0, rowStride: K, colStride: 1 };
    const b = { data: Float32Array.from({ length: K * N }, (_, i) => Math.cos(i)), offset: 0, batchStride: 0, rowStride: N, colStride: 1 };
    const x = new Float32Array(M * N), y = new Float32Array(M * N);
    be.kernels.matmul(1, M, N, K, a, b, x, null);
    one.kernels.matmul(1, M, N, K, a, b, y, null);
    console.log(be.description, x.every((v, i) => Object.is(v, y[i])));`;
  const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 15000 });
  assert.equal(out.trim(), "wasm (SIMD128, 2 threads) true");
});
