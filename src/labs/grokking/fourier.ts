// Fourier analysis of a modular-addition transformer (Nanda et al. 2023, §4–5): the Fourier basis over
// Z_p, the embedding's norm per frequency, key frequencies, the fraction of logit variance explained
// by cos(w_k(a+b−c)), the 2D Fourier spectrum of the logits and neurons, and the restricted and
// excluded losses (§5.1). Pure arithmetic on plain Float64Arrays (p ≤ a few hundred), so it runs on any
// backend and is easy to check; evaluate.ts produces the logits and activations it reads.

/** w_k = 2πk/p (§4, "key frequencies"). */
export const omega = (k: number, p: number) => (2 * Math.PI * k) / p;

export interface FourierBasis {
  p: number;
  /** Rows are basis vectors over x = 0..p−1: [constant, cos w_1 x, sin w_1 x, …, cos w_K x, sin w_K x]; [p, p] row-major. */
  matrix: Float64Array;
  /** Label per row: "const", "cos 1", "sin 1", … */
  labels: string[];
  /** Frequency per row (0 for the constant). */
  freq: number[];
}

/**
 * The Fourier basis of §4 (Appendix "Fourier basis"): the constant 1/√p, then √(2/p)·cos(w_k x) and
 * √(2/p)·sin(w_k x) for k = 1..(p−1)/2, orthonormal for odd p.
 */
export function fourierBasis(p: number): FourierBasis {
  if (!(Number.isInteger(p) && p >= 3 && p % 2 === 1)) throw new RangeError(`fourierBasis: p must be an odd integer ≥ 3, got ${p}`);
  const m = new Float64Array(p * p);
  const labels = ["const"], freq = [0];
  for (let x = 0; x < p; x++) m[x] = 1 / Math.sqrt(p);
  const s = Math.sqrt(2 / p);
  for (let k = 1; k <= (p - 1) / 2; k++) {
    const rc = 2 * k - 1, rs = 2 * k;
    for (let x = 0; x < p; x++) { m[rc * p + x] = s * Math.cos(omega(k, p) * x); m[rs * p + x] = s * Math.sin(omega(k, p) * x); }
    labels.push(`cos ${k}`, `sin ${k}`); freq.push(k, k);
  }
  return { p, matrix: m, labels, freq };
}

/** C = F X for X [p, n] row-major: the Fourier coefficients of each column. */
export function fourierTransform(F: FourierBasis, X: Float64Array, n: number): Float64Array {
  const { p, matrix } = F, out = new Float64Array(p * n);
  for (let r = 0; r < p; r++) for (let x = 0; x < p; x++) {
    const f = matrix[r * p + x]!;
    if (f === 0) continue;
    for (let j = 0; j < n; j++) out[r * n + j]! += f * X[x * n + j]!;
  }
  return out;
}

/**
 * ‖W_E projected on frequency k‖² for k = 0..(p−1)/2 (§4.1, Figure 3 left: the embedding is sparse in
 * the Fourier basis). embed is the residue tokens' embeddings [p, d_model].
 */
export function frequencyNorms(F: FourierBasis, embed: Float64Array, dModel: number): number[] {
  const C = fourierTransform(F, embed, dModel);
  const out = new Array<number>((F.p + 1) / 2).fill(0);
  for (let r = 0; r < F.p; r++) for (let j = 0; j < dModel; j++) out[F.freq[r]!]! += C[r * dModel + j]! ** 2;
  return out;
}

/**
 * Key frequencies from per-frequency norms (index 0 = constant, ignored): sort the rest by norm and cut
 * at the largest ratio between consecutive norms among the top maxKey + 1, since a grokked embedding's
 * key frequencies stand orders of magnitude above the rest (§4.1).
 */
export function keyFrequencies(norms: readonly number[], maxKey = 10): number[] {
  const ks = norms.map((v, k) => [k, v] as const).filter(([k]) => k > 0).sort((a, b) => b[1] - a[1]);
  let best = 1, bestRatio = -Infinity;
  for (let n = 1; n <= Math.min(maxKey, ks.length - 1); n++) {
    const r = ks[n - 1]![1] / Math.max(ks[n]![1], 1e-300);
    if (r > bestRatio) { bestRatio = r; best = n; }
  }
  return ks.slice(0, best).map(([k]) => k).sort((a, b) => a - b);
}

/** Share of Σ_k norms[k] (all frequencies, constant included) held by the given frequencies. */
export function normFraction(norms: readonly number[], keys: readonly number[]): number {
  const total = norms.reduce((s, v) => s + v, 0);
  return keys.reduce((s, k) => s + norms[k]!, 0) / total;
}

/** M[s, c] = Σ_{a+b ≡ s} L[a, b, c]: the logits summed along each anti-diagonal. logits [p², p] with row a·p+b. */
function antiDiagonalSums(logits: Float64Array, p: number): Float64Array {
  const M = new Float64Array(p * p);
  for (let a = 0; a < p; a++) for (let b = 0; b < p; b++) {
    const s = (a + b) % p, row = (a * p + b) * p;
    for (let c = 0; c < p; c++) M[s * p + c]! += logits[row + c]!;
  }
  return M;
}

/** Logits with each (a, b) row's mean over outputs c removed (softmax ignores it). */
export function centreRows(logits: Float64Array, p: number): Float64Array {
  const out = new Float64Array(logits.length);
  for (let r = 0; r < p * p; r++) {
    let m = 0;
    for (let c = 0; c < p; c++) m += logits[r * p + c]!;
    m /= p;
    for (let c = 0; c < p; c++) out[r * p + c] = logits[r * p + c]! - m;
  }
  return out;
}

export interface LogitFit {
  /** Per key frequency k: α_k, the coefficient of cos(w_k(a+b−c)) in the logits (§4.2, eq. "logits ≈ Σ α_k cos(w_k(a+b−c))"). */
  alpha: Map<number, number>;
  /** Fraction of the row-centred logits' squared norm that Σ_k α_k cos(w_k(a+b−c)) explains. */
  varianceExplained: number;
  /** Per frequency k = 1..(p−1)/2 (index k): the fraction explained by that k's term alone. */
  perFrequency: number[];
}

/**
 * §4.2: fit the centred logits L[a, b, c] by Σ_k α_k cos(w_k(a+b−c)). The terms are orthogonal over the
 * full (a, b, c) grid with squared norm p³/2, so α_k = ⟨L, cos(w_k(a+b−c))⟩ / (p³/2), and the inner product
 * reduces to anti-diagonal sums: ⟨L, v_k⟩ = Σ_{s,c} M[s, c] cos(w_k(s−c)).
 */
export function fitLogits(logits: Float64Array, p: number, keys: readonly number[]): LogitFit {
  const L = centreRows(logits, p);
  let total = 0;
  for (const v of L) total += v * v;
  const M = antiDiagonalSums(L, p);
  const perFrequency = [0];
  for (let k = 1; k <= (p - 1) / 2; k++) {
    let ip = 0;
    for (let s = 0; s < p; s++) for (let c = 0; c < p; c++) ip += M[s * p + c]! * Math.cos(omega(k, p) * (s - c));
    perFrequency.push((ip * ip) / (p ** 3 / 2) / total); // ‖projection‖² = ⟨L, v⟩² / ‖v‖²
  }
  const alpha = new Map<number, number>();
  for (const k of keys) {
    let ip = 0;
    for (let s = 0; s < p; s++) for (let c = 0; c < p; c++) ip += M[s * p + c]! * Math.cos(omega(k, p) * (s - c));
    alpha.set(k, ip / (p ** 3 / 2));
  }
  return { alpha, perFrequency, varianceExplained: keys.reduce((s, k) => s + perFrequency[k]!, 0) };
}

/**
 * Share of the row-centred logits' squared norm in a bias over outputs that is the same for every
 * (a, b): each output c's mean over all pairs. A grokked circuit has none (it cannot help); in a small
 * model it is part of what the cos(w_k(a+b−c)) terms leave unexplained.
 */
export function outputBiasShare(logits: Float64Array, p: number): number {
  const L = centreRows(logits, p), col = new Float64Array(p);
  let total = 0;
  for (let r = 0; r < p * p; r++) for (let c = 0; c < p; c++) { const v = L[r * p + c]!; col[c]! += v / (p * p); total += v * v; }
  return col.reduce((s, m) => s + p * p * m * m, 0) / total;
}

/**
 * The logits' components along cos(w_k(a+b)) and sin(w_k(a+b)) for the given frequencies, per output c
 * (§5.1: the directions the restricted loss keeps and the excluded loss removes). Returns [p², p].
 */
export function sumDirectionComponents(logits: Float64Array, p: number, keys: readonly number[]): Float64Array {
  const M = antiDiagonalSums(logits, p);
  const comp = new Float64Array(p * p); // by s = (a+b) mod p, then c
  for (const k of keys) {
    const w = omega(k, p);
    for (let c = 0; c < p; c++) {
      // Over all p² pairs, Σ cos²(w(a+b)) = Σ sin² = p²/2 for 0 < k < p/2.
      let ic = 0, is = 0;
      for (let s = 0; s < p; s++) { ic += M[s * p + c]! * Math.cos(w * s); is += M[s * p + c]! * Math.sin(w * s); }
      ic /= p * p / 2; is /= p * p / 2;
      for (let s = 0; s < p; s++) comp[s * p + c]! += ic * Math.cos(w * s) + is * Math.sin(w * s);
    }
  }
  const out = new Float64Array(p * p * p);
  for (let a = 0; a < p; a++) for (let b = 0; b < p; b++) out.set(comp.subarray(((a + b) % p) * p, ((a + b) % p + 1) * p), (a * p + b) * p);
  return out;
}

/** Mean cross-entropy of logits [p², p] against (a+b) mod p over the pairs (a·p+b) chosen by keep. */
export function crossEntropyOn(logits: Float64Array, p: number, keep: (pair: number) => boolean): number {
  let sum = 0, n = 0;
  for (let r = 0; r < p * p; r++) {
    if (!keep(r)) continue;
    let mx = -Infinity;
    for (let c = 0; c < p; c++) mx = Math.max(mx, logits[r * p + c]!);
    let z = 0;
    for (let c = 0; c < p; c++) z += Math.exp(logits[r * p + c]! - mx);
    const label = (Math.floor(r / p) + (r % p)) % p;
    sum += mx + Math.log(z) - logits[r * p + label]!;
    n++;
  }
  return sum / n;
}

export interface ProgressMeasures {
  /** §5.1 restricted loss: logits keep only the key frequencies' cos/sin(w_k(a+b)) components (plus each output's mean over pairs); on all pairs. */
  restrictedLoss: number;
  /** §5.1 excluded loss: those components removed; on the training pairs (as in the paper). */
  excludedLoss: number;
  /** Excluded loss on the held-out pairs, for reference. */
  excludedTestLoss: number;
}

export function progressMeasures(logits: Float64Array, p: number, keys: readonly number[], trainSet: ReadonlySet<number>): ProgressMeasures {
  const key = sumDirectionComponents(logits, p, keys);
  // Each output c's mean over pairs: the constant (a+b)-frequency, kept in the restricted logits.
  const colMean = new Float64Array(p);
  for (let r = 0; r < p * p; r++) for (let c = 0; c < p; c++) colMean[c]! += logits[r * p + c]! / (p * p);
  const restricted = new Float64Array(logits.length), excluded = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) { restricted[i] = key[i]! + colMean[i % p]!; excluded[i] = logits[i]! - key[i]!; }
  return {
    restrictedLoss: crossEntropyOn(restricted, p, () => true),
    excludedLoss: crossEntropyOn(excluded, p, (r) => trainSet.has(r)),
    excludedTestLoss: crossEntropyOn(excluded, p, (r) => !trainSet.has(r)),
  };
}

/** 2D Fourier coefficients F A Fᵀ of a [p, p] function of (a, b). */
export function fourier2d(F: FourierBasis, A: Float64Array): Float64Array {
  const p = F.p;
  const FA = fourierTransform(F, A, p); // [freq_a, b]
  const out = new Float64Array(p * p);
  for (let i = 0; i < p; i++) for (let j = 0; j < p; j++) {
    let s = 0;
    for (let b = 0; b < p; b++) s += FA[i * p + b]! * F.matrix[j * p + b]!;
    out[i * p + j] = s;
  }
  return out;
}

/**
 * ‖·‖ of the logits' 2D Fourier coefficients over (a, b), taken over outputs c (§4.1, Figure 3 right):
 * [p, p] indexed by basis rows (const, cos 1, sin 1, …) for a and b. Energy sits on the key frequencies.
 */
export function logitFourierNorms(F: FourierBasis, logits: Float64Array): Float64Array {
  const p = F.p, acc = new Float64Array(p * p), A = new Float64Array(p * p);
  const L = centreRows(logits, p);
  for (let c = 0; c < p; c++) {
    for (let r = 0; r < p * p; r++) A[r] = L[r * p + c]!;
    const C = fourier2d(F, A);
    for (let i = 0; i < p * p; i++) acc[i]! += C[i]! ** 2;
  }
  return acc.map(Math.sqrt);
}

export interface NeuronClusters {
  /** Per neuron: the frequency whose terms (cos/sin w_k a, b and their products) explain most of its non-constant variance. */
  freq: number[];
  /** Per neuron: that fraction. */
  fraction: number[];
}

/**
 * §4.3: each MLP neuron's activation over (a, b) at "=" is well explained by a single
 * frequency. acts is [p², d_mlp] with row a·p+b.
 */
export function neuronFrequencies(F: FourierBasis, acts: Float64Array, dMlp: number): NeuronClusters {
  const p = F.p, A = new Float64Array(p * p), freq: number[] = [], fraction: number[] = [];
  const K = (p - 1) / 2;
  for (let n = 0; n < dMlp; n++) {
    for (let r = 0; r < p * p; r++) A[r] = acts[r * dMlp + n]!;
    const C = fourier2d(F, A);
    const byK = new Array<number>(K + 1).fill(0);
    let total = 0;
    for (let i = 0; i < p; i++) for (let j = 0; j < p; j++) {
      if (i === 0 && j === 0) continue;
      const e = C[i * p + j]! ** 2, fi = F.freq[i]!, fj = F.freq[j]!;
      total += e;
      // A component belongs to frequency k when both axes are k or constant.
      if (fi === 0 || fj === 0 || fi === fj) byK[fi || fj]! += e;
    }
    let best = 1;
    for (let k = 2; k <= K; k++) if (byK[k]! > byK[best]!) best = k;
    freq.push(best); fraction.push(total > 0 ? byK[best]! / total : 0);
  }
  return { freq, fraction };
}
