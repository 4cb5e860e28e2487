// Hugging Face config.json ↔ circuitscope's ModelConfig, for the families in SUPPORTED_ARCHITECTURES,
// with the field names and defaults of their configuration_<family>.py files (transformers v4.40, and
// the later fields: head_dim, layer_types, Gemma 2/3, Qwen3, OLMo 2). Settings circuitscope cannot
// reproduce exactly (YaRN / LongRoPE scaling, …) are rejected with the field and value named, never
// silently dropped.
//
// This file maps configs only; weight names and layouts are in hf-weights.ts.
import { ConfigError, makeConfig, type ActFn, type AttnType, type ModelConfig, type RopeScaling } from "../model/config.js";

/** The HF model classes circuitscope loads, and the family each becomes. */
export const SUPPORTED_ARCHITECTURES = {
  GPT2LMHeadModel: "gpt2",
  GPTNeoXForCausalLM: "neox",
  LlamaForCausalLM: "llama",
  MistralForCausalLM: "mistral",
  Qwen2ForCausalLM: "qwen2",
  Qwen3ForCausalLM: "qwen3",
  GemmaForCausalLM: "gemma",
  Gemma2ForCausalLM: "gemma2",
  Gemma3ForCausalLM: "gemma3",
  Phi3ForCausalLM: "phi3",
  Olmo2ForCausalLM: "olmo2",
  GPTJForCausalLM: "gptj",
  GPTNeoForCausalLM: "gpt_neo",
} as const satisfies Record<string, ModelConfig["architecture"]>;

export type HFArchitecture = keyof typeof SUPPORTED_ARCHITECTURES;
export type HFFamily = (typeof SUPPORTED_ARCHITECTURES)[HFArchitecture];

/** A config.json circuitscope cannot represent; the message names the field or architecture. */
export class HFConfigError extends ConfigError {
  override name = "HFConfigError";
}

/** config.json as parsed JSON. */
export type HFConfigJson = Record<string, unknown>;

/** The architecture named by config.json ("architectures": [...]), checked against SUPPORTED_ARCHITECTURES. */
export function hfArchitecture(json: HFConfigJson): HFArchitecture {
  const archs = json.architectures;
  const name = Array.isArray(archs) && typeof archs[0] === "string" ? archs[0] : undefined;
  const supported = Object.keys(SUPPORTED_ARCHITECTURES).join(", ");
  if (name === undefined) throw new HFConfigError(`config.json has no "architectures" entry (model_type ${JSON.stringify(json.model_type)}); supported: ${supported}`);
  if (!Object.hasOwn(SUPPORTED_ARCHITECTURES, name)) throw new HFConfigError(`unsupported architecture "${name}"; circuitscope loads ${supported}`);
  return name as HFArchitecture;
}

// Typed field readers: absent → the HF default; present but of the wrong type → an error naming it.
function num(json: HFConfigJson, key: string, dflt?: number): number {
  const v = json[key];
  if (v === undefined || v === null) {
    if (dflt === undefined) throw new HFConfigError(`config.json: missing required field "${key}"`);
    return dflt;
  }
  if (typeof v !== "number" || !Number.isFinite(v)) throw new HFConfigError(`config.json: "${key}" must be a number, got ${JSON.stringify(v)}`);
  return v;
}
/** A norm epsilon: ≥ 0, since variance + eps < 0 makes the norm NaN. */
function epsilon(json: HFConfigJson, key: string, dflt: number): number {
  const v = num(json, key, dflt);
  if (v < 0) throw new HFConfigError(`config.json: "${key}" must be >= 0, got ${v} (variance + ${key} would be negative and the norm NaN)`);
  return v;
}
function bool(json: HFConfigJson, key: string, dflt: boolean): boolean {
  const v = json[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== "boolean") throw new HFConfigError(`config.json: "${key}" must be true or false, got ${JSON.stringify(v)}`);
  return v;
}
function str(json: HFConfigJson, key: string, dflt: string): string {
  const v = json[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== "string") throw new HFConfigError(`config.json: "${key}" must be a string, got ${JSON.stringify(v)}`);
  return v;
}
/** bos_token_id may be a number, null, or (in a few configs) a list; circuitscope keeps a single id. */
function tokenId(json: HFConfigJson, key: string): number | null {
  const v = json[key];
  if (typeof v === "number" && Number.isInteger(v)) return v;
  if (Array.isArray(v) && typeof v[0] === "number") return v[0];
  return null;
}

/** HF activation names (activations.py ACT2FN) that circuitscope computes identically. */
function actFn(name: string, key: string): ActFn {
  switch (name) {
    case "gelu_new": case "gelu_pytorch_tanh": return "gelu_new"; // both 0.5x(1 + tanh(√(2/π)(x + 0.044715x³)))
    case "gelu": return "gelu"; // exact, erf-based
    case "relu": return "relu";
    case "silu": case "swish": return "silu";
    default: throw new HFConfigError(`config.json: ${key} "${name}" is not supported (supported: gelu_new, gelu_pytorch_tanh, gelu, relu, silu)`);
  }
}

/** rope_scaling (null, {rope_type|type: "default" | "linear" | "llama3" | "dynamic", …}) as a linear factor and a frequency rescaling; other types are rejected. */
function ropeScaling(json: HFConfigJson): { rotary_scaling: number; rope_scaling: RopeScaling | null } {
  const rs = json.rope_scaling, none = { rotary_scaling: 1, rope_scaling: null };
  if (rs === undefined || rs === null) return none;
  if (typeof rs !== "object" || Array.isArray(rs)) throw new HFConfigError(`config.json: rope_scaling must be an object or null, got ${JSON.stringify(rs)}`);
  const r = rs as Record<string, unknown>;
  const type = r.rope_type ?? r.type;
  if (type === "default") return none;
  const field = (k: string, dflt?: unknown): number => {
    const v = r[k] ?? dflt;
    if (typeof v !== "number" || !(v > 0) || !Number.isFinite(v)) throw new HFConfigError(`config.json: rope_scaling.${k} must be a number > 0, got ${JSON.stringify(r[k])}`);
    return v;
  };
  if (type !== "linear" && type !== "llama3" && type !== "dynamic")
    throw new HFConfigError(`config.json: rope_scaling type ${JSON.stringify(type)} is not supported (supported: "linear", "llama3", "dynamic", or null)`);
  const factor = r.factor;
  if (typeof factor !== "number" || !(factor >= 1)) throw new HFConfigError(`config.json: rope_scaling.factor must be a number >= 1, got ${JSON.stringify(factor)}`);
  if (type === "linear") return { rotary_scaling: factor, rope_scaling: null };
  // _compute_dynamic_ntk_parameters measures against max_position_embeddings itself.
  if (type === "dynamic") return { rotary_scaling: 1, rope_scaling: { type: "dynamic", factor, original_max_position_embeddings: field("max_position_embeddings", json.max_position_embeddings) } };
  const original = field("original_max_position_embeddings", json.max_position_embeddings);
  const low = field("low_freq_factor"), high = field("high_freq_factor");
  if (!(high > low)) throw new HFConfigError(`config.json: rope_scaling.high_freq_factor (${high}) must exceed low_freq_factor (${low})`);
  return { rotary_scaling: 1, rope_scaling: { type: "llama3", factor, low_freq_factor: low, high_freq_factor: high, original_max_position_embeddings: original } };
}

/** rope_scaling for config.json, from cfg. */
function ropeScalingToHF(cfg: ModelConfig): HFConfigJson | null {
  if (cfg.rope_scaling) return { ...cfg.rope_scaling, rope_type: cfg.rope_scaling.type };
  return cfg.rotary_scaling === 1 ? null : { type: "linear", rope_type: "linear", factor: cfg.rotary_scaling };
}

/** circuitscope's ModelConfig for a Hugging Face config.json. */
export function configFromHF(json: HFConfigJson): ModelConfig {
  const arch = hfArchitecture(json);
  // transformers v5 moves rope_theta / rope_scaling into rope_parameters; reading rope_theta's default instead would be silently wrong.
  if (json.rope_parameters !== undefined && json.rope_parameters !== null && json.rope_theta === undefined)
    throw new HFConfigError("config.json: rope_parameters (transformers v5 layout) is not supported; give rope_theta and rope_scaling as transformers v4 writes them");
  switch (arch) {
    case "GPT2LMHeadModel": return gpt2Config(json);
    case "GPTNeoXForCausalLM": return neoxConfig(json);
    case "LlamaForCausalLM": return llamaConfig(json);
    case "MistralForCausalLM": case "Qwen2ForCausalLM": case "Qwen3ForCausalLM": case "GemmaForCausalLM": case "Gemma2ForCausalLM":
    case "Gemma3ForCausalLM": case "Phi3ForCausalLM": case "Olmo2ForCausalLM":
      return decoderConfig(json, SUPPORTED_ARCHITECTURES[arch]);
    case "GPTJForCausalLM": return gptjConfig(json);
    case "GPTNeoForCausalLM": return gptNeoConfig(json);
    default: return arch satisfies never;
  }
}

// configuration_gpt2.py / modeling_gpt2.py (v4.40).
function gpt2Config(j: HFConfigJson): ModelConfig {
  const d_model = num(j, "n_embd", 768), n_heads = num(j, "n_head", 12);
  return makeConfig({
    architecture: "gpt2",
    d_model,
    n_layers: num(j, "n_layer", 12),
    n_heads,
    d_mlp: num(j, "n_inner", 4 * d_model), // n_inner: null means 4 * n_embd
    d_vocab: num(j, "vocab_size", 50257),
    n_ctx: num(j, "n_positions", 1024),
    act_fn: actFn(str(j, "activation_function", "gelu_new"), "activation_function"),
    eps: epsilon(j, "layer_norm_epsilon", 1e-5),
    // scale_attn_weights = false: raw q·k scores (GPT2Attention._attn skips the division).
    attn_scale: bool(j, "scale_attn_weights", true) ? Math.sqrt(d_model / n_heads) : 1,
    // reorder_and_upcast_attn computes the same scores in float32 (what circuitscope computes in anyway); nothing to map.
    scale_attn_by_inverse_layer_idx: bool(j, "scale_attn_by_inverse_layer_idx", false),
    tie_word_embeddings: bool(j, "tie_word_embeddings", true),
    bos_token_id: tokenId(j, "bos_token_id"),
  });
}

// configuration_gpt_neox.py / modeling_gpt_neox.py (v4.40).
function neoxConfig(j: HFConfigJson): ModelConfig {
  const d_model = num(j, "hidden_size"), n_heads = num(j, "num_attention_heads");
  const d_head = d_model / n_heads;
  const rotary_pct = num(j, "rotary_pct", 0.25);
  const bias = bool(j, "attention_bias", true);
  return makeConfig({
    architecture: "neox",
    d_model,
    n_layers: num(j, "num_hidden_layers"),
    n_heads,
    d_mlp: num(j, "intermediate_size"),
    d_vocab: num(j, "vocab_size"),
    n_ctx: num(j, "max_position_embeddings", 2048),
    act_fn: actFn(str(j, "hidden_act", "gelu"), "hidden_act"),
    normalization_type: "LN",
    eps: epsilon(j, "layer_norm_eps", 1e-5),
    positional_embedding_type: "rotary",
    rotary_dim: Math.floor(d_head * rotary_pct), // GPTNeoXAttention: rotary_ndims = int(head_size * rotary_pct)
    rotary_base: num(j, "rotary_emb_base", 10000),
    ...ropeScaling(j),
    parallel_attn_mlp: bool(j, "use_parallel_residual", true),
    attn_bias: bias,
    mlp_bias: true,
    tie_word_embeddings: bool(j, "tie_word_embeddings", false),
    bos_token_id: tokenId(j, "bos_token_id"),
  });
}

// configuration_llama.py / modeling_llama.py (v4.40; head_dim and mlp_bias from v4.45).
function llamaConfig(j: HFConfigJson): ModelConfig {
  const d_model = num(j, "hidden_size"), n_heads = num(j, "num_attention_heads");
  const partial = num(j, "partial_rotary_factor", 1);
  if (!(partial > 0 && partial <= 1)) throw new HFConfigError(`config.json: partial_rotary_factor must be in (0, 1], got ${partial}`);
  const d_head = num(j, "head_dim", d_model / n_heads);
  return makeConfig({
    architecture: "llama",
    d_model,
    n_layers: num(j, "num_hidden_layers"),
    n_heads,
    d_head,
    d_mlp: num(j, "intermediate_size"),
    d_vocab: num(j, "vocab_size"),
    n_ctx: num(j, "max_position_embeddings", 2048),
    n_key_value_heads: num(j, "num_key_value_heads", n_heads),
    act_fn: actFn(str(j, "hidden_act", "silu"), "hidden_act"),
    normalization_type: "RMS",
    eps: epsilon(j, "rms_norm_eps", 1e-6),
    positional_embedding_type: "rotary",
    rotary_dim: Math.floor(d_head * partial),
    rotary_base: num(j, "rope_theta", 10000),
    ...ropeScaling(j),
    parallel_attn_mlp: false,
    gated_mlp: true,
    attn_bias: bool(j, "attention_bias", false),
    mlp_bias: bool(j, "mlp_bias", false), // gate_proj, up_proj and down_proj biases
    tie_word_embeddings: bool(j, "tie_word_embeddings", false),
    bos_token_id: tokenId(j, "bos_token_id"),
  });
}

type DecoderFamily = "mistral" | "qwen2" | "qwen3" | "gemma" | "gemma2" | "gemma3" | "phi3" | "olmo2";

/** Per-layer "sliding_attention" / "full_attention" (config.json layer_types, newer transformers), or null when absent. */
function layerTypes(j: HFConfigJson, n_layers: number): AttnType[] | null {
  const lt = j.layer_types;
  if (lt === undefined || lt === null) return null;
  if (!Array.isArray(lt) || lt.length !== n_layers) throw new HFConfigError(`config.json: layer_types must list ${n_layers} entries, got ${JSON.stringify(lt)}`);
  return lt.map((t, i) => {
    if (t === "sliding_attention") return "local";
    if (t === "full_attention") return "global";
    throw new HFConfigError(`config.json: layer_types[${i}] ${JSON.stringify(t)} is not "sliding_attention" or "full_attention"`);
  });
}

/** A positive integer window, or null (sliding_window: null). */
function windowSize(j: HFConfigJson, key: string, dflt: number | null): number | null {
  const v = j[key] === undefined ? dflt : j[key];
  if (v === null) return null;
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) throw new HFConfigError(`config.json: "${key}" must be a positive integer or null, got ${JSON.stringify(v)}`);
  return v;
}

/** A soft cap: a positive number, or null for none. */
function softCap(j: HFConfigJson, key: string, dflt: number | null): number | null {
  const v = j[key] === undefined ? dflt : j[key];
  if (v === null) return null;
  if (typeof v !== "number" || !(v > 0)) throw new HFConfigError(`config.json: "${key}" must be a positive number or null, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * The Llama-block families (configuration_<family>.py): Mistral (sliding_window on every layer), Qwen2
 * (q/k/v biases; use_sliding_window from max_window_layers on), Qwen3 (+ per-head q/k RMSNorm), Gemma
 * (GeGLU, embeddings × sqrt(d_model), RMSNorm weights as 1 + w), Gemma 2 (+ sandwich norms, soft caps,
 * query_pre_attn_scalar, sliding window on even layers), Gemma 3 text (+ q/k norms, local RoPE base,
 * sliding_window_pattern), Phi-3 (fused qkv_proj / gate_up_proj; sliding_window), OLMo 2 (norms after
 * attention and MLP, q/k RMSNorm over the whole projection).
 */
function decoderConfig(j: HFConfigJson, arch: DecoderFamily): ModelConfig {
  const gemma = arch === "gemma" || arch === "gemma2" || arch === "gemma3";
  const d_model = num(j, "hidden_size"), n_heads = num(j, "num_attention_heads"), n_layers = num(j, "num_hidden_layers");
  // Where the configuration class's default is a fixed number rather than hidden_size / heads (Gemma's
  // head_dim 256, Qwen3's 128, Mistral's 8 key/value heads, …), config.json must say (hub configs do).
  const fixedDefaults = arch !== "phi3" && arch !== "olmo2";
  const d_head = gemma || arch === "qwen3" ? num(j, "head_dim") : num(j, "head_dim", d_model / n_heads);
  const n_kv = fixedDefaults ? num(j, "num_key_value_heads") : num(j, "num_key_value_heads", n_heads);
  const partial = num(j, "partial_rotary_factor", 1);
  if (!(partial > 0 && partial <= 1)) throw new HFConfigError(`config.json: partial_rotary_factor must be in (0, 1], got ${partial}`);
  // Which layers slide: layer_types when given, else each family's rule.
  let window: number | null = null, types: AttnType[] | null = null;
  switch (arch) {
    case "mistral": case "phi3":
      window = windowSize(j, "sliding_window", null);
      if (window !== null) types = Array.from({ length: n_layers }, () => "local" as const);
      break;
    case "qwen2": case "qwen3":
      window = bool(j, "use_sliding_window", false) ? windowSize(j, "sliding_window", 4096) : null;
      if (window !== null) { const from = num(j, "max_window_layers", 28); types = Array.from({ length: n_layers }, (_, i) => (i >= from ? "local" : "global")); }
      break;
    case "gemma2":
      window = windowSize(j, "sliding_window", 4096);
      types = Array.from({ length: n_layers }, (_, i) => (i % 2 === 0 ? "local" : "global")); // Gemma2DecoderLayer: is_sliding = not bool(layer_idx % 2)
      break;
    case "gemma3": {
      window = windowSize(j, "sliding_window", 4096);
      const pattern = num(j, "sliding_window_pattern", num(j, "_sliding_window_pattern", 6));
      types = Array.from({ length: n_layers }, (_, i) => ((i + 1) % pattern !== 0 ? "local" : "global"));
      break;
    }
    case "gemma": case "olmo2": break;
    default: return arch satisfies never;
  }
  const listed = layerTypes(j, n_layers);
  if (listed) { types = listed; if (listed.includes("local") && window === null) window = windowSize(j, "sliding_window", null); }
  if (types && !types.includes("local")) types = null;
  if (types && window === null) throw new HFConfigError("config.json: layer_types has sliding_attention layers but sliding_window is null");
  const epsDefault = arch === "phi3" || arch === "olmo2" ? 1e-5 : 1e-6;
  const caps: [number | null, number | null] = arch === "gemma2" ? [50, 30] : [null, null];
  return makeConfig({
    architecture: arch,
    d_model,
    n_layers,
    n_heads,
    d_head,
    d_mlp: num(j, "intermediate_size"),
    d_vocab: num(j, "vocab_size"),
    n_ctx: num(j, "max_position_embeddings", 2048),
    n_key_value_heads: n_kv,
    // GemmaMLP uses hidden_activation (gelu_pytorch_tanh when unset), not hidden_act.
    act_fn: gemma ? actFn(str(j, "hidden_activation", "gelu_pytorch_tanh"), "hidden_activation") : actFn(str(j, "hidden_act", "silu"), "hidden_act"),
    normalization_type: "RMS",
    eps: epsilon(j, "rms_norm_eps", epsDefault),
    positional_embedding_type: "rotary",
    rotary_dim: Math.floor(d_head * partial),
    rotary_base: num(j, "rope_theta", arch === "gemma3" ? 1e6 : 10000),
    ...ropeScaling(j),
    rotary_base_local: arch === "gemma3" ? num(j, "rope_local_base_freq", 10000) : null,
    attn_types: types,
    window_size: types ? window : null,
    attn_scores_soft_cap: gemma ? softCap(j, "attn_logit_softcapping", caps[0]) : null,
    output_logits_soft_cap: gemma ? softCap(j, "final_logit_softcapping", caps[1]) : null,
    embed_scale: gemma ? Math.sqrt(d_model) : 1,
    norm_placement: arch === "gemma2" || arch === "gemma3" ? "sandwich" : arch === "olmo2" ? "post" : "pre",
    qk_norm: arch === "qwen3" || arch === "gemma3" ? "head" : arch === "olmo2" ? "full" : null,
    // Gemma 2/3 scale scores by query_pre_attn_scalar^-0.5 instead of head_dim^-0.5.
    attn_scale: arch === "gemma2" || arch === "gemma3" ? Math.sqrt(num(j, "query_pre_attn_scalar", 256)) : Math.sqrt(d_head),
    parallel_attn_mlp: false,
    gated_mlp: true,
    attn_bias: arch === "qwen2" ? true : bool(j, "attention_bias", false),
    mlp_bias: false,
    tie_word_embeddings: bool(j, "tie_word_embeddings", gemma),
    bos_token_id: tokenId(j, "bos_token_id"),
  });
}

// configuration_gptj.py / modeling_gptj.py: parallel attention and MLP off one ln_1, rotate_every_two
// rotary on the first rotary_dim dims, no attention biases (zero ones here), a biased lm_head.
function gptjConfig(j: HFConfigJson): ModelConfig {
  const d_model = num(j, "n_embd", 4096), n_heads = num(j, "n_head", 16);
  return makeConfig({
    architecture: "gptj",
    d_model,
    n_layers: num(j, "n_layer", 28),
    n_heads,
    d_mlp: num(j, "n_inner", 4 * d_model),
    d_vocab: num(j, "vocab_size", 50400),
    n_ctx: num(j, "n_positions", 2048),
    act_fn: actFn(str(j, "activation_function", "gelu_new"), "activation_function"),
    normalization_type: "LN",
    eps: epsilon(j, "layer_norm_epsilon", 1e-5),
    positional_embedding_type: "rotary",
    rotary_dim: num(j, "rotary_dim", 64), // GPTJConfig default; GPT-J-6B uses 64 of its 256
    rotary_base: 10000,
    rotary_adjacent_pairs: true,
    parallel_attn_mlp: true,
    parallel_shared_norm: true,
    gated_mlp: false,
    attn_bias: true, // zero (hf-weights.ts), so weight processing can fold ln_1's bias into them, as TransformerLens does
    mlp_bias: true,
    unembed_bias: true,
    tie_word_embeddings: bool(j, "tie_word_embeddings", false),
    bos_token_id: tokenId(j, "bos_token_id"),
  });
}

// configuration_gpt_neo.py / modeling_gpt_neo.py: learned positions, attention_types alternating
// global / local (window_size), no 1/sqrt(d_head) score scaling, q/k/v without biases.
function gptNeoConfig(j: HFConfigJson): ModelConfig {
  const d_model = num(j, "hidden_size", 2048), n_layers = num(j, "num_layers", 24);
  const spec = j.attention_types ?? [[["global", "local"], n_layers / 2]];
  const types: AttnType[] = [];
  // attention_types: [[["global", "local"], repeats], …] expands to one entry per layer.
  if (!Array.isArray(spec)) throw new HFConfigError(`config.json: attention_types must be a list, got ${JSON.stringify(spec)}`);
  for (const item of spec) {
    const [kinds, times] = Array.isArray(item) ? item : [];
    if (!Array.isArray(kinds) || typeof times !== "number") throw new HFConfigError(`config.json: attention_types entry ${JSON.stringify(item)} is not [[kinds…], repeats]`);
    for (let r = 0; r < times; r++) for (const k of kinds) {
      if (k !== "global" && k !== "local") throw new HFConfigError(`config.json: attention_types kind ${JSON.stringify(k)} is not "global" or "local"`);
      types.push(k);
    }
  }
  if (types.length !== n_layers) throw new HFConfigError(`config.json: attention_types gives ${types.length} layers, num_layers is ${n_layers}`);
  const local = types.includes("local");
  return makeConfig({
    architecture: "gpt_neo",
    d_model,
    n_layers,
    n_heads: num(j, "num_heads", 16),
    d_mlp: num(j, "intermediate_size", 4 * d_model),
    d_vocab: num(j, "vocab_size", 50257),
    n_ctx: num(j, "max_position_embeddings", 2048),
    act_fn: actFn(str(j, "activation_function", "gelu_new"), "activation_function"),
    normalization_type: "LN",
    eps: epsilon(j, "layer_norm_epsilon", 1e-5),
    positional_embedding_type: "standard",
    attn_types: local ? types : null,
    window_size: local ? windowSize(j, "window_size", 256) : null,
    attn_scale: 1, // GPTNeoSelfAttention._attn does not divide by sqrt(head_dim)
    attn_bias: true, // out_proj has a bias; q/k/v's are zero (hf-weights.ts)
    mlp_bias: true,
    tie_word_embeddings: bool(j, "tie_word_embeddings", true),
    bos_token_id: tokenId(j, "bos_token_id"),
  });
}

/**
 * A Hugging Face config.json for cfg, in its family's layout. Fields of `base` (the config.json the
 * model was loaded from, say) are kept unless cfg decides them, so eos_token_id and the like survive
 * a load/save round trip. Throws when cfg has a setting the HF class cannot express (checked by
 * mapping the result back and comparing every field).
 */
export function configToHF(cfg: ModelConfig, base: HFConfigJson = {}): HFConfigJson {
  let ours: HFConfigJson;
  const rope_scaling = ropeScalingToHF(cfg);
  switch (cfg.architecture) {
    case "gpt2":
      ours = {
        architectures: ["GPT2LMHeadModel"], model_type: "gpt2",
        vocab_size: cfg.d_vocab, n_positions: cfg.n_ctx, n_ctx: cfg.n_ctx, n_embd: cfg.d_model, n_layer: cfg.n_layers, n_head: cfg.n_heads,
        n_inner: cfg.d_mlp, activation_function: cfg.act_fn, layer_norm_epsilon: cfg.eps,
        scale_attn_weights: cfg.attn_scale !== 1, scale_attn_by_inverse_layer_idx: cfg.scale_attn_by_inverse_layer_idx, tie_word_embeddings: cfg.tie_word_embeddings,
      };
      break;
    case "neox":
      ours = {
        architectures: ["GPTNeoXForCausalLM"], model_type: "gpt_neox",
        vocab_size: cfg.d_vocab, max_position_embeddings: cfg.n_ctx, hidden_size: cfg.d_model, num_hidden_layers: cfg.n_layers,
        num_attention_heads: cfg.n_heads, intermediate_size: cfg.d_mlp, hidden_act: cfg.act_fn, layer_norm_eps: cfg.eps,
        rotary_pct: cfg.rotary_dim / cfg.d_head, rotary_emb_base: cfg.rotary_base, rope_scaling,
        use_parallel_residual: cfg.parallel_attn_mlp, attention_bias: cfg.attn_bias, tie_word_embeddings: cfg.tie_word_embeddings,
      };
      break;
    case "llama":
      ours = {
        architectures: ["LlamaForCausalLM"], model_type: "llama",
        vocab_size: cfg.d_vocab, max_position_embeddings: cfg.n_ctx, hidden_size: cfg.d_model, num_hidden_layers: cfg.n_layers,
        num_attention_heads: cfg.n_heads, num_key_value_heads: cfg.n_key_value_heads, head_dim: cfg.d_head, intermediate_size: cfg.d_mlp,
        hidden_act: cfg.act_fn, rms_norm_eps: cfg.eps, rope_theta: cfg.rotary_base, rope_scaling, partial_rotary_factor: cfg.rotary_dim / cfg.d_head,
        attention_bias: cfg.attn_bias, mlp_bias: cfg.mlp_bias, tie_word_embeddings: cfg.tie_word_embeddings,
      };
      break;
    case "mistral": case "qwen2": case "qwen3": case "gemma": case "gemma2": case "gemma3": case "phi3": case "olmo2":
      ours = decoderToHF(cfg, cfg.architecture, rope_scaling);
      break;
    case "gptj":
      ours = {
        architectures: ["GPTJForCausalLM"], model_type: "gptj",
        vocab_size: cfg.d_vocab, n_positions: cfg.n_ctx, n_embd: cfg.d_model, n_layer: cfg.n_layers, n_head: cfg.n_heads, n_inner: cfg.d_mlp,
        rotary_dim: cfg.rotary_dim, activation_function: cfg.act_fn, layer_norm_epsilon: cfg.eps, tie_word_embeddings: cfg.tie_word_embeddings,
      };
      break;
    case "gpt_neo": {
      const types = cfg.attn_types ?? Array.from({ length: cfg.n_layers }, () => "global");
      ours = {
        architectures: ["GPTNeoForCausalLM"], model_type: "gpt_neo",
        vocab_size: cfg.d_vocab, max_position_embeddings: cfg.n_ctx, hidden_size: cfg.d_model, num_layers: cfg.n_layers, num_heads: cfg.n_heads,
        intermediate_size: cfg.d_mlp, activation_function: cfg.act_fn, layer_norm_epsilon: cfg.eps, window_size: cfg.window_size ?? 256,
        attention_types: types.map((t) => [[t], 1]), attention_layers: types, tie_word_embeddings: cfg.tie_word_embeddings,
      };
      break;
    }
    case "attn-only":
      throw new HFConfigError("configToHF: attention-only models have no Hugging Face architecture");
    default:
      return cfg.architecture satisfies never;
  }
  const json: HFConfigJson = { ...base, ...ours, bos_token_id: cfg.bos_token_id, torch_dtype: cfg.dtype ?? "float32" };
  // Every field must survive the trip back; what does not is a setting the HF class lacks. (The
  // parameter dtype and the extra hook points are run-time choices, not part of the architecture.)
  const back = configFromHF(json);
  const runTime = new Set<keyof ModelConfig>(["dtype", "use_split_qkv_input", "use_hook_mlp_in"]);
  const differ = (Object.keys(cfg) as (keyof ModelConfig)[]).filter((k) => !runTime.has(k) && !sameValue(cfg[k], back[k]));
  if (differ.length)
    throw new HFConfigError(`configToHF: ${cfg.architecture} in Hugging Face layout cannot express ${differ.map((k) => `${k} = ${JSON.stringify(cfg[k])}`).join(", ")}`);
  return json;
}

function sameValue(a: unknown, b: unknown): boolean {
  if (typeof a === "object" && a !== null && typeof b === "object" && b !== null) return JSON.stringify(a) === JSON.stringify(b);
  return typeof a === "number" && typeof b === "number" ? Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(a)) : a === b;
}

const HF_CLASS: Record<DecoderFamily, string> = {
  mistral: "MistralForCausalLM", qwen2: "Qwen2ForCausalLM", qwen3: "Qwen3ForCausalLM", gemma: "GemmaForCausalLM", gemma2: "Gemma2ForCausalLM",
  gemma3: "Gemma3ForCausalLM", phi3: "Phi3ForCausalLM", olmo2: "Olmo2ForCausalLM",
};
const DECODER_MODEL_TYPE: Record<DecoderFamily, string> = {
  mistral: "mistral", qwen2: "qwen2", qwen3: "qwen3", gemma: "gemma", gemma2: "gemma2", gemma3: "gemma3_text", phi3: "phi3", olmo2: "olmo2",
};

/** config.json of a Llama-block family; layer_types states which layers slide, so every family's rule reads it back. */
function decoderToHF(cfg: ModelConfig, arch: DecoderFamily, rope_scaling: HFConfigJson | null): HFConfigJson {
  const gemma = arch === "gemma" || arch === "gemma2" || arch === "gemma3";
  const types = cfg.attn_types ?? Array.from({ length: cfg.n_layers }, () => "global");
  const local = types.includes("local");
  const json: HFConfigJson = {
    architectures: [HF_CLASS[arch]], model_type: DECODER_MODEL_TYPE[arch],
    vocab_size: cfg.d_vocab, max_position_embeddings: cfg.n_ctx, hidden_size: cfg.d_model, num_hidden_layers: cfg.n_layers,
    num_attention_heads: cfg.n_heads, num_key_value_heads: cfg.n_key_value_heads, head_dim: cfg.d_head, intermediate_size: cfg.d_mlp,
    rms_norm_eps: cfg.eps, rope_theta: cfg.rotary_base, rope_scaling, partial_rotary_factor: cfg.rotary_dim / cfg.d_head,
    tie_word_embeddings: cfg.tie_word_embeddings,
    layer_types: types.map((t) => (t === "local" ? "sliding_attention" : "full_attention")),
    sliding_window: local ? cfg.window_size : arch === "gemma2" || arch === "gemma3" ? 4096 : null,
  };
  if (gemma) json.hidden_activation = cfg.act_fn === "gelu_new" ? "gelu_pytorch_tanh" : cfg.act_fn;
  else json.hidden_act = cfg.act_fn;
  if (arch !== "qwen2") json.attention_bias = cfg.attn_bias;
  if (arch === "qwen2" || arch === "qwen3") { json.use_sliding_window = local; json.max_window_layers = local ? types.indexOf("local") : cfg.n_layers; }
  if (gemma) { json.attn_logit_softcapping = cfg.attn_scores_soft_cap; json.final_logit_softcapping = cfg.output_logits_soft_cap; }
  if (arch === "gemma2" || arch === "gemma3") json.query_pre_attn_scalar = cfg.attn_scale ** 2;
  if (arch === "gemma3") json.rope_local_base_freq = cfg.rotary_base_local;
  return json;
}
