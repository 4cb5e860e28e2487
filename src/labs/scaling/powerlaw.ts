// Single-variable power laws as Kaplan et al. 2020 ("Scaling Laws for Neural Language Models", eqs.
// 1.1–1.3): L(X) = (X_c / X)^{α_X} for X ∈ {N, D, C}, fitted by least squares in log space:
// log L = α_X log X_c − α_X log X is a line in log X. Also the compute frontier (the lowest loss per
// compute bucket), the points on which L(C) is fitted (Kaplan Fig. 1 left; Hoffmann et al. 2022 Approach 1).

export interface PowerLaw {
  /** X_c in L = (X_c / X)^α. */
  Xc: number;
  alpha: number;
  /** R² of the line in log–log space. */
  r2: number;
  n: number;
}

/** Least-squares fit of log y = c0 + c1 log x; α = −c1, X_c = exp(c0 / α). */
export function fitPowerLaw(x: readonly number[], y: readonly number[]): PowerLaw {
  const n = x.length;
  if (n < 2 || y.length !== n) throw new RangeError(`fitPowerLaw: need ≥ 2 paired points, got ${n} and ${y.length}`);
  const lx = x.map(Math.log), ly = y.map(Math.log);
  if (!lx.concat(ly).every(Number.isFinite)) throw new RangeError("fitPowerLaw: x and y must be positive");
  const mx = lx.reduce((s, v) => s + v, 0) / n, my = ly.reduce((s, v) => s + v, 0) / n;
  let sxx = 0, sxy = 0, syy = 0;
  for (let i = 0; i < n; i++) { const dx = lx[i]! - mx, dy = ly[i]! - my; sxx += dx * dx; sxy += dx * dy; syy += dy * dy; }
  if (sxx === 0) throw new RangeError("fitPowerLaw: x does not vary");
  const c1 = sxy / sxx, c0 = my - c1 * mx;
  const alpha = -c1;
  return { Xc: Math.exp(c0 / alpha), alpha, r2: syy === 0 ? 1 : (sxy * sxy) / (sxx * syy), n };
}

export const evalPowerLaw = (p: PowerLaw, x: number) => Math.pow(p.Xc / x, p.alpha);

export interface Bucket { /** Geometric-mean compute of the bucket. */ C: number; members: number[]; /** Index of the lowest-loss run. */ best: number }

/**
 * Group runs into compute buckets of `width` decades (e.g. 0.25) and mark the lowest loss in each:
 * the empirical compute-efficient frontier.
 */
export function computeBuckets(C: readonly number[], L: readonly number[], width = 0.25, idx?: readonly number[]): Bucket[] {
  const byKey = new Map<number, number[]>();
  for (const i of idx ?? C.map((_, k) => k)) {
    const key = Math.floor(Math.log10(C[i]!) / width);
    (byKey.get(key) ?? byKey.set(key, []).get(key)!).push(i);
  }
  return [...byKey.entries()].sort((p, q) => p[0] - q[0]).map(([, members]) => ({
    C: Math.exp(members.reduce((s, i) => s + Math.log(C[i]!), 0) / members.length),
    members,
    best: members.reduce((b, i) => (L[i]! < L[b]! ? i : b), members[0]!),
  }));
}

export interface FrontierFits { buckets: Bucket[]; LC: PowerLaw; LN: PowerLaw; LD: PowerLaw }

/**
 * Kaplan-style fits on the frontier runs (one per compute bucket): L(C), and L(N), L(D) of the
 * compute-efficient runs. On Chinchilla-style sweeps N and D both change along the frontier, so L(N)
 * and L(D) here are the frontier's projections, not Kaplan's converged-model L(N) or data-limited L(D).
 */
export function frontierFits(run: { N: readonly number[]; D: readonly number[]; C: readonly number[]; L: readonly number[] }, width = 0.25, idx?: readonly number[]): FrontierFits {
  const buckets = computeBuckets(run.C, run.L, width, idx);
  if (buckets.length < 2) throw new RangeError("frontierFits: the runs span fewer than 2 compute buckets");
  const f = buckets.map((b) => b.best);
  return {
    buckets,
    LC: fitPowerLaw(f.map((i) => run.C[i]!), f.map((i) => run.L[i]!)),
    LN: fitPowerLaw(f.map((i) => run.N[i]!), f.map((i) => run.L[i]!)),
    LD: fitPowerLaw(f.map((i) => run.D[i]!), f.map((i) => run.L[i]!)),
  };
}
