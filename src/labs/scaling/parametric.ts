// The parametric scaling law L(N, D) = E + A/N^α + B/D^β fitted as Hoffmann et al. 2022 ("Training
// Compute-Optimal Large Language Models") Approach 3, Appendix D.2: minimise
//   Σ_i Huber_δ( LSE(a − α log N_i, b − β log D_i, e) − log L_i ),  δ = 1e-3,
// over θ = (a, b, e, α, β) with A = e^a, B = e^b, E = e^e, by L-BFGS from a grid of initialisations,
// keeping the best. Also the compute-optimal allocation (Appendix D.2, eq. 4) and percentile
// bootstrap intervals (as Besiroglu et al. 2024, "Chinchilla Scaling: A replication attempt").
// Plain float64: five parameters and a few hundred points need no tensor engine.
import { Rng } from "../../tensor/rng.js";
import { lbfgs, type LbfgsOptions, type LbfgsStatus } from "./lbfgs.js";

/** Training runs: parameters N, tokens D, final loss L (all > 0). */
export interface ScalingData { N: readonly number[]; D: readonly number[]; L: readonly number[] }

/** θ in the order the optimiser sees it: [a, b, e, α, β]. */
export type Theta = [a: number, b: number, e: number, alpha: number, beta: number];

export interface ScalingLaw { E: number; A: number; B: number; alpha: number; beta: number }

export const HUBER_DELTA = 1e-3; // Hoffmann et al. 2022, Appendix D.2

export const lawFromTheta = (t: readonly number[]): ScalingLaw => ({ A: Math.exp(t[0]!), B: Math.exp(t[1]!), E: Math.exp(t[2]!), alpha: t[3]!, beta: t[4]! });
export const thetaFromLaw = (l: ScalingLaw): Theta => [Math.log(l.A), Math.log(l.B), Math.log(l.E), l.alpha, l.beta];

/** L(N, D) = E + A/N^α + B/D^β (Hoffmann et al. 2022, eq. 2). */
export const predictLoss = (l: ScalingLaw, N: number, D: number) => l.E + l.A / Math.pow(N, l.alpha) + l.B / Math.pow(D, l.beta);

/** Huber loss: r²/2 for |r| ≤ δ, δ(|r| − δ/2) beyond (Huber 1964; the form scipy.special.huber uses). */
export const huber = (r: number, delta: number) => (Math.abs(r) <= delta ? 0.5 * r * r : delta * (Math.abs(r) - 0.5 * delta));

/**
 * The Appendix D.2 objective and its analytic gradient, over the points idx (default all; repeats
 * allowed, which is how the bootstrap resamples). Returns f(θ) and a function writing ∇f into grad.
 */
export function makeObjective(data: ScalingData, delta = HUBER_DELTA, idx?: readonly number[]) {
  const n = idx ? idx.length : data.L.length;
  const logN = new Float64Array(n), logD = new Float64Array(n), logL = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    const i = idx ? idx[k]! : k;
    logN[k] = Math.log(data.N[i]!); logD[k] = Math.log(data.D[i]!); logL[k] = Math.log(data.L[i]!);
  }
  return (t: Float64Array, grad: Float64Array): number => {
    const a = t[0]!, b = t[1]!, e = t[2]!, al = t[3]!, be = t[4]!;
    let f = 0, ga = 0, gb = 0, ge = 0, gal = 0, gbe = 0;
    for (let k = 0; k < n; k++) {
      const u = a - al * logN[k]!, v = b - be * logD[k]!;
      const mx = Math.max(u, v, e);
      const pu = Math.exp(u - mx), pv = Math.exp(v - mx), pe = Math.exp(e - mx), z = pu + pv + pe;
      // log L̂ = LSE(u, v, e) = log(A/N^α + B/D^β + E), computed stably.
      const r = mx + Math.log(z) - logL[k]!;
      f += huber(r, delta);
      // dHuber/dr = clamp(r, −δ, δ); dLSE/du = softmax weight of u, etc.
      const h = r > delta ? delta : r < -delta ? -delta : r;
      const wu = h * pu / z, wv = h * pv / z;
      ga += wu; gb += wv; ge += h * pe / z;
      gal -= wu * logN[k]!; gbe -= wv * logD[k]!;
    }
    grad[0] = ga; grad[1] = gb; grad[2] = ge; grad[3] = gal; grad[4] = gbe;
    return f;
  };
}

/** The initialisation grid of Appendix D.2: α, β ∈ {0, 0.5, …, 2}, e ∈ {−1, −.5, …, 1}, a, b ∈ {0, 5, …, 25}. */
export function hoffmannGrid(): Theta[] {
  const range = (lo: number, hi: number, step: number) => Array.from({ length: Math.round((hi - lo) / step) + 1 }, (_, i) => lo + i * step);
  const out: Theta[] = [];
  for (const a of range(0, 25, 5)) for (const b of range(0, 25, 5)) for (const e of range(-1, 1, 0.5))
    for (const al of range(0, 2, 0.5)) for (const be of range(0, 2, 0.5)) out.push([a, b, e, al, be]);
  return out;
}

export interface FitOptions {
  delta?: number; // e.g. 1e-3
  /** Starting points; default the Hoffmann grid (4,500 starts). */
  inits?: readonly (readonly number[])[];
  /** Options for the final, tight L-BFGS runs. */
  lbfgs?: LbfgsOptions;
  /** Screening: every start first runs this loose L-BFGS; the `polish` best are then run to `lbfgs`. */
  screen?: LbfgsOptions;
  polish?: number; // e.g. 8
}

export interface ParametricFit {
  law: ScalingLaw;
  theta: Theta;
  /** The objective at the optimum (sum of Huber losses). */
  objective: number;
  status: LbfgsStatus;
  iterations: number;
  /** How many starts ran, and how many screened to within 1e-6 (relative) of the best objective. */
  starts: number;
  startsAtBest: number;
}

const LBFGS_TIGHT: LbfgsOptions = { gtol: 1e-12, ftol: 1e-15, maxIter: 2000, memory: 10 };
/** Screened starts within this relative distance of the best objective count as reaching it. */
export const SAME_OBJECTIVE = 1e-6;
export const LBFGS_SCREEN: LbfgsOptions = { gtol: 1e-7, ftol: 1e-9, maxIter: 40, memory: 10 };

/**
 * Fit L(N, D) by L-BFGS from every start, keeping the lowest objective (Appendix D.2). To keep 4,500
 * starts affordable each start first runs a loose L-BFGS; the best `polish` distinct end points are
 * then run to tight tolerance. On the Chinchilla points this finds the same optimum (to 1e-8 in θ) as
 * running every start to tight tolerance, at a fraction of the cost.
 */
export function fitParametric(data: ScalingData, opts: FitOptions = {}, idx?: readonly number[]): ParametricFit {
  checkData(data);
  const fn = makeObjective(data, opts.delta ?? HUBER_DELTA, idx);
  const inits = opts.inits ?? hoffmannGrid();
  const screen = { ...LBFGS_SCREEN, ...opts.screen }, tight = { ...LBFGS_TIGHT, ...opts.lbfgs };
  // Exponents must stay positive for the law to decrease; an end point that wandered negative is discarded.
  const valid = (r: { x: Float64Array; f: number }) => r.x[3]! > 0 && r.x[4]! > 0 && Number.isFinite(r.f);
  const screened = inits.map((x0) => lbfgs(fn, x0, screen)).filter(valid).sort((p, q) => p.f - q.f);
  if (screened.length === 0) throw new Error("fitParametric: no start converged to positive exponents");
  const fScreen = screened[0]!.f;
  const startsAtBest = screened.filter((r) => r.f <= fScreen + SAME_OBJECTIVE * Math.abs(fScreen)).length;
  // Polish distinct candidates (end points closer than 1e-3 in every coordinate are the same basin).
  const cands: Float64Array[] = [];
  for (const r of screened) {
    if (cands.length >= (opts.polish ?? 8)) break;
    if (!cands.some((c) => c.every((v, i) => Math.abs(v - r.x[i]!) < 1e-3))) cands.push(r.x);
  }
  let best: ReturnType<typeof lbfgs> | undefined;
  for (const c of cands) { const r = lbfgs(fn, c, tight); if (valid(r) && (!best || r.f < best.f)) best = r; }
  if (!best) throw new Error("fitParametric: polishing lost positive exponents");
  const theta = Array.from(best.x) as Theta;
  return { law: lawFromTheta(theta), theta, objective: best.f, status: best.status, iterations: best.iterations, starts: inits.length, startsAtBest };
}

/** Indices of all runs except the k with the highest loss (Besiroglu et al. 2024 drop 5 outliers this way). */
export function excludeHighestLoss(L: readonly number[], k: number): number[] {
  const order = L.map((_, i) => i).sort((p, q) => L[q]! - L[p]!);
  const drop = new Set(order.slice(0, k));
  return L.map((_, i) => i).filter((i) => !drop.has(i));
}

export function checkData(d: ScalingData): void {
  const n = d.L.length;
  if (d.N.length !== n || d.D.length !== n) throw new RangeError(`scaling data: N, D and L must have the same length (got ${d.N.length}, ${d.D.length}, ${n})`);
  if (n < 5) throw new RangeError(`scaling data: need at least 5 runs to fit 5 parameters, got ${n}`);
  for (let i = 0; i < n; i++) for (const [k, v] of [["N", d.N[i]!], ["D", d.D[i]!], ["L", d.L[i]!]] as const)
    if (!(v > 0) || !Number.isFinite(v)) throw new RangeError(`scaling data: ${k}[${i}] must be a positive finite number, got ${v}`);
}

/** Compute-optimal allocation for a law (Hoffmann et al. 2022, Appendix D.2, eq. 4, with C = 6ND). */
export interface Allocation {
  /** G = (αA / (βB))^{1/(α+β)}. */
  G: number;
  /** N_opt ∝ C^a with a = β/(α+β). */
  a: number;
  /** D_opt ∝ C^b with b = α/(α+β). */
  b: number;
  Nopt(C: number): number;
  Dopt(C: number): number;
  /** L(N_opt(C), D_opt(C)): the fitted compute-efficient frontier. */
  Lopt(C: number): number;
}

export function allocation(l: ScalingLaw): Allocation {
  const s = l.alpha + l.beta;
  const G = Math.pow((l.alpha * l.A) / (l.beta * l.B), 1 / s);
  const a = l.beta / s, b = l.alpha / s;
  const Nopt = (C: number) => G * Math.pow(C / 6, a);
  const Dopt = (C: number) => Math.pow(C / 6, b) / G;
  return { G, a, b, Nopt, Dopt, Lopt: (C) => predictLoss(l, Nopt(C), Dopt(C)) };
}

export interface Interval { estimate: number; lo: number; hi: number }

export interface BootstrapOptions {
  resamples?: number; // e.g. 200
  seed?: number; // e.g. 0
  /** Central interval level, e.g. 0.95 → 2.5th and 97.5th percentiles. */
  level?: number;
  delta?: number;
  /** Extra starting points besides the full-data optimum (default: a coarse sub-grid). */
  inits?: readonly (readonly number[])[];
  onProgress?: (done: number, total: number) => void;
}

export interface BootstrapResult {
  resamples: number;
  level: number;
  seed: number;
  intervals: { E: Interval; A: Interval; B: Interval; alpha: Interval; beta: Interval; a: Interval; b: Interval; G: Interval };
  /** Every resample's law, for users who want other statistics. */
  laws: ScalingLaw[];
}

/** Linear-interpolated quantile of sorted values (numpy's default "linear" method). */
export function quantile(sorted: readonly number[], q: number): number {
  const pos = (sorted.length - 1) * q, i = Math.floor(pos), frac = pos - i;
  return i + 1 < sorted.length ? sorted[i]! * (1 - frac) + sorted[i + 1]! * frac : sorted[i]!;
}

/** A coarse corner of the Appendix D.2 grid (2⁵ = 32 starts), added to the full-data optimum in bootstrap refits. */
export function coarseGrid(): Theta[] {
  const out: Theta[] = [];
  for (const a of [5, 20]) for (const b of [5, 20]) for (const e of [-0.5, 0.5]) for (const al of [0.5, 1]) for (const be of [0.5, 1]) out.push([a, b, e, al, be]);
  return out;
}

/**
 * Percentile bootstrap: resample the runs with replacement, refit, and take the central `level`
 * quantiles of each parameter. Each refit starts from the full-data optimum plus `inits` (default a
 * 32-point coarse grid), because running all 4,500 grid starts per resample would cost ~100× more;
 * resamples are near the full data, so their optima are near its optimum. `idx` restricts the pool.
 */
export function bootstrapParametric(data: ScalingData, full: ParametricFit, opts: BootstrapOptions = {}, idx?: readonly number[]): BootstrapResult {
  const R = opts.resamples ?? 200, seed = opts.seed ?? 0, level = opts.level ?? 0.95;
  const rng = new Rng(seed); // the engine's seeded generator, so runs repeat exactly
  const pool = idx ?? data.L.map((_, i) => i), n = pool.length;
  const inits = [full.theta, ...(opts.inits ?? coarseGrid())];
  const laws: ScalingLaw[] = [];
  for (let r = 0; r < R; r++) {
    const sample = Array.from({ length: n }, () => pool[rng.int(0, n)]!);
    laws.push(fitParametric(data, { inits, delta: opts.delta, polish: 2 }, sample).law);
    opts.onProgress?.(r + 1, R);
  }
  const fullAlloc = allocation(full.law);
  const allocs = laws.map(allocation);
  const q = (est: number, vals: number[]): Interval => {
    const s = vals.filter(Number.isFinite).sort((x, y) => x - y);
    return { estimate: est, lo: quantile(s, (1 - level) / 2), hi: quantile(s, 1 - (1 - level) / 2) };
  };
  const L = full.law;
  return {
    resamples: R, level, seed, laws,
    intervals: {
      E: q(L.E, laws.map((l) => l.E)), A: q(L.A, laws.map((l) => l.A)), B: q(L.B, laws.map((l) => l.B)),
      alpha: q(L.alpha, laws.map((l) => l.alpha)), beta: q(L.beta, laws.map((l) => l.beta)),
      a: q(fullAlloc.a, allocs.map((x) => x.a)), b: q(fullAlloc.b, allocs.map((x) => x.b)), G: q(fullAlloc.G, allocs.map((x) => x.G)),
    },
  };
}
