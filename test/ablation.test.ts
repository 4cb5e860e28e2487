// Ablation on a small random model: zeroing a head with W_O = 0 changes nothing, mean-ablating
// with the input itself as the only reference changes nothing, an MLP ablation leaves everything
// upstream bitwise equal while changing the output, and the head sweep matches single ablations.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as cs from "../src/index.js";
import { ablate, ablationHook, ablationSweep } from "../src/analysis/ablation.js";
import { logitDiffMetric } from "../src/analysis/patching-metrics.js";
import type { HookName } from "../src/model/hooks.js";
import { assertBitwiseEqual, maxAbsDiff } from "./model-fixtures.js";

const cfg = cs.makeConfig({ d_model: 16, n_layers: 2, n_heads: 4, d_vocab: 40, n_ctx: 16 });
const toks = [[1, 5, 9, 2, 33, 7]];

test("zero-ablating a head whose W_O is zero changes nothing; another head does change", () => {
  const model = new cs.HookedTransformer(cfg).initWeights(1);
  const dh = cfg.d_head, D = cfg.d_model;
  const Wo = model.blocks.at(0).attn.Wo.toArray(); // [n_heads * d_head, d_model]
  Wo.fill(0, 2 * dh * D, 3 * dh * D);
  const clean = cs.noGrad(() => model.forward(toks));
  assertBitwiseEqual(ablate(model, toks, { kind: "zero", target: { layer: 0, head: 2 } }), clean, "head L0H2 with W_O = 0");
  assert.ok(maxAbsDiff(ablate(model, toks, { kind: "zero", target: { layer: 0, head: 1 } }), clean) > 1e-4);
});

test("mean-ablation with the input as the only reference changes nothing", () => {
  const model = new cs.HookedTransformer(cfg).initWeights(2);
  const clean = cs.noGrad(() => model.forward(toks));
  for (const target of [{ layer: 1, head: 3 }, { layer: 0, mlp: true as const }, { layer: 1, neuron: 5 }, { position: 2 }]) {
    assertBitwiseEqual(ablate(model, toks, { kind: "mean", target, reference: toks }), clean, JSON.stringify(target));
    assertBitwiseEqual(ablate(model, toks, { kind: "resample", target, reference: toks, seed: 4 }), clean, `resample ${JSON.stringify(target)}`);
  }
  // A different reference does change the output.
  const other = [[3, 3, 3, 3, 3, 3], [8, 1, 0, 2, 9, 9]];
  assert.ok(maxAbsDiff(ablate(model, toks, { kind: "mean", target: { layer: 0, mlp: true }, reference: other }), clean) > 1e-4);
});

test("ablating an MLP changes only what is downstream", () => {
  const model = new cs.HookedTransformer(cfg).initWeights(3);
  const watched: HookName[] = ["blocks.0.hook_resid_post", "blocks.1.hook_attn_out", "blocks.1.hook_resid_mid", "blocks.1.hook_resid_post"];
  const record = (store: Map<string, cs.Tensor>) => watched.map((n) => [n, (a: cs.Tensor) => { store.set(n, a.detach()); }] as const);
  const clean = new Map<string, cs.Tensor>(), abl = new Map<string, cs.Tensor>();
  cs.noGrad(() => model.runWithHooks(toks, { fwd: record(clean) }));
  const hook = ablationHook(model, toks, { kind: "zero", target: { layer: 1, mlp: true } });
  cs.noGrad(() => model.runWithHooks(toks, { fwd: [...record(abl), hook] }));
  for (const n of watched.slice(0, 3)) assertBitwiseEqual(abl.get(n)!, clean.get(n)!, n);
  assert.ok(maxAbsDiff(abl.get("blocks.1.hook_resid_post")!, clean.get("blocks.1.hook_resid_post")!) > 1e-4);
});

test("ablationSweep matches single ablations per layer × head", () => {
  const model = new cs.HookedTransformer(cfg).initWeights(4);
  const metric = logitDiffMetric([7, 3]);
  const sweep = ablationSweep(model, toks, { kind: "zero", metric });
  assert.deepEqual(sweep.values.shape, [2, 4]);
  const one = cs.noGrad(() => metric.compute(ablate(model, toks, { kind: "zero", target: { layer: 1, head: 2 } })).item()) - sweep.cleanMetric;
  assert.ok(Math.abs(sweep.values.get(1, 2) - one) < 1e-9);
  assert.ok(sweep.values.toList().some((v) => Math.abs(v) > 1e-6));
});
