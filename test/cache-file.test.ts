// Activation caches round-trip through safetensors bit for bit, and loading checks hook names.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as cs from "../src/index.js";

test("saveCache/loadCache round-trip every activation exactly and keep decompositions working", () => {
  const dir = mkdtempSync(join(tmpdir(), "cs-cache-"));
  try {
    const model = new cs.HookedTransformer(cs.makeConfig({ d_model: 16, n_layers: 2, n_heads: 4, d_vocab: 40, n_ctx: 16 })).initWeights(3);
    const { cache } = cs.noGrad(() => model.runWithCache([[1, 5, 9, 2]]));
    const file = join(dir, "cache.safetensors");
    cs.saveCache(cache, file, { prompt: "1 5 9 2" });
    assert.deepEqual(readdirSync(dir), ["cache.safetensors"]); // no temp file left behind
    const back = cs.loadCache(file, model);
    assert.deepEqual(back.names.sort(), cache.names.sort());
    for (const name of cache.names) assert.deepEqual(back.get(name).toArray(), cache.get(name).toArray(), name);
    const a = cache.decomposeResid().components.toArray(), b = back.decomposeResid().components.toArray();
    assert.deepEqual(b, a);
    const f = cs.SafetensorsFile.open(file);
    assert.equal(f.metadata.format, "circuitscope-activation-cache");
    assert.equal(f.metadata.prompt, "1 5 9 2");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("loadCache with a model rejects names that are not its hook points", () => {
  const dir = mkdtempSync(join(tmpdir(), "cs-cache-"));
  try {
    const file = join(dir, "bad.safetensors");
    cs.saveSafetensors(file, new Map([["blocks.0.attn.hook_patern", cs.zeros([1, 2, 3, 3])]]));
    const model = new cs.HookedTransformer(cs.makeConfig({ d_model: 8, n_layers: 1, n_heads: 2, d_vocab: 10, n_ctx: 8 }));
    assert.throws(() => cs.loadCache(file, model), /unknown hook point "blocks\.0\.attn\.hook_patern"; did you mean "blocks\.0\.attn\.hook_pattern"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
