// Weight processing, as TransformerLens's process_weights (HookedTransformer.py: fold_layer_norm,
// center_writing_weights, center_unembed, fold_value_biases): rewrite a model's weights, in place,
// into an equivalent form that is easier to interpret. Each step leaves the model's function
// unchanged — logits for folding, centring writing weights and folding value biases; log-probs for
// centring the unembedding, which shifts every position's logits by one constant — and
// test/weight-processing.test.ts proves it per architecture. This file changes numbers only: the
// model keeps its structure, and folded norms stay in place with w = 1 and b = 0.
//
// Weights are stored [d_in, d_out] (W_Q is [d_model, n_heads * d_head]), so "the mean over
// d_model" of a reading weight is over axis 0 and of a writing weight over its last axis.
import { noGrad } from "../tensor/autodiff.js";
import { matmul } from "../tensor/ops/linalg.js";
import { expand } from "../tensor/ops/movement.js";
import type { Tensor } from "../tensor/tensor.js";
import type { Norm } from "./components.js";
import type { HookedTransformer } from "./transformer.js";

export type WeightProcessingStep = "foldLn" | "centerWritingWeights" | "centerUnembed" | "foldValueBiases";

export interface ProcessWeightsOptions {
  /** Fold each norm's w (and LayerNorm's b) into the weights reading its output. Default: when the model has norms. */
  foldLn?: boolean;
  /** Remove the d_model mean of everything written into the residual stream. LayerNorm only. Default: for LayerNorm models. */
  centerWritingWeights?: boolean;
  /** Remove the d_vocab mean of W_U (and b_U). Default true. */
  centerUnembed?: boolean;
  /** Move b_V into b_O (attention patterns sum to 1). Default true. */
  foldValueBiases?: boolean;
}

export class WeightProcessingError extends Error {
  override name = "WeightProcessingError";
}

/**
 * Apply TransformerLens's default processing (all four steps where they are valid) and return the
 * steps applied, in order. Asking for a step the architecture does not allow throws before
 * anything is changed.
 */
export function processWeights(model: HookedTransformer, opts: ProcessWeightsOptions = {}): WeightProcessingStep[] {
  const norm = model.cfg.normalization_type;
  const want = {
    foldLn: opts.foldLn ?? norm !== null,
    centerWritingWeights: opts.centerWritingWeights ?? norm === "LN",
    // Shifting logits changes nothing under softmax, but a soft cap (tanh) is not shift-invariant.
    centerUnembed: opts.centerUnembed ?? model.cfg.output_logits_soft_cap === null,
    foldValueBiases: opts.foldValueBiases ?? true,
  };
  if (want.centerUnembed && model.cfg.output_logits_soft_cap !== null)
    throw new WeightProcessingError(`centerUnembed: the logits are soft-capped (output_logits_soft_cap = ${model.cfg.output_logits_soft_cap}), so centring them changes the output`);
  if (want.foldLn) giveUnembedABias(model);
  if (want.foldLn) checkFoldLn(model);
  if (want.centerWritingWeights) checkCenterWriting(model);
  const steps: WeightProcessingStep[] = [];
  if (want.foldLn) { foldLayerNorm(model); steps.push("foldLn"); }
  if (want.centerWritingWeights) { centerWritingWeights(model); steps.push("centerWritingWeights"); }
  if (want.centerUnembed) { centerUnembed(model); steps.push("centerUnembed"); }
  if (want.foldValueBiases) { foldValueBiases(model); steps.push("foldValueBiases"); }
  return steps;
}

/** A norm and the linear maps that read its output: W [d_model, d_out] with bias b [d_out] (or none). */
interface NormReaders { norm: Norm; where: string; readers: { W: Tensor; b: Tensor | null; name: string }[] }

function normReaders(model: HookedTransformer): NormReaders[] {
  const out: NormReaders[] = [];
  for (const block of model.blocks) {
    const l = block.layer, a = block.attn;
    if (block.ln1) {
      const readers = [{ W: a.Wq, b: a.bq, name: `blocks.${l}.attn.W_Q` }, { W: a.Wk, b: a.bk, name: `blocks.${l}.attn.W_K` }, { W: a.Wv, b: a.bv, name: `blocks.${l}.attn.W_V` }];
      // GPT-J: the MLP reads ln1's output too.
      if (model.cfg.parallel_shared_norm && block.mlp) {
        readers.push({ W: block.mlp.W_in, b: block.mlp.b_in, name: `blocks.${l}.mlp.W_in` });
        if (block.mlp.W_gate) readers.push({ W: block.mlp.W_gate, b: block.mlp.b_gate, name: `blocks.${l}.mlp.W_gate` });
      }
      out.push({ norm: block.ln1, where: `blocks.${l}.ln1`, readers });
    }
    if (block.ln2 && block.mlp) {
      const m = block.mlp;
      const readers = [{ W: m.W_in, b: m.b_in, name: `blocks.${l}.mlp.W_in` }];
      if (m.W_gate) readers.push({ W: m.W_gate, b: m.b_gate, name: `blocks.${l}.mlp.W_gate` });
      out.push({ norm: block.ln2, where: `blocks.${l}.ln2`, readers });
    }
  }
  if (model.ln_final) out.push({ norm: model.ln_final, where: "ln_final", readers: [{ W: model.unembed.W_U, b: model.unembed.b_U, name: "unembed.W_U" }] });
  return out;
}

/**
 * A non-zero ln_final.b folds into b_U: a model without one (GPT-2 from Hugging Face) gets a zero b_U
 * first, as TransformerLens gives GPT-2. That changes no output. The config then says unembed_bias.
 */
function giveUnembedABias(model: HookedTransformer): void {
  const b = model.ln_final?.b;
  if (b && !isZero(b) && !model.unembed.b_U) model.unembed.addBias();
}

function checkFoldLn(model: HookedTransformer): void {
  if (model.cfg.normalization_type === null) throw new WeightProcessingError("foldLn: the model has no normalisation layers to fold");
  for (const { norm, where, readers } of normReaders(model)) {
    if (!norm.b || isZero(norm.b)) continue;
    // LN(x) W = n (w ⊙ W) + b W: the second term needs a bias to land in.
    const homeless = readers.filter((r) => !r.b).map((r) => r.name);
    if (homeless.length) throw new WeightProcessingError(
      `foldLn: ${where}.b is non-zero but ${homeless.join(", ")} ${homeless.length === 1 ? "has" : "have"} no bias to fold it into ` +
      `(construct the model with ${homeless.some((n) => n === "unembed.W_U") ? "unembed_bias: true" : homeless.some((n) => n.includes("W_gate")) ? "a non-gated MLP, or a zero LayerNorm bias" : "the matching *_bias: true"}; TransformerLens gives GPT-2 a zero b_U)`);
  }
}

function checkCenterWriting(model: HookedTransformer): void {
  // Only LayerNorm removes the residual stream's mean, which is what makes centring invisible
  // (TransformerLens skips this step for RMSNorm with a warning; we refuse it explicitly).
  if (model.cfg.normalization_type !== "LN")
    throw new WeightProcessingError(`centerWritingWeights: needs LayerNorm before every reader of the residual stream; this model uses ${model.cfg.normalization_type ?? "no normalisation"}`);
}

/**
 * Fold every norm into the weights that read it: W ← diag(w) W, b ← b + b_ln W (LayerNorm), and
 * for LayerNorm centre W over d_model (its input is centred, so that is free). The norms are left
 * with w = 1 and b = 0. RMSNorm has no bias and does not centre, so only w is folded there.
 */
export function foldLayerNorm(model: HookedTransformer): void {
  giveUnembedABias(model);
  checkFoldLn(model);
  const center = model.cfg.normalization_type === "LN";
  noGrad(() => {
    for (const { norm, readers } of normReaders(model)) {
      const w = f64(norm.w).reshape([-1, 1]); // [d_model, 1]
      for (const r of readers) {
        if (r.b && norm.b) write(r.b, f64(r.b).add(matmul(f64(norm.b).reshape([1, -1]), f64(r.W)).reshape([-1])));
        let W = f64(r.W).mul(w); // [d_model, d_out]
        if (center) W = W.sub(W.mean(0, true));
        write(r.W, W);
      }
      norm.w.data.fill(1); norm.w.version++;
      if (norm.b) { norm.b.data.fill(0); norm.b.version++; }
    }
  });
}

/**
 * Remove the mean over d_model from every weight and bias that writes into the residual stream:
 * W_E, W_pos, each head's W_O and b_O, W_out and b_out. Every reader sees the stream through a
 * LayerNorm, which subtracts that mean anyway.
 */
export function centerWritingWeights(model: HookedTransformer): void {
  checkCenterWriting(model);
  const center = (t: Tensor | null) => { if (t) write(t, f64(t).sub(f64(t).mean(-1, true))); };
  noGrad(() => {
    center(model.embed.W_E); // [d_vocab, d_model]
    center(model.pos_embed?.W_pos ?? null); // [n_ctx, d_model]
    for (const block of model.blocks) {
      center(block.attn.Wo); center(block.attn.bo); // [n_heads * d_head, d_model], [d_model]
      if (block.mlp) { center(block.mlp.W_out); center(block.mlp.b_out); } // [d_mlp, d_model], [d_model]
    }
  });
}

/**
 * W_U ← W_U − mean over d_vocab (and b_U likewise). Every position's logits shift by one constant,
 * so softmax and log-probs are unchanged, logits are not.
 */
export function centerUnembed(model: HookedTransformer): void {
  const { W_U, b_U } = model.unembed;
  noGrad(() => {
    write(W_U, f64(W_U).sub(f64(W_U).mean(-1, true))); // [d_model, d_vocab]
    if (b_U) write(b_U, f64(b_U).sub(f64(b_U).mean()));
  });
}

/**
 * b_O ← b_O + Σ_h b_V[h] W_O[h], b_V ← 0. Exact because each attention pattern row sums to 1, so
 * b_V reaches z unchanged. Under grouped-query attention a key/value head's bias serves each of
 * its query heads. A model without attention biases is left as it is.
 */
export function foldValueBiases(model: HookedTransformer): void {
  const { n_heads: H, n_key_value_heads: Hkv, d_head: dh } = model.cfg;
  noGrad(() => {
    for (const block of model.blocks) {
      const { bv, bo, Wo } = block.attn;
      if (!bv || !bo) continue;
      // [n_key_value_heads * d_head] → [n_heads * d_head], head h using key/value head floor(h / (H / Hkv)).
      const perHead = expand(f64(bv).reshape([Hkv, 1, dh]), [Hkv, H / Hkv, dh]).reshape([1, H * dh]);
      write(bo, f64(bo).add(matmul(perHead, f64(Wo)).reshape([-1])));
      bv.data.fill(0); bv.version++;
    }
  });
}

/** Computed in float64 whatever the parameter dtype, so processing adds one rounding per weight. */
const f64 = (t: Tensor): Tensor => (t.dtype === "float64" ? t : t.cast("float64"));

/** Overwrite a parameter's values in place (optimizers and packed-weight caches keep their references). */
function write(p: Tensor, v: Tensor): void {
  p.data.set(v.cast(p.dtype).contiguous().toArray());
  p.version++;
}

function isZero(t: Tensor): boolean {
  for (const v of t.toArray()) if (v !== 0) return false;
  return true;
}
