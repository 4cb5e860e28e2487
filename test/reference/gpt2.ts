// Reference GPT-2 forward pass in float64, written from Hugging Face transformers v4.40
// modeling_gpt2.py (GPT2LMHeadModel → GPT2Model → GPT2Block(ln_1, GPT2Attention, ln_2, GPT2MLP))
// and reading HF tensor names, HF layouts and config.json fields directly. It shares no code with
// src/model or src/io's weight mapping; tests compare circuitscope's logits against it.
// scale_attn_by_inverse_layer_idx divides layer l's scores by l + 1 too (GPT2Attention._attn).
// Not supported: reorder_and_upcast_attn's float32 numerics (the same function), cross-attention.
import { activation, addInto, causalAttention, cfgBool, cfgNum, cfgStr, conv1d, embedRows, get, layerNorm, linear, type HFConfig, type Weights } from "./common.js";

/** Logits [pos, vocab_size] for one sequence of token ids. */
export function gpt2Logits(config: HFConfig, w: Weights, ids: readonly number[], opts: { embedDelta?: Float64Array } = {}): Float64Array {
  const D = cfgNum(config, "n_embd"), H = cfgNum(config, "n_head"), L = cfgNum(config, "n_layer");
  const eps = cfgNum(config, "layer_norm_epsilon", 1e-5), dh = D / H, T = ids.length;
  const act = activation(cfgStr(config, "activation_function", "gelu_new"));
  // GPT2Attention._attn: attn_weights / value.size(-1) ** 0.5 when scale_attn_weights.
  const scale = cfgBool(config, "scale_attn_weights", true) ? 1 / Math.sqrt(dh) : 1;
  // GPT2LMHeadModel's base is "transformer."; a bare GPT2Model checkpoint has no prefix.
  const p = w.has("transformer.wte.weight") ? "transformer." : "";
  const wte = get(w, `${p}wte.weight`), wpe = get(w, `${p}wpe.weight`);
  // GPT2Model.forward: hidden = wte(input_ids) + wpe(position_ids), positions 0..T-1.
  const h = addInto(embedRows(wte, ids), embedRows(wpe, ids.map((_, t) => t)));
  if (opts.embedDelta) addInto(h, opts.embedDelta); // a change of wte(input_ids) (hook_embed) adds to the sum
  for (let l = 0; l < L; l++) {
    const b = `${p}h.${l}.`;
    const a = layerNorm(h, T, get(w, `${b}ln_1.weight`), get(w, `${b}ln_1.bias`), eps);
    const qkv = conv1d(a, T, get(w, `${b}attn.c_attn.weight`), get(w, `${b}attn.c_attn.bias`)); // [T, 3D]: query | key | value
    const q = new Float64Array(T * D), k = new Float64Array(T * D), v = new Float64Array(T * D);
    for (let t = 0; t < T; t++) for (let i = 0; i < D; i++) {
      q[t * D + i] = qkv[t * 3 * D + i]!;
      k[t * D + i] = qkv[t * 3 * D + D + i]!;
      v[t * D + i] = qkv[t * 3 * D + 2 * D + i]!;
    }
    // _split_heads: [T, D] viewed as [T, H, dh] — the layout causalAttention takes.
    const z = causalAttention(q, k, v, T, H, H, dh, cfgBool(config, "scale_attn_by_inverse_layer_idx", false) ? scale / (l + 1) : scale);
    addInto(h, conv1d(z, T, get(w, `${b}attn.c_proj.weight`), get(w, `${b}attn.c_proj.bias`)));
    const m = layerNorm(h, T, get(w, `${b}ln_2.weight`), get(w, `${b}ln_2.bias`), eps);
    const f = conv1d(m, T, get(w, `${b}mlp.c_fc.weight`), get(w, `${b}mlp.c_fc.bias`)).map(act);
    addInto(h, conv1d(f, T, get(w, `${b}mlp.c_proj.weight`), get(w, `${b}mlp.c_proj.bias`)));
  }
  const hf = layerNorm(h, T, get(w, `${p}ln_f.weight`), get(w, `${p}ln_f.bias`), eps);
  // lm_head = Linear(n_embd, vocab, bias=False), tied to wte unless tie_word_embeddings is false.
  const head = cfgBool(config, "tie_word_embeddings", true) ? wte : get(w, "lm_head.weight");
  return linear(hf, T, head);
}
