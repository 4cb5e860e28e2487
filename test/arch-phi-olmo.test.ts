// Phi-3 (fused qkv_proj and gate_up_proj, partial rotary, sliding_window) and OLMo 2 (q/k RMSNorm over the
// whole projection, RMSNorm after attention and after the MLP instead of before), against the float64
// reference written from modeling_phi3.py / modeling_olmo2.py (test/reference/decoder.ts).
import { test } from "node:test";
import type { HFConfigJson } from "../src/io/index.js";
import { decoderLogits } from "./reference/decoder.js";
import { checkCachedGeneration, checkFamily, type Family, type Spec } from "./arch-helpers.js";

const phi3: HFConfigJson = {
  architectures: ["Phi3ForCausalLM"], model_type: "phi3", hidden_size: 16, intermediate_size: 40, num_hidden_layers: 2, num_attention_heads: 4,
  num_key_value_heads: 2, vocab_size: 50, max_position_embeddings: 64, original_max_position_embeddings: 64, rms_norm_eps: 1e-5, rope_theta: 10000.0,
  rope_scaling: null, partial_rotary_factor: 0.5, hidden_act: "silu", sliding_window: 4, attention_bias: false, tie_word_embeddings: false,
  bos_token_id: 1, eos_token_id: 32000, pad_token_id: 32000,
};
function phi3Specs(c: HFConfigJson): Spec[] {
  const D = c.hidden_size as number, M = c.intermediate_size as number, V = c.vocab_size as number, H = c.num_attention_heads as number;
  const Hkv = c.num_key_value_heads as number, dh = D / H;
  const s: Spec[] = [["model.embed_tokens.weight", [V, D]]];
  for (let l = 0; l < (c.num_hidden_layers as number); l++) {
    const h = `model.layers.${l}.`;
    s.push([`${h}input_layernorm.weight`, [D], "norm"], [`${h}post_attention_layernorm.weight`, [D], "norm"],
      [`${h}self_attn.qkv_proj.weight`, [(H + 2 * Hkv) * dh, D]], [`${h}self_attn.o_proj.weight`, [D, H * dh]],
      [`${h}mlp.gate_up_proj.weight`, [2 * M, D]], [`${h}mlp.down_proj.weight`, [D, M]]);
  }
  s.push(["model.norm.weight", [D], "norm"], ["lm_head.weight", [V, D]]);
  return s;
}
const PHI3: Family = { name: "phi3 (GQA 4/2 fused qkv, partial rotary 0.5, sliding_window 4)", config: phi3, ref: decoderLogits, specs: phi3Specs(phi3), without: { partial_rotary_factor: 1 } };

const olmo2: HFConfigJson = {
  architectures: ["Olmo2ForCausalLM"], model_type: "olmo2", hidden_size: 16, intermediate_size: 40, num_hidden_layers: 2, num_attention_heads: 4,
  num_key_value_heads: 4, vocab_size: 50, max_position_embeddings: 64, rms_norm_eps: 1e-6, rope_theta: 500000, rope_scaling: null,
  hidden_act: "silu", attention_bias: false, tie_word_embeddings: false, bos_token_id: null, eos_token_id: 49, pad_token_id: 48,
};
function olmo2Specs(c: HFConfigJson): Spec[] {
  const D = c.hidden_size as number, M = c.intermediate_size as number, V = c.vocab_size as number;
  const s: Spec[] = [["model.embed_tokens.weight", [V, D]]];
  for (let l = 0; l < (c.num_hidden_layers as number); l++) {
    const h = `model.layers.${l}.`;
    s.push([`${h}post_attention_layernorm.weight`, [D], "norm"], [`${h}post_feedforward_layernorm.weight`, [D], "norm"],
      [`${h}self_attn.q_proj.weight`, [D, D]], [`${h}self_attn.k_proj.weight`, [D, D]], [`${h}self_attn.v_proj.weight`, [D, D]], [`${h}self_attn.o_proj.weight`, [D, D]],
      [`${h}self_attn.q_norm.weight`, [D], "norm"], [`${h}self_attn.k_norm.weight`, [D], "norm"],
      [`${h}mlp.gate_proj.weight`, [M, D]], [`${h}mlp.up_proj.weight`, [M, D]], [`${h}mlp.down_proj.weight`, [D, M]]);
  }
  s.push(["model.norm.weight", [D], "norm"], ["lm_head.weight", [V, D]]);
  return s;
}
const OLMO2: Family = { name: "olmo2 (post-norms, q/k norm over the projection)", config: olmo2, ref: decoderLogits, specs: olmo2Specs(olmo2) };

for (const f of [PHI3, OLMO2]) test(`${f.name} matches the reference: logits, padded batch, gradients, saveHF`, (t) => checkFamily(t, f));

test("phi3: the sliding window matters, and greedy generation with the KV cache equals the uncached run", (t) => {
  checkFamily(t, { ...PHI3, name: "phi3 (window)", without: { sliding_window: null } });
  checkCachedGeneration(PHI3);
});
