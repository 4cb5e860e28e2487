// The native backend: loads the C N-API addon (native/, built by scripts/build-native.mjs) and
// adapts it to the kernel contract. Float32 work goes to the addon; anything else (float64, int32
// data) is handed to the reference kernels. Scalars go through one shared Float64Array parameter
// block (layouts are documented beside each entry point in native/src/addon.c), which keeps a call
// to about one N-API transition. The addon is optional: loadNativeBackend() returns null without it.
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { existsSync } from "node:fs";
import type { AttentionDims, Backend, Kernels, NumArray, PackedMatrix, Strided } from "./kernels.js";
import { BINARY_OPS, REDUCE_OPS, UNARY_OPS } from "./kernels.js";
import { referenceKernels } from "./ts.js";
import { checkedKernels } from "./check.js";

type Arr = NumArray | null;
interface Addon {
  init(params: Float64Array): { avx2: boolean; threads: number };
  setThreads(n: number): number;
  peakGflops(threads: number): number;
  useAvx2(enabled: boolean): boolean;
  matmul(a: Arr, b: Arr, out: Arr, bias: Arr): void;
  pack(b: Arr): unknown;
  matmulPacked(a: Arr, packed: unknown, out: Arr, bias: Arr): void;
  unary(x: Arr, out: Arr): void;
  unaryGrad(x: Arr, gy: Arr, gx: Arr): void;
  binary(a: Arr, b: Arr, out: Arr): void;
  copy(x: Arr, out: Arr): void;
  reduce(x: Arr, out: Arr): void;
  argmax(x: Arr, out: Arr): void;
  softmax(x: Arr, out: Arr): void;
  softmaxBackward(y: Arr, gy: Arr, gx: Arr): void;
  attention(q: Arr, k: Arr, v: Arr, mask: Arr, out: Arr, lse: Arr): void;
  attentionBackward(q: Arr, k: Arr, v: Arr, mask: Arr, out: Arr, lse: Arr, gOut: Arr, gq: Arr, gk: Arr, gv: Arr): void;
  logSoftmax(x: Arr, out: Arr): void;
  logSoftmaxBackward(y: Arr, gy: Arr, gx: Arr): void;
  layerNorm(x: Arr, w: Arr, b: Arr, out: Arr, mean: Arr, rstd: Arr): void;
  layerNormBackward(x: Arr, w: Arr, mean: Arr, rstd: Arr, gy: Arr, gx: Arr, gw: Arr, gb: Arr): void;
  rmsNorm(x: Arr, w: Arr, out: Arr, rstd: Arr): void;
  rmsNormBackward(x: Arr, w: Arr, rstd: Arr, gy: Arr, gx: Arr, gw: Arr): void;
  adamw(p: Arr, g: Arr, m: Arr, v: Arr): void;
  gatherRows(x: Arr, idx: Arr, out: Arr): void;
  scatterAddRows(gy: Arr, idx: Arr, gx: Arr): void;
}

const MAX_DIMS = 8; // CS_MAX_DIMS in native/src/cs.h
const UNARY_CODE = Object.fromEntries(UNARY_OPS.map((op, i) => [op, i])) as Record<string, number>;
const BINARY_CODE = Object.fromEntries(BINARY_OPS.map((op, i) => [op, i])) as Record<string, number>;
const REDUCE_CODE = Object.fromEntries(REDUCE_OPS.map((op, i) => [op, i])) as Record<string, number>;

/** A [K, N] matrix packed by the addon; the handle is a napi external freed by the GC. */
class NativePackedMatrix implements PackedMatrix {
  readonly backend = "native";
  constructor(readonly K: number, readonly N: number, readonly handle: unknown) {}
}

const f32 = (x: unknown): x is Float32Array => x instanceof Float32Array;
const f32OrNull = (x: unknown): boolean => x === null || x instanceof Float32Array;

/** Attention geometry and q, k, v operands into the parameter block (layout: ATTENTION_ARGS in addon.c). */
function attentionParams(P: Float64Array, d: AttentionDims, q: Strided, k: Strided, v: Strided): void {
  P[0] = d.batch; P[1] = d.heads; P[2] = d.kvHeads; P[3] = d.Tq; P[4] = d.Tk; P[5] = d.dh; P[6] = d.scale;
  [q, k, v].forEach((x, i) => {
    const o = 7 + 5 * i;
    P[o] = x.offset;
    for (let a = 0; a < 4; a++) P[o + 1 + a] = x.strides[a]!;
  });
}

// The argument checks (check.ts) run first; the C side checks again, so a direct addon call cannot crash either.
function makeKernels(addon: Addon, P: Float64Array): Partial<Kernels> {
  return checkedKernels({
    matmul(batch, M, N, K, a, b, out, bias) {
      if (!f32(a.data) || !f32(b.data) || !f32(out) || !f32OrNull(bias)) return referenceKernels.matmul(batch, M, N, K, a, b, out, bias);
      P[0] = batch; P[1] = M; P[2] = N; P[3] = K;
      P[4] = a.offset; P[5] = a.batchStride; P[6] = a.rowStride; P[7] = a.colStride;
      P[8] = b.offset; P[9] = b.batchStride; P[10] = b.rowStride; P[11] = b.colStride;
      addon.matmul(a.data, b.data, out, bias);
    },
    packMatrix(K, N, b) {
      P[0] = K; P[1] = N; P[2] = b.offset; P[3] = b.rowStride; P[4] = b.colStride;
      return new NativePackedMatrix(K, N, addon.pack(b.data));
    },
    matmulPacked(M, a, packed, out, bias) {
      if (!(packed instanceof NativePackedMatrix)) throw new TypeError(`matmulPacked: matrix was packed by the ${packed.backend} backend, not native`);
      P[0] = M; P[1] = a.offset; P[2] = a.rowStride; P[3] = a.colStride;
      addon.matmulPacked(a.data, packed.handle, out, bias);
    },
    unary(op, x, xOffset, out, n) {
      if (!f32(x) || !f32(out)) return referenceKernels.unary(op, x, xOffset, out, n);
      P[0] = UNARY_CODE[op]!; P[1] = xOffset; P[2] = n;
      addon.unary(x, out);
    },
    unaryGrad(op, x, gy, gx, n) {
      if (!f32(x) || !f32(gy) || !f32(gx)) return referenceKernels.unaryGrad(op, x, gy, gx, n);
      P[0] = UNARY_CODE[op]!; P[1] = n;
      addon.unaryGrad(x, gy, gx);
    },
    binary(op, shape, a, b, out) {
      const nd = shape.length;
      if (nd > MAX_DIMS || !f32(a.data) || !f32(b.data) || !f32(out)) return referenceKernels.binary(op, shape, a, b, out);
      P[0] = BINARY_CODE[op]!; P[1] = nd; P[2] = a.offset; P[3] = b.offset;
      const sa = a.strides, sb = b.strides;
      for (let d = 0; d < nd; d++) { P[4 + d] = shape[d]!; P[12 + d] = sa[d]!; P[20 + d] = sb[d]!; }
      addon.binary(a.data, b.data, out);
    },
    copy(shape, x, out) {
      const nd = shape.length;
      if (nd > MAX_DIMS || !f32(x.data) || !f32(out)) return referenceKernels.copy(shape, x, out);
      P[1] = nd; P[2] = x.offset;
      const sx = x.strides;
      for (let d = 0; d < nd; d++) { P[4 + d] = shape[d]!; P[12 + d] = sx[d]!; }
      addon.copy(x.data, out);
    },
    reduce(op, x, outer, red, inner, out) {
      if (!f32(x) || !f32(out)) return referenceKernels.reduce(op, x, outer, red, inner, out);
      P[0] = REDUCE_CODE[op]!; P[1] = outer; P[2] = red; P[3] = inner;
      addon.reduce(x, out);
    },
    argmax(x, outer, red, inner, out) {
      if (!f32(x)) return referenceKernels.argmax(x, outer, red, inner, out);
      P[0] = outer; P[1] = red; P[2] = inner;
      addon.argmax(x, out);
    },
    softmax(x, rows, cols, scale, causalRows, causalOffset, out) {
      if (!f32(x) || !f32(out)) return referenceKernels.softmax(x, rows, cols, scale, causalRows, causalOffset, out);
      P[0] = rows; P[1] = cols; P[2] = scale; P[3] = causalRows; P[4] = causalOffset;
      addon.softmax(x, out);
    },
    softmaxBackward(y, gy, rows, cols, scale, gx) {
      if (!f32(y) || !f32(gy) || !f32(gx)) return referenceKernels.softmaxBackward(y, gy, rows, cols, scale, gx);
      P[0] = rows; P[1] = cols; P[2] = scale;
      addon.softmaxBackward(y, gy, gx);
    },
    attention(d, q, k, v, mask, out, lse) {
      if (!f32(q.data) || !f32(k.data) || !f32(v.data) || !f32OrNull(mask) || !f32(out) || !f32(lse)) {
        return referenceKernels.attention(d, q, k, v, mask, out, lse);
      }
      attentionParams(P, d, q, k, v);
      addon.attention(q.data, k.data, v.data, mask, out, lse);
    },
    attentionBackward(d, q, k, v, mask, out, lse, gOut, gq, gk, gv) {
      if (![q.data, k.data, v.data, out, lse, gOut, gq, gk, gv].every(f32) || !f32OrNull(mask)) {
        return referenceKernels.attentionBackward(d, q, k, v, mask, out, lse, gOut, gq, gk, gv);
      }
      attentionParams(P, d, q, k, v);
      addon.attentionBackward(q.data, k.data, v.data, mask, out, lse, gOut, gq, gk, gv);
    },
    logSoftmax(x, rows, cols, out) {
      if (!f32(x) || !f32(out)) return referenceKernels.logSoftmax(x, rows, cols, out);
      P[0] = rows; P[1] = cols;
      addon.logSoftmax(x, out);
    },
    logSoftmaxBackward(y, gy, rows, cols, gx) {
      if (!f32(y) || !f32(gy) || !f32(gx)) return referenceKernels.logSoftmaxBackward(y, gy, rows, cols, gx);
      P[0] = rows; P[1] = cols;
      addon.logSoftmaxBackward(y, gy, gx);
    },
    layerNorm(x, w, b, rows, cols, eps, out, mean, rstd) {
      if (!f32(x) || !f32OrNull(w) || !f32OrNull(b) || !f32(out) || !f32(mean) || !f32(rstd)) {
        return referenceKernels.layerNorm(x, w, b, rows, cols, eps, out, mean, rstd);
      }
      P[0] = rows; P[1] = cols; P[2] = eps;
      addon.layerNorm(x, w, b, out, mean, rstd);
    },
    layerNormBackward(x, w, mean, rstd, gy, rows, cols, gx, gw, gb) {
      if (!f32(x) || !f32OrNull(w) || !f32(mean) || !f32(rstd) || !f32(gy) || !f32(gx) || !f32OrNull(gw) || !f32OrNull(gb)) {
        return referenceKernels.layerNormBackward(x, w, mean, rstd, gy, rows, cols, gx, gw, gb);
      }
      P[0] = rows; P[1] = cols;
      addon.layerNormBackward(x, w, mean, rstd, gy, gx, gw, gb);
    },
    rmsNorm(x, w, rows, cols, eps, out, rstd) {
      if (!f32(x) || !f32OrNull(w) || !f32(out) || !f32(rstd)) return referenceKernels.rmsNorm(x, w, rows, cols, eps, out, rstd);
      P[0] = rows; P[1] = cols; P[2] = eps;
      addon.rmsNorm(x, w, out, rstd);
    },
    rmsNormBackward(x, w, rstd, gy, rows, cols, gx, gw) {
      if (!f32(x) || !f32OrNull(w) || !f32(rstd) || !f32(gy) || !f32(gx) || !f32OrNull(gw)) {
        return referenceKernels.rmsNormBackward(x, w, rstd, gy, rows, cols, gx, gw);
      }
      P[0] = rows; P[1] = cols;
      addon.rmsNormBackward(x, w, rstd, gy, gx, gw);
    },
    adamw(p, g, m, v, n, lr, beta1, beta2, eps, weightDecay, step) {
      P[0] = n; P[1] = lr; P[2] = beta1; P[3] = beta2; P[4] = eps; P[5] = weightDecay;
      P[6] = 1 - Math.pow(beta1, step); P[7] = 1 - Math.pow(beta2, step);
      addon.adamw(p, g, m, v);
    },
    gatherRows(x, R, C, idx, out) {
      if (!f32(x) || !f32(out)) return referenceKernels.gatherRows(x, R, C, idx, out);
      P[0] = R; P[1] = C;
      addon.gatherRows(x, idx, out);
    },
    scatterAddRows(gy, idx, C, gx) {
      if (!f32(gy) || !f32(gx)) return referenceKernels.scatterAddRows(gy, idx, C, gx);
      P[0] = C;
      addon.scatterAddRows(gy, idx, gx);
    },
  });
}

let loaded: { backend: Backend; addon: Addon } | null | undefined;
let loadError: string | null = null;

/** Where the built addon lives, from dist/src/backend (compiled) or src/backend (run from source). */
function addonPath(): string | null {
  for (const rel of ["../../../native/build/Release/circuitscope_native.node", "../../native/build/Release/circuitscope_native.node"]) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(p)) return p;
  }
  return null;
}

function load(): { backend: Backend; addon: Addon } | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  const path = addonPath();
  if (!path) {
    loadError = "the native addon is not built (run: npm run build:native)";
    return null;
  }
  try {
    const addon = createRequire(import.meta.url)(path) as Addon;
    const P = new Float64Array(64);
    const info = addon.init(P);
    const kernels = makeKernels(addon, P);
    let avx2 = info.avx2;
    let threads = info.threads;
    const backend: Backend = {
      name: "native",
      get description() { return `native (${avx2 ? "AVX2/FMA" : "portable C"}, ${threads} thread${threads === 1 ? "" : "s"})`; },
      kernels,
    };
    loaded = { backend, addon };
    setThreadsImpl = (n) => (threads = addon.setThreads(n));
    getThreadsImpl = () => threads;
    useAvx2Impl = (on) => (avx2 = addon.useAvx2(on));
  } catch (e) {
    loadError = `the native addon failed to load: ${e instanceof Error ? e.message : String(e)} (rebuild with: npm run build:native)`;
  }
  return loaded;
}

let setThreadsImpl: ((n: number) => number) | null = null;
let getThreadsImpl: (() => number) | null = null;
let useAvx2Impl: ((on: boolean) => boolean) | null = null;

/** The native backend, or null when the addon is not built or does not load (see nativeLoadError). */
export function loadNativeBackend(): Backend | null {
  return load()?.backend ?? null;
}

/** Why the native backend is unavailable, or null when it loaded. */
export function nativeLoadError(): string | null {
  load();
  return loadError;
}

/** Sets the addon's worker-thread count (1 = caller only); returns the count in effect, or 0 without the addon. */
export function setNativeThreads(n: number): number {
  load();
  return setThreadsImpl ? setThreadsImpl(Math.max(1, Math.floor(n))) : 0;
}

/** The measured FMA peak in GFLOP/s on `threads` threads (0 without the addon or AVX2/FMA). */
export function nativePeakGflops(threads: number): number {
  const l = load();
  return l ? l.addon.peakGflops(threads) : 0;
}

/** The addon's thread count, or 0 without the addon. */
export function nativeThreads(): number {
  load();
  return getThreadsImpl ? getThreadsImpl() : 0;
}

/**
 * Switches between the AVX2/FMA kernels (when the CPU has them) and the portable C ones, for tests
 * and comparisons; returns whether AVX2 is now in use (false without the addon).
 */
export function setNativeAvx2(enabled: boolean): boolean {
  load();
  return useAvx2Impl ? useAvx2Impl(enabled) : false;
}
