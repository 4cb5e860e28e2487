// The QK and OV circuits of attention heads and how heads compose (Elhage et al. 2021, "A
// Mathematical Framework for Transformer Circuits"), as FactoredMatrix so a d_model × d_model
// circuit of rank d_head is never formed. Rows act on the residual stream as row vectors, as in
// TransformerLens: scores = x_query W_Q W_Kᵀ x_keyᵀ, head output = x W_V W_O. Biases and LayerNorm
// are left out (fold LayerNorm into the weights first with processWeights for a faithful picture),
// and rotary models' QK circuits ignore the rotation.
import { indexSelect } from "../tensor/ops/movement.js";
import { matmul } from "../tensor/ops/linalg.js";
import { noGrad } from "../tensor/autodiff.js";
import { randn, zeros } from "../tensor/create.js";
import { Rng } from "../tensor/rng.js";
import { ShapeError, fmt } from "../tensor/shape.js";
import type { Tensor } from "../tensor/tensor.js";
import type { HookedTransformer } from "../model/transformer.js";
import { FactoredMatrix, mul, qr, slices, transposeMat, type Mat } from "./factored-matrix.js";

/** The parts of a model the circuits read. */
export type CircuitModel = Pick<HookedTransformer, "cfg" | "blocks" | "embed" | "pos_embed" | "unembed">;

function checkLayer(model: CircuitModel, layer: number): void {
  if (!Number.isInteger(layer) || layer < 0 || layer >= model.cfg.n_layers) throw new RangeError(`layer ${layer} is outside [0, n_layers = ${model.cfg.n_layers})`);
}

/** W_K or W_V [n_key_value_heads, d_model, d_head] repeated to one per query head (grouped-query attention). */
function perQueryHead(model: CircuitModel, W: Tensor): Tensor {
  const { n_heads: H, n_key_value_heads: Hkv } = model.cfg;
  if (Hkv === H) return W;
  return indexSelect(W, 0, Array.from({ length: H }, (_, h) => Math.floor(h / (H / Hkv))));
}


// Circuits stay in the weights' dtype (float32: the fast kernels); FactoredMatrix's norms, SVD and
// eigenvalues convert to float64.

/** W_Q W_Kᵀ per head: [n_heads, d_model (query side), d_model (key side)], factored through d_head. */
export function qkCircuit(model: CircuitModel, layer: number): FactoredMatrix {
  checkLayer(model, layer);
  const attn = model.blocks.at(layer).attn;
  return noGrad(() => new FactoredMatrix(attn.W_Q, perQueryHead(model, attn.W_K).transpose(-2, -1)));
}

/** W_V W_O per head: [n_heads, d_model (read), d_model (written)], factored through d_head. */
export function ovCircuit(model: CircuitModel, layer: number): FactoredMatrix {
  checkLayer(model, layer);
  const attn = model.blocks.at(layer).attn;
  return noGrad(() => new FactoredMatrix(perQueryHead(model, attn.W_V), attn.W_O));
}

/** What a side of the full QK circuit reads: token embeddings (W_E) or positional embeddings (W_pos). */
export type CircuitInput = "token" | "pos";

function inputMatrix(model: CircuitModel, input: CircuitInput): Tensor {
  if (input === "token") return model.embed.W_E; // [d_vocab, d_model]
  if (input === "pos") {
    if (!model.pos_embed) throw new ShapeError(`positional circuit: the model has no learned positions (positional_embedding_type = "${model.cfg.positional_embedding_type}")`);
    return model.pos_embed.W_pos; // [n_ctx, d_model]
  }
  return input satisfies never;
}

/**
 * The full QK circuit W_E W_Q W_Kᵀ W_Eᵀ per head, [n_heads, query (d_vocab or n_ctx), key (d_vocab
 * or n_ctx)]: the attention score one token (or position) gives another through the direct path
 * only. query/key pick W_E or W_pos per side (default both tokens).
 */
export function fullQKCircuit(model: CircuitModel, layer: number, opts: { query?: CircuitInput; key?: CircuitInput } = {}): FactoredMatrix {
  const qk = qkCircuit(model, layer);
  return noGrad(() => new FactoredMatrix(matmul(inputMatrix(model, opts.query ?? "token"), qk.A), matmul(qk.B, inputMatrix(model, opts.key ?? "token").transpose(-2, -1))));
}

/** The full OV circuit W_E W_V W_O W_U per head, [n_heads, d_vocab (attended token), d_vocab (logit)]. */
export function fullOVCircuit(model: CircuitModel, layer: number): FactoredMatrix {
  const ov = ovCircuit(model, layer);
  return noGrad(() => new FactoredMatrix(matmul(inputMatrix(model, "token"), ov.A), matmul(ov.B, model.unembed.W_U)));
}

/**
 * Elhage et al.'s composition score of a pair of factored matrices: ‖W_A W_B‖_F / (‖W_A‖_F ‖W_B‖_F),
 * between 0 (the later matrix ignores the subspace the earlier writes) and 1.
 */
export function compositionScore(left: FactoredMatrix, right: FactoredMatrix): number {
  if (left.batchShape.length || right.batchShape.length) throw new ShapeError(`compositionScore: takes single matrices; use compositionScores for batches (got ${fmt(left.shape)} and ${fmt(right.shape)})`);
  return left.matmul(right).norm().item() / (left.norm().item() * right.norm().item());
}

/**
 * Composition scores of every left matrix with every right one: left [n_left, m, d] (say the OV
 * circuits of one layer's heads), right [n_right, d, n], result [n_left][n_right]. With A_i = Q R_i
 * and D_jᵀ = Q' R'_j (thin QR, orthonormal Q, Q'), ‖A_i B_i C_j D_j‖_F = ‖X_i Y_j‖_F for the small
 * X_i = R_i B_i [mdim, d] and Y_j = C_j R'_jᵀ [d, mdim], and ‖A_i B_i‖_F = ‖X_i‖_F. So every pair
 * comes from one matrix product [n_left·mdim, d] @ [d, n_right·mdim] in the factors' dtype (the fast
 * float32 kernels for a model's weights: GPT-2 small's 144 × 144 head pairs per layer pair take
 * milliseconds); the QRs and norms run in float64.
 */
export function compositionScores(left: FactoredMatrix, right: FactoredMatrix): number[][] {
  if (left.ndim !== 3 || right.ndim !== 3) throw new ShapeError(`compositionScores: expects [n, rows, cols] batches, got ${fmt(left.shape)} and ${fmt(right.shape)}`);
  if (left.rdim !== right.ldim) throw new ShapeError(`compositionScores: left ${fmt(left.shape)} and right ${fmt(right.shape)} do not chain`);
  return pairScores(reduceLeft(left), reduceRight(right));
}

/** X_i (or Y_j) per matrix of a batch, stacked as one tensor, with each block's extent and Frobenius norm. */
interface Reduced { stacked: Tensor; sizes: number[]; norms: number[] }

const frobenius = (m: Mat) => Math.sqrt(m.data.reduce((acc, v) => acc + v * v, 0));

/** X_i = R_i B_i stacked [Σ r_i, d] (a short A_i, rows <= mdim, is already small: X_i = A_i B_i). */
function reduceLeft(left: FactoredMatrix): Reduced {
  const B = slices(left.B);
  const X = slices(left.A).map((a, i) => mul(a.rows > a.cols ? qr(a, false).R : a, B[i]!));
  const d = left.rdim, rows = X.reduce((n, x) => n + x.rows, 0);
  const stacked = zeros([rows, d], left.A.dtype === "float64" ? "float64" : "float32");
  let r0 = 0;
  for (const x of X) { stacked.data.set(x.data, r0 * d); r0 += x.rows; }
  return { stacked, sizes: X.map((x) => x.rows), norms: X.map(frobenius) };
}

/** Y_j = C_j R'_jᵀ side by side [d, Σ c_j]. */
function reduceRight(right: FactoredMatrix): Reduced {
  const C = slices(right.A);
  const Y = slices(right.B).map((dm, j) => mul(C[j]!, dm.cols > dm.rows ? transposeMat(qr(transposeMat(dm), false).R) : dm));
  const d = right.ldim, cols = Y.reduce((n, y) => n + y.cols, 0);
  const stacked = zeros([d, cols], right.A.dtype === "float64" ? "float64" : "float32");
  let c0 = 0;
  for (const y of Y) { for (let i = 0; i < d; i++) for (let c = 0; c < y.cols; c++) stacked.data[i * cols + c0 + c] = y.data[i * y.cols + c]!; c0 += y.cols; }
  return { stacked, sizes: Y.map((y) => y.cols), norms: Y.map(frobenius) };
}

/** ‖X_i Y_j‖_F / (‖X_i‖_F ‖Y_j‖_F) for every block pair, from one product of the stacks. */
function pairScores(L: Reduced, R: Reduced): number[][] {
  const X = L.stacked, Y = R.stacked;
  // float64 if either side is; the product itself runs on the backend's kernels.
  const P = noGrad(() => (X.dtype === Y.dtype ? matmul(X, Y) : matmul(X.cast("float64"), Y.cast("float64")))).contiguous().toArray();
  const cols = Y.shape[1]!;
  let r0 = 0;
  return L.sizes.map((ri, i) => {
    let c0 = 0;
    const row = R.sizes.map((cj, j) => {
      let s = 0;
      for (let r = r0; r < r0 + ri; r++) for (let c = c0; c < c0 + cj; c++) s += P[r * cols + c]! ** 2;
      c0 += cj;
      // A zero matrix composes with nothing: 0 rather than 0/0.
      return L.norms[i]! > 0 && R.norms[j]! > 0 ? Math.sqrt(s) / (L.norms[i]! * R.norms[j]!) : 0;
    });
    r0 += ri;
    return row;
  });
}

/**
 * Q-, K- and V-composition (Elhage et al. 2021): how much a later head's query, key or value reads
 * the subspace an earlier head's OV circuit writes. Q: OV_A @ QK_B; K: OV_A @ QK_Bᵀ; V: OV_A @ OV_B.
 */
export type CompositionKind = "Q" | "K" | "V";
export const COMPOSITION_KINDS: readonly CompositionKind[] = ["Q", "K", "V"];

/** The later layer's side of a composition: its QK circuit (Q), QKᵀ (K) or OV circuit (V). */
function readingCircuit(model: CircuitModel, kind: CompositionKind, layer: number): FactoredMatrix {
  switch (kind) {
    case "Q": return qkCircuit(model, layer);
    case "K": return qkCircuit(model, layer).T;
    case "V": return ovCircuit(model, layer);
    default: return kind satisfies never;
  }
}

/** Scores [head in srcLayer][head in dstLayer] for srcLayer < dstLayer. */
export function compositionScoresBetween(model: CircuitModel, kind: CompositionKind, srcLayer: number, dstLayer: number): number[][] {
  if (!(srcLayer < dstLayer)) throw new RangeError(`composition: the earlier layer (${srcLayer}) must come before the later one (${dstLayer})`);
  return compositionScores(ovCircuit(model, srcLayer), readingCircuit(model, kind, dstLayer));
}

/** Every (earlier layer, later layer) pair's scores of one kind; each layer's circuits are reduced once. */
export function allCompositionScores(model: CircuitModel, kind: CompositionKind): { srcLayer: number; dstLayer: number; scores: number[][] }[] {
  const n = model.cfg.n_layers;
  const lefts = Array.from({ length: n - 1 }, (_, l) => reduceLeft(ovCircuit(model, l)));
  const rights = Array.from({ length: n }, (_, l) => (l === 0 ? null : reduceRight(readingCircuit(model, kind, l))));
  const out: { srcLayer: number; dstLayer: number; scores: number[][] }[] = [];
  for (let a = 0; a < n; a++) for (let b = a + 1; b < n; b++) out.push({ srcLayer: a, dstLayer: b, scores: pairScores(lefts[a]!, rights[b]!) });
  return out;
}

/**
 * The score of random Gaussian matrices with the shapes of a head's circuits: W_V, W_Q, W_K
 * [d_model, d_head], W_O [d_head, d_model]. Scores of real heads are read against this (Elhage et
 * al. compare to random matrices of the same shape); every kind has the same shape, hence one baseline.
 */
export function compositionBaseline(dims: { d_model: number; d_head: number }, opts: { samples?: number; seed?: number } = {}): { mean: number; std: number } {
  const { d_model: d, d_head: k } = dims, samples = opts.samples ?? 32, rng = new Rng(opts.seed ?? 0);
  const r = (s: number[]) => randn(s, { rng, dtype: "float64" });
  const xs = Array.from({ length: samples }, () => {
    const left = new FactoredMatrix(r([1, d, k]), r([1, k, d])), right = new FactoredMatrix(r([1, d, k]), r([1, k, d]));
    return compositionScores(left, right)[0]![0]!;
  });
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, xs.length - 1));
  return { mean, std };
}
