// Reference GPT-NeoX (Pythia) forward pass in float64, written from Hugging Face transformers v4.40
// modeling_gpt_neox.py (GPTNeoXForCausalLM → GPTNeoXModel → GPTNeoXLayer(input_layernorm,
// GPTNeoXAttention, post_attention_layernorm, GPTNeoXMLP)), reading HF names, layouts and config.json
// fields directly. Shares no code with src/model or src/io's weight mapping.
// Not supported: rope_scaling other than linear.
import { activation, addInto, causalAttention, cfgBool, cfgNum, cfgStr, embedRows, get, layerNorm, linear, linearRopeFactor, rotary, type HFConfig, type Weights } from "./common.js";

/** Logits [pos, vocab_size] for one sequence of token ids. */
export function neoxLogits(config: HFConfig, w: Weights, ids: readonly number[]): Float64Array {
  const D = cfgNum(config, "hidden_size"), H = cfgNum(config, "num_attention_heads"), L = cfgNum(config, "num_hidden_layers");
  const eps = cfgNum(config, "layer_norm_eps", 1e-5), dh = D / H, T = ids.length;
  const rotaryNdims = Math.floor(dh * cfgNum(config, "rotary_pct", 0.25)); // int(head_size * rotary_pct)
  const base = cfgNum(config, "rotary_emb_base", 10000), ropeFactor = linearRopeFactor(config);
  const parallel = cfgBool(config, "use_parallel_residual", true), bias = cfgBool(config, "attention_bias", true);
  const act = activation(cfgStr(config, "hidden_act", "gelu"));
  const p = w.has("gpt_neox.embed_in.weight") ? "gpt_neox." : "";
  const embedIn = get(w, `${p}embed_in.weight`);
  const h = embedRows(embedIn, ids);
  const opt = (name: string) => (bias ? get(w, name) : undefined);
  for (let l = 0; l < L; l++) {
    const b = `${p}layers.${l}.`;
    // GPTNeoXAttention.forward: qkv = query_key_value(x).view(T, H, 3 * head_size); q, k, v = thirds of the last axis.
    const a = layerNorm(h, T, get(w, `${b}input_layernorm.weight`), get(w, `${b}input_layernorm.bias`), eps);
    const qkv = linear(a, T, get(w, `${b}attention.query_key_value.weight`), opt(`${b}attention.query_key_value.bias`));
    const q = new Float64Array(T * D), k = new Float64Array(T * D), v = new Float64Array(T * D);
    for (let t = 0; t < T; t++) for (let hh = 0; hh < H; hh++) for (let e = 0; e < dh; e++) {
      const src = t * 3 * D + hh * 3 * dh;
      q[(t * H + hh) * dh + e] = qkv[src + e]!;
      k[(t * H + hh) * dh + e] = qkv[src + dh + e]!;
      v[(t * H + hh) * dh + e] = qkv[src + 2 * dh + e]!;
    }
    // query_rot = query[..., :rotary_ndims] gets apply_rotary_pos_emb; query_pass is concatenated back unchanged.
    rotary(q, T, H, dh, rotaryNdims, base, ropeFactor);
    rotary(k, T, H, dh, rotaryNdims, base, ropeFactor);
    const z = causalAttention(q, k, v, T, H, H, dh, 1 / Math.sqrt(dh)); // norm_factor = sqrt(head_size)
    const attnOut = linear(z, T, get(w, `${b}attention.dense.weight`), opt(`${b}attention.dense.bias`));
    const mlp = (x: Float64Array) => {
      const m = layerNorm(x, T, get(w, `${b}post_attention_layernorm.weight`), get(w, `${b}post_attention_layernorm.bias`), eps);
      const f = linear(m, T, get(w, `${b}mlp.dense_h_to_4h.weight`), get(w, `${b}mlp.dense_h_to_4h.bias`)).map(act);
      return linear(f, T, get(w, `${b}mlp.dense_4h_to_h.weight`), get(w, `${b}mlp.dense_4h_to_h.bias`));
    };
    if (parallel) {
      // x = x + attn(ln1(x)) + mlp(ln2(x))
      const mlpOut = mlp(h);
      addInto(addInto(h, attnOut), mlpOut);
    } else {
      // x = x + attn(ln1(x)); x = x + mlp(ln2(x))
      addInto(h, attnOut);
      addInto(h, mlp(h));
    }
  }
  const hf = layerNorm(h, T, get(w, `${p}final_layer_norm.weight`), get(w, `${p}final_layer_norm.bias`), eps);
  const head = cfgBool(config, "tie_word_embeddings", false) ? embedIn : get(w, "embed_out.weight");
  return linear(hf, T, head);
}
