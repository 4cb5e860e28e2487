// Synthetic activations with a known dictionary, for checking that training recovers it: nFeatures
// random unit directions in d dimensions (superposed when nFeatures > d), each active independently
// with probability p at a magnitude uniform in [0, 1]. Seeded, so a test is reproducible.
import { Rng } from "../tensor/rng.js";
import type { ActivationRows } from "./activations.js";

export interface SyntheticSpec { d: number; nFeatures: number; p: number; seed: number }

/** The true feature directions, [nFeatures][d], each of unit norm. */
export function syntheticFeatures(s: SyntheticSpec): Float64Array[] {
  const rng = new Rng(s.seed);
  return Array.from({ length: s.nFeatures }, () => {
    const v = Float64Array.from({ length: s.d }, () => rng.normal());
    const n = Math.hypot(...v);
    return v.map((x) => x / n);
  });
}

/** n rows of Σ_i a_i·feature_i, drawn with a generator seeded by (seed, chunk). */
export function syntheticRows(s: SyntheticSpec, features: readonly Float64Array[], n: number, chunk: number): ActivationRows {
  const rng = new Rng(s.seed * 7919 + 1 + chunk);
  const x = new Float32Array(n * s.d);
  for (let r = 0; r < n; r++) {
    for (const f of features) {
      if (rng.uniform() >= s.p) continue;
      const a = rng.uniform();
      for (let j = 0; j < s.d; j++) x[r * s.d + j]! += a * f[j]!;
    }
  }
  return { x, y: x, n, dIn: s.d, dOut: s.d };
}

/** For each true feature, the largest cosine similarity with any decoder row (W_dec [d_sae, d]). */
export function maxCosines(features: readonly Float64Array[], W_dec: ArrayLike<number>, dSae: number): number[] {
  const d = features[0]?.length ?? 0;
  const rows = Array.from({ length: dSae }, (_, i) => {
    const r = Array.from({ length: d }, (_, j) => Number(W_dec[i * d + j]));
    const n = Math.hypot(...r);
    return r.map((v) => (n > 0 ? v / n : 0));
  });
  return features.map((f) => Math.max(...rows.map((r) => r.reduce((s, v, j) => s + v * f[j]!, 0))));
}
