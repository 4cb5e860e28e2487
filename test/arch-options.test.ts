// Options the loader used to refuse, each against a float64 reference written from the HF modeling code:
// Llama mlp_bias (gate_proj / up_proj / down_proj biases), rope_scaling "llama3" and "dynamic"
// (modeling_rope_utils.py), GPT-2 scale_attn_by_inverse_layer_idx (modeling_gpt2.py), and partial rotary
// for Llama. Also: a pytorch_model.bin-only snapshot is refused as out of scope, with the conversion named.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { loadPretrained, type HFConfigJson } from "../src/io/index.js";
import { decoderLogits } from "./reference/decoder.js";
import { gpt2Logits } from "./reference/gpt2.js";
import { checkFamily, llamaBlockSpecs, tmp, type Family, type Spec } from "./arch-helpers.js";

const llama: HFConfigJson = {
  architectures: ["LlamaForCausalLM"], model_type: "llama", hidden_size: 16, intermediate_size: 40, num_hidden_layers: 2, num_attention_heads: 2,
  num_key_value_heads: 2, vocab_size: 50, max_position_embeddings: 64, rms_norm_eps: 1e-6, rope_theta: 100.0, hidden_act: "silu",
  attention_bias: false, mlp_bias: false, tie_word_embeddings: false, rope_scaling: null,
};
const mlpBias = { ...llama, mlp_bias: true };
const MLP_BIAS: Family = {
  name: "llama mlp_bias", config: mlpBias, ref: decoderLogits, without: { mlp_bias: false },
  specs: llamaBlockSpecs(mlpBias, (h) => [[`${h}mlp.gate_proj.bias`, [40], "bias"], [`${h}mlp.up_proj.bias`, [40], "bias"], [`${h}mlp.down_proj.bias`, [16], "bias"]]),
};
// head_dim 8, base 100: wavelengths 6.3, 20, 63, 200 fall below, between and above 32/4 … 32/1.
const llama3 = { ...llama, rope_scaling: { rope_type: "llama3", factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 32 } };
const LLAMA3: Family = { name: "llama rope_scaling llama3", config: llama3, ref: decoderLogits, specs: llamaBlockSpecs(llama3), without: { rope_scaling: null } };
const partial = { ...llama, partial_rotary_factor: 0.5 };
const PARTIAL: Family = { name: "llama partial_rotary_factor 0.5", config: partial, ref: decoderLogits, specs: llamaBlockSpecs(partial), without: { partial_rotary_factor: 1 } };

for (const f of [MLP_BIAS, LLAMA3, PARTIAL]) test(`${f.name} matches the reference: logits, padded batch, gradients, saveHF`, (t) => checkFamily(t, f));

// Dynamic NTK rescales from the longest position in the call (as HF's dynamic_rope_update), so a padded
// batch shares one base across rows, as in HF: the padded-row check does not apply.
const dynamic = { ...llama, max_position_embeddings: 4, rope_scaling: { type: "dynamic", factor: 2.0 } };
test("llama rope_scaling dynamic (sequence 8 > max_position_embeddings 4) matches the reference", (t) => {
  checkFamily(t, { name: "llama rope_scaling dynamic", config: dynamic, ref: decoderLogits, specs: llamaBlockSpecs(dynamic), without: { rope_scaling: null } }, { padded: false });
});

function gpt2Specs(c: HFConfigJson): Spec[] {
  const D = c.n_embd as number, M = 4 * D, V = c.vocab_size as number, P = c.n_positions as number;
  const s: Spec[] = [["transformer.wte.weight", [V, D]], ["transformer.wpe.weight", [P, D]]];
  for (let l = 0; l < (c.n_layer as number); l++) {
    const h = `transformer.h.${l}.`;
    s.push([`${h}ln_1.weight`, [D], "norm"], [`${h}ln_1.bias`, [D], "bias"], [`${h}attn.c_attn.weight`, [D, 3 * D]], [`${h}attn.c_attn.bias`, [3 * D], "bias"],
      [`${h}attn.c_proj.weight`, [D, D]], [`${h}attn.c_proj.bias`, [D], "bias"], [`${h}ln_2.weight`, [D], "norm"], [`${h}ln_2.bias`, [D], "bias"],
      [`${h}mlp.c_fc.weight`, [D, M]], [`${h}mlp.c_fc.bias`, [M], "bias"], [`${h}mlp.c_proj.weight`, [M, D]], [`${h}mlp.c_proj.bias`, [D], "bias"]);
  }
  s.push(["transformer.ln_f.weight", [D], "norm"], ["transformer.ln_f.bias", [D], "bias"]);
  return s;
}
const gpt2: HFConfigJson = {
  architectures: ["GPT2LMHeadModel"], model_type: "gpt2", n_embd: 16, n_layer: 3, n_head: 2, vocab_size: 50, n_positions: 32, n_inner: null,
  activation_function: "gelu_new", layer_norm_epsilon: 1e-5, scale_attn_by_inverse_layer_idx: true, reorder_and_upcast_attn: true,
};
test("gpt2 scale_attn_by_inverse_layer_idx (and reorder_and_upcast_attn) matches the reference", (t) => {
  checkFamily(t, { name: "gpt2 scale_attn_by_inverse_layer_idx", config: gpt2, ref: gpt2Logits, specs: gpt2Specs(gpt2), without: { scale_attn_by_inverse_layer_idx: false } });
});

test("a pytorch_model.bin-only snapshot is out of scope, with the conversion to safetensors named", () => {
  const dir = tmp();
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(llama));
  fs.writeFileSync(path.join(dir, "pytorch_model.bin"), "");
  assert.throws(() => loadPretrained(dir), /pytorch_model\.bin only: reading pickled torch checkpoints is out of scope for circuitscope; convert it to safetensors with .*save_pretrained\(.*safe_serialization=True\)/);
});

test("settings the loader cannot reproduce are refused by name, never read as a default", () => {
  const refuse = (config: HFConfigJson, pattern: RegExp) => {
    const dir = tmp();
    fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(config));
    assert.throws(() => loadPretrained(dir), pattern);
  };
  const gemma = { architectures: ["GemmaForCausalLM"], model_type: "gemma", hidden_size: 16, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 1, vocab_size: 50 };
  refuse(gemma, /missing required field "head_dim"/);
  refuse({ ...gemma, architectures: ["MistralForCausalLM"], model_type: "mistral", num_key_value_heads: undefined }, /missing required field "num_key_value_heads"/);
  refuse({ ...llama, architectures: ["Phi3ForCausalLM"], model_type: "phi3", rope_scaling: { type: "longrope", short_factor: [1], long_factor: [1] } }, /rope_scaling type "longrope" is not supported/);
  refuse({ ...llama, rope_theta: undefined, rope_parameters: { rope_theta: 10000, rope_type: "default" } }, /rope_parameters \(transformers v5 layout\) is not supported/);
  refuse({ ...llama, architectures: ["Gemma2ForCausalLM"], model_type: "gemma2", head_dim: 8, attn_logit_softcapping: -1 }, /"attn_logit_softcapping" must be a positive number or null/);
  refuse({ ...neoBase, attention_types: [[["global", "local"], 2]] }, /attention_types gives 4 layers, num_layers is 2/);
});
const neoBase: HFConfigJson = { architectures: ["GPTNeoForCausalLM"], model_type: "gpt_neo", hidden_size: 16, num_layers: 2, num_heads: 4, vocab_size: 50, max_position_embeddings: 32 };
