// The layout of Nanda et al. 2023's grokking checkpoint (progress-measures-paper, converted to
// safetensors; ../shared/models/grokking-mod113 documents it in its config.json): TransformerLens's
// parameter names, but every matrix [d_out, d_in] with heads in a leading axis, where circuitscope
// stores [d_in, d_out] with heads side by side. Each weight is permuted both ways here and every name
// and shape is checked. loadPretrained opens such a folder through this file; the grokking lab reads
// the rest of the folder (training split, loss curves) itself.
import { makeConfig, type ModelConfig } from "../model/config.js";
import { HookedTransformer } from "../model/transformer.js";
import { noGrad } from "../tensor/autodiff.js";
import type { Tensor } from "../tensor/tensor.js";
import type { HFConfigJson } from "./hf-config.js";

export class GrokkingCheckpointError extends Error {
  override name = "GrokkingCheckpointError";
}

/** The paper's architecture (§3, Appendix A): 1 layer, no LayerNorm, ReLU MLP, no attention biases. */
export function grokkingConfig(p: number, d_model = 128, n_heads = 4, d_mlp = 4 * d_model): ModelConfig {
  return makeConfig({
    architecture: "gpt2", d_model, n_layers: 1, n_heads, d_head: d_model / n_heads, d_mlp,
    d_vocab: p + 1, // residues 0..p-1 and "=" (token p)
    n_ctx: 3, act_fn: "relu", normalization_type: null, positional_embedding_type: "standard",
    attn_bias: false, mlp_bias: true, unembed_bias: false, tie_word_embeddings: false,
  });
}

/** Original name → [expected original shape, map to our layout]. */
function plan(cfg: ModelConfig): [string, number[], string, (t: Tensor) => Tensor][] {
  const { d_model: D, n_heads: H, d_head: dh, d_mlp: M, d_vocab: V, n_ctx: C } = cfg;
  // [n_heads, d_head, d_model] → [d_model, n_heads * d_head]: q[h] = W_Q[h] @ x becomes x @ W[:, h*dh:(h+1)*dh].
  const heads = (t: Tensor) => t.permute([2, 0, 1]).contiguous().reshape([D, H * dh]);
  const T = (t: Tensor) => t.transpose(0, 1).contiguous();
  const id = (t: Tensor) => t.contiguous();
  return [
    ["embed.W_E", [D, V], "embed.W_E", T], // column t is token t's embedding → row t
    ["pos_embed.W_pos", [C, D], "pos_embed.W_pos", id],
    ["blocks.0.attn.W_Q", [H, dh, D], "blocks.0.attn.W_Q", heads],
    ["blocks.0.attn.W_K", [H, dh, D], "blocks.0.attn.W_K", heads],
    ["blocks.0.attn.W_V", [H, dh, D], "blocks.0.attn.W_V", heads],
    ["blocks.0.attn.W_O", [D, H * dh], "blocks.0.attn.W_O", T], // out = W_O @ concat_h z[h]
    ["blocks.0.mlp.W_in", [M, D], "blocks.0.mlp.W_in", T],
    ["blocks.0.mlp.b_in", [M], "blocks.0.mlp.b_in", id],
    ["blocks.0.mlp.W_out", [D, M], "blocks.0.mlp.W_out", T],
    ["blocks.0.mlp.b_out", [D], "blocks.0.mlp.b_out", id],
    ["unembed.W_U", [D, V], "unembed.W_U", id], // logits = x @ W_U already
  ];
}

/** Map a state dict in the original layout to a HookedTransformer; every name and shape is checked. */
export function modelFromOriginal(weights: ReadonlyMap<string, Tensor>, p: number, dtype: "float32" | "float64" = "float32"): HookedTransformer {
  const D = weights.get("embed.W_E")?.shape[0];
  if (D === undefined) throw new GrokkingCheckpointError("missing embed.W_E");
  const cfg = { ...grokkingConfig(p, D, weights.get("blocks.0.attn.W_Q")?.shape[0] ?? 4, weights.get("blocks.0.mlp.W_in")?.shape[0] ?? 4 * D), dtype };
  const ours = new Map<string, Tensor>();
  const issues: string[] = [];
  const steps = plan(cfg);
  for (const [name, shape, to, map] of steps) {
    const t = weights.get(name);
    if (!t) { issues.push(`missing ${name}`); continue; }
    if (t.shape.join(",") !== shape.join(",")) { issues.push(`${name}: expected [${shape}], got [${t.shape}]`); continue; }
    ours.set(to, map(t.cast(dtype)));
  }
  for (const k of weights.keys()) if (!steps.some(([n]) => n === k)) issues.push(`unexpected ${k}`);
  if (issues.length) throw new GrokkingCheckpointError(`grokking checkpoint: ${issues.join("; ")}`);
  const model = new HookedTransformer(cfg);
  noGrad(() => model.loadStateDict(ours));
  return model;
}

/** The inverse of modelFromOriginal: our [d_in, d_out] weights back to the original names and layouts. */
export function toOriginal(model: HookedTransformer): Map<string, Tensor> {
  const { d_model: D, n_heads: H, d_head: dh } = model.cfg;
  const sd = new Map(model.namedParameters().map(([n, t]) => [n, t as Tensor]));
  const get = (n: string) => { const t = sd.get(n); if (!t) throw new GrokkingCheckpointError(`toOriginal: the model has no ${n}`); return t; };
  // [d_model, n_heads * d_head] → [n_heads, d_head, d_model]
  const heads = (t: Tensor) => t.reshape([D, H, dh]).permute([1, 2, 0]).contiguous();
  const T = (t: Tensor) => t.transpose(0, 1).contiguous();
  return new Map<string, Tensor>([
    ["embed.W_E", T(get("embed.W_E"))], ["pos_embed.W_pos", get("pos_embed.W_pos").contiguous()],
    ["blocks.0.attn.W_Q", heads(get("blocks.0.attn.W_Q"))], ["blocks.0.attn.W_K", heads(get("blocks.0.attn.W_K"))], ["blocks.0.attn.W_V", heads(get("blocks.0.attn.W_V"))],
    ["blocks.0.attn.W_O", T(get("blocks.0.attn.W_O"))], ["blocks.0.mlp.W_in", T(get("blocks.0.mlp.W_in"))], ["blocks.0.mlp.b_in", get("blocks.0.mlp.b_in").contiguous()],
    ["blocks.0.mlp.W_out", T(get("blocks.0.mlp.W_out"))], ["blocks.0.mlp.b_out", get("blocks.0.mlp.b_out").contiguous()], ["unembed.W_U", get("unembed.W_U").contiguous()],
  ]);
}

/**
 * True for a config.json in this layout: no Hugging Face architecture, the paper's "architecture"
 * object, and either its layout notes or a training_config with p (what the grokking lab writes).
 */
export function isGrokkingLayout(json: HFConfigJson): boolean {
  const obj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
  if (json.architectures !== undefined || !obj(json.architecture)) return false;
  return (obj(json.layout) && "embed.W_E" in json.layout) || (obj(json.training_config) && typeof json.training_config.p === "number");
}

/** The modulus p of such a folder: training_config.p, else d_vocab − 1 (the last token is "="). */
export function grokkingModulus(json: HFConfigJson, weights: ReadonlyMap<string, Tensor>): number {
  const p = (json.training_config as { p?: unknown } | undefined)?.p;
  if (typeof p === "number") return p;
  const W_E = weights.get("embed.W_E");
  if (!W_E) throw new GrokkingCheckpointError("grokking checkpoint: missing embed.W_E");
  return W_E.shape[1]! - 1;
}

/** The checkpoint's tokens as words: the residues "0" … "p−1", then "=" (token p). */
export const grokkingWords = (p: number): string[] => [...Array.from({ length: p }, (_, i) => String(i)), "="];
