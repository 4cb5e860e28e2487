// Reference GPT-J and GPT-Neo forward passes in float64, written from Hugging Face transformers'
// modeling_gptj.py (GPTJBlock: x + attn(ln_1(x)) + mlp(ln_1(x)); rotary on the first rotary_dim dims of
// each head with create_sinusoidal_positions and rotate_every_two; q/k/v/out_proj without biases;
// lm_head with a bias) and modeling_gpt_neo.py (learned positions; GPTNeoSelfAttention with unscaled
// scores, q/k/v without biases, a biased out_proj; "local" layers keep keys with i - j < window_size).
// Reads HF names and config.json fields directly; shares no code with src/.
import { activation, addInto, cfgBool, cfgNum, embedRows, get, layerNorm, linear, type HFConfig, type Weights } from "./common.js";
import { attention } from "./decoder.js";

export interface RefOptions { embedDelta?: Float64Array }

/** apply_rotary_pos_emb with rotate_every_two on x [pos, heads, dh]: pair (2i, 2i+1) turns by pos · 10000^(-2i/rotary_dim). */
function rotateEveryTwo(x: Float64Array, T: number, heads: number, dh: number, rotDim: number): void {
  for (let t = 0; t < T; t++) for (let h = 0; h < heads; h++) for (let i = 0; i < rotDim / 2; i++) {
    const o = (t * heads + h) * dh + 2 * i, ang = t / 10000 ** ((2 * i) / rotDim);
    const a = x[o]!, b = x[o + 1]!;
    x[o] = a * Math.cos(ang) - b * Math.sin(ang); // tensor * cos + rotate_every_two(tensor) * sin, rotate_every_two = (-x2, x1) interleaved
    x[o + 1] = b * Math.cos(ang) + a * Math.sin(ang);
  }
}

export function gptjLogits(config: HFConfig, w: Weights, ids: readonly number[], opts: RefOptions = {}): Float64Array {
  const D = cfgNum(config, "n_embd"), H = cfgNum(config, "n_head"), L = cfgNum(config, "n_layer"), dh = D / H, T = ids.length;
  const eps = cfgNum(config, "layer_norm_epsilon", 1e-5), rotDim = cfgNum(config, "rotary_dim", 64), act = activation((config.activation_function as string) ?? "gelu_new");
  const h = embedRows(get(w, "transformer.wte.weight"), ids);
  if (opts.embedDelta) addInto(h, opts.embedDelta);
  for (let l = 0; l < L; l++) {
    const b = `transformer.h.${l}.`;
    const x = layerNorm(h, T, get(w, `${b}ln_1.weight`), get(w, `${b}ln_1.bias`), eps);
    const q = linear(x, T, get(w, `${b}attn.q_proj.weight`)), k = linear(x, T, get(w, `${b}attn.k_proj.weight`)), v = linear(x, T, get(w, `${b}attn.v_proj.weight`));
    rotateEveryTwo(q, T, H, dh, rotDim);
    rotateEveryTwo(k, T, H, dh, rotDim);
    const attnOut = linear(attention(q, k, v, T, H, H, dh, 1 / Math.sqrt(dh), null, null), T, get(w, `${b}attn.out_proj.weight`));
    const f = linear(x, T, get(w, `${b}mlp.fc_in.weight`), get(w, `${b}mlp.fc_in.bias`)).map(act);
    const mlpOut = linear(f, T, get(w, `${b}mlp.fc_out.weight`), get(w, `${b}mlp.fc_out.bias`));
    addInto(addInto(h, attnOut), mlpOut);
  }
  const hf = layerNorm(h, T, get(w, "transformer.ln_f.weight"), get(w, "transformer.ln_f.bias"), eps);
  return linear(hf, T, get(w, "lm_head.weight"), get(w, "lm_head.bias"));
}

export function gptNeoLogits(config: HFConfig, w: Weights, ids: readonly number[], opts: RefOptions = {}): Float64Array {
  const D = cfgNum(config, "hidden_size"), H = cfgNum(config, "num_heads"), L = cfgNum(config, "num_layers"), dh = D / H, T = ids.length;
  const eps = cfgNum(config, "layer_norm_epsilon", 1e-5), act = activation((config.activation_function as string) ?? "gelu_new");
  // GPTNeoConfig.expand_attention_types_params: [[["global", "local"], n]] → one kind per layer.
  const kinds: string[] = [];
  for (const [ks, n] of config.attention_types as [string[], number][]) for (let r = 0; r < n; r++) kinds.push(...ks);
  const wte = get(w, "transformer.wte.weight"), h = embedRows(wte, ids), pos = embedRows(get(w, "transformer.wpe.weight"), ids.map((_, t) => t));
  addInto(h, pos);
  if (opts.embedDelta) addInto(h, opts.embedDelta); // hook_embed is the token embedding; a delta there adds to the sum
  for (let l = 0; l < L; l++) {
    const b = `transformer.h.${l}.`, a = `${b}attn.attention.`;
    const x = layerNorm(h, T, get(w, `${b}ln_1.weight`), get(w, `${b}ln_1.bias`), eps);
    const q = linear(x, T, get(w, `${a}q_proj.weight`)), k = linear(x, T, get(w, `${a}k_proj.weight`)), v = linear(x, T, get(w, `${a}v_proj.weight`));
    const window = kinds[l] === "local" ? cfgNum(config, "window_size", 256) : null;
    addInto(h, linear(attention(q, k, v, T, H, H, dh, 1, window, null), T, get(w, `${a}out_proj.weight`), get(w, `${a}out_proj.bias`)));
    const m = layerNorm(h, T, get(w, `${b}ln_2.weight`), get(w, `${b}ln_2.bias`), eps);
    const f = linear(m, T, get(w, `${b}mlp.c_fc.weight`), get(w, `${b}mlp.c_fc.bias`)).map(act);
    addInto(h, linear(f, T, get(w, `${b}mlp.c_proj.weight`), get(w, `${b}mlp.c_proj.bias`)));
  }
  const hf = layerNorm(h, T, get(w, "transformer.ln_f.weight"), get(w, "transformer.ln_f.bias"), eps);
  return linear(hf, T, cfgBool(config, "tie_word_embeddings", true) ? wte : get(w, "lm_head.weight"));
}
