// Loading a snapshot hands the tensors read from the file to the parameters (adoptStorage) instead of
// copying them: the loaded weights and logits must equal the saved model's bitwise, every parameter
// must own its storage (no two share one, tied embeddings included), and adoption must refuse
// anything it cannot take whole (views, other dtypes, tensors inside a scope).
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as cs from "../src/index.js";
import { HookedTransformer } from "../src/model/transformer.js";
import { randomModel, randomTokens, assertBitwiseEqual, type Arch } from "./model-fixtures.js";

function tmpdir(): string { return fs.mkdtempSync(path.join(os.tmpdir(), "cs-adopt-")); }

for (const arch of ["gpt2", "neox", "llama"] as Arch[]) {
  test(`loadPretrained of a saved ${arch} model gives its weights and logits bitwise, each parameter with its own storage`, () => {
    const model = randomModel(arch, { seed: 2, cfg: { unembed_bias: false } }); // HF layouts have no unembedding bias
    const dir = tmpdir();
    try {
      cs.saveHF(model, dir);
      const { model: loaded } = cs.loadPretrained(dir);
      const ours = new Map(model.namedParameters());
      const storages = new Set<unknown>();
      for (const [name, p] of loaded.namedParameters()) {
        assertBitwiseEqual(p, ours.get(name)!, name);
        assert.ok(!storages.has(p.data.buffer), `${name} shares its storage with another parameter`);
        storages.add(p.data.buffer);
      }
      const toks = randomTokens(model.cfg.d_vocab, 2, 6, 3);
      assertBitwiseEqual(cs.noGrad(() => loaded.forward(toks)), cs.noGrad(() => model.forward(toks)), "logits");
    } finally { fs.rmSync(dir, { recursive: true, force: true }); }
  });
}

test("a snapshot with tied embeddings loads W_E and W_U into separate storage", () => {
  const { model } = cs.loadPretrained("../shared/models/tiny-gpt2");
  const WE = model.embed.W_E, WU = model.unembed.W_U;
  assert.notEqual(WE.data.buffer, WU.data.buffer);
  const before = WU.data[0]!;
  WE.data[0] = before + 1; // W_U[0, 0] is W_E[0, 0] transposed: a shared buffer would move it
  assert.equal(WU.data[0], before);
});

test("adoptStorage takes whole contiguous same-dtype arrays only, and never inside a scope", () => {
  const t = cs.zeros([2, 3]);
  const whole = cs.ones([2, 3]);
  assert.equal(t.adoptStorage(whole), true);
  assert.equal(t.data, whole.data);
  const v0 = t.version;
  assert.equal(t.adoptStorage(cs.ones([4, 3]).slice(0, 2, 4)), false, "a view at an offset");
  assert.equal(t.adoptStorage(cs.ones([3, 2]).transpose(0, 1)), false, "a transposed view");
  assert.equal(t.adoptStorage(cs.ones([2, 3], "float64")), false, "another dtype");
  assert.equal(t.adoptStorage(cs.ones([3, 2])), false, "another shape");
  assert.equal(cs.scope(() => t.adoptStorage(cs.ones([2, 3]))), false, "inside a scope");
  assert.equal(t.version, v0, "a refused adoption changes nothing");
  // loadStateDict with adopt: two keys given the same tensor get one adoption and one copy.
  const m = new HookedTransformer(randomModel("attn-only").cfg);
  const W = cs.randn(m.blocks.at(0).attn.Wq.shape, { rng: new cs.Rng(1) });
  m.loadStateDict(new Map([["blocks.0.attn.W_Q", W], ["blocks.1.attn.W_Q", W]]), { strict: false, adopt: true });
  const a = m.blocks.at(0).attn.Wq, b = m.blocks.at(1).attn.Wq;
  assert.notEqual(a.data, b.data, "one storage adopted by two parameters");
  assertBitwiseEqual(a, W, "adopted"); assertBitwiseEqual(b, W, "copied");
});
