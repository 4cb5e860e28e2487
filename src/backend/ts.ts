// The plain-TypeScript reference backend: every kernel, for float32 and float64 (and int32 where it
// makes sense). It is the living definition of what each kernel computes, the fallback that runs
// everywhere, and what every faster backend is tested against. Clarity over speed, but no
// gratuitous slowness: the inner loops are flat.
import type {
  AttentionDims, Backend, BinaryOp, FloatArray, Kernels, MatOperand, NumArray, ReduceOp, Strided, UnaryGradOp, UnaryOp,
} from "./kernels.js";
import { checkedKernels } from "./check.js";

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT2 = 1 / Math.SQRT2;

/** erf by Abramowitz–Stegun 7.1.26 is too coarse (1e-7); use a series / continued fraction pair. */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax === Infinity) return Math.sign(x); // the continued fraction below would give NaN
  if (ax < 2.5) {
    // Maclaurin series: erf x = 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1)); converges fast here.
    let term = ax, sum = ax;
    const x2 = ax * ax;
    for (let n = 1; n < 80; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    const r = (2 / Math.sqrt(Math.PI)) * sum;
    return x < 0 ? -r : r;
  }
  // erfc continued fraction (Lentz), accurate for |x| >= 2.5.
  const x2 = ax * ax;
  let f = ax, C = ax, D = 0;
  for (let n = 1; n < 200; n++) {
    const an = n / 2;
    D = ax + an * D; D = 1 / D;
    C = ax + an / C;
    const delta = C * D;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-x2) / (f * Math.sqrt(Math.PI));
  return x < 0 ? erfc - 1 : 1 - erfc;
}

export function unaryFn(op: UnaryOp): (x: number) => number {
  switch (op) {
    case "neg": return (x) => -x;
    case "exp": return Math.exp;
    case "log": return Math.log;
    case "sqrt": return Math.sqrt;
    case "rsqrt": return (x) => 1 / Math.sqrt(x);
    case "recip": return (x) => 1 / x;
    case "tanh": return Math.tanh;
    case "sigmoid": return (x) => 1 / (1 + Math.exp(-x));
    case "relu": return (x) => (x > 0 ? x : 0);
    // GPT-2's gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
    case "gelu_tanh": return (x) => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
    case "gelu_erf": return (x) => 0.5 * x * (1 + erf(x * INV_SQRT2));
    case "silu": return (x) => x / (1 + Math.exp(-x));
    case "abs": return Math.abs;
    case "sin": return Math.sin;
    case "cos": return Math.cos;
    case "square": return (x) => x * x;
    case "sign": return (x) => (x > 0 ? 1 : x < 0 ? -1 : 0);
    default: return op satisfies never;
  }
}

/** d op(x) / dx, for the ops with fused backward kernels. */
export function unaryDerivative(op: UnaryGradOp): (x: number) => number {
  switch (op) {
    case "gelu_tanh": return (x) => {
      const u = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
      const t = Math.tanh(u);
      const du = SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x);
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du;
    };
    // d/dx [x Phi(x)] = Phi(x) + x phi(x).
    case "gelu_erf": return (x) => 0.5 * (1 + erf(x * INV_SQRT2)) + x * Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
    case "silu": return (x) => { const s = 1 / (1 + Math.exp(-x)); return s * (1 + x * (1 - s)); };
    case "tanh": return (x) => { const t = Math.tanh(x); return 1 - t * t; };
    case "sigmoid": return (x) => { const s = 1 / (1 + Math.exp(-x)); return s * (1 - s); };
    // relu'(0) = 0, as PyTorch.
    case "relu": return (x) => (x > 0 ? 1 : 0);
    default: return op satisfies never;
  }
}

export function binaryFn(op: BinaryOp): (a: number, b: number) => number {
  switch (op) {
    case "add": return (a, b) => a + b;
    case "sub": return (a, b) => a - b;
    case "mul": return (a, b) => a * b;
    case "div": return (a, b) => a / b;
    // NaN-propagating like torch.maximum.
    case "max": return (a, b) => (a !== a || b !== b ? NaN : a > b ? a : b);
    case "min": return (a, b) => (a !== a || b !== b ? NaN : a < b ? a : b);
    case "pow": return Math.pow;
    case "eq": return (a, b) => (a === b ? 1 : 0);
    case "ne": return (a, b) => (a !== b ? 1 : 0);
    case "lt": return (a, b) => (a < b ? 1 : 0);
    case "le": return (a, b) => (a <= b ? 1 : 0);
    case "gt": return (a, b) => (a > b ? 1 : 0);
    case "ge": return (a, b) => (a >= b ? 1 : 0);
    default: return op satisfies never;
  }
}

/** Visit every index of `shape` in row-major order, calling f with the strided offsets of two operands. */
function forEachStrided2(shape: readonly number[], sa: readonly number[], oa: number, sb: readonly number[], ob: number,
  f: (i: number, ia: number, ib: number) => void): void {
  const nd = shape.length;
  let n = 1;
  for (const d of shape) n *= d;
  if (n === 0) return;
  if (nd === 0) { f(0, oa, ob); return; }
  const last = nd - 1, L = shape[last]!, la = sa[last]!, lb = sb[last]!;
  const idx = new Array<number>(nd).fill(0);
  let ia = oa, ib = ob;
  for (let i = 0; i < n; i += L) {
    for (let j = 0, pa = ia, pb = ib; j < L; j++, pa += la, pb += lb) f(i + j, pa, pb);
    // Carry into the outer dimensions.
    for (let d = last - 1; d >= 0; d--) {
      idx[d]!++;
      ia += sa[d]!; ib += sb[d]!;
      if (idx[d]! < shape[d]!) break;
      ia -= sa[d]! * shape[d]!; ib -= sb[d]! * shape[d]!;
      idx[d] = 0;
    }
  }
}

function matmul<A extends FloatArray>(batch: number, M: number, N: number, K: number,
  a: MatOperand<A>, b: MatOperand<A>, out: A, bias: A | null): void {
  const A_ = a.data, B_ = b.data;
  for (let bt = 0; bt < batch; bt++) {
    const ab = a.offset + bt * a.batchStride, bb = b.offset + bt * b.batchStride, ob = bt * M * N;
    for (let i = 0; i < M; i++) {
      const orow = ob + i * N;
      for (let j = 0; j < N; j++) out[orow + j] = bias ? bias[j]! : 0;
      // i-k-j order: streams rows of B and of out.
      for (let k = 0; k < K; k++) {
        // No skipping av === 0: 0 * NaN and 0 * Inf must still give NaN, as the sum defines.
        const av = A_[ab + i * a.rowStride + k * a.colStride]!;
        const brow = bb + k * b.rowStride, bc = b.colStride;
        for (let j = 0; j < N; j++) out[orow + j]! += av * B_[brow + j * bc]!;
      }
    }
  }
}

function reduce<A extends NumArray>(op: ReduceOp, x: A, outer: number, red: number, inner: number, out: A): void {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * red * inner + i;
      let acc = op === "sum" ? 0 : op === "max" ? -Infinity : Infinity;
      for (let r = 0; r < red; r++) {
        const v = x[base + r * inner]!;
        if (op === "sum") acc += v;
        else if (v !== v) { acc = NaN; break; }
        else if (op === "max") { if (v > acc) acc = v; }
        else if (v < acc) acc = v;
      }
      out[o * inner + i] = acc;
    }
  }
}

function softmax<A extends FloatArray>(x: A, rows: number, cols: number, scale: number, causalRows: number, causalOffset: number, out: A): void {
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    const limit = causalRows > 0 ? Math.min(cols, (r % causalRows) + causalOffset + 1) : cols;
    let mx = -Infinity;
    for (let c = 0; c < limit; c++) mx = Math.max(mx, x[base + c]! * scale);
    let sum = 0;
    for (let c = 0; c < limit; c++) { const e = Math.exp(x[base + c]! * scale - mx); out[base + c] = e; sum += e; }
    const inv = limit > 0 ? 1 / sum : 0;
    for (let c = 0; c < limit; c++) out[base + c]! *= inv;
    for (let c = Math.max(limit, 0); c < cols; c++) out[base + c] = 0;
  }
}

function layerNorm<A extends FloatArray>(x: A, w: A | null, b: A | null, rows: number, cols: number, eps: number, out: A, mean: A, rstd: A): void {
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let s = 0;
    for (let c = 0; c < cols; c++) s += x[base + c]!;
    const mu = s / cols;
    let v = 0;
    for (let c = 0; c < cols; c++) { const d = x[base + c]! - mu; v += d * d; }
    const rs = 1 / Math.sqrt(v / cols + eps);
    mean[r] = mu; rstd[r] = rs;
    for (let c = 0; c < cols; c++) {
      let y = (x[base + c]! - mu) * rs;
      if (w) y *= w[c]!;
      if (b) y += b[c]!;
      out[base + c] = y;
    }
  }
}

function layerNormBackward<A extends FloatArray>(x: A, w: A | null, mean: A, rstd: A, gy: A, rows: number, cols: number, gx: A, gw: A | null, gb: A | null): void {
  // With xhat = (x - mu) rstd and g = gy * w: gx = rstd (g - mean(g) - xhat mean(g xhat)).
  for (let r = 0; r < rows; r++) {
    const base = r * cols, mu = mean[r]!, rs = rstd[r]!;
    let sg = 0, sgx = 0;
    for (let c = 0; c < cols; c++) {
      const xh = (x[base + c]! - mu) * rs;
      const g = gy[base + c]! * (w ? w[c]! : 1);
      sg += g; sgx += g * xh;
      if (gw) gw[c]! += gy[base + c]! * xh;
      if (gb) gb[c]! += gy[base + c]!;
    }
    sg /= cols; sgx /= cols;
    for (let c = 0; c < cols; c++) {
      const xh = (x[base + c]! - mu) * rs;
      const g = gy[base + c]! * (w ? w[c]! : 1);
      gx[base + c] = rs * (g - sg - xh * sgx);
    }
  }
}

function rmsNorm<A extends FloatArray>(x: A, w: A | null, rows: number, cols: number, eps: number, out: A, rstd: A): void {
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let s = 0;
    for (let c = 0; c < cols; c++) s += x[base + c]! * x[base + c]!;
    const rs = 1 / Math.sqrt(s / cols + eps);
    rstd[r] = rs;
    for (let c = 0; c < cols; c++) out[base + c] = x[base + c]! * rs * (w ? w[c]! : 1);
  }
}

function rmsNormBackward<A extends FloatArray>(x: A, w: A | null, rstd: A, gy: A, rows: number, cols: number, gx: A, gw: A | null): void {
  // y = x rs w; with g = gy w: gx = rs (g - xhat mean(g xhat)), xhat = x rs.
  for (let r = 0; r < rows; r++) {
    const base = r * cols, rs = rstd[r]!;
    let sgx = 0;
    for (let c = 0; c < cols; c++) {
      const xh = x[base + c]! * rs;
      sgx += gy[base + c]! * (w ? w[c]! : 1) * xh;
      if (gw) gw[c]! += gy[base + c]! * xh;
    }
    sgx /= cols;
    for (let c = 0; c < cols; c++) {
      const xh = x[base + c]! * rs;
      gx[base + c] = rs * (gy[base + c]! * (w ? w[c]! : 1) - xh * sgx);
    }
  }
}

/** Keys visible from query i in causal attention: j < limit (Tk - Tq is the KV-cache offset). */
const visibleKeys = (i: number, Tq: number, Tk: number): number => Math.max(0, Math.min(Tk, i + Tk - Tq + 1));

/** s_j = scale * (q_i · k_j + mask_j) for j < limit, into s; returns max_j s_j. */
function attentionScores(d: AttentionDims, q: Strided, k: Strided, mask: FloatArray | null, b: number, h: number, i: number,
  limit: number, s: Float64Array): number {
  const Q = q.data, K = k.data, qs = q.strides, ks = k.strides, kh = Math.floor(h / (d.heads / d.kvHeads));
  const qb = q.offset + b * qs[0]! + i * qs[1]! + h * qs[2]!;
  let mx = -Infinity;
  for (let j = 0; j < limit; j++) {
    const kb = k.offset + b * ks[0]! + j * ks[1]! + kh * ks[2]!;
    let dot = 0;
    for (let c = 0; c < d.dh; c++) dot += Q[qb + c * qs[3]!]! * K[kb + c * ks[3]!]!;
    const sj = d.scale * (dot + (mask ? mask[b * d.Tk + j]! : 0));
    s[j] = sj;
    if (sj > mx) mx = sj;
  }
  return mx;
}

function attention<A extends FloatArray>(d: AttentionDims, q: Strided<A>, k: Strided<A>, v: Strided<A>, mask: A | null, out: A, lse: A): void {
  const { batch: B, heads: H, Tq, Tk, dh } = d, g = H / d.kvHeads, V = v.data, vs = v.strides;
  const s = new Float64Array(Tk), acc = new Float64Array(dh);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let i = 0; i < Tq; i++) {
    const limit = visibleKeys(i, Tq, Tk), kh = Math.floor(h / g);
    const mx = attentionScores(d, q, k, mask, b, h, i, limit, s);
    let sum = 0;
    for (let j = 0; j < limit; j++) { s[j] = Math.exp(s[j]! - mx); sum += s[j]!; }
    acc.fill(0);
    for (let j = 0; j < limit; j++) {
      const p = s[j]! / sum, vb = v.offset + b * vs[0]! + j * vs[1]! + kh * vs[2]!;
      for (let c = 0; c < dh; c++) acc[c]! += p * V[vb + c * vs[3]!]!;
    }
    const o = ((b * Tq + i) * H + h) * dh;
    for (let c = 0; c < dh; c++) out[o + c] = acc[c]!;
    lse[(b * H + h) * Tq + i] = limit > 0 ? mx + Math.log(sum) : -Infinity;
  }
}

function attentionBackward<A extends FloatArray>(d: AttentionDims, q: Strided<A>, k: Strided<A>, v: Strided<A>, mask: A | null,
  out: A, lse: A, gOut: A, gq: A, gk: A, gv: A): void {
  // With p_ij = exp(s_ij - lse_i): gv_j += p_ij gOut_i; ds_ij = p_ij (gOut_i · v_j - gOut_i · out_i);
  // gq_i += scale ds_ij k_j; gk_j += scale ds_ij q_i.
  const { batch: B, heads: H, kvHeads: Hkv, Tq, Tk, dh, scale } = d, g = H / Hkv;
  const Q = q.data, K = k.data, V = v.data, qs = q.strides, ks = k.strides, vs = v.strides;
  gq.fill(0, 0, B * Tq * H * dh); gk.fill(0, 0, B * Tk * Hkv * dh); gv.fill(0, 0, B * Tk * Hkv * dh);
  const s = new Float64Array(Tk), gqi = new Float64Array(dh);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let i = 0; i < Tq; i++) {
    const limit = visibleKeys(i, Tq, Tk), kh = Math.floor(h / g);
    attentionScores(d, q, k, mask, b, h, i, limit, s);
    const o = ((b * Tq + i) * H + h) * dh, l = lse[(b * H + h) * Tq + i]!;
    const qb = q.offset + b * qs[0]! + i * qs[1]! + h * qs[2]!;
    let D = 0;
    for (let c = 0; c < dh; c++) D += gOut[o + c]! * out[o + c]!;
    gqi.fill(0);
    for (let j = 0; j < limit; j++) {
      const p = Math.exp(s[j]! - l);
      const kb = k.offset + b * ks[0]! + j * ks[1]! + kh * ks[2]!, vb = v.offset + b * vs[0]! + j * vs[1]! + kh * vs[2]!;
      const gkv = ((b * Tk + j) * Hkv + kh) * dh;
      let dp = 0;
      for (let c = 0; c < dh; c++) { dp += gOut[o + c]! * V[vb + c * vs[3]!]!; gv[gkv + c]! += p * gOut[o + c]!; }
      const ds = scale * p * (dp - D);
      for (let c = 0; c < dh; c++) { gqi[c]! += ds * K[kb + c * ks[3]!]!; gk[gkv + c]! += ds * Q[qb + c * qs[3]!]!; }
    }
    for (let c = 0; c < dh; c++) gq[o + c] = gqi[c]!;
  }
}

/** The reference kernels without the argument checks, for backends that fall back after their own checks. */
export const referenceKernels: Kernels = {
  matmul,
  unary(op, x, xOffset, out, n) {
    const f = unaryFn(op);
    for (let i = 0; i < n; i++) out[i] = f(x[xOffset + i]!);
  },
  unaryGrad(op, x, gy, gx, n) {
    const d = unaryDerivative(op);
    for (let i = 0; i < n; i++) gx[i] = gy[i]! * d(x[i]!);
  },
  binary(op, shape, a, b, out) {
    const f = binaryFn(op);
    const A_ = a.data, B_ = b.data;
    forEachStrided2(shape, a.strides, a.offset, b.strides, b.offset, (i, ia, ib) => { out[i] = f(A_[ia]!, B_[ib]!); });
  },
  copy(shape, x, out) {
    const X = x.data;
    forEachStrided2(shape, x.strides, x.offset, x.strides, x.offset, (i, ix) => { out[i] = X[ix]!; });
  },
  where(shape, cond, a, b, out) {
    const C = cond.data, A_ = a.data, B_ = b.data;
    // Two passes over shared index space: first pick the branch, then read it.
    const pick = new Uint8Array(out.length);
    forEachStrided2(shape, cond.strides, cond.offset, cond.strides, cond.offset, (i, ic) => { pick[i] = C[ic] ? 1 : 0; });
    forEachStrided2(shape, a.strides, a.offset, b.strides, b.offset, (i, ia, ib) => { out[i] = pick[i] ? A_[ia]! : B_[ib]!; });
  },
  reduce,
  argmax(x, outer, red, inner, out) {
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        const base = o * red * inner + i;
        let best = 0, bv = x[base]!;
        for (let r = 1; r < red; r++) {
          const v = x[base + r * inner]!;
          if (v > bv || (v !== v && bv === bv)) { bv = v; best = r; }
        }
        out[o * inner + i] = best;
      }
    }
  },
  softmax,
  attention,
  attentionBackward,
  softmaxBackward(y, gy, rows, cols, scale, gx) {
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      let dot = 0;
      for (let c = 0; c < cols; c++) dot += gy[base + c]! * y[base + c]!;
      for (let c = 0; c < cols; c++) gx[base + c] = scale * y[base + c]! * (gy[base + c]! - dot);
    }
  },
  logSoftmax(x, rows, cols, out) {
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      let mx = -Infinity;
      for (let c = 0; c < cols; c++) mx = Math.max(mx, x[base + c]!);
      let s = 0;
      for (let c = 0; c < cols; c++) s += Math.exp(x[base + c]! - mx);
      const lse = mx + Math.log(s);
      for (let c = 0; c < cols; c++) out[base + c] = x[base + c]! - lse;
    }
  },
  logSoftmaxBackward(y, gy, rows, cols, gx) {
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      let s = 0;
      for (let c = 0; c < cols; c++) s += gy[base + c]!;
      for (let c = 0; c < cols; c++) gx[base + c] = gy[base + c]! - Math.exp(y[base + c]!) * s;
    }
  },
  layerNorm,
  layerNormBackward,
  rmsNorm,
  rmsNormBackward,
  gatherRows(x, R, C, idx, out) {
    // Every index is checked before anything is written, as the native kernel does.
    for (let i = 0; i < idx.length; i++) {
      const r = idx[i]!;
      if (r < 0 || r >= R) throw new RangeError(`gatherRows: index ${r} out of range [0, ${R})`);
    }
    for (let i = 0; i < idx.length; i++) out.set(x.subarray(idx[i]! * C, idx[i]! * C + C) as never, i * C);
  },
  scatterAddRows(gy, idx, C, gx) {
    if (C > 0) {
      const R = Math.floor(gx.length / C);
      for (let i = 0; i < idx.length; i++) {
        const r = idx[i]!;
        if (r < 0 || r >= R) throw new RangeError(`scatterAddRows: index ${r} out of range [0, ${R}) (gx holds ${R} rows of ${C})`);
      }
    }
    for (let i = 0; i < idx.length; i++) {
      const r = idx[i]!;
      for (let c = 0; c < C; c++) gx[r * C + c]! += gy[i * C + c]!;
    }
  },
  adamw(p, g, m, v, n, lr, beta1, beta2, eps, weightDecay, step) {
    const bc1 = 1 - Math.pow(beta1, step), bc2 = 1 - Math.pow(beta2, step);
    for (let i = 0; i < n; i++) {
      const gi = g[i]!;
      const mi = (m[i] = beta1 * m[i]! + (1 - beta1) * gi);
      const vi = (v[i] = beta2 * v[i]! + (1 - beta2) * gi * gi);
      p[i] = p[i]! - lr * ((mi / bc1) / (Math.sqrt(vi / bc2) + eps) + weightDecay * p[i]!);
    }
  },
};

/** The reference kernels behind the shared argument checks (check.ts): what callers use. */
export const tsKernels = checkedKernels(referenceKernels) as Kernels;

export const tsBackend: Backend = {
  name: "ts",
  description: "ts (plain TypeScript reference)",
  kernels: tsKernels,
};
