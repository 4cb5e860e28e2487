// Hugging Face loading, end to end: for each family (GPT-2, GPT-NeoX parallel and sequential, Llama
// with GQA + linear RoPE scaling + attention biases, Llama tied in F16) a random checkpoint is written
// in HF names and layouts, loaded with loadPretrained, and its logits compared with independent
// float64 reference implementations (test/reference/*.ts, written from transformers v4.40's modeling
// files) — in float32 (max |diff| < 1e-4) and float64 (< 1e-9; 1e-6 with rotary's float32 tables). saveHF → reload must give bitwise
// identical logits and bitwise identical HF tensors. Then the error paths, sharded snapshots, and
// the real tiny-gpt2 / tiny-random-llama snapshots (skipped when ../shared is absent).
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Rng } from "../src/tensor/rng.js";
import { Tensor } from "../src/tensor/tensor.js";
import { noGrad } from "../src/tensor/autodiff.js";
import { makeConfig } from "../src/model/config.js";
import type { HookedTransformer } from "../src/model/transformer.js";
import {
  loadPretrained, saveHF, saveSafetensors, loadSafetensors, configToHF, HFConfigError, HFWeightsError, SnapshotError,
  Tokenizer, TokenizerError, type HFConfigJson, type SafetensorsDType,
} from "../src/io/index.js";
import type { Weights, W } from "./reference/common.js";
import { gpt2Logits } from "./reference/gpt2.js";
import { neoxLogits } from "./reference/neox.js";
import { llamaLogits } from "./reference/llama.js";

const SHARED = fileURLToPath(new URL("../../../shared/models/", import.meta.url));
const tmpDirs: string[] = [];
const tmp = (): string => { const d = fs.mkdtempSync(path.join(os.tmpdir(), "cs-io-hf-")); tmpDirs.push(d); return d; };
process.on("exit", () => { for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true }); });

type Spec = [name: string, shape: number[], kind?: "norm" | "bias" | "buffer"];

/** Random float32 tensors for the given HF names: N(0, 0.3²) weights, N(0, 0.1²) biases, 1 + N(0, 0.1²) norm weights. */
function randomTensors(specs: Spec[], seed: number): Map<string, Tensor> {
  const rng = new Rng(seed), out = new Map<string, Tensor>();
  for (const [name, shape, kind] of specs) {
    const n = shape.reduce((a, b) => a * b, 1), d = new Float32Array(n);
    for (let i = 0; i < n; i++) d[i] = kind === "norm" ? 1 + 0.1 * rng.normal() : kind === "bias" ? 0.1 * rng.normal() : kind === "buffer" ? 1 : 0.3 * rng.normal();
    out.set(name, new Tensor(d, shape));
  }
  return out;
}

// HF names and shapes, listed by hand from the modeling files (not from src/io's tables).
function gpt2Specs(c: HFConfigJson): Spec[] {
  const D = c.n_embd as number, M = 4 * D, V = c.vocab_size as number, P = c.n_positions as number;
  const s: Spec[] = [["transformer.wte.weight", [V, D]], ["transformer.wpe.weight", [P, D]]];
  for (let l = 0; l < (c.n_layer as number); l++) {
    const h = `transformer.h.${l}.`;
    s.push([`${h}ln_1.weight`, [D], "norm"], [`${h}ln_1.bias`, [D], "bias"], [`${h}attn.c_attn.weight`, [D, 3 * D]], [`${h}attn.c_attn.bias`, [3 * D], "bias"],
      [`${h}attn.c_proj.weight`, [D, D]], [`${h}attn.c_proj.bias`, [D], "bias"], [`${h}ln_2.weight`, [D], "norm"], [`${h}ln_2.bias`, [D], "bias"],
      [`${h}mlp.c_fc.weight`, [D, M]], [`${h}mlp.c_fc.bias`, [M], "bias"], [`${h}mlp.c_proj.weight`, [M, D]], [`${h}mlp.c_proj.bias`, [D], "bias"],
      [`${h}attn.bias`, [1, 1, P, P], "buffer"]); // the causal-mask buffer old checkpoints carry
  }
  s.push(["transformer.ln_f.weight", [D], "norm"], ["transformer.ln_f.bias", [D], "bias"]);
  return s;
}

function neoxSpecs(c: HFConfigJson): Spec[] {
  const D = c.hidden_size as number, M = c.intermediate_size as number, V = c.vocab_size as number, bias = c.attention_bias !== false;
  const s: Spec[] = [["gpt_neox.embed_in.weight", [V, D]]];
  for (let l = 0; l < (c.num_hidden_layers as number); l++) {
    const h = `gpt_neox.layers.${l}.`;
    s.push([`${h}input_layernorm.weight`, [D], "norm"], [`${h}input_layernorm.bias`, [D], "bias"],
      [`${h}post_attention_layernorm.weight`, [D], "norm"], [`${h}post_attention_layernorm.bias`, [D], "bias"],
      [`${h}attention.query_key_value.weight`, [3 * D, D]], [`${h}attention.dense.weight`, [D, D]],
      [`${h}mlp.dense_h_to_4h.weight`, [M, D]], [`${h}mlp.dense_h_to_4h.bias`, [M], "bias"],
      [`${h}mlp.dense_4h_to_h.weight`, [D, M]], [`${h}mlp.dense_4h_to_h.bias`, [D], "bias"]);
    if (bias) s.push([`${h}attention.query_key_value.bias`, [3 * D], "bias"], [`${h}attention.dense.bias`, [D], "bias"]);
  }
  s.push(["gpt_neox.final_layer_norm.weight", [D], "norm"], ["gpt_neox.final_layer_norm.bias", [D], "bias"]);
  if (c.tie_word_embeddings !== true) s.push(["embed_out.weight", [V, D]]);
  return s;
}

function llamaSpecs(c: HFConfigJson): Spec[] {
  const D = c.hidden_size as number, M = c.intermediate_size as number, V = c.vocab_size as number, H = c.num_attention_heads as number;
  const Hkv = c.num_key_value_heads as number, dh = D / H, bias = c.attention_bias === true;
  const s: Spec[] = [["model.embed_tokens.weight", [V, D]]];
  for (let l = 0; l < (c.num_hidden_layers as number); l++) {
    const h = `model.layers.${l}.`;
    s.push([`${h}input_layernorm.weight`, [D], "norm"], [`${h}post_attention_layernorm.weight`, [D], "norm"],
      [`${h}self_attn.q_proj.weight`, [H * dh, D]], [`${h}self_attn.k_proj.weight`, [Hkv * dh, D]],
      [`${h}self_attn.v_proj.weight`, [Hkv * dh, D]], [`${h}self_attn.o_proj.weight`, [D, H * dh]],
      [`${h}mlp.gate_proj.weight`, [M, D]], [`${h}mlp.up_proj.weight`, [M, D]], [`${h}mlp.down_proj.weight`, [D, M]]);
    if (bias) s.push([`${h}self_attn.q_proj.bias`, [H * dh], "bias"], [`${h}self_attn.k_proj.bias`, [Hkv * dh], "bias"],
      [`${h}self_attn.v_proj.bias`, [Hkv * dh], "bias"], [`${h}self_attn.o_proj.bias`, [D], "bias"]);
  }
  s.push(["model.norm.weight", [D], "norm"]);
  if (c.tie_word_embeddings !== true) s.push(["lm_head.weight", [V, D]]);
  return s;
}

type RefFn = (config: HFConfigJson, w: Weights, ids: readonly number[]) => Float64Array;
interface Case { name: string; config: HFConfigJson; specs: (c: HFConfigJson) => Spec[]; ref: RefFn; storeAs?: SafetensorsDType }

const CASES: Case[] = [
  {
    name: "gpt2 (tied, with causal-mask buffers)", specs: gpt2Specs, ref: gpt2Logits,
    config: { architectures: ["GPT2LMHeadModel"], model_type: "gpt2", n_embd: 16, n_layer: 2, n_head: 4, vocab_size: 50, n_positions: 32, n_inner: null,
      activation_function: "gelu_new", layer_norm_epsilon: 1e-5, bos_token_id: 0, eos_token_id: 0 },
  },
  {
    name: "neox (rotary_pct 0.25, parallel residual)", specs: neoxSpecs, ref: neoxLogits,
    config: { architectures: ["GPTNeoXForCausalLM"], model_type: "gpt_neox", hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 128,
      vocab_size: 50, max_position_embeddings: 64, rotary_pct: 0.25, rotary_emb_base: 100, use_parallel_residual: true, hidden_act: "gelu", layer_norm_eps: 1e-5,
      tie_word_embeddings: false },
  },
  {
    name: "neox (sequential residual, no attention bias, tied)", specs: neoxSpecs, ref: neoxLogits,
    config: { architectures: ["GPTNeoXForCausalLM"], model_type: "gpt_neox", hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 64,
      vocab_size: 50, max_position_embeddings: 64, rotary_pct: 0.5, rotary_emb_base: 10000, use_parallel_residual: false, hidden_act: "gelu", layer_norm_eps: 1e-5,
      attention_bias: false, tie_word_embeddings: true, rope_scaling: { type: "linear", factor: 3 } },
  },
  {
    name: "llama (GQA 4/2, linear RoPE x2, attention bias)", specs: llamaSpecs, ref: llamaLogits,
    config: { architectures: ["LlamaForCausalLM"], model_type: "llama", hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
      intermediate_size: 40, vocab_size: 50, max_position_embeddings: 64, rms_norm_eps: 1e-6, rope_theta: 100, rope_scaling: { type: "linear", factor: 2.0 },
      attention_bias: true, mlp_bias: false, tie_word_embeddings: false, hidden_act: "silu", bos_token_id: 1, eos_token_id: 2 },
  },
  {
    name: "llama (tied, F16 weights)", specs: llamaSpecs, ref: llamaLogits, storeAs: "F16",
    config: { architectures: ["LlamaForCausalLM"], model_type: "llama", hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 4,
      intermediate_size: 32, vocab_size: 50, max_position_embeddings: 64, rms_norm_eps: 1e-5, rope_theta: 10000, rope_scaling: null,
      tie_word_embeddings: true, hidden_act: "silu", torch_dtype: "float16" },
  },
];

const SEQS = [[3, 17, 42, 8, 0, 49, 23], [5, 5, 12, 30, 1, 2, 44]];

function writeSnapshot(dir: string, config: HFConfigJson, tensors: Map<string, Tensor>, storeAs?: SafetensorsDType): void {
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(config));
  const st = storeAs ? Object.fromEntries([...tensors.keys()].map((k) => [k, storeAs])) : undefined;
  saveSafetensors(path.join(dir, "model.safetensors"), tensors, { format: "pt" }, { storeAs: st });
}

/** The folder's HF tensors in float64, as the references read them (from the file: F16 rounding included). */
function referenceWeights(file: string): Weights {
  const out = new Map<string, W>();
  for (const [k, t] of loadSafetensors(file, { dtype: "float64" })) out.set(k, { shape: t.shape.slice(), data: t.toArray() as Float64Array });
  return out;
}

/** Max |model - reference| over both sequences, run as one batch. */
function maxLogitDiff(model: HookedTransformer, config: HFConfigJson, w: Weights, ref: RefFn, seqs: number[][]): number {
  const logits = noGrad(() => model.forward(seqs)).toArray();
  const V = model.cfg.d_vocab, T = seqs[0]!.length;
  let worst = 0;
  seqs.forEach((ids, b) => {
    const r = ref(config, w, ids);
    assert.equal(r.length, T * V);
    for (let i = 0; i < T * V; i++) {
      const d = Math.abs(logits[b * T * V + i]! - r[i]!);
      assert.ok(Number.isFinite(d), `non-finite logit at batch ${b}, index ${i}`);
      worst = Math.max(worst, d);
    }
  });
  return worst;
}

function logitSpread(config: HFConfigJson, w: Weights, ref: RefFn): number {
  const r = ref(config, w, SEQS[0]!);
  return Math.max(...r) - Math.min(...r);
}

describe("loadPretrained matches the float64 reference implementations", () => {
  for (const c of CASES) {
    test(c.name, (t) => {
      const dir = tmp();
      const tensors = randomTensors(c.specs(c.config), 1234);
      writeSnapshot(dir, c.config, tensors, c.storeAs);
      const w = referenceWeights(path.join(dir, "model.safetensors"));
      // A reference that gives flat logits could not tell a good mapping from a bad one.
      assert.ok(logitSpread(c.config, w, c.ref) > 0.5, "the random model's logits should vary");

      const { model, hfConfig } = loadPretrained(dir);
      assert.ok(model.parameters().every((p) => !p.requiresGrad), "parameters are frozen");
      const d32 = maxLogitDiff(model, c.config, w, c.ref, SEQS);
      t.diagnostic(`${c.name}: float32 max |logit diff| = ${d32.toExponential(2)}`);
      assert.ok(d32 < 1e-4, `float32 max |logit diff| ${d32} >= 1e-4`);

      // A float64 model pins the mapping far below float32 noise. Rotary models keep their cos/sin
      // tables in float32 (src/model/rotary.ts, as HF's float32 inv_freq), which bounds them near 1e-7.
      const m64 = loadPretrained(dir, { dtype: "float64" }).model;
      const d64 = maxLogitDiff(m64, c.config, w, c.ref, SEQS), tol64 = m64.cfg.positional_embedding_type === "rotary" ? 1e-6 : 1e-9;
      t.diagnostic(`${c.name}: float64 max |logit diff| = ${d64.toExponential(2)}`);
      assert.ok(d64 < tol64, `float64 max |logit diff| ${d64} >= ${tol64}`);

      // saveHF → reload: same HF tensors bit for bit, same logits bit for bit.
      const out = tmp();
      saveHF(model, out, { baseConfig: hfConfig });
      const saved = loadSafetensors(path.join(out, "model.safetensors"), { dtype: "float32" });
      const original = loadSafetensors(path.join(dir, "model.safetensors"), { dtype: "float32" });
      const weightsOnly = [...original.keys()].filter((k) => !/\.attn\.bias$/.test(k)).sort();
      assert.deepEqual([...saved.keys()].sort(), weightsOnly, "saved tensor names");
      for (const k of weightsOnly) {
        assert.deepEqual(saved.get(k)!.shape, original.get(k)!.shape, `${k} shape`);
        assert.deepEqual(saved.get(k)!.toArray(), original.get(k)!.toArray(), `${k} values`);
      }
      const savedConfig = JSON.parse(fs.readFileSync(path.join(out, "config.json"), "utf8")) as HFConfigJson;
      assert.deepEqual(savedConfig.architectures, c.config.architectures);
      if (c.config.eos_token_id !== undefined) assert.equal(savedConfig.eos_token_id, c.config.eos_token_id, "baseConfig fields are kept");
      const reloaded = loadPretrained(out).model;
      assert.deepEqual(noGrad(() => reloaded.forward(SEQS)).toArray(), noGrad(() => model.forward(SEQS)).toArray());
      assert.deepEqual(fs.readdirSync(out).sort(), ["config.json", "model.safetensors"], "no temporary files left");
    });
  }
});

describe("snapshot folders", () => {
  const llama = CASES[3]!;

  test("a sharded snapshot (model.safetensors.index.json) loads like the single file", () => {
    const tensors = randomTensors(llama.specs(llama.config), 7);
    const single = tmp(), sharded = tmp();
    writeSnapshot(single, llama.config, tensors);
    fs.writeFileSync(path.join(sharded, "config.json"), JSON.stringify(llama.config));
    const names = [...tensors.keys()], half = Math.ceil(names.length / 2), weight_map: Record<string, string> = {};
    [names.slice(0, half), names.slice(half)].forEach((part, i) => {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      saveSafetensors(path.join(sharded, file), new Map(part.map((n) => [n, tensors.get(n)!])));
      for (const n of part) weight_map[n] = file;
    });
    fs.writeFileSync(path.join(sharded, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map }));
    const a = noGrad(() => loadPretrained(single).model.forward(SEQS)).toArray();
    const b = noGrad(() => loadPretrained(sharded).model.forward(SEQS)).toArray();
    assert.deepEqual(b, a);
  });

  test("a GPT-2 checkpoint saved from the bare GPT2Model (no \"transformer.\" prefix) loads the same", () => {
    const gpt2 = CASES[0]!, tensors = randomTensors(gpt2Specs(gpt2.config), 11);
    const prefixed = tmp(), bare = tmp();
    writeSnapshot(prefixed, gpt2.config, tensors);
    writeSnapshot(bare, gpt2.config, new Map([...tensors].map(([k, t]) => [k.replace(/^transformer\./, ""), t])));
    const a = noGrad(() => loadPretrained(prefixed).model.forward(SEQS)).toArray();
    const b = noGrad(() => loadPretrained(bare).model.forward(SEQS)).toArray();
    assert.deepEqual(b, a);
  });

  test("missing config.json, missing weights and pytorch_model.bin are named", () => {
    const empty = tmp();
    assert.throws(() => loadPretrained(empty), (e: Error) => e instanceof SnapshotError && /no config\.json/.test(e.message) && e.message.includes(empty));
    fs.writeFileSync(path.join(empty, "config.json"), JSON.stringify(llama.config));
    assert.throws(() => loadPretrained(empty), (e: Error) => e instanceof SnapshotError && /no model\.safetensors or model\.safetensors\.index\.json/.test(e.message));
    fs.writeFileSync(path.join(empty, "pytorch_model.bin"), "");
    assert.throws(() => loadPretrained(empty), /pytorch_model\.bin only: reading pickled torch checkpoints is out of scope for circuitscope; convert it to safetensors/);
    assert.throws(() => loadPretrained(path.join(empty, "nope")), /not a folder/);
  });

  test("unsupported architectures and settings are rejected by name", () => {
    const dir = tmp();
    const write = (cfg: HFConfigJson) => writeSnapshot(dir, cfg, randomTensors(llama.specs(llama.config), 1));
    write({ ...llama.config, architectures: ["BertForMaskedLM"] });
    assert.throws(() => loadPretrained(dir), (e: Error) => e instanceof HFConfigError
      && /unsupported architecture "BertForMaskedLM"; circuitscope loads GPT2LMHeadModel, GPTNeoXForCausalLM, LlamaForCausalLM, MistralForCausalLM/.test(e.message));
    write({ ...llama.config, rope_scaling: { type: "yarn", factor: 2 } });
    assert.throws(() => loadPretrained(dir), /rope_scaling type "yarn" is not supported/);
    write({ ...llama.config, rope_scaling: { rope_type: "llama3", factor: 8 } });
    assert.throws(() => loadPretrained(dir), /rope_scaling.low_freq_factor must be a number > 0/);
    write({ ...llama.config, hidden_act: "quick_gelu" });
    assert.throws(() => loadPretrained(dir), /hidden_act "quick_gelu" is not supported/);
  });

  test("every missing, misshapen and unexpected tensor is listed before anything is loaded", () => {
    const dir = tmp();
    const tensors = randomTensors(llama.specs(llama.config), 3);
    tensors.delete("model.layers.1.mlp.up_proj.weight");
    tensors.set("model.layers.0.self_attn.k_proj.weight", new Tensor(new Float32Array(16 * 16), [16, 16]));
    tensors.set("model.layers.0.extra.weight", new Tensor(new Float32Array(2), [2]));
    writeSnapshot(dir, llama.config, tensors);
    assert.throws(() => loadPretrained(dir), (e: Error) => {
      assert.ok(e instanceof HFWeightsError);
      assert.deepEqual(e.issues.map((i) => `${i.code} ${i.key}`).sort(), [
        "missing_key model.layers.1.mlp.up_proj.weight",
        "shape_mismatch model.layers.0.self_attn.k_proj.weight",
        "unexpected_key model.layers.0.extra.weight",
      ]);
      assert.match(e.message, /the config implies shape \[8, 16\], the checkpoint has \[16, 16\]/);
      return true;
    });
  });

  test("saveHF unties embeddings that training made different, and refuses what HF cannot express", () => {
    const dir = tmp();
    writeSnapshot(dir, CASES[0]!.config, randomTensors(gpt2Specs(CASES[0]!.config), 5));
    const { model } = loadPretrained(dir);
    model.unembed.W_U.data[3] = model.unembed.W_U.data[3]! + 0.5; // W_U is no longer W_E^T
    const out = tmp();
    saveHF(model, out);
    const cfg = JSON.parse(fs.readFileSync(path.join(out, "config.json"), "utf8")) as HFConfigJson;
    assert.equal(cfg.tie_word_embeddings, false);
    const reloaded = loadPretrained(out).model;
    assert.deepEqual(noGrad(() => reloaded.forward(SEQS)).toArray(), noGrad(() => model.forward(SEQS)).toArray());

    assert.throws(() => configToHF(makeConfig({ architecture: "gpt2", d_model: 16, n_layers: 1, n_heads: 4, d_vocab: 10, parallel_attn_mlp: true })),
      (e: Error) => e instanceof HFConfigError && /cannot express parallel_attn_mlp = true/.test(e.message));
    assert.throws(() => configToHF(makeConfig({ architecture: "attn-only", d_model: 16, n_layers: 1, n_heads: 4, d_vocab: 10 })), /attention-only/);
  });
});

describe("Tokenizer", () => {
  // A minimal tokenizer.json in the `tokenizers` library's format: a word-level vocabulary and a
  // Llama-style post-processor that prepends <s>.
  const tokenizerJson = {
    version: "1.0", truncation: null, padding: null, normalizer: null,
    added_tokens: ["<s>", "</s>", "<pad>"].map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    pre_tokenizer: { type: "Whitespace" },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }],
      special_tokens: { "<s>": { id: "<s>", ids: [0], tokens: ["<s>"] } },
    },
    decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: { type: "WordLevel", vocab: { "<s>": 0, "</s>": 1, "<pad>": 2, hello: 3, world: 4 } },
  };

  test("special tokens from special_tokens_map.json, addSpecialTokens, decode, unknown pieces", () => {
    const dir = tmp();
    assert.equal(Tokenizer.fromFolder(dir), null, "no tokenizer.json → null");
    fs.writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(tokenizerJson));
    fs.writeFileSync(path.join(dir, "special_tokens_map.json"), JSON.stringify({ bos_token: "<s>", eos_token: { content: "</s>" }, pad_token: "<pad>" }));
    const tok = Tokenizer.fromFolder(dir)!;
    assert.deepEqual([tok.bosTokenId, tok.eosTokenId, tok.padTokenId, tok.vocabSize], [0, 1, 2, 5]);
    assert.deepEqual(tok.encode("hello world"), [0, 3, 4], "BOS added by default, as HF's tokenizer(text)");
    assert.deepEqual(tok.encode("hello world", { addSpecialTokens: false }), [3, 4]);
    assert.equal(tok.decode([0, 3, 4], { skipSpecialTokens: true }), "hello world");
    assert.throws(() => tok.encode("hello there"), (e: Error) => e instanceof TokenizerError && /no id for "there"/.test(e.message));
    // tokenizer_config.json takes precedence over special_tokens_map.json.
    fs.writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify({ bos_token: "</s>", pad_token: null }));
    assert.equal(Tokenizer.fromFolder(dir)!.bosTokenId, 1);
  });
});

describe("real snapshots in ../shared/models", () => {
  const gpt2Dir = path.join(SHARED, "tiny-gpt2"), llamaDir = path.join(SHARED, "tiny-random-llama");

  test("tiny-gpt2: GPT-2 tokenizer ids, decode, special tokens", { skip: !fs.existsSync(gpt2Dir) && "shared/models/tiny-gpt2 is absent" }, () => {
    const { tokenizer } = loadPretrained(gpt2Dir);
    assert.ok(tokenizer);
    const ids = tokenizer.encode("The Eiffel Tower is in");
    assert.deepEqual(ids, [464, 412, 733, 417, 8765, 318, 287]);
    assert.equal(tokenizer.decode(ids), "The Eiffel Tower is in");
    assert.equal(tokenizer.idToToken(8765), "ĠTower");
    assert.equal(tokenizer.tokenToId("ĠTower"), 8765);
    assert.equal(tokenizer.vocabSize, 50257);
    assert.equal(tokenizer.bosTokenId, 50256);
    assert.equal(tokenizer.eosTokenId, 50256);
    assert.equal(tokenizer.padTokenId, null);
    assert.deepEqual(tokenizer.encode("hi<|endoftext|>"), [5303, 50256], "special tokens are matched whole");
    assert.equal(tokenizer.decode([5303, 50256], { skipSpecialTokens: true }), "hi");
    assert.throws(() => tokenizer.decode([50257]), /outside the vocabulary/);
  });

  test("tiny-gpt2: logits match the GPT-2 reference on the real weights", { skip: !fs.existsSync(gpt2Dir) && "shared/models/tiny-gpt2 is absent" }, (t) => {
    const { model, tokenizer, config, hfConfig } = loadPretrained(gpt2Dir);
    assert.equal(config.architecture, "gpt2");
    assert.equal(config.bos_token_id, 50256);
    const ids = tokenizer!.encode("The Eiffel Tower is in");
    const d = maxLogitDiff(model, hfConfig, referenceWeights(path.join(gpt2Dir, "model.safetensors")), gpt2Logits, [ids]);
    t.diagnostic(`tiny-gpt2: max |logit diff| = ${d.toExponential(2)}`);
    assert.ok(d < 1e-4, `max |logit diff| ${d}`);
  });

  test("tiny-random-llama: logits match the Llama reference on the real weights", { skip: !fs.existsSync(llamaDir) && "shared/models/tiny-random-llama is absent" }, (t) => {
    const { model, tokenizer, config, hfConfig } = loadPretrained(llamaDir);
    assert.equal(tokenizer, null);
    assert.equal(config.architecture, "llama");
    const w = referenceWeights(path.join(llamaDir, "model.safetensors"));
    const ids = [1, 450, 3681, 29872, 13, 31999, 0, 17];
    const d = maxLogitDiff(model, hfConfig, w, llamaLogits, [ids]);
    t.diagnostic(`tiny-random-llama: max |logit diff| = ${d.toExponential(2)}`);
    assert.ok(d < 1e-4, `max |logit diff| ${d}`);
  });
});
