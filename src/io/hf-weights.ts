// Hugging Face weight names and layouts ↔ circuitscope's state dict, both ways, for every family in
// hf-config.ts (GPT-2, GPT-NeoX, GPT-J, GPT-Neo, Llama and the Llama-block families). Each family is one table of rules; a rule names the HF tensors it reads (with the shape
// the config implies), the circuitscope keys it fills, and the two layout transforms. Loading checks
// every name and shape before copying anything, then moves one rule's tensors at a time (so peak
// memory is the model plus one layer's weights, never two models).
//
// Layouts (circuitscope stores every matmul weight [d_in, d_out], heads side by side):
// - GPT-2 (modeling_gpt2.py): Conv1D weights are already [in, out]; c_attn packs Q|K|V as column blocks.
// - GPT-NeoX (modeling_gpt_neox.py): torch Linear weights are [out, in]; query_key_value's output rows
//   are grouped per head: for head h, rows [3h·d_head, 3h·d_head + d_head) are Q, then K, then V.
// - Llama (modeling_llama.py): torch Linear [out, in]; q_proj/k_proj rows are used with rotate_half
//   as-is (circuitscope's rotary uses the same convention, so no permutation).
// - Mistral, Qwen2/3, Gemma 1/2/3, Phi-3, OLMo 2: Llama's names and layouts, plus each family's norms
//   (Gemma's stored as w for x̂ · (1 + w): circuitscope keeps 1 + w), q/k norms, and Phi-3's fused
//   qkv_proj (rows Q | K | V) and gate_up_proj (rows gate | up).
// - GPT-J (modeling_gptj.py), GPT-Neo (modeling_gpt_neo.py): torch Linear [out, in] per projection.
//
// This file does not read config.json or folders (hf-config.ts, snapshot.ts do).
import { noGrad } from "../tensor/autodiff.js";
import { concat, select, stack } from "../tensor/ops/movement.js";
import { fmt, shapeEq } from "../tensor/shape.js";
import type { Tensor } from "../tensor/tensor.js";
import { zeros } from "../tensor/create.js";
import type { StateDictIssue } from "../nn/module.js";
import type { ModelConfig } from "../model/config.js";
import { HookedTransformer } from "../model/transformer.js";
import { allFinite, NonFiniteError, nonFiniteAt } from "../model/finite.js";
import type { TensorSource } from "./safetensors.js";

/** A checkpoint whose tensors do not fit the config: every missing, unexpected or misshapen HF tensor is listed. */
export class HFWeightsError extends Error {
  override name = "HFWeightsError";
  constructor(readonly location: string, readonly issues: StateDictIssue[]) {
    super(`${location}: ${issues.length} problem${issues.length === 1 ? "" : "s"} with the Hugging Face weights:\n  ${issues.map((i) => i.message).join("\n  ")}`);
  }
}

interface HFSpec { name: string; shape: number[] }

interface Rule {
  hf: HFSpec[];
  ours: string[];
  toOurs(hf: Tensor[]): Tensor[];
  toHF(ours: Tensor[]): Tensor[];
  /** Reads an HF tensor that another rule writes (a tied unembedding): used when loading, skipped when saving. */
  loadOnly?: boolean;
}

const T = (t: Tensor): Tensor => t.transpose(0, 1).contiguous();

/** Same layout both ways. */
const same = (name: string, shape: number[], ours: string): Rule =>
  ({ hf: [{ name, shape }], ours: [ours], toOurs: ([t]) => [t!], toHF: ([t]) => [t!] });

/** A torch nn.Linear weight [out, in] ↔ our [in, out]. */
const linearT = (name: string, outIn: [number, number], ours: string): Rule =>
  ({ hf: [{ name, shape: outIn }], ours: [ours], toOurs: ([t]) => [T(t!)], toHF: ([t]) => [T(t!)] });

/** An unembedding read from the embedding [d_vocab, d_model] (tie_word_embeddings). */
const tiedUnembed = (embedName: string, cfg: ModelConfig): Rule =>
  ({ hf: [{ name: embedName, shape: [cfg.d_vocab, cfg.d_model] }], ours: ["unembed.W_U"], toOurs: ([t]) => [T(t!)], toHF: () => [], loadOnly: true });

/** Which families have HF weight tables: every architecture but attention-only. */
type Family = Exclude<ModelConfig["architecture"], "attn-only">;

export function hfFamily(cfg: ModelConfig): Family {
  if (cfg.architecture === "attn-only") throw new Error("Hugging Face weights: attention-only models have no Hugging Face layout");
  return cfg.architecture;
}

const LLAMA_LIKE = ["llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "phi3", "olmo2"] as const;
const each = <V>(v: V): Record<(typeof LLAMA_LIKE)[number], V> => Object.fromEntries(LLAMA_LIKE.map((f) => [f, v])) as Record<(typeof LLAMA_LIKE)[number], V>;

/** The base-model prefix each family's HF classes use ("transformer.h.0…"); checkpoints saved from the bare model omit it. */
const BASE_PREFIX: Record<Family, string> = { gpt2: "transformer.", neox: "gpt_neox.", gptj: "transformer.", gpt_neo: "transformer.", ...each("model.") };
const EMBED: Record<Family, string> = { gpt2: "wte.weight", neox: "embed_in.weight", gptj: "wte.weight", gpt_neo: "wte.weight", ...each("embed_tokens.weight") };
/** Old checkpoints carry buffers (causal masks, rotary frequencies) that are not weights; HF ignores them on load too. */
const IGNORED: Record<Family, RegExp> = {
  gpt2: /(^|\.)h\.\d+\.attn\.(bias|masked_bias)$/,
  neox: /(^|\.)layers\.\d+\.attention\.(bias|masked_bias|rotary_emb\.inv_freq)$/,
  gptj: /(^|\.)h\.\d+\.attn\.(bias|masked_bias)$/,
  gpt_neo: /(^|\.)h\.\d+\.attn\.attention\.(bias|masked_bias)$/,
  ...each(/(^|\.)layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/),
};
const UNEMBED: Record<Family, string> = { gpt2: "lm_head.weight", neox: "embed_out.weight", gptj: "lm_head.weight", gpt_neo: "lm_head.weight", ...each("lm_head.weight") };

function rules(cfg: ModelConfig, family: Family, prefix: string, tied: boolean): Rule[] {
  switch (family) {
    case "gpt2": return gpt2Rules(cfg, prefix, tied);
    case "neox": return neoxRules(cfg, prefix, tied);
    case "llama": return llamaRules(cfg, prefix, tied);
    case "mistral": case "qwen2": case "qwen3": case "gemma": case "gemma2": case "gemma3": case "phi3": case "olmo2":
      return decoderRules(cfg, family, prefix, tied);
    case "gptj": return gptjRules(cfg, prefix, tied);
    case "gpt_neo": return gptNeoRules(cfg, prefix, tied);
    default: return family satisfies never;
  }
}

/** A Gemma RMSNorm weight: HF stores w and computes x̂ · (1 + w); circuitscope stores 1 + w (as TransformerLens folds it). */
const offsetNorm = (name: string, shape: number[], ours: string): Rule =>
  ({ hf: [{ name, shape }], ours: [ours], toOurs: ([t]) => [t!.add(1)], toHF: ([t]) => [t!.sub(1)] });

/**
 * Biases the HF class does not have but circuitscope's block does (Qwen2's o_proj, GPT-Neo's q/k/v):
 * zeros on load; saving throws if they are no longer zero (the HF layout could not hold them).
 */
const zeroBiases = (cfg: ModelConfig, ours: [string, number][]): Rule => ({
  hf: [], ours: ours.map(([k]) => k),
  toOurs: () => ours.map(([, n]) => zeros([n], cfg.dtype)),
  toHF: (ts) => {
    ts.forEach((t, i) => { if (t.toArray().some((x) => x !== 0)) throw new Error(`Hugging Face ${cfg.architecture} layout has no "${ours[i]![0]}": it must stay zero to be saved`); });
    return [];
  },
});

type DecoderFamily = "mistral" | "qwen2" | "qwen3" | "gemma" | "gemma2" | "gemma3" | "phi3" | "olmo2";

// modeling_{mistral,qwen2,qwen3,gemma,gemma2,gemma3,phi3,olmo2}.py: Llama's names (model.layers[l].self_attn.q_proj, …)
// with each family's additions; Phi-3 fuses qkv_proj (rows Q | K | V) and gate_up_proj (rows gate | up).
function decoderRules(cfg: ModelConfig, family: DecoderFamily, p: string, tied: boolean): Rule[] {
  const { d_model: D, d_mlp: M, d_vocab: V, n_heads: H, d_head: dh, n_key_value_heads: Hkv } = cfg;
  const gemma = family === "gemma" || family === "gemma2" || family === "gemma3";
  const norm = gemma ? offsetNorm : same;
  const out: Rule[] = [same(`${p}embed_tokens.weight`, [V, D], "embed.W_E")];
  for (let l = 0; l < cfg.n_layers; l++) {
    const h = `${p}layers.${l}.`, b = `blocks.${l}.`, a = `${h}self_attn.`;
    // Norm names: Llama's pair, Gemma 2/3's four (sandwich), OLMo 2's two after the sublayers.
    if (cfg.norm_placement === "pre") out.push(norm(`${h}input_layernorm.weight`, [D], `${b}ln1.w`), norm(`${h}post_attention_layernorm.weight`, [D], `${b}ln2.w`));
    if (cfg.norm_placement === "sandwich") out.push(
      norm(`${h}input_layernorm.weight`, [D], `${b}ln1.w`), norm(`${h}post_attention_layernorm.weight`, [D], `${b}ln1_post.w`),
      norm(`${h}pre_feedforward_layernorm.weight`, [D], `${b}ln2.w`), norm(`${h}post_feedforward_layernorm.weight`, [D], `${b}ln2_post.w`));
    if (cfg.norm_placement === "post") out.push(norm(`${h}post_attention_layernorm.weight`, [D], `${b}ln1_post.w`), norm(`${h}post_feedforward_layernorm.weight`, [D], `${b}ln2_post.w`));
    if (family === "phi3") {
      out.push({
        hf: [{ name: `${a}qkv_proj.weight`, shape: [(H + 2 * Hkv) * dh, D] }],
        ours: [`${b}attn.W_Q`, `${b}attn.W_K`, `${b}attn.W_V`],
        toOurs: ([w]) => [T(w!.slice(0, 0, H * dh)), T(w!.slice(0, H * dh, (H + Hkv) * dh)), T(w!.slice(0, (H + Hkv) * dh, (H + 2 * Hkv) * dh))],
        toHF: ([wq, wk, wv]) => [concat([T(wq!), T(wk!), T(wv!)], 0)],
      });
    } else {
      out.push(linearT(`${a}q_proj.weight`, [H * dh, D], `${b}attn.W_Q`), linearT(`${a}k_proj.weight`, [Hkv * dh, D], `${b}attn.W_K`), linearT(`${a}v_proj.weight`, [Hkv * dh, D], `${b}attn.W_V`));
    }
    out.push(linearT(`${a}o_proj.weight`, [D, H * dh], `${b}attn.W_O`));
    if (cfg.attn_bias) {
      out.push(same(`${a}q_proj.bias`, [H * dh], `${b}attn.b_Q`), same(`${a}k_proj.bias`, [Hkv * dh], `${b}attn.b_K`), same(`${a}v_proj.bias`, [Hkv * dh], `${b}attn.b_V`));
      // Qwen2: q/k/v biased, o_proj not.
      out.push(family === "qwen2" ? zeroBiases(cfg, [[`${b}attn.b_O`, D]]) : same(`${a}o_proj.bias`, [D], `${b}attn.b_O`));
    }
    if (cfg.qk_norm) {
      const len = (heads: number) => (cfg.qk_norm === "head" ? dh : heads * dh);
      out.push(norm(`${a}q_norm.weight`, [len(H)], `${b}attn.q_norm.w`), norm(`${a}k_norm.weight`, [len(Hkv)], `${b}attn.k_norm.w`));
    }
    if (family === "phi3") {
      out.push({
        hf: [{ name: `${h}mlp.gate_up_proj.weight`, shape: [2 * M, D] }],
        ours: [`${b}mlp.W_gate`, `${b}mlp.W_in`],
        toOurs: ([w]) => [T(w!.slice(0, 0, M)), T(w!.slice(0, M, 2 * M))],
        toHF: ([wg, wi]) => [concat([T(wg!), T(wi!)], 0)],
      });
    } else {
      out.push(linearT(`${h}mlp.gate_proj.weight`, [M, D], `${b}mlp.W_gate`), linearT(`${h}mlp.up_proj.weight`, [M, D], `${b}mlp.W_in`));
    }
    out.push(linearT(`${h}mlp.down_proj.weight`, [D, M], `${b}mlp.W_out`));
  }
  out.push(norm(`${p}norm.weight`, [D], "ln_final.w"));
  out.push(tied ? tiedUnembed(`${p}embed_tokens.weight`, cfg) : linearT("lm_head.weight", [V, D], "unembed.W_U"));
  return out;
}

// modeling_gptj.py: GPTJForCausalLM(transformer = GPTJModel(wte, h[l](ln_1, attn, mlp), ln_f), lm_head with a bias).
function gptjRules(cfg: ModelConfig, p: string, tied: boolean): Rule[] {
  const { d_model: D, d_mlp: M, d_vocab: V } = cfg;
  const out: Rule[] = [same(`${p}wte.weight`, [V, D], "embed.W_E")];
  for (let l = 0; l < cfg.n_layers; l++) {
    const h = `${p}h.${l}.`, b = `blocks.${l}.`;
    out.push(
      same(`${h}ln_1.weight`, [D], `${b}ln1.w`), same(`${h}ln_1.bias`, [D], `${b}ln1.b`),
      linearT(`${h}attn.q_proj.weight`, [D, D], `${b}attn.W_Q`), linearT(`${h}attn.k_proj.weight`, [D, D], `${b}attn.W_K`),
      linearT(`${h}attn.v_proj.weight`, [D, D], `${b}attn.W_V`), linearT(`${h}attn.out_proj.weight`, [D, D], `${b}attn.W_O`),
      zeroBiases(cfg, [[`${b}attn.b_Q`, D], [`${b}attn.b_K`, D], [`${b}attn.b_V`, D], [`${b}attn.b_O`, D]]),
      linearT(`${h}mlp.fc_in.weight`, [M, D], `${b}mlp.W_in`), same(`${h}mlp.fc_in.bias`, [M], `${b}mlp.b_in`),
      linearT(`${h}mlp.fc_out.weight`, [D, M], `${b}mlp.W_out`), same(`${h}mlp.fc_out.bias`, [D], `${b}mlp.b_out`),
    );
  }
  out.push(same(`${p}ln_f.weight`, [D], "ln_final.w"), same(`${p}ln_f.bias`, [D], "ln_final.b"));
  out.push(tied ? tiedUnembed(`${p}wte.weight`, cfg) : linearT("lm_head.weight", [V, D], "unembed.W_U"));
  if (cfg.unembed_bias) out.push(same("lm_head.bias", [V], "unembed.b_U"));
  return out;
}

// modeling_gpt_neo.py: GPTNeoForCausalLM(transformer = GPTNeoModel(wte, wpe, h[l](ln_1, attn.attention, ln_2, mlp), ln_f), lm_head).
function gptNeoRules(cfg: ModelConfig, p: string, tied: boolean): Rule[] {
  const { d_model: D, d_mlp: M, d_vocab: V, n_ctx } = cfg;
  const out: Rule[] = [same(`${p}wte.weight`, [V, D], "embed.W_E"), same(`${p}wpe.weight`, [n_ctx, D], "pos_embed.W_pos")];
  for (let l = 0; l < cfg.n_layers; l++) {
    const h = `${p}h.${l}.`, b = `blocks.${l}.`, a = `${h}attn.attention.`;
    out.push(
      same(`${h}ln_1.weight`, [D], `${b}ln1.w`), same(`${h}ln_1.bias`, [D], `${b}ln1.b`),
      linearT(`${a}q_proj.weight`, [D, D], `${b}attn.W_Q`), linearT(`${a}k_proj.weight`, [D, D], `${b}attn.W_K`), linearT(`${a}v_proj.weight`, [D, D], `${b}attn.W_V`),
      zeroBiases(cfg, [[`${b}attn.b_Q`, D], [`${b}attn.b_K`, D], [`${b}attn.b_V`, D]]),
      linearT(`${a}out_proj.weight`, [D, D], `${b}attn.W_O`), same(`${a}out_proj.bias`, [D], `${b}attn.b_O`),
      same(`${h}ln_2.weight`, [D], `${b}ln2.w`), same(`${h}ln_2.bias`, [D], `${b}ln2.b`),
      linearT(`${h}mlp.c_fc.weight`, [M, D], `${b}mlp.W_in`), same(`${h}mlp.c_fc.bias`, [M], `${b}mlp.b_in`),
      linearT(`${h}mlp.c_proj.weight`, [D, M], `${b}mlp.W_out`), same(`${h}mlp.c_proj.bias`, [D], `${b}mlp.b_out`),
    );
  }
  out.push(same(`${p}ln_f.weight`, [D], "ln_final.w"), same(`${p}ln_f.bias`, [D], "ln_final.b"));
  out.push(tied ? tiedUnembed(`${p}wte.weight`, cfg) : linearT("lm_head.weight", [V, D], "unembed.W_U"));
  return out;
}

// modeling_gpt2.py (v4.40): GPT2LMHeadModel(transformer = GPT2Model(wte, wpe, h[l], ln_f), lm_head).
function gpt2Rules(cfg: ModelConfig, p: string, tied: boolean): Rule[] {
  const { d_model: D, d_mlp: M, d_vocab: V, n_ctx } = cfg;
  const out: Rule[] = [same(`${p}wte.weight`, [V, D], "embed.W_E"), same(`${p}wpe.weight`, [n_ctx, D], "pos_embed.W_pos")];
  for (let l = 0; l < cfg.n_layers; l++) {
    const h = `${p}h.${l}.`, b = `blocks.${l}.`;
    out.push(
      same(`${h}ln_1.weight`, [D], `${b}ln1.w`), same(`${h}ln_1.bias`, [D], `${b}ln1.b`),
      {
        // Conv1D c_attn: x @ W [d_model, 3 d_model] + b; the output columns are Q | K | V (GPT2Attention.forward split(split_size, dim=2)).
        hf: [{ name: `${h}attn.c_attn.weight`, shape: [D, 3 * D] }, { name: `${h}attn.c_attn.bias`, shape: [3 * D] }],
        ours: [`${b}attn.W_Q`, `${b}attn.W_K`, `${b}attn.W_V`, `${b}attn.b_Q`, `${b}attn.b_K`, `${b}attn.b_V`],
        toOurs: ([w, bias]) => [0, 1, 2].map((j) => w!.slice(1, j * D, (j + 1) * D).contiguous()).concat([0, 1, 2].map((j) => bias!.slice(0, j * D, (j + 1) * D).contiguous())),
        toHF: ([wq, wk, wv, bq, bk, bv]) => [concat([wq!, wk!, wv!], 1), concat([bq!, bk!, bv!], 0)],
      },
      same(`${h}attn.c_proj.weight`, [D, D], `${b}attn.W_O`), same(`${h}attn.c_proj.bias`, [D], `${b}attn.b_O`),
      same(`${h}ln_2.weight`, [D], `${b}ln2.w`), same(`${h}ln_2.bias`, [D], `${b}ln2.b`),
      same(`${h}mlp.c_fc.weight`, [D, M], `${b}mlp.W_in`), same(`${h}mlp.c_fc.bias`, [M], `${b}mlp.b_in`),
      same(`${h}mlp.c_proj.weight`, [M, D], `${b}mlp.W_out`), same(`${h}mlp.c_proj.bias`, [D], `${b}mlp.b_out`),
    );
  }
  out.push(same(`${p}ln_f.weight`, [D], "ln_final.w"), same(`${p}ln_f.bias`, [D], "ln_final.b"));
  // lm_head is a torch Linear(d_model, d_vocab, bias=False): weight [d_vocab, d_model].
  out.push(tied ? tiedUnembed(`${p}wte.weight`, cfg) : linearT("lm_head.weight", [V, D], "unembed.W_U"));
  return out;
}

// modeling_gpt_neox.py (v4.40): GPTNeoXForCausalLM(gpt_neox = GPTNeoXModel(embed_in, layers[l], final_layer_norm), embed_out).
function neoxRules(cfg: ModelConfig, p: string, tied: boolean): Rule[] {
  const { d_model: D, d_mlp: M, d_vocab: V, n_heads: H, d_head: dh } = cfg;
  const out: Rule[] = [same(`${p}embed_in.weight`, [V, D], "embed.W_E")];
  for (let l = 0; l < cfg.n_layers; l++) {
    const h = `${p}layers.${l}.`, b = `blocks.${l}.`;
    out.push(same(`${h}input_layernorm.weight`, [D], `${b}ln1.w`), same(`${h}input_layernorm.bias`, [D], `${b}ln1.b`));
    // GPTNeoXAttention: qkv.view(..., n_heads, 3 * head_size), then Q, K, V are consecutive d_head slices per head.
    // Weight rows [3·H·d_head] = [H, 3, d_head] (torch Linear [out, in]); bias likewise.
    out.push({
      hf: [{ name: `${h}attention.query_key_value.weight`, shape: [3 * H * dh, D] }],
      ours: [`${b}attn.W_Q`, `${b}attn.W_K`, `${b}attn.W_V`],
      toOurs: ([w]) => {
        const g = w!.reshape([H, 3, dh, D]); // [head_index, q|k|v, d_head, d_model]
        return [0, 1, 2].map((j) => T(select(g, 1, j).reshape([H * dh, D]))); // each [d_model, head_index·d_head]
      },
      toHF: ([wq, wk, wv]) => [stack([wq!, wk!, wv!].map((w) => T(w).reshape([H, dh, D])), 1).reshape([3 * H * dh, D])],
    });
    if (cfg.attn_bias) {
      out.push({
        hf: [{ name: `${h}attention.query_key_value.bias`, shape: [3 * H * dh] }],
        ours: [`${b}attn.b_Q`, `${b}attn.b_K`, `${b}attn.b_V`],
        toOurs: ([bias]) => [0, 1, 2].map((j) => select(bias!.reshape([H, 3, dh]), 1, j).reshape([H * dh]).contiguous()),
        toHF: ([bq, bk, bv]) => [stack([bq!, bk!, bv!].map((x) => x.reshape([H, dh])), 1).reshape([3 * H * dh])],
      });
    }
    out.push(linearT(`${h}attention.dense.weight`, [D, H * dh], `${b}attn.W_O`));
    if (cfg.attn_bias) out.push(same(`${h}attention.dense.bias`, [D], `${b}attn.b_O`));
    out.push(
      same(`${h}post_attention_layernorm.weight`, [D], `${b}ln2.w`), same(`${h}post_attention_layernorm.bias`, [D], `${b}ln2.b`),
      linearT(`${h}mlp.dense_h_to_4h.weight`, [M, D], `${b}mlp.W_in`), same(`${h}mlp.dense_h_to_4h.bias`, [M], `${b}mlp.b_in`),
      linearT(`${h}mlp.dense_4h_to_h.weight`, [D, M], `${b}mlp.W_out`), same(`${h}mlp.dense_4h_to_h.bias`, [D], `${b}mlp.b_out`),
    );
  }
  out.push(same(`${p}final_layer_norm.weight`, [D], "ln_final.w"), same(`${p}final_layer_norm.bias`, [D], "ln_final.b"));
  out.push(tied ? tiedUnembed(`${p}embed_in.weight`, cfg) : linearT("embed_out.weight", [V, D], "unembed.W_U"));
  return out;
}

// modeling_llama.py (v4.40): LlamaForCausalLM(model = LlamaModel(embed_tokens, layers[l], norm), lm_head).
function llamaRules(cfg: ModelConfig, p: string, tied: boolean): Rule[] {
  const { d_model: D, d_mlp: M, d_vocab: V, n_heads: H, d_head: dh, n_key_value_heads: Hkv } = cfg;
  const out: Rule[] = [same(`${p}embed_tokens.weight`, [V, D], "embed.W_E")];
  for (let l = 0; l < cfg.n_layers; l++) {
    const h = `${p}layers.${l}.`, b = `blocks.${l}.`;
    out.push(
      same(`${h}input_layernorm.weight`, [D], `${b}ln1.w`),
      linearT(`${h}self_attn.q_proj.weight`, [H * dh, D], `${b}attn.W_Q`),
      linearT(`${h}self_attn.k_proj.weight`, [Hkv * dh, D], `${b}attn.W_K`),
      linearT(`${h}self_attn.v_proj.weight`, [Hkv * dh, D], `${b}attn.W_V`),
      linearT(`${h}self_attn.o_proj.weight`, [D, H * dh], `${b}attn.W_O`),
    );
    if (cfg.attn_bias) {
      out.push(
        same(`${h}self_attn.q_proj.bias`, [H * dh], `${b}attn.b_Q`), same(`${h}self_attn.k_proj.bias`, [Hkv * dh], `${b}attn.b_K`),
        same(`${h}self_attn.v_proj.bias`, [Hkv * dh], `${b}attn.b_V`), same(`${h}self_attn.o_proj.bias`, [D], `${b}attn.b_O`),
      );
    }
    // LlamaMLP: down_proj(act(gate_proj(x)) * up_proj(x)); circuitscope's W_gate is the activated branch, W_in the linear one.
    out.push(
      same(`${h}post_attention_layernorm.weight`, [D], `${b}ln2.w`),
      linearT(`${h}mlp.gate_proj.weight`, [M, D], `${b}mlp.W_gate`),
      linearT(`${h}mlp.up_proj.weight`, [M, D], `${b}mlp.W_in`),
      linearT(`${h}mlp.down_proj.weight`, [D, M], `${b}mlp.W_out`),
    );
    if (cfg.mlp_bias) out.push(same(`${h}mlp.gate_proj.bias`, [M], `${b}mlp.b_gate`), same(`${h}mlp.up_proj.bias`, [M], `${b}mlp.b_in`), same(`${h}mlp.down_proj.bias`, [D], `${b}mlp.b_out`));
  }
  out.push(same(`${p}norm.weight`, [D], "ln_final.w"));
  out.push(tied ? tiedUnembed(`${p}embed_tokens.weight`, cfg) : linearT("lm_head.weight", [V, D], "unembed.W_U"));
  return out;
}

/** Every state-dict key of the model must be filled by exactly one rule; anything else is a config the tables do not cover. */
function checkCoverage(model: HookedTransformer, rs: Rule[]): void {
  const keys = new Set(model.stateDict().keys()), seen = new Set<string>();
  const problems: string[] = [];
  for (const r of rs) for (const k of r.ours) {
    if (seen.has(k)) problems.push(`"${k}" is filled twice`);
    else if (!keys.has(k)) problems.push(`"${k}" is not in the model`);
    seen.add(k);
  }
  for (const k of keys) if (!seen.has(k)) problems.push(`"${k}" has no Hugging Face counterpart`);
  if (problems.length) throw new Error(`Hugging Face ${model.cfg.architecture} layout cannot express this config: ${problems.join("; ")}`);
}

/** "transformer." if the checkpoint uses the LM-head model's names, "" if it was saved from the bare model. */
function detectPrefix(source: TensorSource, family: Family): string {
  const p = BASE_PREFIX[family], embed = EMBED[family];
  return !source.has(p + embed) && source.has(embed) ? "" : p;
}

/**
 * Copy an HF checkpoint's weights into model (in place), after checking every name and shape against
 * model.cfg. Throws HFWeightsError listing every missing, unexpected or misshapen tensor, and (unless
 * checkFinite is false) NonFiniteError naming the first tensor that holds NaN or ±Infinity.
 */
export function loadHFWeights(model: HookedTransformer, source: TensorSource, opts: { checkFinite?: boolean } = {}): void {
  const cfg = model.cfg, family = hfFamily(cfg);
  const prefix = detectPrefix(source, family);
  // With tie_word_embeddings HF uses the embedding as the unembedding and ignores any saved copy.
  const rs = rules(cfg, family, prefix, cfg.tie_word_embeddings);
  checkCoverage(model, rs);

  const issues: StateDictIssue[] = [];
  const expected = new Set<string>();
  for (const r of rs) for (const { name, shape } of r.hf) {
    if (expected.has(name)) continue;
    expected.add(name);
    if (!source.has(name)) { issues.push({ code: "missing_key", key: name, message: `missing tensor "${name}" (expected shape ${fmt(shape)})` }); continue; }
    const got = source.info(name).shape;
    if (!shapeEq(got, shape)) issues.push({ code: "shape_mismatch", key: name, expected: shape, got, message: `"${name}": the config implies shape ${fmt(shape)}, the checkpoint has ${fmt(got)}` });
  }
  for (const name of source.names()) {
    if (expected.has(name) || IGNORED[family].test(name) || (cfg.tie_word_embeddings && name === UNEMBED[family])) continue;
    issues.push({ code: "unexpected_key", key: name, message: `unexpected tensor "${name}" (not part of a ${family} model with this config)` });
  }
  if (issues.length) throw new HFWeightsError(source.location, issues);

  const params = model.stateDict();
  noGrad(() => {
    for (const r of rs) {
      const loaded = r.hf.map(({ name }) => source.load(name, { dtype: params.get(r.ours[0]!)!.dtype }));
      if (opts.checkFinite ?? true) r.hf.forEach(({ name }, i) => {
        // One sum on the active backend clears a finite tensor; only a non-finite sum is scanned element by element.
        const at = allFinite(loaded[i]!) ? null : nonFiniteAt(loaded[i]!);
        if (at !== null) throw new NonFiniteError(`${source.location}: tensor "${name}" holds ${at} (load with checkFinite: false to skip this check)`, name);
      });
      const ours = r.toOurs(loaded);
      // The tensors were just read from the file: parameters take their storage instead of a second copy.
      model.loadStateDict(new Map(r.ours.map((k, i) => [k, ours[i]!])), { strict: false, adopt: true });
    }
  });
}

/**
 * The model's weights under their HF names and layouts (what save_pretrained would write). With
 * `tied`, the unembedding is not written (HF rebuilds it from the embedding).
 */
export function hfStateDict(model: HookedTransformer, opts: { tied?: boolean } = {}): Map<string, Tensor> {
  const cfg = model.cfg, family = hfFamily(cfg);
  const rs = rules(cfg, family, BASE_PREFIX[family], opts.tied ?? cfg.tie_word_embeddings);
  checkCoverage(model, rs);
  const sd = model.stateDict(), out = new Map<string, Tensor>();
  noGrad(() => {
    for (const r of rs) {
      if (r.loadOnly) continue;
      const hf = r.toHF(r.ours.map((k) => sd.get(k)!));
      r.hf.forEach(({ name, shape }, i) => {
        const t = hf[i]!;
        if (!shapeEq(t.shape, shape)) throw new Error(`hfStateDict: internal layout error for "${name}": ${fmt(t.shape)} vs ${fmt(shape)}`);
        out.set(name, t);
      });
    }
  });
  return out;
}

/** True when W_U is exactly W_E^T, so the model can be saved with tied embeddings without losing anything. */
export function unembedIsTied(model: HookedTransformer): boolean {
  const sd = model.stateDict();
  const we = sd.get("embed.W_E")!, wu = sd.get("unembed.W_U")!;
  if (sd.has("unembed.b_U")) return false;
  const e = we.contiguous().toArray(), u = wu.contiguous().toArray();
  const [V, D] = we.shape as [number, number];
  for (let v = 0; v < V; v++) for (let d = 0; d < D; d++) if (e[v * D + d] !== u[d * V + v]) return false;
  return true;
}

/** A HookedTransformer for cfg with source's weights, frozen for analysis (no gradients, packed weights, eval mode). */
export function frozenFromHF(cfg: ModelConfig, source: TensorSource, opts: { checkFinite?: boolean } = {}): HookedTransformer {
  const model = new HookedTransformer(cfg);
  const checkFinite = opts.checkFinite ?? true;
  model.checkFinite = checkFinite;
  loadHFWeights(model, source, { checkFinite });
  for (const p of model.parameters()) p.requiresGrad = false;
  model.packWeights(); // weights packed once, at load, for the active backend's matrix kernels
  model.eval();
  return model;
}
