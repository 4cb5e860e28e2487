// Gemma 1 (GeGLU, embeddings × sqrt(hidden_size), RMSNorm x̂ · (1 + w), multi-query attention, head_dim ≠
// hidden_size / heads), Gemma 2 (sandwich norms, attention and final logit soft caps, query_pre_attn_scalar,
// sliding window on even layers) and Gemma 3 text (q/k norms, local RoPE base on sliding layers, linear RoPE
// scaling on global ones, sliding_window_pattern), against the float64 reference written from
// modeling_gemma.py / modeling_gemma2.py / modeling_gemma3.py (test/reference/decoder.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as cs from "../src/index.js";
import { loadPretrained, type HFConfigJson } from "../src/io/index.js";
import { decoderLogits } from "./reference/decoder.js";
import { checkCachedGeneration, checkFamily, writeFamily, type Family, type Spec } from "./arch-helpers.js";

/** Gemma's HF names (listed from the modeling files): norms stored as w in x̂ · (1 + w). */
function gemmaSpecs(c: HFConfigJson, sandwich: boolean, qkNorm: boolean): Spec[] {
  const D = c.hidden_size as number, M = c.intermediate_size as number, V = c.vocab_size as number, H = c.num_attention_heads as number;
  const Hkv = c.num_key_value_heads as number, dh = c.head_dim as number;
  const s: Spec[] = [["model.embed_tokens.weight", [V, D]]];
  for (let l = 0; l < (c.num_hidden_layers as number); l++) {
    const h = `model.layers.${l}.`;
    s.push([`${h}input_layernorm.weight`, [D], "gemma-norm"], [`${h}post_attention_layernorm.weight`, [D], "gemma-norm"],
      [`${h}self_attn.q_proj.weight`, [H * dh, D]], [`${h}self_attn.k_proj.weight`, [Hkv * dh, D]],
      [`${h}self_attn.v_proj.weight`, [Hkv * dh, D]], [`${h}self_attn.o_proj.weight`, [D, H * dh]],
      [`${h}mlp.gate_proj.weight`, [M, D]], [`${h}mlp.up_proj.weight`, [M, D]], [`${h}mlp.down_proj.weight`, [D, M]]);
    if (sandwich) s.push([`${h}pre_feedforward_layernorm.weight`, [D], "gemma-norm"], [`${h}post_feedforward_layernorm.weight`, [D], "gemma-norm"]);
    if (qkNorm) s.push([`${h}self_attn.q_norm.weight`, [dh], "gemma-norm"], [`${h}self_attn.k_norm.weight`, [dh], "gemma-norm"]);
  }
  s.push(["model.norm.weight", [D], "gemma-norm"]);
  return s;
}

const gemma: HFConfigJson = {
  architectures: ["GemmaForCausalLM"], model_type: "gemma", hidden_size: 16, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4,
  num_key_value_heads: 1, head_dim: 8, vocab_size: 50, max_position_embeddings: 64, rms_norm_eps: 1e-6, rope_theta: 10000.0,
  hidden_act: "gelu", hidden_activation: "gelu_pytorch_tanh", attention_bias: false, tie_word_embeddings: true, bos_token_id: 2, eos_token_id: 1, pad_token_id: 0,
};
const GEMMA: Family = { name: "gemma (MQA, head_dim 8, tied)", config: gemma, ref: decoderLogits, specs: gemmaSpecs(gemma, false, false), without: { model_type: "llama" } };

const gemma2: HFConfigJson = {
  architectures: ["Gemma2ForCausalLM"], model_type: "gemma2", hidden_size: 16, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4,
  num_key_value_heads: 2, head_dim: 8, vocab_size: 50, max_position_embeddings: 64, rms_norm_eps: 1e-6, rope_theta: 10000.0,
  hidden_act: "gelu_pytorch_tanh", hidden_activation: "gelu_pytorch_tanh", attention_bias: false, tie_word_embeddings: true,
  attn_logit_softcapping: 1.5, final_logit_softcapping: 3.0, query_pre_attn_scalar: 16, sliding_window: 3, cache_implementation: "hybrid",
  bos_token_id: 2, eos_token_id: 1, pad_token_id: 0,
};
const GEMMA2: Family = { name: "gemma2 (soft caps 1.5 / 3, query_pre_attn_scalar 16, sliding window 3 on layer 0)", config: gemma2, ref: decoderLogits, specs: gemmaSpecs(gemma2, true, false), without: { attn_logit_softcapping: null } };

const gemma3: HFConfigJson = {
  architectures: ["Gemma3ForCausalLM"], model_type: "gemma3_text", hidden_size: 16, intermediate_size: 48, num_hidden_layers: 3, num_attention_heads: 4,
  num_key_value_heads: 2, head_dim: 8, vocab_size: 50, max_position_embeddings: 64, rms_norm_eps: 1e-6, rope_theta: 1000000.0, rope_local_base_freq: 10.0,
  rope_scaling: { rope_type: "linear", factor: 2.0 }, hidden_activation: "gelu_pytorch_tanh", attention_bias: false, tie_word_embeddings: true,
  attn_logit_softcapping: null, final_logit_softcapping: null, query_pre_attn_scalar: 8, sliding_window: 3, sliding_window_pattern: 2,
  bos_token_id: 2, eos_token_id: 1, pad_token_id: 0,
};
const GEMMA3: Family = { name: "gemma3 (q/k norm, local RoPE base, sliding layers 0 and 2)", config: gemma3, ref: decoderLogits, specs: gemmaSpecs(gemma3, true, true), without: { rope_local_base_freq: 1000000.0 } };

for (const f of [GEMMA, GEMMA2, GEMMA3]) test(`${f.name} matches the reference: logits, padded batch, gradients, saveHF`, (t) => checkFamily(t, f));

test("gemma2: the final soft cap and the sliding window each matter", (t) => {
  checkFamily(t, { ...GEMMA2, name: "gemma2 (final cap)", without: { final_logit_softcapping: null } });
  checkFamily(t, { ...GEMMA2, name: "gemma2 (window)", without: { sliding_window: 64 } });
});

test("gemma2: greedy generation with the KV cache equals the uncached run", () => checkCachedGeneration(GEMMA2));

test("gemma3: greedy generation with the KV cache equals the uncached run (local and global RoPE bases)", () => checkCachedGeneration(GEMMA3));

test("gemma2: hook names are TransformerLens's, and per-head results are refused after a post-attention norm", () => {
  const { model } = loadPretrained(writeFamily(GEMMA2).dir);
  const names = model.hookNames();
  for (const n of ["blocks.0.ln1.hook_normalized", "blocks.0.ln1_post.hook_scale", "blocks.0.ln2.hook_scale", "blocks.0.ln2_post.hook_normalized", "blocks.1.attn.hook_pattern"] as const)
    assert.ok(names.includes(n), `${n} is a hook point`);
  const { cache } = cs.noGrad(() => model.runWithCache([[1, 2, 3, 4]]));
  // hook_attn_out is what joins the residual stream: after ln1_post.
  const out = cache.get("blocks.0.hook_attn_out").toArray(), step = cache.get("blocks.0.hook_resid_mid").sub(cache.get("blocks.0.hook_resid_pre")).toArray();
  assert.ok(out.every((x, i) => Math.abs(x - step[i]!) < 1e-5), "resid_mid = resid_pre + attn_out");
  assert.deepEqual(cache.get("blocks.0.ln1_post.hook_normalized").shape, [1, 4, 16]);
  assert.throws(() => cache.stackHeadResults(), /norm_placement "sandwich".*do not add up to hook_attn_out/);
});
