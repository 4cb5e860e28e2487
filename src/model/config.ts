// One config type for every architecture circuitscope runs, with TransformerLens's field names so
// its users feel at home. Architectures differ by composition (see block.ts), not by branches on a
// model name.
export type ActFn = "gelu_new" | "gelu" | "relu" | "silu";

/**
 * The families circuitscope runs. The Llama-like ones (mistral … olmo2) share Llama's block and differ
 * by the flags below; the name decides only the Hugging Face class and tensor names (src/io).
 */
export type Architecture =
  | "gpt2" | "neox" | "llama" | "mistral" | "qwen2" | "qwen3" | "gemma" | "gemma2" | "gemma3" | "phi3" | "olmo2"
  | "gptj" | "gpt_neo" | "attn-only";

/** Whether a layer attends to every earlier key ("global") or only the last window_size ("local", sliding window). */
export type AttnType = "global" | "local";

export interface ModelConfig {
  /** Which family the weights come from; decides block composition and HF name mapping. */
  architecture: Architecture;
  d_model: number; // e.g. 768
  n_layers: number; // e.g. 12
  n_heads: number; // e.g. 12
  d_head: number; // e.g. 64
  d_mlp: number; // e.g. 3072 (0 for attention-only models)
  d_vocab: number; // e.g. 50257
  n_ctx: number; // e.g. 1024, the longest sequence
  n_key_value_heads: number; // = n_heads unless grouped-query attention (Llama 2 70B: 8)
  act_fn: ActFn;
  normalization_type: "LN" | "RMS" | null;
  eps: number; // e.g. 1e-5
  positional_embedding_type: "standard" | "rotary" | "none";
  rotary_dim: number; // dims of each head that rotate (NeoX: a fraction of d_head)
  rotary_base: number; // e.g. 10000
  /** Linear RoPE scaling factor (positions are divided by it); 1 = none. */
  rotary_scaling: number;
  /** Llama 3 / dynamic-NTK RoPE frequency rescaling (rotary.ts); null = none (rotary_scaling still applies). */
  rope_scaling: RopeScaling | null;
  /** RoPE base of the "local" layers (Gemma 3's rope_local_base_freq, without rope scaling); null = rotary_base. */
  rotary_base_local: number | null;
  /** GPT-J's rotate_every_two: dims (2i, 2i+1) form pair i, instead of (i, i + rotary_dim/2). */
  rotary_adjacent_pairs: boolean;
  /** Per layer, e.g. ["local", "global", …] (GPT-Neo, Gemma 2/3, Mistral); null = every layer global. */
  attn_types: readonly AttnType[] | null;
  /** Keys a "local" layer sees, the query's own included (key j is visible from query i when i - j < window_size). */
  window_size: number | null;
  /** Gemma 2: scores = cap · tanh(scores / cap) after scaling, before the mask; null = none. */
  attn_scores_soft_cap: number | null;
  /** Gemma 2: logits = cap · tanh(logits / cap); null = none. */
  output_logits_soft_cap: number | null;
  /** The token embedding is multiplied by this (Gemma: sqrt(d_model) in the parameter dtype); 1 = none. */
  embed_scale: number;
  /**
   * Where blocks normalise: "pre" (ln1 before attention, ln2 before the MLP), "sandwich" (also ln1_post /
   * ln2_post on their outputs, Gemma 2/3), "post" (ln1_post / ln2_post only, OLMo 2).
   */
  norm_placement: "pre" | "sandwich" | "post";
  /** RMSNorm of queries and keys before RoPE: per head over d_head (Qwen3, Gemma 3) or over the whole projection (OLMo 2). */
  qk_norm: "head" | "full" | null;
  /** GPT-J: the MLP reads ln1's output (one norm for both parallel branches; there is no ln2). */
  parallel_shared_norm: boolean;
  parallel_attn_mlp: boolean; // NeoX: resid + attn(ln1(x)) + mlp(ln2(x))
  gated_mlp: boolean; // Llama's SwiGLU: W_out(act(W_gate x) * W_in x)
  attn_only: boolean;
  attn_bias: boolean; // b_Q, b_K, b_V, b_O
  mlp_bias: boolean; // b_in, b_out
  unembed_bias: boolean; // b_U
  tie_word_embeddings: boolean; // W_U = W_E^T when saved in HF layout
  /** Scores are divided by this (sqrt(d_head) by default). */
  attn_scale: number;
  /** GPT-2's option: layer l's scores are also divided by l + 1. */
  scale_attn_by_inverse_layer_idx: boolean;
  /** Token id used as beginning-of-sequence, if the tokenizer has one. */
  bos_token_id: number | null;
  /** Parameter dtype, e.g. "float32" (the default); "float64" for gradient checks against finite differences. */
  dtype?: "float32" | "float64";
  /**
   * TransformerLens's use_split_qkv_input: hook points blocks.L.hook_q_input / hook_k_input /
   * hook_v_input [batch, pos, n_heads (n_key_value_heads for k, v), d_model], one copy of resid_pre per
   * head before ln1, so patching one head's input changes only that head. Off by default (no cost).
   */
  use_split_qkv_input?: boolean;
  /** TransformerLens's use_hook_mlp_in: blocks.L.hook_mlp_in [batch, pos, d_model], the MLP's input before ln2. */
  use_hook_mlp_in?: boolean;
}

/** HF rope_scaling of type "llama3" or "dynamic" (modeling_rope_utils.py). */
export type RopeScaling =
  | { type: "llama3"; factor: number; low_freq_factor: number; high_freq_factor: number; original_max_position_embeddings: number }
  | { type: "dynamic"; factor: number; original_max_position_embeddings: number };

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Fill defaults for a partial config and check it is consistent. */
export function makeConfig(c: Partial<ModelConfig> & Pick<ModelConfig, "d_model" | "n_layers" | "n_heads" | "d_vocab">): ModelConfig {
  const arch = c.architecture ?? "gpt2";
  const d_head = c.d_head ?? c.d_model / c.n_heads;
  // Llama and the families built from its block (RMSNorm, rotary, SwiGLU, no biases by default).
  const llama = ["llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "phi3", "olmo2"].includes(arch);
  const cfg: ModelConfig = {
    architecture: arch,
    d_model: c.d_model,
    n_layers: c.n_layers,
    n_heads: c.n_heads,
    d_head,
    d_mlp: c.d_mlp ?? (arch === "attn-only" ? 0 : 4 * c.d_model),
    d_vocab: c.d_vocab,
    n_ctx: c.n_ctx ?? 1024,
    n_key_value_heads: c.n_key_value_heads ?? c.n_heads,
    act_fn: c.act_fn ?? (llama ? "silu" : arch === "neox" ? "gelu" : "gelu_new"),
    normalization_type: c.normalization_type === undefined ? (llama ? "RMS" : "LN") : c.normalization_type,
    eps: c.eps ?? (llama ? 1e-6 : 1e-5),
    positional_embedding_type: c.positional_embedding_type ?? (llama || arch === "neox" ? "rotary" : "standard"),
    rotary_dim: c.rotary_dim ?? d_head,
    rotary_base: c.rotary_base ?? 10000,
    rotary_scaling: c.rotary_scaling ?? 1,
    rope_scaling: c.rope_scaling ?? null,
    rotary_base_local: c.rotary_base_local ?? null,
    rotary_adjacent_pairs: c.rotary_adjacent_pairs ?? false,
    attn_types: c.attn_types ?? null,
    window_size: c.window_size ?? null,
    attn_scores_soft_cap: c.attn_scores_soft_cap ?? null,
    output_logits_soft_cap: c.output_logits_soft_cap ?? null,
    embed_scale: c.embed_scale ?? 1,
    norm_placement: c.norm_placement ?? "pre",
    qk_norm: c.qk_norm ?? null,
    parallel_shared_norm: c.parallel_shared_norm ?? false,
    parallel_attn_mlp: c.parallel_attn_mlp ?? arch === "neox",
    gated_mlp: c.gated_mlp ?? llama,
    attn_only: c.attn_only ?? arch === "attn-only",
    attn_bias: c.attn_bias ?? !llama,
    mlp_bias: c.mlp_bias ?? !llama,
    unembed_bias: c.unembed_bias ?? false,
    tie_word_embeddings: c.tie_word_embeddings ?? arch === "gpt2",
    attn_scale: c.attn_scale ?? Math.sqrt(d_head),
    scale_attn_by_inverse_layer_idx: c.scale_attn_by_inverse_layer_idx ?? false,
    bos_token_id: c.bos_token_id ?? null,
    dtype: c.dtype ?? "float32",
    use_split_qkv_input: c.use_split_qkv_input ?? false,
    use_hook_mlp_in: c.use_hook_mlp_in ?? false,
  };
  validateConfig(cfg);
  return cfg;
}

export function validateConfig(c: ModelConfig): void {
  const pos = (k: keyof ModelConfig) => {
    const v = c[k];
    if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) throw new ConfigError(`config: ${k} must be a positive integer, got ${String(v)}`);
  };
  (["d_model", "n_layers", "n_heads", "d_head", "d_vocab", "n_ctx", "n_key_value_heads"] as const).forEach(pos);
  if (!c.attn_only) pos("d_mlp");
  if (!(Number.isFinite(c.eps) && c.eps >= 0)) throw new ConfigError(`config: eps must be a finite number >= 0, got ${c.eps} (variance + eps < 0 makes the norm NaN)`);
  if (c.n_heads % c.n_key_value_heads !== 0) throw new ConfigError(`config: n_heads (${c.n_heads}) must be a multiple of n_key_value_heads (${c.n_key_value_heads})`);
  if (c.positional_embedding_type === "rotary" && (c.rotary_dim % 2 !== 0 || c.rotary_dim > c.d_head || c.rotary_dim <= 0))
    throw new ConfigError(`config: rotary_dim (${c.rotary_dim}) must be even and in (0, d_head = ${c.d_head}]`);
  if (c.attn_types !== null) {
    if (c.attn_types.length !== c.n_layers) throw new ConfigError(`config: attn_types has ${c.attn_types.length} entries for n_layers = ${c.n_layers}`);
    const bad = c.attn_types.find((t) => t !== "global" && t !== "local");
    if (bad !== undefined) throw new ConfigError(`config: attn_types entry ${JSON.stringify(bad)} is not "global" or "local"`);
    if (c.attn_types.includes("local") && !(Number.isInteger(c.window_size) && c.window_size! > 0))
      throw new ConfigError(`config: window_size must be a positive integer when a layer is "local", got ${String(c.window_size)}`);
  }
  for (const k of ["attn_scores_soft_cap", "output_logits_soft_cap"] as const) {
    const v = c[k];
    if (v !== null && !(Number.isFinite(v) && v > 0)) throw new ConfigError(`config: ${k} must be a positive number or null, got ${v}`);
  }
  if (!(Number.isFinite(c.embed_scale) && c.embed_scale > 0)) throw new ConfigError(`config: embed_scale must be a positive number, got ${c.embed_scale}`);
  if (c.parallel_shared_norm && !c.parallel_attn_mlp) throw new ConfigError("config: parallel_shared_norm needs parallel_attn_mlp");
  if (c.rotary_adjacent_pairs && c.positional_embedding_type !== "rotary") throw new ConfigError("config: rotary_adjacent_pairs needs positional_embedding_type \"rotary\"");
}

/** Whether layer l attends through a sliding window. */
export const isLocalLayer = (c: ModelConfig, l: number): boolean => c.attn_types?.[l] === "local";

/** GPT-2 small's shape (Radford et al. 2019): 12 layers, d_model 768, 12 heads, d_mlp 3072. */
export const gpt2SmallConfig = (): ModelConfig =>
  makeConfig({ architecture: "gpt2", d_model: 768, n_layers: 12, n_heads: 12, d_mlp: 3072, d_vocab: 50257, n_ctx: 1024 });
