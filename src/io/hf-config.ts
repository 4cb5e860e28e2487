// Hugging Face config.json ↔ circuitscope's ModelConfig, for the three families circuitscope runs:
// GPT2LMHeadModel (configuration_gpt2.py), GPTNeoXForCausalLM (configuration_gpt_neox.py) and
// LlamaForCausalLM (configuration_llama.py), with transformers v4.40's field names and defaults.
// Settings circuitscope cannot reproduce exactly (other RoPE scalings, per-layer attention scaling,
// a biased gate projection, …) are rejected with the field and value named, never silently dropped.
//
// This file maps configs only; weight names and layouts are in hf-weights.ts.
import { ConfigError, makeConfig, type ActFn, type ModelConfig } from "../model/config.js";

/** The HF model classes circuitscope loads, and the family each becomes. */
export const SUPPORTED_ARCHITECTURES = {
  GPT2LMHeadModel: "gpt2",
  GPTNeoXForCausalLM: "neox",
  LlamaForCausalLM: "llama",
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

/** Linear RoPE scaling factor from rope_scaling (null, {type|rope_type: "default"} or "linear"); other types are rejected. */
function ropeScaling(json: HFConfigJson): number {
  const rs = json.rope_scaling;
  if (rs === undefined || rs === null) return 1;
  if (typeof rs !== "object" || Array.isArray(rs)) throw new HFConfigError(`config.json: rope_scaling must be an object or null, got ${JSON.stringify(rs)}`);
  const r = rs as Record<string, unknown>;
  const type = r.rope_type ?? r.type;
  if (type === "default") return 1;
  if (type !== "linear") throw new HFConfigError(`config.json: rope_scaling type ${JSON.stringify(type)} is not supported (supported: "linear", or null)`);
  const factor = r.factor;
  if (typeof factor !== "number" || !(factor >= 1)) throw new HFConfigError(`config.json: rope_scaling.factor must be a number >= 1, got ${JSON.stringify(factor)}`);
  return factor;
}

/** circuitscope's ModelConfig for a Hugging Face config.json. */
export function configFromHF(json: HFConfigJson): ModelConfig {
  const arch = hfArchitecture(json);
  switch (arch) {
    case "GPT2LMHeadModel": return gpt2Config(json);
    case "GPTNeoXForCausalLM": return neoxConfig(json);
    case "LlamaForCausalLM": return llamaConfig(json);
    default: return arch satisfies never;
  }
}

// configuration_gpt2.py / modeling_gpt2.py (v4.40).
function gpt2Config(j: HFConfigJson): ModelConfig {
  if (bool(j, "scale_attn_by_inverse_layer_idx", false))
    throw new HFConfigError("config.json: scale_attn_by_inverse_layer_idx = true (scores divided by layer index) is not supported");
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
    rotary_scaling: ropeScaling(j),
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
  // circuitscope's gated MLP has biases on W_in and W_out only, not on W_gate (gate_proj.bias).
  if (bool(j, "mlp_bias", false)) throw new HFConfigError("config.json: mlp_bias = true is not supported (circuitscope's gated MLP has no gate bias)");
  const partial = num(j, "partial_rotary_factor", 1);
  if (partial !== 1) throw new HFConfigError(`config.json: partial_rotary_factor ${partial} is not supported for Llama (only 1)`);
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
    rotary_dim: d_head,
    rotary_base: num(j, "rope_theta", 10000),
    rotary_scaling: ropeScaling(j),
    parallel_attn_mlp: false,
    gated_mlp: true,
    attn_bias: bool(j, "attention_bias", false),
    mlp_bias: false,
    tie_word_embeddings: bool(j, "tie_word_embeddings", false),
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
  const rope_scaling = cfg.rotary_scaling === 1 ? null : { type: "linear", rope_type: "linear", factor: cfg.rotary_scaling };
  switch (cfg.architecture) {
    case "gpt2":
      ours = {
        architectures: ["GPT2LMHeadModel"], model_type: "gpt2",
        vocab_size: cfg.d_vocab, n_positions: cfg.n_ctx, n_ctx: cfg.n_ctx, n_embd: cfg.d_model, n_layer: cfg.n_layers, n_head: cfg.n_heads,
        n_inner: cfg.d_mlp, activation_function: cfg.act_fn, layer_norm_epsilon: cfg.eps,
        scale_attn_weights: cfg.attn_scale !== 1, scale_attn_by_inverse_layer_idx: false, tie_word_embeddings: cfg.tie_word_embeddings,
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
        hidden_act: cfg.act_fn, rms_norm_eps: cfg.eps, rope_theta: cfg.rotary_base, rope_scaling, partial_rotary_factor: 1,
        attention_bias: cfg.attn_bias, mlp_bias: false, tie_word_embeddings: cfg.tie_word_embeddings,
      };
      break;
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
  return typeof a === "number" && typeof b === "number" ? Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(a)) : a === b;
}
