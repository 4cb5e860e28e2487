// The QK and OV circuits of attention heads and how heads compose (Elhage et al. 2021, "A
// Mathematical Framework for Transformer Circuits"), as FactoredMatrix so a d_model × d_model
// circuit of rank d_head is never formed. Rows act on the residual stream as row vectors, as in
// TransformerLens: scores = x_query W_Q W_Kᵀ x_keyᵀ, head output = x W_V W_O. Biases and LayerNorm
// are left out (fold LayerNorm into the weights first with processWeights for a faithful picture),
// and rotary models' QK circuits ignore the rotation.
import { indexSelect } from "../tensor/ops/movement.js";
import { matmul } from "../tensor/ops/linalg.js";
import { noGrad } from "../tensor/autodiff.js";
import { randn } from "../tensor/create.js";
import { Rng } from "../tensor/rng.js";
import { ShapeError, fmt } from "../tensor/shape.js";
import type { Tensor } from "../tensor/tensor.js";
import type { HookedTransformer } from "../model/transformer.js";
import { FactoredMatrix, gram, mul, slices, transposeMat, type Mat } from "./factored-matrix.js";

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

/** Weights as float64 so every circuit product is exact to float64 rounding of the stored weights. */
const f64 = (t: Tensor) => t.cast("float64");

/** W_Q W_Kᵀ per head: [n_heads, d_model (query side), d_model (key side)], factored through d_head. */
export function qkCircuit(model: CircuitModel, layer: number): FactoredMatrix {
  checkLayer(model, layer);
  const attn = model.blocks.at(layer).attn;
  return noGrad(() => new FactoredMatrix(f64(attn.W_Q), f64(perQueryHead(model, attn.W_K)).transpose(-2, -1)));
}

/** W_V W_O per head: [n_heads, d_model (read), d_model (written)], factored through d_head. */
export function ovCircuit(model: CircuitModel, layer: number): FactoredMatrix {
  checkLayer(model, layer);
  const attn = model.blocks.at(layer).attn;
  return noGrad(() => new FactoredMatrix(f64(perQueryHead(model, attn.W_V)), f64(attn.W_O)));
}

/** What a side of the full QK circuit reads: token embeddings (W_E) or positional embeddings (W_pos). */
export type CircuitInput = "token" | "pos";

function inputMatrix(model: CircuitModel, input: CircuitInput): Tensor {
  if (input === "token") return f64(model.embed.W_E); // [d_vocab, d_model]
  if (input === "pos") {
    if (!model.pos_embed) throw new ShapeError(`positional circuit: the model has no learned positions (positional_embedding_type = "${model.cfg.positional_embedding_type}")`);
    return f64(model.pos_embed.W_pos); // [n_ctx, d_model]
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
  return noGrad(() => new FactoredMatrix(matmul(inputMatrix(model, "token"), ov.A), matmul(ov.B, f64(model.unembed.W_U))));
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
 * circuits of one layer's heads), right [n_right, d, n], result [n_left][n_right]. Each pair's
 * ‖A_i B_i C_j D_j‖_F² = tr((A_iᵀA_i) M (D_j D_jᵀ) Mᵀ) with M = B_i C_j, so only
 * mdim × mdim matrices are multiplied per pair.
 */
export function compositionScores(left: FactoredMatrix, right: FactoredMatrix): number[][] {
  if (left.ndim !== 3 || right.ndim !== 3) throw new ShapeError(`compositionScores: expects [n, rows, cols] batches, got ${fmt(left.shape)} and ${fmt(right.shape)}`);
  if (left.rdim !== right.ldim) throw new ShapeError(`compositionScores: left ${fmt(left.shape)} and right ${fmt(right.shape)} do not chain`);
  const LA = slices(left.A), LB = slices(left.B), RA = slices(right.A), RB = slices(right.B);
  const gA = LA.map((a) => gram(a, true)), gD = RB.map((d) => gram(d, false));
  const normL = LA.map((_, i) => Math.sqrt(traceAB(gA[i]!, gram(LB[i]!, false))));
  const normR = RA.map((c, j) => Math.sqrt(traceAB(gram(c, true), gD[j]!)));
  return LB.map((b, i) => RA.map((c, j) => {
    const M = mul(b, c); // [mdim_left, mdim_right]
    const num = Math.sqrt(Math.max(0, traceAB(mul(mul(gA[i]!, M), gD[j]!), transposeMat(M))));
    return num / (normL[i]! * normR[j]!);
  }));
}

/** tr(XY) for X [p, q], Y [q, p]. */
function traceAB(x: Mat, y: Mat): number {
  let s = 0;
  for (let i = 0; i < x.rows; i++) for (let k = 0; k < x.cols; k++) s += x.data[i * x.cols + k]! * y.data[k * y.cols + i]!;
  return s;
}

/**
 * Q-, K- and V-composition (Elhage et al. 2021): how much a later head's query, key or value reads
 * the subspace an earlier head's OV circuit writes. Q: OV_A @ QK_B; K: OV_A @ QK_Bᵀ; V: OV_A @ OV_B.
 */
export type CompositionKind = "Q" | "K" | "V";
export const COMPOSITION_KINDS: readonly CompositionKind[] = ["Q", "K", "V"];

/** Scores [head in srcLayer][head in dstLayer] for srcLayer < dstLayer. */
export function compositionScoresBetween(model: CircuitModel, kind: CompositionKind, srcLayer: number, dstLayer: number): number[][] {
  if (!(srcLayer < dstLayer)) throw new RangeError(`composition: the earlier layer (${srcLayer}) must come before the later one (${dstLayer})`);
  const ov = ovCircuit(model, srcLayer);
  const right = kind === "Q" ? qkCircuit(model, dstLayer) : kind === "K" ? qkCircuit(model, dstLayer).T : kind === "V" ? ovCircuit(model, dstLayer) : (kind satisfies never);
  return compositionScores(ov, right);
}

/** Every (earlier layer, later layer) pair's scores of one kind. */
export function allCompositionScores(model: CircuitModel, kind: CompositionKind): { srcLayer: number; dstLayer: number; scores: number[][] }[] {
  const out: { srcLayer: number; dstLayer: number; scores: number[][] }[] = [];
  for (let a = 0; a < model.cfg.n_layers; a++) for (let b = a + 1; b < model.cfg.n_layers; b++) out.push({ srcLayer: a, dstLayer: b, scores: compositionScoresBetween(model, kind, a, b) });
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
