// Neuron analysis: streamed top-k equals a brute-force top-k over all materialised activations
// (ties and clipped windows included), batch size does not change the result, histogram counts sum
// to the number of activations, and the polysemanticity heuristic separates 1 vs 2 token clusters.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as cs from "../src/index.js";
import { maxActivatingExamples, activationHistogram, polysemanticity, ranksBefore, type ActivatingExample } from "../src/analysis/neurons.js";
import type { HookName } from "../src/model/hooks.js";

const cfg = cs.makeConfig({ d_model: 16, n_layers: 2, n_heads: 4, d_vocab: 40, n_ctx: 16, act_fn: "relu" });
const N_SEQ = 15, LEN = 10;

/** Deterministic synthetic corpus; a few rows repeated so equal activations (ties) occur. */
function corpus(): number[][] {
  const rng = new cs.Rng(7);
  const rows: number[][] = [];
  for (let i = 0; i < N_SEQ; i++) rows.push(Array.from({ length: LEN }, () => Math.floor(rng.uniform() * cfg.d_vocab)));
  rows[4] = [...rows[1]!]; rows[11] = [...rows[1]!]; rows[9] = [...rows[2]!];
  return rows;
}
function batchesOf(rows: number[][], size: number): cs.Tensor[] {
  const out: cs.Tensor[] = [];
  for (let i = 0; i < rows.length; i += size) {
    const chunk = rows.slice(i, i + size);
    out.push(new cs.Tensor(Int32Array.from(chunk.flat()), [chunk.length, LEN]));
  }
  return out;
}
const strip = (e: ActivatingExample) => ({ value: e.value, sequence: e.sequence, position: e.position, tokens: e.tokens, windowStart: e.windowStart, offset: e.offset, token: e.token });

test("streamed top-k equals brute force for every neuron (ties, boundary windows); batch size 1 vs 7 identical", () => {
  const model = new cs.HookedTransformer(cfg).initWeights(3);
  const rows = corpus();
  const layer = 1, k = 6, before = 3, after = 2;
  const { cache } = cs.noGrad(() => model.runWithCache(rows, { names: [`blocks.${layer}.mlp.hook_post` as HookName] }));
  const acts = cache.get(`blocks.${layer}.mlp.hook_post` as HookName);
  const d = acts.shape[2]!, all = Array.from(acts.toArray() as ArrayLike<number>);
  const res1 = maxActivatingExamples(model, batchesOf(rows, 1), { layer, k, contextBefore: before, contextAfter: after });
  const res7 = maxActivatingExamples(model, batchesOf(rows, 7), { layer, k, contextBefore: before, contextAfter: after });
  assert.equal(res1.length, d);
  let ties = 0, clipped = 0;
  for (let n = 0; n < d; n++) {
    const cands: { value: number; sequence: number; position: number }[] = [];
    for (let s = 0; s < N_SEQ; s++) for (let p = 0; p < LEN; p++) cands.push({ value: all[(s * LEN + p) * d + n]!, sequence: s, position: p });
    cands.sort((a, b) => (ranksBefore(a, b) ? -1 : 1));
    const want = cands.slice(0, k).map((c) => {
      const start = Math.max(0, c.position - before), end = Math.min(LEN, c.position + after + 1);
      return { ...c, tokens: rows[c.sequence]!.slice(start, end), windowStart: start, offset: c.position - start, token: rows[c.sequence]![c.position]! };
    });
    const got1 = res1[n]!.examples.map(strip), got7 = res7[n]!.examples.map(strip);
    assert.deepEqual(got1, want, `neuron ${n}`);
    assert.deepEqual(got7, got1, `neuron ${n}: batch 7 vs 1`);
    for (let i = 1; i < want.length; i++) if (want[i]!.value === want[i - 1]!.value) ties++;
    clipped += want.filter((w) => w.position < before || w.position > LEN - 1 - after).length;
    // batch / row are consistent with the sequence index.
    for (const e of res7[n]!.examples) assert.equal(e.batch * 7 + e.row, e.sequence);
  }
  assert.ok(ties > 0, "the corpus should produce tied activations");
  assert.ok(clipped > 0, "some windows should be clipped at a boundary");

  // A subset of neurons, and a generator as the stream, give the same per-neuron lists.
  const sub = maxActivatingExamples(model, (function* () { yield* batchesOf(rows, 4); })(), { layer, k, neurons: [5, 0], contextBefore: before, contextAfter: after });
  assert.deepEqual(sub.map((r) => r.neuron), [5, 0]);
  assert.deepEqual(sub[0]!.examples.map(strip), res1[5]!.examples.map(strip));
  assert.deepEqual(sub[1]!.examples.map(strip), res1[0]!.examples.map(strip));
});

test("histogram counts sum to the number of activations; stats match brute force; one-shot iterators rejected", () => {
  const model = new cs.HookedTransformer(cfg).initWeights(4);
  const rows = corpus();
  const hook = "blocks.0.mlp.hook_post" as HookName;
  const { cache } = cs.noGrad(() => model.runWithCache(rows, { names: [hook] }));
  const acts = cache.get(hook), d = acts.shape[2]!, all = Array.from(acts.toArray() as ArrayLike<number>);
  const hs = activationHistogram(model, batchesOf(rows, 4), { layer: 0, bins: 8 });
  const hs1 = activationHistogram(model, () => batchesOf(rows, 1), { layer: 0, bins: 8 });
  assert.equal(hs.length, d);
  for (let n = 0; n < d; n++) {
    const h = hs[n]!, vs = Array.from({ length: N_SEQ * LEN }, (_, i) => all[i * d + n]!);
    assert.equal(h.counts.reduce((a, b) => a + b, 0), N_SEQ * LEN);
    assert.equal(h.count, N_SEQ * LEN);
    assert.equal(h.min, Math.min(...vs)); assert.equal(h.max, Math.max(...vs));
    const mean = vs.reduce((a, b) => a + b, 0) / vs.length;
    const std = Math.sqrt(vs.reduce((a, b) => a + (b - mean) ** 2, 0) / vs.length);
    assert.ok(Math.abs(h.mean - mean) < 1e-9 && Math.abs(h.std - std) < 1e-9, `neuron ${n} mean/std`);
    assert.equal(h.fractionPositive, vs.filter((v) => v > 0).length / vs.length);
    assert.equal(h.edges.length, 9);
    assert.deepEqual(hs1[n]!.counts, h.counts);
  }
  assert.throws(() => activationHistogram(model, (function* () { yield* batchesOf(rows, 4); })(), { layer: 0 }), /one-shot/);
});

test("polysemanticity: one cluster for a single token, two for unrelated tokens, similar tokens merge", () => {
  // Hand-built embedding: tokens 0 and 1 orthogonal, token 2 nearly parallel to token 0.
  const W = new cs.Tensor(Float32Array.from([1, 0, 0, 0, 1, 0, 0.95, 0.05, 0.1]), [3, 3]);
  const ex = (token: number, value: number) => ({ token, value });
  const one = polysemanticity([ex(0, 3), ex(0, 2.5), ex(0, 2), ex(0, 1)], W);
  assert.equal(one.clusters, 1); assert.equal(one.topShare, 1); assert.equal(one.effectiveClusters, 1);
  const two = polysemanticity([ex(0, 3), ex(1, 3), ex(0, 1), ex(1, 1)], W);
  assert.equal(two.clusters, 2);
  assert.ok(Math.abs(two.effectiveClusters - 2) < 1e-12);
  assert.deepEqual(two.groups.map((g) => g.share), [0.5, 0.5]);
  const merged = polysemanticity([ex(0, 3), ex(2, 2), ex(1, 1)], W);
  assert.equal(merged.clusters, 2); assert.equal(merged.distinctTokens, 3);
  assert.deepEqual(merged.groups[0]!.tokens, [0, 2]);
  assert.ok(Math.abs(merged.groups[0]!.share - 5 / 6) < 1e-12);

  // On a real run: top examples of a neuron feed straight in (model's W_E).
  const model = new cs.HookedTransformer(cfg).initWeights(5);
  const [r] = maxActivatingExamples(model, batchesOf(corpus(), 5), { layer: 0, neurons: [2], k: 5 });
  const p = polysemanticity(r!.examples, model);
  assert.ok(p.clusters >= 1 && p.clusters <= p.distinctTokens);
  assert.ok(Math.abs(p.groups.reduce((s, g) => s + g.share, 0) - 1) < 1e-9);
});
