// Weights packed once at load: packWeights packs every matmul weight for the active backend, the
// packed forward equals the unpacked one, and a weight changed afterwards is not served stale.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as cs from "../src/index.js";

for (const name of ["native", "wasm"] as const) {
  const status = cs.backendStatus().find((b) => b.name === name);
  test(`${name}: packWeights packs every matmul weight and changes no logit beyond float rounding`, { skip: status?.available ? false : `${name} unavailable` }, () => {
    const prev = cs.getBackend();
    try {
      cs.setBackend(name);
      const cfg = cs.makeConfig({ architecture: "llama", d_model: 32, n_layers: 2, n_heads: 4, n_key_value_heads: 2, d_mlp: 64, d_vocab: 50, n_ctx: 16 });
      const model = new cs.HookedTransformer(cfg).initWeights(4);
      for (const p of model.parameters()) p.requiresGrad = false;
      const toks = [[3, 1, 4, 1, 5, 9, 2, 6]];
      const before = cs.noGrad(() => model.forward(toks)).toArray();
      // Per layer W_Q, W_K, W_V, W_O, W_in, W_gate, W_out; plus W_U.
      assert.equal(model.packWeights(), 2 * 7 + 1);
      assert.ok(model.unembed.W_U.packed?.handle, "W_U carries a packed handle");
      const after = cs.noGrad(() => model.forward(toks)).toArray();
      let err = 0, scale = 0;
      for (let i = 0; i < before.length; i++) { err = Math.max(err, Math.abs(before[i]! - after[i]!)); scale = Math.max(scale, Math.abs(before[i]!)); }
      assert.ok(err <= 1e-5 * scale, `packed vs unpacked max difference ${err} (scale ${scale})`);
      // An in-place change bumps the version, so the stale packed copy is not used.
      const W = model.unembed.W_U;
      W.data.fill(0); W.version++;
      const zeroed = cs.noGrad(() => model.forward(toks)).toArray();
      assert.ok(zeroed.every((v) => v === 0), "logits follow the changed weight");
    } finally {
      cs.setBackend(prev);
    }
  });
}
