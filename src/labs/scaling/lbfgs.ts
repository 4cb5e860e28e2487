// L-BFGS for small, smooth, unconstrained problems in plain float64 (the scaling-law fits have five
// parameters, so no tensor engine). Two-loop recursion (Nocedal & Wright, Numerical Optimization,
// 2nd ed., Alg. 7.4) with a line search satisfying the strong Wolfe conditions (Alg. 3.5 bracketing +
// Alg. 3.6 zoom, safeguarded cubic interpolation). This is not L-BFGS-B: there are no bounds.

/** f(x) and its gradient, written into `grad` (length n). */
export type Objective = (x: Float64Array, grad: Float64Array) => number;

export interface LbfgsOptions {
  memory?: number; // e.g. 10 correction pairs
  maxIter?: number; // e.g. 1000
  /** Stop when max|g_i| <= gtol. */
  gtol?: number; // e.g. 1e-10
  /** Stop when (f_k − f_{k+1}) <= ftol·max(|f_k|, |f_{k+1}|), i.e. relative progress has stalled. */
  ftol?: number; // e.g. 1e-14
  c1?: number; // sufficient decrease, e.g. 1e-4
  c2?: number; // curvature, e.g. 0.9 (N&W's choice for quasi-Newton)
}

export type LbfgsStatus = "gtol" | "ftol" | "maxIter" | "lineSearchFailed";

export interface LbfgsResult {
  x: Float64Array;
  f: number;
  grad: Float64Array;
  iterations: number;
  evaluations: number;
  status: LbfgsStatus;
}

const dot = (a: Float64Array, b: Float64Array) => { let s = 0; for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!; return s; };
const normInf = (a: Float64Array) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!)); return m; };

/** Minimise `fn` from `x0` (not modified). */
export function lbfgs(fn: Objective, x0: ArrayLike<number>, opts: LbfgsOptions = {}): LbfgsResult {
  const m = opts.memory ?? 10, maxIter = opts.maxIter ?? 1000, gtol = opts.gtol ?? 1e-10, ftol = opts.ftol ?? 1e-14;
  const c1 = opts.c1 ?? 1e-4, c2 = opts.c2 ?? 0.9;
  const n = x0.length;
  let x: Float64Array = Float64Array.from(x0), g: Float64Array = new Float64Array(n);
  let evaluations = 1;
  let f = fn(x, g);
  if (!Number.isFinite(f)) throw new RangeError(`lbfgs: objective is ${f} at the starting point`);
  const S: Float64Array[] = [], Y: Float64Array[] = [], rho: number[] = [];
  const d = new Float64Array(n), alphaBuf = new Float64Array(m);
  let status: LbfgsStatus = "maxIter", iter = 0, retried = false;
  for (; iter < maxIter; iter++) {
    if (normInf(g) <= gtol) { status = "gtol"; break; }
    // Two-loop recursion: d = −H_k g with H_k^0 = γ I, γ = sᵀy / yᵀy (N&W eq. 7.20).
    for (let i = 0; i < n; i++) d[i] = -g[i]!;
    for (let j = S.length - 1; j >= 0; j--) {
      const a = rho[j]! * dot(S[j]!, d); alphaBuf[j] = a;
      const y = Y[j]!; for (let i = 0; i < n; i++) d[i]! -= a * y[i]!;
    }
    const last = S.length - 1;
    const gamma = last >= 0 ? dot(S[last]!, Y[last]!) / dot(Y[last]!, Y[last]!) : 1 / Math.max(normInf(g), 1e-300);
    for (let i = 0; i < n; i++) d[i]! *= gamma;
    for (let j = 0; j < S.length; j++) {
      const b = rho[j]! * dot(Y[j]!, d), s = S[j]!;
      for (let i = 0; i < n; i++) d[i]! += s[i]! * (alphaBuf[j]! - b);
    }
    let dg = dot(d, g);
    // Rounding can make the quasi-Newton direction non-descent; fall back to steepest descent.
    if (!(dg < 0)) { S.length = Y.length = rho.length = 0; for (let i = 0; i < n; i++) d[i] = -g[i]! / Math.max(normInf(g), 1e-300); dg = dot(d, g); }
    const ls = strongWolfe(fn, x, f, g, d, dg, 1, c1, c2);
    evaluations += ls.evaluations;
    if (!ls.ok) {
      // One retry from steepest descent with fresh memory before giving up (the memory may be stale).
      if (!retried && S.length > 0) { retried = true; S.length = Y.length = rho.length = 0; continue; }
      status = "lineSearchFailed"; break;
    }
    retried = false;
    const s = new Float64Array(n), y = new Float64Array(n);
    for (let i = 0; i < n; i++) { s[i] = ls.x[i]! - x[i]!; y[i] = ls.g[i]! - g[i]!; }
    const sy = dot(s, y);
    const fPrev = f;
    x = ls.x; g = ls.g; f = ls.f;
    // Strong Wolfe guarantees sᵀy > 0 in exact arithmetic; skip the pair if rounding broke it.
    if (sy > 1e-300) { S.push(s); Y.push(y); rho.push(1 / sy); if (S.length > m) { S.shift(); Y.shift(); rho.shift(); } }
    if (fPrev - f <= ftol * Math.max(Math.abs(fPrev), Math.abs(f), Number.MIN_VALUE)) { status = "ftol"; iter++; break; }
  }
  return { x, f, grad: g, iterations: iter, evaluations, status };
}

interface LineSearchResult { ok: boolean; x: Float64Array; f: number; g: Float64Array; evaluations: number }

/** Minimiser of the cubic through (a, fa, da), (b, fb, db) (N&W eq. 3.59), or NaN if it has none. */
function cubicMin(a: number, fa: number, da: number, b: number, fb: number, db: number): number {
  const d1 = da + db - 3 * (fa - fb) / (a - b);
  const disc = d1 * d1 - da * db;
  if (!(disc >= 0)) return NaN;
  const d2 = Math.sign(b - a) * Math.sqrt(disc);
  return b - (b - a) * (db + d2 - d1) / (db - da + 2 * d2);
}

/** Step length along d satisfying f(x+αd) ≤ f + c1 α g·d and |g(x+αd)·d| ≤ c2 |g·d| (N&W Alg. 3.5/3.6). */
function strongWolfe(fn: Objective, x: Float64Array, f0: number, g0: Float64Array, d: Float64Array, dg0: number,
  alpha1: number, c1: number, c2: number, maxEvals = 40): LineSearchResult {
  const n = x.length;
  let evaluations = 0;
  const phi = (a: number) => {
    const xa = new Float64Array(n), ga = new Float64Array(n);
    for (let i = 0; i < n; i++) xa[i] = x[i]! + a * d[i]!;
    evaluations++;
    const fa = fn(xa, ga);
    return { a, f: fa, dg: dot(ga, d), x: xa, g: ga };
  };
  type Pt = ReturnType<typeof phi>;
  const done = (p: Pt): LineSearchResult => ({ ok: true, x: p.x, f: p.f, g: p.g, evaluations });
  const fail = (): LineSearchResult => ({ ok: false, x, f: f0, g: g0, evaluations });
  const zoom = (lo: { a: number; f: number; dg: number }, hi: { a: number; f: number; dg: number }): LineSearchResult => {
    while (evaluations < maxEvals) {
      const lo_ = Math.min(lo.a, hi.a), hi_ = Math.max(lo.a, hi.a), w = hi_ - lo_;
      if (w <= 1e-16 * Math.max(1, hi_)) return fail();
      let a = cubicMin(lo.a, lo.f, lo.dg, hi.a, hi.f, hi.dg);
      // Safeguard: keep the trial inside the middle of the bracket, else bisect.
      if (!Number.isFinite(a) || a < lo_ + 0.1 * w || a > hi_ - 0.1 * w) a = (lo.a + hi.a) / 2;
      const p = phi(a);
      if (!Number.isFinite(p.f) || p.f > f0 + c1 * a * dg0 || p.f >= lo.f) hi = p;
      else {
        if (Math.abs(p.dg) <= -c2 * dg0) return done(p);
        if (p.dg * (hi.a - lo.a) >= 0) hi = lo;
        lo = p;
      }
    }
    return fail();
  };
  let prev = { a: 0, f: f0, dg: dg0 };
  let a = alpha1;
  for (let i = 0; evaluations < maxEvals; i++) {
    const p = phi(a);
    // A non-finite value means we overshot into overflow: treat as "too far" and bracket.
    if (!Number.isFinite(p.f) || p.f > f0 + c1 * a * dg0 || (i > 0 && p.f >= prev.f)) {
      if (!Number.isFinite(p.f)) { a = (prev.a + a) / 2; if (a - prev.a < 1e-20) return fail(); continue; }
      return zoom(prev, p);
    }
    if (Math.abs(p.dg) <= -c2 * dg0) return done(p);
    if (p.dg >= 0) return zoom(p, prev);
    prev = p;
    a *= 2;
  }
  return fail();
}
