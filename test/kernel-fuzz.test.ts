// Property test of every kernel entry point of the ts, wasm and native backends: fast-check draws
// sizes (mostly small valid ones, else 2^31, 2^53, 2^62, negative, NaN, Infinity, fractions), buffer
// lengths around what the sizes need, strides and offsets, op names and junk arguments. Each call must
// either throw a RangeError/TypeError naming the kernel (exactly when an independent validity oracle
// here says the call is bad) or succeed and match the reference kernels. The calls run in this
// process: a crash would kill the test run. The largest valid size (2^31 - 1) is not drawn, because a
// valid call that large does real work (e.g. a stride-0 contraction of 2^31 terms).
import { mulberry32 } from "./helpers.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { BINARY_OPS, REDUCE_OPS, UNARY_GRAD_OPS, UNARY_OPS } from "../src/backend/kernels.js";
import type { Kernels, PackedMatrix } from "../src/backend/kernels.js";
import { MAX_KERNEL_SIZE } from "../src/backend/check.js";
import { tsKernels } from "../src/backend/ts.js";
import { loadNativeBackend, nativeLoadError } from "../src/backend/native.js";
import { createWasmBackend } from "../src/backend/wasm.js";

const RUNS = 1500; // per kernel and backend: 3,000-4,500 cases per kernel over the backends
const SEED = 0x5eed;
const ref = tsKernels;
const native = loadNativeBackend();
const wasm = createWasmBackend({ threads: 1 });
const BACKENDS: { name: string; kernels: Partial<Kernels> }[] = [
  { name: "ts", kernels: tsKernels },
  { name: "wasm", kernels: wasm.kernels },
  ...(native ? [{ name: "native", kernels: native.kernels }] : []),
];

/** mulberry32: arrays are filled from a drawn seed, so a failing case reproduces. */
const rng = mulberry32;

// ---- the arbitraries ----
const BAD_SIZES = [-1, -(2 ** 31), 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 62, 2 ** 64, NaN, Infinity, -Infinity, 0.5, 1.5, -0];
const size = fc.oneof({ weight: 12, arbitrary: fc.integer({ min: 0, max: 4 }) }, { weight: 1, arbitrary: fc.constantFrom(...BAD_SIZES) });
const BAD_STRIDES = [2 ** 53, -(2 ** 60), NaN, Infinity, 0.5];
const strideArb = fc.oneof({ weight: 15, arbitrary: fc.integer({ min: -2, max: 3 }) }, { weight: 1, arbitrary: fc.constantFrom(...BAD_STRIDES) });
const offsetArb = fc.oneof({ weight: 15, arbitrary: fc.integer({ min: 0, max: 6 }) }, { weight: 1, arbitrary: fc.constantFrom(-1, 2 ** 53, NaN, 1.5) });
/** How far a buffer's length is from what the sizes need: mostly exact, sometimes longer or shorter. */
const slack = fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 3, arbitrary: fc.integer({ min: 1, max: 3 }) }, { weight: 2, arbitrary: fc.integer({ min: -3, max: -1 }) });
/** A buffer argument: a Float32Array of the derived length, or (rarely) junk. */
const kind = fc.oneof({ weight: 40, arbitrary: fc.constant("ok" as const) }, { weight: 1, arbitrary: fc.constant("junk" as const) });
/** An optional buffer (bias, w, gw, ...): absent, present or junk. */
const optKind = fc.constantFrom("null" as const, "ok" as const, "ok" as const, "ok" as const);
const seed = fc.integer({ min: 0, max: 2 ** 31 - 1 });
const JUNK: unknown[] = [7, "x", [0, 1], {}, undefined];

const okSize = (v: number): boolean => Number.isInteger(v) && v >= 0 && v <= MAX_KERNEL_SIZE;
const okStride = (v: number): boolean => Number.isSafeInteger(v);
const okOffset = (v: number): boolean => Number.isSafeInteger(v) && v >= 0;
/** Elements the sizes ask for, or NaN when a size is bad. */
const prod = (...s: number[]): number => (s.every(okSize) ? s.reduce((a, b) => a * b, 1) : NaN);

/** Builds the buffers of one case and tracks whether the call is valid. */
class Builder {
  valid = true;
  private readonly r: () => number;
  constructor(s: number) { this.r = rng(s); }
  /** Marks the case invalid unless cond holds. */
  require(cond: boolean): void { if (!cond) this.valid = false; }
  sizes(...s: number[]): void { this.require(s.every(okSize)); }
  fill(n: number, lo = -2, hi = 2): Float32Array {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * this.r();
    return a;
  }
  /** A buffer for `need` elements (NaN: the sizes are bad, any small length), off by `sl`. */
  buf(k: "ok" | "junk", need: number, slack: number | undefined, lo?: number, hi?: number): Float32Array {
    // The slack arrays are drawn at a fixed length: a missing entry is a bug in this test.
    if (slack === undefined) throw new Error("buf: no slack drawn for this operand");
    const sl = slack;
    if (k === "junk") { this.valid = false; return JUNK[Math.floor(this.r() * JUNK.length)] as Float32Array; }
    const len = Number.isFinite(need) && need <= 4096 ? Math.max(0, need + sl) : Math.floor(this.r() * 8);
    this.require(len >= need);
    return this.fill(len, lo, hi);
  }
  opt(k: "null" | "ok", need: number, sl: number | undefined): Float32Array | null {
    return k === "null" ? null : this.buf("ok", need, sl);
  }
  /** A strided operand over `dims` with the given strides and offset, in a buffer just long enough (+ sl). */
  strided(dims: number[], strides: number[], off: number, sl: number): { data: Float32Array; offset: number; strides: number[] } {
    const good = dims.every(okSize) && strides.every(okStride) && okOffset(off);
    this.require(good);
    let lo = off, hi = off;
    const empty = dims.some((d) => d === 0);
    if (good && !empty) dims.forEach((d, i) => { const s = (d - 1) * strides[i]!; if (s > 0) hi += s; else lo += s; });
    this.require(lo >= 0 || empty);
    const need = good ? (empty ? 0 : hi + 1) : NaN;
    return { data: this.buf("ok", need, sl), offset: off, strides };
  }
  /** A matmul operand; `single` for packMatrix/matmulPacked, whose batchStride is unused. */
  mat(batch: number, rows: number, cols: number, st: number[], off: number, sl: number, single = false) {
    if (!single) this.require(okStride(st[0]!));
    const s = this.strided([batch, rows, cols], [batch > 1 ? st[0]! : 0, st[1]!, st[2]!], off, sl);
    return { data: s.data, offset: off, batchStride: st[0]!, rowStride: st[1]!, colStride: st[2]! };
  }
}

/** A kernel's case: the arguments and whether an independent reading of the contract calls them valid. */
interface Built { args: unknown[]; valid: boolean }
interface Spec<C> {
  kernel: keyof Kernels;
  arb: fc.Arbitrary<C>;
  build(c: C, kernels: Partial<Kernels>): Built;
  /** Runs the reference on a fresh build of the same case (defaults to the same kernel of tsKernels). */
  reference?(c: C, args: unknown[]): void;
  rtol?: number;
}
const spec = <C>(s: Spec<C>): Spec<C> => s;

const rowsColsArb = { rows: size, cols: size, seed };
const SPECS: Spec<any>[] = [
  spec({
    kernel: "matmul",
    arb: fc.record({ batch: size, M: size, N: size, K: size, sa: fc.array(strideArb, { minLength: 3, maxLength: 3 }), sb: fc.array(strideArb, { minLength: 3, maxLength: 3 }),
      oa: offsetArb, ob: offsetArb, sla: slack, slb: slack, slo: slack, bias: optKind, slbias: slack, seed }),
    build(c) {
      const b = new Builder(c.seed);
      b.sizes(c.batch, c.M, c.N, c.K);
      const a = b.mat(c.batch, c.M, c.K, c.sa, c.oa, c.sla), bm = b.mat(c.batch, c.K, c.N, c.sb, c.ob, c.slb);
      const out = b.buf("ok", prod(c.batch, c.M, c.N), c.slo);
      const bias = b.opt(c.bias, prod(c.N), c.slbias);
      return { args: [c.batch, c.M, c.N, c.K, a, bm, out, bias], valid: b.valid };
    },
  }),
  spec({
    kernel: "packMatrix",
    arb: fc.record({ K: size, N: size, st: fc.array(strideArb, { minLength: 3, maxLength: 3 }), off: offsetArb, sl: slack, seed }),
    build(c) {
      const b = new Builder(c.seed);
      b.sizes(c.K, c.N);
      return { args: [c.K, c.N, b.mat(1, c.K, c.N, c.st, c.off, c.sl, true)], valid: b.valid };
    },
  }),
  spec({
    kernel: "matmulPacked",
    arb: fc.record({ M: size, K: fc.integer({ min: 0, max: 4 }), N: fc.integer({ min: 0, max: 4 }), st: fc.array(strideArb, { minLength: 3, maxLength: 3 }),
      off: offsetArb, sla: slack, slo: slack, bias: optKind, slbias: slack, forged: fc.constantFrom(false, false, false, false, false, true), seed }),
    build(c, kernels) {
      const b = new Builder(c.seed);
      b.sizes(c.M);
      const bm = { data: b.fill(c.K * c.N), offset: 0, batchStride: 0, rowStride: c.N, colStride: 1 };
      const packed: PackedMatrix = c.forged ? { K: 2 ** 62, N: c.N, backend: "forged" } : kernels.packMatrix!(c.K, c.N, bm);
      b.require(!c.forged);
      const a = b.mat(1, c.M, c.K, c.st, c.off, c.sla, true);
      const out = b.buf("ok", prod(c.M, c.N), c.slo);
      const bias = b.opt(c.bias, c.N, c.slbias);
      return { args: [c.M, a, packed, out, bias, bm], valid: b.valid };
    },
    reference(c, [M, a, , out, bias, bm]) {
      // matmul reads batchStride, which matmulPacked ignores
      ref.matmul(1, M as number, c.N, c.K, { ...(a as object), batchStride: 0 } as never, bm as never, out as Float32Array, bias as Float32Array | null);
    },
  }),
  spec({
    kernel: "unary",
    arb: fc.record({ op: fc.constantFrom<string>(...UNARY_OPS, "nope"), n: size, off: offsetArb, kx: kind, slx: slack, slo: slack, seed }),
    build(c) {
      const b = new Builder(c.seed);
      b.sizes(c.n);
      b.require(c.op !== "nope" && okOffset(c.off));
      const x = b.buf(c.kx, okOffset(c.off) ? prod(c.n) + c.off : NaN, c.slx);
      return { args: [c.op, x, c.off, b.buf("ok", prod(c.n), c.slo), c.n], valid: b.valid };
    },
  }),
  spec({
    kernel: "unaryGrad",
    arb: fc.record({ op: fc.constantFrom<string>(...UNARY_GRAD_OPS, "exp"), n: size, s1: slack, s2: slack, s3: slack, seed }),
    build(c) {
      const b = new Builder(c.seed);
      b.sizes(c.n);
      b.require(c.op !== "exp");
      return { args: [c.op, b.buf("ok", prod(c.n), c.s1), b.buf("ok", prod(c.n), c.s2), b.buf("ok", prod(c.n), c.s3), c.n], valid: b.valid };
    },
  }),
  ...(["binary", "copy", "where"] as const).map((kernel) => spec({
    kernel,
    arb: fc.record({
      op: fc.constantFrom<string>(...BINARY_OPS, "nope"),
      shape: fc.oneof({ weight: 20, arbitrary: fc.array(size, { maxLength: 3 }) }, { weight: 1, arbitrary: fc.constant(new Array<number>(9).fill(1)) }),
      st: fc.array(fc.array(strideArb, { minLength: 9, maxLength: 9 }), { minLength: 3, maxLength: 3 }),
      offs: fc.array(offsetArb, { minLength: 3, maxLength: 3 }), sls: fc.array(slack, { minLength: 4, maxLength: 4 }), seed,
    }),
    build(c: { op: string; shape: number[]; st: number[][]; offs: number[]; sls: number[]; seed: number }) {
      const b = new Builder(c.seed);
      const nd = c.shape.length;
      const operand = (i: number) => b.strided(c.shape, c.st[i]!.slice(0, nd), c.offs[i]!, c.sls[i]!);
      const out = (n: number) => b.buf("ok", n, c.sls[3]!);
      const n = prod(...c.shape);
      if (kernel === "copy") return { args: [c.shape, operand(0), out(n)], valid: b.valid };
      if (kernel === "where") return { args: [c.shape, operand(0), operand(1), operand(2), out(n)], valid: b.valid };
      b.require(c.op !== "nope");
      return { args: [c.op, c.shape, operand(0), operand(1), out(n)], valid: b.valid };
    },
  })),
  spec({
    kernel: "reduce",
    arb: fc.record({ op: fc.constantFrom<string>(...REDUCE_OPS, "mean"), outer: size, red: size, inner: size, kx: kind, slx: slack, slo: slack, seed }),
    build(c) {
      const b = new Builder(c.seed);
      b.sizes(c.outer, c.red, c.inner);
      b.require(c.op !== "mean");
      return { args: [c.op, b.buf(c.kx, prod(c.outer, c.red, c.inner), c.slx), c.outer, c.red, c.inner, b.buf("ok", prod(c.outer, c.inner), c.slo)], valid: b.valid };
    },
  }),
  spec({
    kernel: "argmax",
    arb: fc.record({ outer: size, red: size, inner: size, slx: slack, slo: slack, f32out: fc.constantFrom(false, false, false, false, true), seed }),
    build(c) {
      const b = new Builder(c.seed);
      b.sizes(c.outer, c.red, c.inner);
      const x = b.buf("ok", prod(c.outer, c.red, c.inner), c.slx);
      const n = prod(c.outer, c.inner);
      const o = b.buf("ok", n, c.slo);
      b.require(!c.f32out && (n === 0 || c.red > 0));
      return { args: [x, c.outer, c.red, c.inner, c.f32out ? o : new Int32Array(o.length)], valid: b.valid };
    },
  }),
  spec({
    kernel: "softmax",
    arb: fc.record({ ...rowsColsArb, causalRows: size, causalOffset: fc.oneof(fc.integer({ min: -3, max: 3 }), fc.constantFrom(2 ** 31, -(2 ** 32), NaN, 0.5)), scale: fc.constantFrom(1, 0.5, -2), s1: slack, s2: slack }),
    build(c) {
      const b = new Builder(c.seed);
      b.sizes(c.rows, c.cols, c.causalRows);
      b.require(Number.isInteger(c.causalOffset) && Math.abs(c.causalOffset) <= MAX_KERNEL_SIZE);
      const n = prod(c.rows, c.cols);
      return { args: [b.buf("ok", n, c.s1), c.rows, c.cols, c.scale, c.causalRows, c.causalOffset, b.buf("ok", n, c.s2)], valid: b.valid };
    },
  }),
  spec({
    kernel: "softmaxBackward",
    arb: fc.record({ ...rowsColsArb, s1: slack, s2: slack, s3: slack }),
    build(c) {
      const b = new Builder(c.seed);
      b.sizes(c.rows, c.cols);
      const n = prod(c.rows, c.cols);
      return { args: [b.buf("ok", n, c.s1, 0, 1), b.buf("ok", n, c.s2), c.rows, c.cols, 0.7, b.buf("ok", n, c.s3)], valid: b.valid };
    },
  }),
  spec({
    kernel: "logSoftmax",
    arb: fc.record({ ...rowsColsArb, s1: slack, s2: slack }),
    build(c) {
      const b = new Builder(c.seed);
      b.sizes(c.rows, c.cols);
      const n = prod(c.rows, c.cols);
      return { args: [b.buf("ok", n, c.s1), c.rows, c.cols, b.buf("ok", n, c.s2)], valid: b.valid };
    },
  }),
  spec({
    kernel: "logSoftmaxBackward",
    arb: fc.record({ ...rowsColsArb, s1: slack, s2: slack, s3: slack }),
    build(c) {
      const b = new Builder(c.seed);
      b.sizes(c.rows, c.cols);
      const n = prod(c.rows, c.cols);
      return { args: [b.buf("ok", n, c.s1, -3, 0), b.buf("ok", n, c.s2), c.rows, c.cols, b.buf("ok", n, c.s3)], valid: b.valid };
    },
  }),
  spec({
    kernel: "layerNorm",
    arb: fc.record({ ...rowsColsArb, w: optKind, bb: optKind, sl: fc.array(slack, { minLength: 6, maxLength: 6 }) }),
    build(c) {
      const b = new Builder(c.seed);
      b.sizes(c.rows, c.cols);
      const n = prod(c.rows, c.cols), R = prod(c.rows), C = prod(c.cols), s = c.sl;
      return { args: [b.buf("ok", n, s[0]), b.opt(c.w, C, s[1]), b.opt(c.bb, C, s[2]), c.rows, c.cols, 1e-5, b.buf("ok", n, s[3]), b.buf("ok", R, s[4]), b.buf("ok", R, s[5])], valid: b.valid };
    },
  }),
  spec({
    kernel: "layerNormBackward",
    arb: fc.record({ ...rowsColsArb, w: optKind, gw: optKind, gb: optKind, sl: fc.array(slack, { minLength: 8, maxLength: 8 }) }),
    build(c) {
      const b = new Builder(c.seed);
      b.sizes(c.rows, c.cols);
      const n = prod(c.rows, c.cols), R = prod(c.rows), C = prod(c.cols), s = c.sl;
      return { args: [b.buf("ok", n, s[0]), b.opt(c.w, C, s[1]), b.buf("ok", R, s[2]), b.buf("ok", R, s[3], 0.5, 2), b.buf("ok", n, s[4]), c.rows, c.cols,
        b.buf("ok", n, s[5]), b.opt(c.gw, C, s[6]), b.opt(c.gb, C, s[7])], valid: b.valid };
    },
  }),
  spec({
    kernel: "rmsNorm",
    arb: fc.record({ ...rowsColsArb, w: optKind, sl: fc.array(slack, { minLength: 4, maxLength: 4 }) }),
    build(c) {
      const b = new Builder(c.seed);
      b.sizes(c.rows, c.cols);
      const n = prod(c.rows, c.cols), s = c.sl;
      return { args: [b.buf("ok", n, s[0]), b.opt(c.w, prod(c.cols), s[1]), c.rows, c.cols, 1e-5, b.buf("ok", n, s[2]), b.buf("ok", prod(c.rows), s[3])], valid: b.valid };
    },
  }),
  spec({
    kernel: "rmsNormBackward",
    arb: fc.record({ ...rowsColsArb, w: optKind, gw: optKind, sl: fc.array(slack, { minLength: 6, maxLength: 6 }) }),
    build(c) {
      const b = new Builder(c.seed);
      b.sizes(c.rows, c.cols);
      const n = prod(c.rows, c.cols), C = prod(c.cols), s = c.sl;
      return { args: [b.buf("ok", n, s[0]), b.opt(c.w, C, s[1]), b.buf("ok", prod(c.rows), s[2], 0.5, 2), b.buf("ok", n, s[3]), c.rows, c.cols, b.buf("ok", n, s[4]), b.opt(c.gw, C, s[5])], valid: b.valid };
    },
  }),
  spec({
    kernel: "gatherRows",
    arb: fc.record({ R: size, C: size, idx: fc.array(fc.integer({ min: -1, max: 4 }), { maxLength: 5 }), slx: slack, slo: slack, seed }),
    build(c) {
      const b = new Builder(c.seed);
      b.sizes(c.R, c.C);
      b.require(c.idx.every((i: number) => i >= 0 && i < c.R));
      return { args: [b.buf("ok", prod(c.R, c.C), c.slx), c.R, c.C, Int32Array.from(c.idx), b.buf("ok", prod(c.idx.length, c.C), c.slo)], valid: b.valid };
    },
  }),
  spec({
    kernel: "scatterAddRows",
    arb: fc.record({ rows: fc.integer({ min: 0, max: 4 }), C: size, idx: fc.array(fc.integer({ min: -1, max: 4 }), { maxLength: 5 }), sly: slack, slx: fc.integer({ min: 0, max: 3 }), seed }),
    build(c) {
      const b = new Builder(c.seed);
      b.sizes(c.C);
      const gx = okSize(c.C) ? b.fill(c.rows * c.C + (c.C > 0 ? c.slx % c.C : 0)) : b.fill(3);
      b.require(c.C === 0 || c.idx.every((i: number) => i >= 0 && i < c.rows));
      return { args: [b.buf("ok", prod(c.idx.length, c.C), c.sly), Int32Array.from(c.idx), c.C, gx], valid: b.valid };
    },
  }),
  spec({
    kernel: "adamw",
    arb: fc.record({ n: size, sl: fc.array(slack, { minLength: 4, maxLength: 4 }), step: fc.integer({ min: 1, max: 5 }), seed }),
    build(c) {
      const b = new Builder(c.seed);
      b.sizes(c.n);
      const N = prod(c.n), s = c.sl;
      return { args: [b.buf("ok", N, s[0]), b.buf("ok", N, s[1]), b.buf("ok", N, s[2]), b.buf("ok", N, s[3], 0, 1), c.n, 1e-2, 0.9, 0.999, 1e-8, 0.01, c.step], valid: b.valid };
    },
  }),
];

/** Largest |a - e| / (atol + rtol |e|) over all float arrays in the two argument lists; NaNs must match. */
function assertSameArrays(got: unknown[], want: unknown[], what: string, rtol: number, atol: number): void {
  const walk = (g: unknown, w: unknown, path: string): void => {
    if (g instanceof Float32Array || g instanceof Int32Array) {
      const e = w as Float32Array;
      assert.equal(g.length, e.length, `${path}: length`);
      for (let i = 0; i < e.length; i++) {
        const a = g[i]!, x = e[i]!;
        if (Number.isNaN(a) || Number.isNaN(x)) { assert.ok(Number.isNaN(a) && Number.isNaN(x), `${path}[${i}]: got ${a}, want ${x}`); continue; }
        if (a === x) continue;
        assert.ok(Math.abs(a - x) <= atol + rtol * Math.abs(x), `${path}[${i}]: got ${a}, want ${x}`);
      }
    } else if (g && typeof g === "object" && !Array.isArray(g) && "data" in (g as object)) {
      walk((g as { data: unknown }).data, (w as { data: unknown }).data, `${path}.data`);
    }
  };
  got.forEach((g, i) => walk(g, want[i], `${what} arg ${i}`));
}

function assertNamedError(e: unknown, kernel: string, what: string): void {
  assert.ok(e instanceof RangeError || e instanceof TypeError, `${what}: threw ${String(e)}, not a RangeError/TypeError`);
  assert.ok((e as Error).message.startsWith(`${kernel}: `), `${what}: message "${(e as Error).message}" does not name the kernel`);
}

for (const be of BACKENDS) {
  for (const s of SPECS) {
    const fn = be.kernels[s.kernel] as ((...a: unknown[]) => unknown) | undefined;
    if (!fn) continue;
    test(`${be.name} ${s.kernel}: ${RUNS} random calls throw a named error exactly when invalid, else match the reference`, () => {
      let valid = 0, invalid = 0;
      fc.assert(fc.property(s.arb, (c) => {
        const built = s.build(c, be.kernels);
        const what = `${be.name} ${s.kernel} ${JSON.stringify(c)}`;
        let err: unknown = null, result: unknown;
        try { result = fn(...built.args); } catch (e) { err = e; }
        if (!built.valid) {
          invalid++;
          assert.ok(err, `${what}: an invalid call returned`);
          assertNamedError(err, s.kernel, what);
          return;
        }
        valid++;
        if (err) throw new Error(`${what}: a valid call threw ${String(err)}`);
        if (s.kernel === "packMatrix") {
          // The handle must multiply like the matrix it packed.
          const [K, N, bm] = built.args as [number, number, never];
          const h = result as PackedMatrix;
          assert.equal(h.K, K); assert.equal(h.N, N);
          const a = { data: new Float32Array(K).map((_, i) => i - 1.5), offset: 0, batchStride: 0, rowStride: K, colStride: 1 };
          const got = new Float32Array(N), want = new Float32Array(N);
          be.kernels.matmulPacked!(1, a, h, got, null);
          ref.matmul(1, 1, N, K, a, { ...(bm as object), batchStride: 0 } as never, want, null); // packMatrix ignores batchStride; matmul reads it
          assertSameArrays([got], [want], what, 1e-5, 1e-5);
          return;
        }
        const again = s.build(c, be.kernels);
        if (s.reference) s.reference(c, again.args);
        else (ref[s.kernel] as (...a: unknown[]) => void)(...again.args);
        assertSameArrays(built.args, again.args, what, s.rtol ?? 2e-4, 2e-5);
      }), { numRuns: RUNS, seed: SEED });
      // The property must have seen both kinds of call, or it tested less than it claims.
      assert.ok(valid > RUNS / 10 && invalid > RUNS / 20, `${s.kernel}: ${valid} valid and ${invalid} invalid cases`);
    });
  }
}

test("the call from the issue throws a RangeError naming the size (every backend)", () => {
  for (const be of BACKENDS) {
    const reduce = be.kernels.reduce ?? ref.reduce; // wasm leaves reduce to the reference
    assert.throws(() => reduce("sum", new Float32Array(4), 1, 2 ** 62, 4, new Float32Array(4)),
      (e: unknown) => e instanceof RangeError && /^reduce: red = 4611686018427388000 is not an integer/.test(e.message), be.name);
  }
  // Within the size range, a product past the buffer names the product and the buffer.
  assert.throws(() => ref.reduce("sum", new Float32Array(4), 2 ** 31 - 1, 2 ** 31 - 1, 2 ** 31 - 1, new Float32Array(4)),
    /^RangeError: reduce: outer\*red\*inner = \d.* exceeds the length 4 of x$/);
});

test("the issue's call in a child process: the process exits 0 after the error", { skip: native ? false : `native backend unavailable: ${nativeLoadError()}` }, () => {
  const mod = fileURLToPath(new URL("../src/index.js", import.meta.url));
  const src = `import(${JSON.stringify(mod)}).then((cs) => { cs.setBackend("native");
    try { cs.getBackend().kernels.reduce("sum", new Float32Array(4), 1, 2 ** 62, 4, new Float32Array(4)); console.log("returned"); }
    catch (e) { console.log(e.constructor.name); } });`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", src], { encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, `child exited ${r.status} (signal ${r.signal}): ${r.stderr}`);
  assert.equal(r.stdout.trim(), "RangeError");
});

test("a product too large for memory throws a named RangeError instead of aborting (native and wasm)", () => {
  // A broadcast [2^31-1, 2^31-1] matrix (strides 0) is valid with one element of data; packing it needs
  // 2^64 bytes, so the allocation fails: native's posix_memalign, wasm's 4 GiB linear memory.
  const S = MAX_KERNEL_SIZE;
  const b = { data: new Float32Array(1), offset: 0, batchStride: 0, rowStride: 0, colStride: 0 };
  for (const be of BACKENDS) {
    if (!be.kernels.packMatrix) continue;
    assert.throws(() => be.kernels.packMatrix!(S, S, b), (e: unknown) => e instanceof RangeError && /^packMatrix: .*(out of memory|4 GiB)/.test(e.message), be.name);
  }
  // wasm: a stride-0 contraction of 2^31-1 terms needs 48 GiB of per-thread packing scratch.
  const a = { data: new Float32Array(1), offset: 0, batchStride: 0, rowStride: 0, colStride: 0 };
  assert.throws(() => wasm.kernels.matmul!(1, 1, 1, S, a, b, new Float32Array(1), null), /^RangeError: matmul: needs about \d+ bytes of wasm linear memory/);
  // Both backends still work afterwards.
  for (const be of BACKENDS) {
    const out = new Float32Array(1);
    be.kernels.matmul!(1, 1, 1, 2, { ...a, data: Float32Array.of(2, 3), colStride: 1 }, { ...b, data: Float32Array.of(5, 7), rowStride: 1 }, out, null);
    assert.equal(out[0], 31, be.name);
  }
});
