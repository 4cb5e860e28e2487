// Reference Llama forward pass in float64, written from Hugging Face transformers v4.40
// modeling_llama.py (LlamaForCausalLM → LlamaModel → LlamaDecoderLayer(input_layernorm = LlamaRMSNorm,
// LlamaAttention with repeat_kv for grouped-query attention, post_attention_layernorm, LlamaMLP)),
// reading HF names, layouts and config.json fields directly. Shares no code with src/model or
// src/io's weight mapping. Not supported: rope_scaling other than linear, mlp_bias, pretraining_tp's split numerics.
import { activation, addInto, causalAttention, cfgBool, cfgNum, cfgStr, embedRows, get, linear, linearRopeFactor, rmsNorm, rotary, type HFConfig, type Weights } from "./common.js";

/** Logits [pos, vocab_size] for one sequence of token ids. */
export function llamaLogits(config: HFConfig, w: Weights, ids: readonly number[]): Float64Array {
  const D = cfgNum(config, "hidden_size"), H = cfgNum(config, "num_attention_heads"), L = cfgNum(config, "num_hidden_layers");
  const Hkv = cfgNum(config, "num_key_value_heads", H), dh = cfgNum(config, "head_dim", D / H), T = ids.length;
  const eps = cfgNum(config, "rms_norm_eps", 1e-6), base = cfgNum(config, "rope_theta", 10000), ropeFactor = linearRopeFactor(config);
  const bias = cfgBool(config, "attention_bias", false), act = activation(cfgStr(config, "hidden_act", "silu"));
  const p = w.has("model.embed_tokens.weight") ? "model." : "";
  const embed = get(w, `${p}embed_tokens.weight`);
  const h = embedRows(embed, ids);
  const opt = (name: string) => (bias ? get(w, name) : undefined);
  for (let l = 0; l < L; l++) {
    const b = `${p}layers.${l}.`;
    const a = rmsNorm(h, T, get(w, `${b}input_layernorm.weight`), eps);
    // q_proj/k_proj/v_proj outputs viewed as [T, heads, head_dim]; RoPE over the whole head (rotate_half).
    const q = linear(a, T, get(w, `${b}self_attn.q_proj.weight`), opt(`${b}self_attn.q_proj.bias`));
    const k = linear(a, T, get(w, `${b}self_attn.k_proj.weight`), opt(`${b}self_attn.k_proj.bias`));
    const v = linear(a, T, get(w, `${b}self_attn.v_proj.weight`), opt(`${b}self_attn.v_proj.bias`));
    rotary(q, T, H, dh, dh, base, ropeFactor);
    rotary(k, T, Hkv, dh, dh, base, ropeFactor);
    const z = causalAttention(q, k, v, T, H, Hkv, dh, 1 / Math.sqrt(dh));
    addInto(h, linear(z, T, get(w, `${b}self_attn.o_proj.weight`), opt(`${b}self_attn.o_proj.bias`)));
    // LlamaMLP: down_proj(act_fn(gate_proj(x)) * up_proj(x))
    const m = rmsNorm(h, T, get(w, `${b}post_attention_layernorm.weight`), eps);
    const gate = linear(m, T, get(w, `${b}mlp.gate_proj.weight`)), up = linear(m, T, get(w, `${b}mlp.up_proj.weight`));
    for (let i = 0; i < gate.length; i++) gate[i] = act(gate[i]!) * up[i]!;
    addInto(h, linear(gate, T, get(w, `${b}mlp.down_proj.weight`)));
  }
  const hf = rmsNorm(h, T, get(w, `${p}norm.weight`), eps);
  const head = cfgBool(config, "tie_word_embeddings", false) ? embed : get(w, "lm_head.weight");
  return linear(hf, T, head);
}
