// Ablation sweeps over heads, MLPs, residual positions and one layer's neurons, on random models of
// every architecture: each batched entry (patching machinery, forwardFrom, several targets per
// forward) equals a single ablate() call on the same target; mean ablation writes the reference's
// per-position mean (computed independently, prompt by prompt); resample is seeded and reproducible.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as cs from "../src/index.js";
import { ablate, ablationHook, ablationSweep, type AblationKind, type SweepOver } from "../src/analysis/ablation.js";
import { logitDiffMetric, lossMetric } from "../src/analysis/patching-metrics.js";
import type { HookName } from "../src/model/hooks.js";
import { ARCHS, randomModel, randomTokens, assertBitwiseEqual } from "./model-fixtures.js";

const toks = randomTokens(29, 2, 6, 11);
const reference = randomTokens(29, 3, 6, 12);
const KINDS: readonly AblationKind[] = ["zero", "mean", "resample"];

test("every sweep entry equals one ablate() call on its target (all archs, kinds and sweeps)", () => {
  for (const arch of ARCHS) {
    const model = randomModel(arch, { seed: 5 });
    const overs: SweepOver[] = arch === "attn-only" ? ["heads", "positions"] : ["heads", "mlps", "positions", "neurons"];
    for (const over of overs) for (const kind of KINDS) {
      const metric = over === "positions" && kind === "zero" ? lossMetric(toks) : logitDiffMetric([[3, 8], [17, 2]]);
      const o = { kind, metric, over, layer: 1, reference, seed: 9, batchSize: 5 };
      const fast = ablationSweep(model, toks, o);
      const slow = ablationSweep(model, toks, { ...o, fast: false });
      const what = `${arch} ${over} ${kind}`;
      assert.deepEqual(fast.values.shape, over === "heads" ? [2, 4] : over === "mlps" ? [2] : over === "positions" ? [2, 6] : [24], what);
      assert.equal(fast.cleanMetric, slow.cleanMetric, `${what}: clean metric`);
      const f = fast.values.toList(), s = slow.values.toList();
      f.forEach((v, i) => assert.ok(Math.abs(v - s[i]!) <= 1e-5 * (1 + Math.abs(s[i]!)), `${what} cell ${i}: batched ${v} vs ablate() ${s[i]}`));
      assert.ok(s.some((v) => Math.abs(v) > 1e-4), `${what}: some ablation must matter`);
    }
  }
});

test("a sweep entry is the ablate() call itself: zero-ablating head L1H2 by hand", () => {
  const model = randomModel("gpt2", { seed: 6 });
  const metric = logitDiffMetric([3, 8]);
  const sweep = ablationSweep(model, toks, { kind: "zero", metric });
  const clean = cs.noGrad(() => metric.compute(model.forward(toks)).item());
  const one = cs.noGrad(() => metric.compute(ablate(model, toks, { kind: "zero", target: { layer: 1, head: 2 } })).item());
  assert.ok(Math.abs(sweep.values.get(1, 2) - (one - clean)) < 1e-5);
  // top lists cells by decreasing |Δ|, labelled as targets.
  assert.equal(sweep.top.length, 8);
  for (let i = 1; i < sweep.top.length; i++) assert.ok(Math.abs(sweep.top[i - 1]!.value) >= Math.abs(sweep.top[i]!.value));
  const best = sweep.top[0]!;
  assert.match(best.label, /^L\dH\d$/);
  const { layer, head } = best.target as { layer: number; head: number };
  assert.equal(best.value, sweep.values.get(layer, head));
});

test("mean ablation at position p writes the reference's mean at p (computed prompt by prompt) and leaves other positions", () => {
  const model = randomModel("llama", { seed: 7 });
  const name: HookName = "blocks.1.hook_resid_pre", p = 2;
  const seen: cs.Tensor[] = [];
  const hook = ablationHook(model, toks, { kind: "mean", target: { layer: 1, position: p }, reference });
  cs.noGrad(() => model.runWithHooks(toks, { fwd: [hook, [name, (a) => { seen.push(a.detach()); }]] }));
  const clean = cs.noGrad(() => model.runWithCache(toks, { names: [name] }).cache.get(name));
  const D = model.cfg.d_model, T = toks[0]!.length;
  const mean = new Float64Array(D);
  for (const row of reference) {
    const r = cs.noGrad(() => model.runWithCache([row], { names: [name] }).cache.get(name)).toArray();
    for (let d = 0; d < D; d++) mean[d]! += r[p * D + d]! / reference.length;
  }
  const got = seen[0]!.toArray(), ref = clean.toArray();
  for (let b = 0; b < toks.length; b++) for (let t = 0; t < T; t++) for (let d = 0; d < D; d++) {
    const i = (b * T + t) * D + d;
    if (t === p) assert.ok(Math.abs(got[i]! - mean[d]!) < 1e-6, `batch ${b} dim ${d}: ${got[i]} vs reference mean ${mean[d]}`);
    else assert.ok(Object.is(got[i], ref[i]), `batch ${b} pos ${t} dim ${d} must be untouched`);
  }
});

test("resample sweeps are seeded: the same seed gives the same values, another seed other values", () => {
  const model = randomModel("neox", { seed: 8 });
  const o = { kind: "resample" as const, metric: logitDiffMetric([3, 8]), over: "mlps" as const, reference };
  const a = ablationSweep(model, toks, { ...o, seed: 1 }), b = ablationSweep(model, toks, { ...o, seed: 1 });
  assertBitwiseEqual(a.values, b.values, "same seed");
  const rows = (seed: number) => { const r = new cs.Rng(seed); return [r.int(0, 3), r.int(0, 3)]; };
  assert.notDeepEqual(rows(1), rows(3), "the two seeds draw different reference rows");
  const c = ablationSweep(model, toks, { ...o, seed: 3 });
  assert.ok(a.values.toList().some((v, i) => Math.abs(v - c.values.toList()[i]!) > 1e-4), "another seed, other rows, other values");
});

test("sweep errors: neurons without a layer, MLPs of an attention-only model, a reference of another length", () => {
  const metric = logitDiffMetric([3, 8]);
  assert.throws(() => ablationSweep(randomModel("gpt2"), toks, { kind: "zero", metric, over: "neurons" }), /needs a layer/);
  assert.throws(() => ablationSweep(randomModel("attn-only"), toks, { kind: "zero", metric, over: "mlps" }), /attention-only/);
  assert.throws(() => ablationSweep(randomModel("gpt2"), toks, { kind: "mean", metric, reference: [[1, 2, 3]] }), /does not fit/);
  assert.throws(() => ablationSweep(randomModel("gpt2"), toks, { kind: "mean", metric }), /needs reference tokens/);
});
