// Path patching (Wang et al. 2022; Goldowsky-Dill et al. 2023): with one path it equals activation
// patching; a silent sender (W_O = 0) and clean == corrupted give no effect; a sender whose only route
// to the logits runs through a (frozen) later head has exactly zero direct effect.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as cs from "../src/index.js";
import { HookedTransformer } from "../src/model/transformer.js";

const T = 6;
const tokens = (V: number, seed: number) => Array.from({ length: 2 }, (_, b) => Array.from({ length: T }, (_, t) => (seed * 7 + b * 13 + t * 5 + t * t) % V));
const promptPair = (V: number) => {
  const clean = tokens(V, 3);
  const corrupted = clean.map((r) => r.map((t, p) => (p === 2 || p === 4 ? (t + 9) % V : t)));
  return { clean, corrupted };
};
const metric = cs.logitDiffMetric([[3, 4], [5, 6]]);
const make = (over: Record<string, unknown>, seed: number) =>
  new HookedTransformer(cs.makeConfig({ d_model: 16, n_layers: 3, n_heads: 4, d_vocab: 40, n_ctx: 16, ...over } as Parameters<typeof cs.makeConfig>[0])).initWeights(seed);
const set = (p: cs.Tensor, f: (i: number, old: number) => number) => { for (let i = 0; i < p.size; i++) p.data[p.offset + i] = f(i, p.data[p.offset + i]!); p.version++; };

test("1-layer model, receivers logits: path patching a head = activation patching its output (both directions)", () => {
  const model = make({ n_layers: 1 }, 1);
  const { clean, corrupted } = promptPair(40);
  for (const direction of ["noising", "denoising"] as const) {
    const act = cs.patchByHead(model, { clean, corrupted, metric, direction, site: "z", fast: false });
    const sweep = cs.pathPatchSweep(model, { clean, corrupted, metric, direction, receivers: "logits" });
    for (let h = 0; h < 4; h++) {
      const r = cs.pathPatch(model, { clean, corrupted, metric, direction, sender: { layer: 0, head: h }, receivers: "logits" });
      const a = act.values.toArray()[h]!;
      assert.ok(Math.abs(r.value - a) < 1e-5, `${direction} head ${h}: ${r.value} vs ${a}`);
      assert.ok(Math.abs(sweep.values.toArray()[h]! - a) < 1e-5);
      assert.ok(Math.abs(r.normalized - (r.value - r.corruptedMetric) / (r.cleanMetric - r.corruptedMetric)) < 1e-9);
      assert.equal(r.targetMetric, direction === "noising" ? r.cleanMetric : r.corruptedMetric);
    }
  }
});

test("a sender with W_O = 0 contributes nothing, to logits and to later heads' q/k/v", () => {
  const model = make({}, 2);
  const dh = model.cfg.d_head, D = model.cfg.d_model, h0 = 1;
  set(model.blocks.items[0]!.attn.Wo, (i, v) => (Math.floor(i / D) >= h0 * dh && Math.floor(i / D) < (h0 + 1) * dh ? 0 : v));
  const { clean, corrupted } = promptPair(40);
  const base = { clean, corrupted, metric, sender: { layer: 0, head: h0 } };
  for (const receivers of ["logits", [{ layer: 1, head: 0, input: "q" }, { layer: 2, head: 3, input: "k" }, { layer: 1, head: 2, input: "v" }]] as const) {
    for (const freezeMlps of [false, true]) {
      const r = cs.pathPatch(model, { ...base, receivers, freezeMlps });
      assert.ok(Math.abs(r.effect) < 1e-6, `effect ${r.effect}`);
    }
  }
  // A live head does have an effect (the test above is not vacuous).
  assert.ok(Math.abs(cs.pathPatch(model, { ...base, sender: { layer: 0, head: 0 }, receivers: "logits" }).effect) > 1e-4);
});

test("2-layer case: a sender whose only route to the logits is through a later head has zero direct effect", () => {
  // No norms, attention only. Sender 0.2 writes only into dims S = {0..3}; the unembedding ignores S;
  // layer-1 heads read S and write elsewhere. So sender → logits runs only through layer-1 heads.
  const model = make({ n_layers: 2, attn_only: true, normalization_type: null }, 3);
  const dh = model.cfg.d_head, D = model.cfg.d_model, V = model.cfg.d_vocab, s = 2, inS = (d: number) => d < 4;
  set(model.blocks.items[0]!.attn.Wo, (i, v) => (Math.floor(i / D) >= s * dh && Math.floor(i / D) < (s + 1) * dh && !inS(i % D) ? 0 : 20 * v));
  set(model.blocks.items[0]!.attn.Wv, (_, v) => 20 * v);
  set(model.unembed.W_U, (i, v) => (inS(Math.floor(i / V)) ? 0 : 20 * v));
  set(model.blocks.items[1]!.attn.Wo, (i, v) => (inS(i % D) ? 0 : 20 * v));
  set(model.blocks.items[1]!.attn.Wv, (i, v) => (inS(Math.floor(i / (model.cfg.n_heads * dh))) ? 40 * v : v));
  const { clean, corrupted } = promptPair(40);
  const o = { clean, corrupted, metric, sender: { layer: 0, head: s } };
  const direct = cs.pathPatch(model, { ...o, receivers: "logits" });
  assert.equal(direct.value, direct.cleanMetric, "direct path: exactly zero effect");
  // The indirect route exists: activation patching the sender, and path patching into layer-1 values, move the metric.
  const act = cs.patchByHead(model, { clean, corrupted, metric, direction: "noising", site: "z", fast: false }).values.toArray()[s]!;
  assert.ok(Math.abs(act - direct.cleanMetric) > 1e-3, `activation patching effect ${act - direct.cleanMetric}`);
  const all = [0, 1, 2, 3].flatMap((head) => (["q", "k", "v"] as const).map((input) => ({ layer: 1, head, input })));
  const viaL1 = cs.pathPatch(model, { ...o, receivers: all });
  assert.ok(Math.abs(viaL1.value - act) < 1e-4, `through every layer-1 input = activation patching: ${viaL1.value} vs ${act}`);
  // The sweep: every layer-0 head against logits; layer-1 heads are their own direct paths.
  const sweep = cs.pathPatchSweep(model, { clean, corrupted, metric, receivers: "logits" });
  assert.deepEqual(sweep.values.shape, [2, 4]);
  assert.equal(sweep.values.toArray()[s], direct.value);
});

test("clean == corrupted gives zero effect; senders must precede receivers", () => {
  const model = make({}, 4);
  const { clean } = promptPair(40);
  const receivers = [{ layer: 2, head: 1, input: "q" as const }, { layer: 2, head: 0, input: "v" as const }];
  const sweep = cs.pathPatchSweep(model, { clean, corrupted: clean, metric, receivers, freezeMlps: true });
  const v = sweep.values.toArray();
  for (let i = 0; i < 12; i++) {
    if (i < 8) assert.ok(Math.abs(v[i]! - sweep.cleanMetric) < 1e-6, `cell ${i}`);
    else assert.ok(Number.isNaN(v[i]!), `cell ${i} is not before the receivers`);
  }
  assert.ok(Number.isNaN(cs.pathPatch(model, { clean, corrupted: clean, metric, sender: { layer: 0, head: 0 }, receivers: "logits" }).normalized));
  assert.throws(() => cs.pathPatch(model, { clean, corrupted: clean, metric, sender: { layer: 2, head: 0 }, receivers }), /not before/);
});
