// Qwen2 (q/k/v biases, no o_proj bias), Mistral (sliding window; also greedy generation with the KV cache
// equals the uncached run) and Qwen3 (per-head q/k RMSNorm), each against the float64 reference written
// from modeling_qwen2.py / modeling_mistral.py / modeling_qwen3.py (test/reference/decoder.ts).
import { test } from "node:test";
import type { HFConfigJson } from "../src/io/index.js";
import { decoderLogits } from "./reference/decoder.js";
import { checkCachedGeneration, checkFamily, llamaBlockSpecs, type Family } from "./arch-helpers.js";

const qwen2: HFConfigJson = {
  architectures: ["Qwen2ForCausalLM"], model_type: "qwen2", hidden_size: 16, intermediate_size: 40, num_hidden_layers: 2, num_attention_heads: 4,
  num_key_value_heads: 2, vocab_size: 50, max_position_embeddings: 64, rms_norm_eps: 1e-6, rope_theta: 1000000.0, hidden_act: "silu",
  sliding_window: 32, use_sliding_window: false, max_window_layers: 2, tie_word_embeddings: true, rope_scaling: null, bos_token_id: 1, eos_token_id: 2,
};
const QWEN2: Family = {
  name: "qwen2 (GQA 4/2, q/k/v biases, tied)", config: qwen2, ref: decoderLogits,
  specs: llamaBlockSpecs(qwen2, (h) => [[`${h}self_attn.q_proj.bias`, [16], "bias"], [`${h}self_attn.k_proj.bias`, [8], "bias"], [`${h}self_attn.v_proj.bias`, [8], "bias"]]),
};

const mistral: HFConfigJson = {
  architectures: ["MistralForCausalLM"], model_type: "mistral", hidden_size: 16, intermediate_size: 40, num_hidden_layers: 2, num_attention_heads: 4,
  num_key_value_heads: 2, head_dim: 4, vocab_size: 50, max_position_embeddings: 64, rms_norm_eps: 1e-5, rope_theta: 10000.0, hidden_act: "silu",
  sliding_window: 3, tie_word_embeddings: false, bos_token_id: 1, eos_token_id: 2,
};
const MISTRAL: Family = { name: "mistral (sliding_window 3)", config: mistral, ref: decoderLogits, specs: llamaBlockSpecs(mistral), without: { sliding_window: null } };

const qwen3: HFConfigJson = {
  architectures: ["Qwen3ForCausalLM"], model_type: "qwen3", hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4,
  num_key_value_heads: 2, head_dim: 8, vocab_size: 50, max_position_embeddings: 64, rms_norm_eps: 1e-6, rope_theta: 1000000.0, hidden_act: "silu",
  attention_bias: false, use_sliding_window: false, sliding_window: null, max_window_layers: 2, tie_word_embeddings: false,
};
const QWEN3: Family = {
  name: "qwen3 (head_dim 8 > d_model / n_heads, q/k norm)", config: qwen3, ref: decoderLogits, without: { model_type: "qwen2" },
  specs: llamaBlockSpecs(qwen3, (h) => [[`${h}self_attn.q_norm.weight`, [8], "norm"], [`${h}self_attn.k_norm.weight`, [8], "norm"]]),
};

for (const f of [QWEN2, MISTRAL, QWEN3]) test(`${f.name} matches the reference: logits, padded batch, gradients, saveHF`, (t) => checkFamily(t, f));

test("mistral: greedy generation with the KV cache equals the uncached run through the sliding window", () => checkCachedGeneration(MISTRAL));

test("qwen2 with use_sliding_window: layers from max_window_layers on slide", (t) => {
  const config = { ...qwen2, use_sliding_window: true, sliding_window: 3, max_window_layers: 1 };
  checkFamily(t, { ...QWEN2, name: "qwen2 (sliding from layer 1)", config, specs: QWEN2.specs, without: { use_sliding_window: false } });
});
