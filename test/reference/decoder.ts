// Reference forward passes in float64 for the Llama-block families, written from Hugging Face
// transformers' modeling files: modeling_mistral.py (sliding_window), modeling_qwen2.py (q/k/v biases),
// modeling_qwen3.py (q_norm / k_norm per head before RoPE), modeling_gemma.py (GeGLU, embeddings ×
// sqrt(hidden_size), RMSNorm x̂ · (1 + w)), modeling_gemma2.py (sandwich norms, attn_logit_softcapping,
// final_logit_softcapping, query_pre_attn_scalar, sliding window on even layers), modeling_gemma3.py
// (+ q/k norms, rope_local_base_freq on sliding layers, sliding_window_pattern), modeling_phi3.py
// (qkv_proj, gate_up_proj), modeling_olmo2.py (q/k RMSNorm over the whole projection, norms after
// attention and MLP). Reads HF names and config.json fields directly; shares no code with src/.
// Sliding window: key j is visible from query i when i - j < sliding_window (masking_utils.py).
import { activation, addInto, cfgBool, cfgNum, embedRows, get, linear, type HFConfig, type W, type Weights } from "./common.js";

export interface RefOptions {
  /** Added to the embedding output (after Gemma's scaling), [pos, hidden_size]: finite differences w.r.t. hook_embed. */
  embedDelta?: Float64Array;
}

/** RMSNorm over rows of width w.shape[0]: w · x / sqrt(mean(x²) + eps), or (1 + w) · … for Gemma. */
function rms(x: Float64Array, w: W, eps: number, plusOne: boolean): Float64Array {
  const D = w.shape[0]!, y = new Float64Array(x.length);
  for (let r = 0; r < x.length / D; r++) {
    let ms = 0;
    for (let d = 0; d < D; d++) ms += x[r * D + d]! ** 2;
    const inv = 1 / Math.sqrt(ms / D + eps);
    for (let d = 0; d < D; d++) y[r * D + d] = x[r * D + d]! * inv * ((plusOne ? 1 : 0) + w.data[d]!);
  }
  return y;
}

/** Rotate-half RoPE on the first rotDim dims of each head of x [pos, heads, dh], in place. */
function rope(x: Float64Array, T: number, heads: number, dh: number, rotDim: number, invFreq: Float64Array, posScale: number): void {
  const half = rotDim / 2, tmp = new Float64Array(rotDim);
  for (let t = 0; t < T; t++) for (let h = 0; h < heads; h++) {
    const o = (t * heads + h) * dh;
    for (let j = 0; j < rotDim; j++) {
      const ang = (t / posScale) * invFreq[j % half]!;
      const other = j < half ? -x[o + j + half]! : x[o + j - half]!;
      tmp[j] = x[o + j]! * Math.cos(ang) + other * Math.sin(ang);
    }
    for (let j = 0; j < rotDim; j++) x[o + j] = tmp[j]!;
  }
}

/**
 * inv_freq_i = 1 / base^(2i / dim), with rope_scaling "llama3" (modeling_rope_utils._compute_llama3_parameters) or
 * "dynamic" (_compute_dynamic_ntk_parameters for a sequence of seqLen tokens, measured against maxPos) when asked.
 */
export function invFreqs(dim: number, base: number, rs: Record<string, number | string> | null, seqLen = 0, maxPos = Infinity): Float64Array {
  const f = new Float64Array(dim / 2);
  if (rs && (rs.rope_type ?? rs.type) === "dynamic" && seqLen > maxPos) {
    const factor = rs.factor as number;
    base = base * ((factor * seqLen) / maxPos - (factor - 1)) ** (dim / (dim - 2));
  }
  for (let i = 0; i < dim / 2; i++) f[i] = 1 / base ** ((2 * i) / dim);
  if (rs && (rs.rope_type ?? rs.type) === "llama3") {
    const factor = rs.factor as number, lo = rs.low_freq_factor as number, hi = rs.high_freq_factor as number, old = rs.original_max_position_embeddings as number;
    for (let i = 0; i < f.length; i++) {
      const wl = (2 * Math.PI) / f[i]!;
      if (wl > old / lo) f[i] = f[i]! / factor;
      else if (!(wl < old / hi)) {
        const s = (old / wl - lo) / (hi - lo);
        f[i] = ((1 - s) * f[i]!) / factor + s * f[i]!;
      }
    }
  }
  return f;
}

/** Softmax attention with a causal (and optionally sliding-window) mask and Gemma 2's tanh soft cap on the scaled scores. */
export function attention(q: Float64Array, k: Float64Array, v: Float64Array, T: number, H: number, Hkv: number, dh: number,
  scale: number, window: number | null, softcap: number | null): Float64Array {
  const z = new Float64Array(T * H * dh), s = new Float64Array(T);
  for (let h = 0; h < H; h++) {
    const kh = Math.floor(h / (H / Hkv)); // repeat_kv
    for (let i = 0; i < T; i++) {
      const from = window === null ? 0 : Math.max(0, i - window + 1);
      let mx = -Infinity;
      for (let j = from; j <= i; j++) {
        let d = 0;
        for (let e = 0; e < dh; e++) d += q[(i * H + h) * dh + e]! * k[(j * Hkv + kh) * dh + e]!;
        d *= scale;
        if (softcap !== null) d = Math.tanh(d / softcap) * softcap;
        s[j] = d; mx = Math.max(mx, d);
      }
      let tot = 0;
      for (let j = from; j <= i; j++) { s[j] = Math.exp(s[j]! - mx); tot += s[j]!; }
      for (let j = from; j <= i; j++) for (let e = 0; e < dh; e++) z[(i * H + h) * dh + e]! += (s[j]! / tot) * v[(j * Hkv + kh) * dh + e]!;
    }
  }
  return z;
}

const rows = (x: Float64Array, T: number, from: number, to: number, width: number): Float64Array => {
  const out = new Float64Array(T * (to - from));
  for (let t = 0; t < T; t++) out.set(x.subarray(t * width + from, t * width + to), t * (to - from));
  return out;
};

/** Logits [pos, vocab_size] of one sequence for a config.json whose model_type is one of the families above. */
export function decoderLogits(config: HFConfig, w: Weights, ids: readonly number[], opts: RefOptions = {}): Float64Array {
  const type = config.model_type as string;
  const gemma = type.startsWith("gemma"), g23 = type === "gemma2" || type === "gemma3_text";
  const D = cfgNum(config, "hidden_size"), H = cfgNum(config, "num_attention_heads"), L = cfgNum(config, "num_hidden_layers");
  const Hkv = cfgNum(config, "num_key_value_heads", H), dh = cfgNum(config, "head_dim", D / H), T = ids.length;
  const eps = cfgNum(config, "rms_norm_eps");
  const act = activation(gemma ? ((config.hidden_activation as string | undefined) ?? "gelu_pytorch_tanh") : (config.hidden_act as string));
  const rotDim = Math.floor(dh * cfgNum(config, "partial_rotary_factor", 1));
  const rs = (config.rope_scaling ?? null) as Record<string, number | string> | null;
  const linearFactor = rs && (rs.rope_type ?? rs.type) === "linear" ? (rs.factor as number) : 1;
  const globalFreq = invFreqs(rotDim, cfgNum(config, "rope_theta", 10000), rs, T, cfgNum(config, "max_position_embeddings"));
  const localFreq = type === "gemma3_text" ? invFreqs(rotDim, cfgNum(config, "rope_local_base_freq"), null) : globalFreq;
  const scale = g23 ? cfgNum(config, "query_pre_attn_scalar") ** -0.5 : dh ** -0.5;
  const softcap = type === "gemma2" ? (config.attn_logit_softcapping as number | null) : null;
  const finalCap = g23 ? (config.final_logit_softcapping as number | null) : null;
  // Which layers slide, read the way each configuration file derives it.
  const sliding = (l: number): boolean => {
    if (Array.isArray(config.layer_types)) return config.layer_types[l] === "sliding_attention";
    if (type === "mistral" || type === "phi3") return config.sliding_window != null;
    if (type === "gemma2") return l % 2 === 0;
    if (type === "gemma3_text") return (l + 1) % cfgNum(config, "sliding_window_pattern", 6) !== 0;
    if (type === "qwen2" || type === "qwen3") return cfgBool(config, "use_sliding_window", false) && l >= cfgNum(config, "max_window_layers");
    return false;
  };
  const norm = (x: Float64Array, name: string) => rms(x, get(w, name), eps, gemma);
  const has = (name: string) => w.has(name);
  const embed = get(w, "model.embed_tokens.weight");
  const h = embedRows(embed, ids);
  if (gemma) for (let i = 0; i < h.length; i++) h[i]! *= Math.sqrt(D);
  if (opts.embedDelta) addInto(h, opts.embedDelta);
  for (let l = 0; l < L; l++) {
    const b = `model.layers.${l}.`, a = `${b}self_attn.`;
    const x = type === "olmo2" ? h : norm(h, `${b}input_layernorm.weight`);
    let q: Float64Array, k: Float64Array, v: Float64Array;
    if (type === "phi3") {
      const qkv = linear(x, T, get(w, `${a}qkv_proj.weight`)), n = (H + 2 * Hkv) * dh;
      q = rows(qkv, T, 0, H * dh, n); k = rows(qkv, T, H * dh, (H + Hkv) * dh, n); v = rows(qkv, T, (H + Hkv) * dh, n, n);
    } else {
      const bias = (p: string) => (has(`${a}${p}.bias`) ? get(w, `${a}${p}.bias`) : undefined);
      q = linear(x, T, get(w, `${a}q_proj.weight`), bias("q_proj")); k = linear(x, T, get(w, `${a}k_proj.weight`), bias("k_proj")); v = linear(x, T, get(w, `${a}v_proj.weight`), bias("v_proj"));
    }
    if (type === "olmo2") { q = norm(q, `${a}q_norm.weight`); k = norm(k, `${a}k_norm.weight`); } // over the whole projection
    if (type === "qwen3" || type === "gemma3_text") { q = norm(q, `${a}q_norm.weight`); k = norm(k, `${a}k_norm.weight`); } // rows of head_dim
    const slide = sliding(l), freq = slide ? localFreq : globalFreq, posScale = slide && type === "gemma3_text" ? 1 : linearFactor;
    rope(q, T, H, dh, rotDim, freq, posScale);
    rope(k, T, Hkv, dh, rotDim, freq, posScale);
    const z = attention(q, k, v, T, H, Hkv, dh, scale, slide ? cfgNum(config, "sliding_window") : null, softcap);
    let attnOut = linear(z, T, get(w, `${a}o_proj.weight`), has(`${a}o_proj.bias`) ? get(w, `${a}o_proj.bias`) : undefined);
    if (g23 || type === "olmo2") attnOut = norm(attnOut, `${b}post_attention_layernorm.weight`);
    addInto(h, attnOut);
    const m = type === "olmo2" ? h : norm(h, g23 ? `${b}pre_feedforward_layernorm.weight` : `${b}post_attention_layernorm.weight`);
    let gate: Float64Array, up: Float64Array;
    if (type === "phi3") {
      const gu = linear(m, T, get(w, `${b}mlp.gate_up_proj.weight`)), M = gu.length / T / 2;
      gate = rows(gu, T, 0, M, 2 * M); up = rows(gu, T, M, 2 * M, 2 * M);
    } else {
      // LlamaMLP with mlp_bias: every projection biased.
      const bias = (p: string) => (cfgBool(config, "mlp_bias", false) ? get(w, `${b}mlp.${p}.bias`) : undefined);
      gate = linear(m, T, get(w, `${b}mlp.gate_proj.weight`), bias("gate_proj")); up = linear(m, T, get(w, `${b}mlp.up_proj.weight`), bias("up_proj"));
    }
    for (let i = 0; i < gate.length; i++) gate[i] = act(gate[i]!) * up[i]!;
    let mlpOut = linear(gate, T, get(w, `${b}mlp.down_proj.weight`), cfgBool(config, "mlp_bias", false) ? get(w, `${b}mlp.down_proj.bias`) : undefined);
    if (g23 || type === "olmo2") mlpOut = norm(mlpOut, `${b}post_feedforward_layernorm.weight`);
    addInto(h, mlpOut);
  }
  const hf = norm(h, "model.norm.weight");
  const logits = linear(hf, T, cfgBool(config, "tie_word_embeddings", gemma) ? embed : get(w, "lm_head.weight"));
  if (finalCap != null) for (let i = 0; i < logits.length; i++) logits[i] = Math.tanh(logits[i]! / finalCap) * finalCap;
  return logits;
}
