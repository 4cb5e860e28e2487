// Measurements of a trained toy model's W [m][n] (rows are hidden dimensions, column i is feature
// W_i), all from Elhage et al. 2022: feature norms and the superposition measure (§2, "the
// visualization"), feature dimensionality D_i and dimensions per feature (§4, "Feature
// Dimensionality"), and the geometry: features grouped into polytopes (§4, "The Geometry of
// Superposition"). Pure functions of plain arrays; no tensors, no training, no printing.

/** Column i of W as a vector in the hidden space. */
const column = (W: readonly (readonly number[])[], i: number): number[] => W.map((row) => row[i]!);
const dot = (a: readonly number[], b: readonly number[]): number => a.reduce((s, v, k) => s + v * b[k]!, 0);

/** ‖W_i‖ for every feature (§2: "the length of each feature's embedding"). */
export function featureNorms(W: readonly (readonly number[])[]): number[] {
  const n = W[0]?.length ?? 0;
  return Array.from({ length: n }, (_, i) => Math.sqrt(dot(column(W, i), column(W, i))));
}

/** WᵀW [n][n]: the Gram matrix of feature directions, the paper's signature heatmap (§2). */
export function gram(W: readonly (readonly number[])[]): number[][] {
  const n = W[0]?.length ?? 0, cols = Array.from({ length: n }, (_, i) => column(W, i));
  return cols.map((a) => cols.map((b) => dot(a, b)));
}

/** Σ_{j≠i} (Ŵ_i·W_j)²: how much other features share feature i's direction (§2); 0 for a zero W_i. */
export function superpositionMeasure(W: readonly (readonly number[])[]): number[] {
  const G = gram(W);
  return G.map((row, i) => {
    const ni = Math.sqrt(row[i]!);
    if (ni === 0) return 0;
    return row.reduce((s, g, j) => (j === i ? s : s + (g / ni) ** 2), 0);
  });
}

/**
 * Feature dimensionality D_i = ‖W_i‖² / Σ_j (Ŵ_i·W_j)² = ‖W_i‖⁴ / Σ_j (W_i·W_j)² (§4): the fraction
 * of a dimension feature i gets; 1 for a dedicated dimension, 1/2 in an antipodal pair, 2/5 in a
 * pentagon. A feature with W_i = 0 gets 0 (it is not represented).
 */
export function featureDimensionality(W: readonly (readonly number[])[]): number[] {
  return gram(W).map((row, i) => {
    const num = row[i]! ** 2, den = row.reduce((s, g) => s + g * g, 0);
    return den === 0 ? 0 : num / den;
  });
}

/** m / ‖W‖_F²: hidden dimensions per embedded feature (§4, "dimensions per feature"). */
export function dimensionsPerFeature(W: readonly (readonly number[])[]): number {
  const fro = W.reduce((s, row) => s + row.reduce((t, v) => t + v * v, 0), 0);
  return fro === 0 ? Infinity : W.length / fro;
}

/** Features counted as represented: ‖W_i‖ above a threshold (0.5; trained norms sit near 0 or 1). */
export function representedFeatures(W: readonly (readonly number[])[], threshold = 0.5): number[] {
  return featureNorms(W).flatMap((v, i) => (v > threshold ? [i] : []));
}

/** The fractions D_i sticks to (§4, Figure "feature dimensionality"), with the structure that gives each. */
export const STICKY_FRACTIONS: readonly { value: number; label: string }[] = [
  { value: 1, label: "dedicated dimension" },
  { value: 3 / 4, label: "tetrahedron" },
  { value: 2 / 3, label: "triangle" },
  { value: 1 / 2, label: "antipodal pair" },
  { value: 2 / 5, label: "pentagon" },
  { value: 3 / 8, label: "square antiprism" },
];

/** The sticky fraction within tol of D, if any. */
export function nearestFraction(D: number, tol = 0.04): { value: number; label: string } | undefined {
  let best: { value: number; label: string } | undefined, bestErr = Infinity;
  for (const f of STICKY_FRACTIONS) { const e = Math.abs(D - f.value); if (e < bestErr) { bestErr = e; best = f; } }
  return bestErr <= tol ? best : undefined;
}

export interface Polytope {
  features: number[];
  /** Σ D_i over the group: the hidden dimensions it occupies (D sums to a tegum factor's dimension, §4). */
  dims: number;
  meanD: number;
  /** e.g. "pentagon (5 features in 2 dims)" when size and dims match a known shape, else "k features in d dims". */
  shape: string;
}

const SHAPES: Record<string, string> = { "1/1": "dedicated dimension", "2/1": "antipodal pair", "3/2": "triangle", "4/3": "tetrahedron", "5/2": "pentagon", "8/3": "square antiprism", "4/2": "square" };

/**
 * Group represented features into polytopes: features whose directions interfere (|cos| > minCos)
 * are joined, and each connected group is one tegum factor (§4: the space splits into orthogonal
 * subspaces, each holding one polytope). Its dimension is Σ D_i over the group, rounded.
 */
export function polytopes(W: readonly (readonly number[])[], opts: { threshold?: number; minCos?: number } = {}): Polytope[] {
  const rep = representedFeatures(W, opts.threshold ?? 0.5), G = gram(W), D = featureDimensionality(W);
  const minCos = opts.minCos ?? 0.2;
  const parent = new Map(rep.map((i) => [i, i]));
  const find = (i: number): number => { let r = i; while (parent.get(r) !== r) r = parent.get(r)!; return r; };
  for (const i of rep) for (const j of rep) {
    if (j <= i) continue;
    const cos = G[i]![j]! / Math.sqrt(G[i]![i]! * G[j]![j]!);
    if (Math.abs(cos) > minCos) parent.set(find(i), find(j));
  }
  const groups = new Map<number, number[]>();
  for (const i of rep) { const r = find(i); groups.set(r, [...(groups.get(r) ?? []), i]); }
  return [...groups.values()].map((features) => {
    const sumD = features.reduce((s, i) => s + D[i]!, 0), dims = Math.round(sumD);
    const name = SHAPES[`${features.length}/${dims}`];
    const desc = `${features.length} feature${features.length > 1 ? "s" : ""} in ${dims} dim${dims === 1 ? "" : "s"}`;
    return { features, dims: sumD, meanD: sumD / features.length, shape: name ? `${name} (${desc})` : desc };
  }).sort((a, b) => a.features[0]! - b.features[0]!);
}

export interface InstanceAnalysis {
  norms: number[];
  superposition: number[];
  dimensionality: number[];
  dimsPerFeature: number;
  represented: number;
  /** Represented features with ‖W_i‖ > 0.5 that share their direction (superposition > 0.1). */
  inSuperposition: number;
  polytopes: Polytope[];
}

export function analyse(W: readonly (readonly number[])[]): InstanceAnalysis {
  const norms = featureNorms(W), sup = superpositionMeasure(W);
  return {
    norms,
    superposition: sup,
    dimensionality: featureDimensionality(W),
    dimsPerFeature: dimensionsPerFeature(W),
    represented: norms.filter((v) => v > 0.5).length,
    inSuperposition: norms.filter((v, i) => v > 0.5 && sup[i]! > 0.1).length,
    polytopes: polytopes(W),
  };
}
