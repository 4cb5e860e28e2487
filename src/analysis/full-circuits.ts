// Readable views of the full QK and OV circuits (Elhage et al. 2021): the circuits restricted to a
// handful of tokens (or positions), small enough to draw as labelled heatmaps, and the OV circuit's
// eigenvalue copying score. Nothing here forms a d_vocab × d_vocab matrix: the token subsets are
// picked from W_E and W_U before multiplying, and the copying score takes the eigenvalues of a
// d_head × d_head matrix with the same nonzero spectrum as the full OV circuit.
import { indexSelect } from "../tensor/ops/movement.js";
import { matmul } from "../tensor/ops/linalg.js";
import { noGrad } from "../tensor/autodiff.js";
import { ShapeError } from "../tensor/shape.js";
import { FactoredMatrix } from "./factored-matrix.js";
import { ovCircuit, qkCircuit, type CircuitModel } from "./circuits.js";

/**
 * The full OV circuit W_E W_V W_O W_U or the full QK circuit W_E W_Q W_Kᵀ W_Eᵀ per head of a layer,
 * restricted to the given token ids: [n_heads, rows.length, cols.length], entry [h, i, j] = the
 * circuit's entry for (rows[i], cols[j]) (OV: attended token → logit; QK: query token → key token).
 */
export function tokenCircuit(model: CircuitModel, layer: number, kind: "ov" | "qk", rows: readonly number[], cols: readonly number[] = rows): FactoredMatrix {
  return noGrad(() => {
    const E = model.embed.W_E; // [d_vocab, d_model]
    const left = indexSelect(E, 0, rows);
    if (kind === "ov") {
      const ov = ovCircuit(model, layer);
      return new FactoredMatrix(matmul(left, ov.A), matmul(ov.B, indexSelect(model.unembed.W_U, 1, cols)));
    }
    const qk = qkCircuit(model, layer);
    return new FactoredMatrix(matmul(left, qk.A), matmul(qk.B, indexSelect(E, 0, cols).transpose(-2, -1)));
  });
}

/** The positional QK circuit W_pos W_Q W_Kᵀ W_posᵀ over the first n positions: [n_heads, n (query), n (key)]. */
export function positionalQK(model: CircuitModel, layer: number, n: number): FactoredMatrix {
  if (!model.pos_embed) throw new ShapeError(`positional QK circuit: the model has no learned positions (positional_embedding_type = "${model.cfg.positional_embedding_type}")`);
  if (!Number.isInteger(n) || n < 1 || n > model.cfg.n_ctx) throw new RangeError(`positional QK circuit: n = ${n} is outside [1, n_ctx = ${model.cfg.n_ctx}]`);
  const P = indexSelect(model.pos_embed.W_pos, 0, Array.from({ length: n }, (_, i) => i));
  const qk = qkCircuit(model, layer);
  return noGrad(() => new FactoredMatrix(matmul(P, qk.A), matmul(qk.B, P.transpose(-2, -1))));
}

/**
 * Elhage et al.'s copying score of each square matrix of a batch: Σ λ / Σ |λ| over its eigenvalues
 * (the sum is real: complex ones come in conjugate pairs). 1 when every eigenvalue is positive (the
 * circuit raises the logit of the token it reads, copying), −1 when every one is negative; 0 for a
 * zero matrix. From FactoredMatrix.eigenvalues, so only mdim × mdim.
 */
export function copyingScore(m: FactoredMatrix): number[] {
  const { re, im } = m.eigenvalues();
  const k = m.mdim, R = re.toArray(), I = im.toArray();
  return Array.from({ length: R.length / k }, (_, b) => {
    let sum = 0, abs = 0;
    for (let i = b * k; i < (b + 1) * k; i++) { sum += R[i]!; abs += Math.hypot(R[i]!, I[i]!); }
    return abs > 0 ? sum / abs : 0;
  });
}

/**
 * The copying score of every head's full OV circuit W_E W_V W_O W_U, [layer][head]. Its nonzero
 * eigenvalues are those of the cyclic product W_V W_O (W_U W_E): W_U W_E [d_model, d_model] is
 * formed once, and each head needs only the d_head × d_head matrix W_O W_U W_E W_V.
 */
export function copyingScores(model: CircuitModel): number[][] {
  const UE = noGrad(() => matmul(model.unembed.W_U, model.embed.W_E)); // [d_model, d_model]
  return Array.from({ length: model.cfg.n_layers }, (_, l) => {
    const ov = ovCircuit(model, l);
    return copyingScore(noGrad(() => new FactoredMatrix(ov.A, matmul(ov.B, UE))));
  });
}
