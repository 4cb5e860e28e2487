// Logit lens and direct logit attribution on a small random GPT-2-style model: the lens at the
// final residual equals the model's logits, the cached-scale lens agrees there too, and DLA terms
// (heads, b_O, MLPs, embeddings, neurons) add up to the logit difference minus the stated constant.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as cs from "../src/index.js";
import { logitLens, headLogitAttribution, mlpLogitAttribution, neuronLogitAttribution, fullLogitAttribution } from "../src/analysis/residual.js";
import { assertClose } from "./model-fixtures.js";

const cfg = cs.makeConfig({ d_model: 16, n_layers: 2, n_heads: 4, d_vocab: 40, n_ctx: 16 });
const model = new cs.HookedTransformer(cfg).initWeights(3);
// Non-trivial ln_final weights and biases, so the test would notice a missing w or b.
cs.noGrad(() => {
  const w = model.ln_final!.w.toArray(), b = model.ln_final!.b!.toArray();
  for (let i = 0; i < w.length; i++) { w[i] = 0.5 + (i % 5) * 0.3; b[i] = 0.1 * ((i % 3) - 1); }
});
const toks = [[1, 5, 9, 2, 33, 7], [4, 4, 12, 30, 0, 8]];
const { logits, cache } = cs.noGrad(() => model.runWithCache(toks, { names: () => true }));

test("logit lens: the final layer equals the model's logits, earlier layers differ", () => {
  for (const lnScale of ["recomputed", "cached"] as const) {
    const lens = logitLens(model, cache, { lnScale, target: 7 });
    assert.deepEqual(lens.axes[0]!.labels, ["0_pre", "1_pre", "final_post"]);
    assert.deepEqual(lens.logits.shape, [3, 2, 6, 40]);
    assertClose(lens.logits.select(0, 2), logits, 1e-5, `final lens (${lnScale}) vs logits`);
    assert.ok(cs.noGrad(() => lens.logits.select(0, 0).sub(logits).abs().max().item()) > 1e-3, "layer 0 lens should differ");
  }
});

test("logit lens: top-k, target rank and prob, positions", () => {
  const lens = logitLens(model, cache, { positions: [-1, 2], topK: 3, target: toks.map((r) => r.map((t) => (t + 1) % 40)) });
  assert.deepEqual(lens.axes[2]!.labels, ["5", "2"]);
  const probs = lens.probs;
  for (let l = 0; l < 3; l++) for (let b = 0; b < 2; b++) for (let p = 0; p < 2; p++) {
    const top = lens.topK[l]![b]![p]!;
    assert.equal(top.length, 3);
    assert.ok(top[0]!.prob >= top[1]!.prob && top[1]!.prob >= top[2]!.prob);
    const t = (toks[b]![[5, 2][p]!]! + 1) % 40;
    assert.equal(lens.targetProb!.get(l, b, p), probs.get(l, b, p, t));
    const higher = Array.from({ length: 40 }, (_, i) => probs.get(l, b, p, i)).filter((v) => v > probs.get(l, b, p, t)).length;
    assert.equal(lens.targetRank!.get(l, b, p), higher);
    if (lens.targetRank!.get(l, b, p) === 0) assert.equal(top[0]!.token, t);
  }
});

test("full DLA (embeddings, heads, b_O, MLPs) sums to the logit difference minus the constant", () => {
  const target = { token: 7, incorrect: 3 };
  const full = fullLogitAttribution(model, cache, target);
  assert.ok(full.labels.includes("L1H3") && full.labels.includes("embed") && full.labels.includes("1_mlp_out"));
  const diff = cs.noGrad(() => logits.select(2, 7).sub(logits.select(2, 3))); // [batch, pos]
  assertClose(cs.noGrad(() => full.components.sum(0).add(full.constant)), diff, 1e-4, "Σ DLA + constant vs logit diff");
  // Heads and MLP layers agree with the full decomposition's entries.
  const heads = headLogitAttribution(cache, target), mlps = mlpLogitAttribution(cache, target);
  assertClose(heads.components.select(0, 5), full.components.select(0, full.labels.indexOf("L1H1")), 1e-6, "head L1H1");
  assertClose(mlps.components.select(0, 1), full.components.select(0, full.labels.indexOf("1_mlp_out")), 1e-6, "mlp 1");
  // Neurons plus the b_out share reproduce their layer's MLP attribution.
  const neurons = neuronLogitAttribution(model, cache, 0, target);
  assert.equal(neurons.components.shape[0], cfg.d_mlp);
  assertClose(cs.noGrad(() => neurons.components.sum(0).add(neurons.bias)), mlps.components.select(0, 0), 1e-5, "Σ neurons + b_out vs mlp 0");
});
