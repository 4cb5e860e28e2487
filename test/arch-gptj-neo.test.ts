// GPT-J (parallel attention + MLP off one ln_1, rotate_every_two rotary on rotary_dim < head_dim, biased
// lm_head) and GPT-Neo (learned positions, unscaled scores, alternating global / local attention), against
// the float64 references written from modeling_gptj.py / modeling_gpt_neo.py (test/reference/gptj-neo.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as cs from "../src/index.js";
import { loadPretrained, type HFConfigJson } from "../src/io/index.js";
import { gptjLogits, gptNeoLogits } from "./reference/gptj-neo.js";
import { checkCachedGeneration, checkFamily, writeFamily, type Family, type Spec } from "./arch-helpers.js";

const gptj: HFConfigJson = {
  architectures: ["GPTJForCausalLM"], model_type: "gptj", n_embd: 16, n_layer: 2, n_head: 2, rotary_dim: 4, n_inner: null, vocab_size: 50,
  n_positions: 64, activation_function: "gelu_new", layer_norm_epsilon: 1e-5, tie_word_embeddings: false, bos_token_id: 0, eos_token_id: 0,
};
function gptjSpecs(c: HFConfigJson): Spec[] {
  const D = c.n_embd as number, M = 4 * D, V = c.vocab_size as number, P = c.n_positions as number;
  const s: Spec[] = [["transformer.wte.weight", [V, D]]];
  for (let l = 0; l < (c.n_layer as number); l++) {
    const h = `transformer.h.${l}.`;
    s.push([`${h}ln_1.weight`, [D], "norm"], [`${h}ln_1.bias`, [D], "bias"], [`${h}attn.q_proj.weight`, [D, D]], [`${h}attn.k_proj.weight`, [D, D]],
      [`${h}attn.v_proj.weight`, [D, D]], [`${h}attn.out_proj.weight`, [D, D]], [`${h}mlp.fc_in.weight`, [M, D]], [`${h}mlp.fc_in.bias`, [M], "bias"],
      [`${h}mlp.fc_out.weight`, [D, M]], [`${h}mlp.fc_out.bias`, [D], "bias"], [`${h}attn.bias`, [1, 1, P, P], "buffer"], [`${h}attn.masked_bias`, [], "buffer"]);
  }
  s.push(["transformer.ln_f.weight", [D], "norm"], ["transformer.ln_f.bias", [D], "bias"], ["lm_head.weight", [V, D]], ["lm_head.bias", [V], "bias"]);
  return s;
}
const GPTJ: Family = { name: "gptj (rotary_dim 4 of 8, with mask buffers)", config: gptj, ref: gptjLogits, specs: gptjSpecs(gptj), without: { rotary_dim: 8 } };

const neo: HFConfigJson = {
  architectures: ["GPTNeoForCausalLM"], model_type: "gpt_neo", hidden_size: 16, num_layers: 2, num_heads: 4, intermediate_size: null, vocab_size: 50,
  max_position_embeddings: 32, window_size: 3, attention_types: [[["global", "local"], 1]], attention_layers: ["global", "local"],
  activation_function: "gelu_new", layer_norm_epsilon: 1e-5, bos_token_id: 0, eos_token_id: 0,
};
function neoSpecs(c: HFConfigJson): Spec[] {
  const D = c.hidden_size as number, M = 4 * D, V = c.vocab_size as number, P = c.max_position_embeddings as number;
  const s: Spec[] = [["transformer.wte.weight", [V, D]], ["transformer.wpe.weight", [P, D]]];
  for (let l = 0; l < (c.num_layers as number); l++) {
    const h = `transformer.h.${l}.`, a = `${h}attn.attention.`;
    s.push([`${h}ln_1.weight`, [D], "norm"], [`${h}ln_1.bias`, [D], "bias"], [`${a}q_proj.weight`, [D, D]], [`${a}k_proj.weight`, [D, D]],
      [`${a}v_proj.weight`, [D, D]], [`${a}out_proj.weight`, [D, D]], [`${a}out_proj.bias`, [D], "bias"], [`${h}ln_2.weight`, [D], "norm"],
      [`${h}ln_2.bias`, [D], "bias"], [`${h}mlp.c_fc.weight`, [M, D]], [`${h}mlp.c_fc.bias`, [M], "bias"], [`${h}mlp.c_proj.weight`, [D, M]],
      [`${h}mlp.c_proj.bias`, [D], "bias"], [`${a}bias`, [1, 1, P, P], "buffer"], [`${a}masked_bias`, [], "buffer"]);
  }
  s.push(["transformer.ln_f.weight", [D], "norm"], ["transformer.ln_f.bias", [D], "bias"]);
  return s;
}
const NEO: Family = { name: "gpt_neo (global, local window 3; tied)", config: neo, ref: gptNeoLogits, specs: neoSpecs(neo), without: { window_size: 64 } };

for (const f of [GPTJ, NEO]) test(`${f.name} matches the reference: logits, padded batch, gradients, saveHF`, (t) => checkFamily(t, f));

test("gpt_neo: greedy generation with the KV cache equals the uncached run through the local layer", () => checkCachedGeneration(NEO));
test("gptj: greedy generation with the KV cache equals the uncached run", () => checkCachedGeneration(GPTJ));

test("gpt_neo: causal scrubbing, whose own forward has no sliding window, refuses the model by name", () => {
  const { model } = loadPretrained(writeFamily(NEO).dir);
  assert.throws(() => cs.causalScrub(model, { nodes: [] } as unknown as cs.Hypothesis, { sequences: [[1, 2, 3]] } as unknown as cs.ScrubData), /sliding-window \(local\) attention layers are not supported/);
});
