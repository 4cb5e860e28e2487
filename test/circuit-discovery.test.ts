// Circuit discovery (src/analysis/circuit-discovery) against what the papers define, on small random
// float64 models of every architecture: the edge graph's shape; a circuit with every edge is the
// clean model and one with none the corrupted model; a removed edge changes exactly its receiver's
// input by (corrupted − clean) of its sender; EAP equals real single-edge patching where the metric is
// linear in the edge; EAP-IG with one step is EAP and, summed over the input's edges, meets the
// integrated-gradients completeness M(corrupted) − M(clean); ACDC's result satisfies its defining
// inequalities; pruning is exact. Then the acceptance check on the trained induction model: EAP-IG
// and ACDC both keep the previous-token head → induction head key edge, and the circuit alone keeps
// ≥ 80% of the metric.
import { test, describe, before } from "node:test";
import assert from "node:assert/strict";
import * as cs from "../src/index.js";
import {
  acdc, buildGraph, CircuitRunner, countEdges, discoverCircuit, eapIgScores, eapScores, edgeIndex, emptyCircuit, faithfulness,
  fullCircuit, pruneDangling, topNEdges, type EdgeMask,
} from "../src/analysis/circuit-discovery/index.js";
import { logitDiffMetric, positionLossMetric } from "../src/analysis/patching-metrics.js";
import { headDetectorScores, repeatedRandomTokens, topHead } from "../src/analysis/head-detectors.js";
import { pearson } from "../src/analysis/patching.js";
import { blockHook } from "../src/model/hooks.js";
import { ARCHS, assertClose, randomModel, randomTokens } from "./model-fixtures.js";
import { trainInductionModel, type InductionModel } from "./fixtures/induction-model.js";

type Tensor = cs.Tensor;

/** Clean and corrupted prompts differing in two positions, and a logit-difference metric. */
function task(d_vocab: number) {
  const clean = randomTokens(d_vocab, 2, 6, 11);
  const corrupted = clean.map((row, b) => row.map((t, i) => (i === 1 || i === 4 ? (t + 5 + b) % d_vocab : t)));
  return { clean, corrupted, metric: logitDiffMetric([[3, 7], [5, 2]]) };
}

describe("the edge graph", () => {
  test("senders, receivers and edges of a sequential and a parallel model, with GQA", () => {
    // gpt2 (2 layers, 4 heads, MLPs): senders 1 + 2·(4 + 1) = 11; receivers 2·(12 + 1) + 1 = 27.
    const g = buildGraph(randomModel("gpt2").cfg);
    assert.equal(g.senders.length, 11); assert.equal(g.receivers.length, 27);
    // Edges: into layer 0's 12 head inputs from input (12); m0 from input + 4 heads (5); layer 1's 12 from input, 4 heads, m0 (6 each: 72);
    // m1 from 1 + 4 + 1 + 4 = 10; logits from all 11.
    assert.equal(g.edges.length, 12 + 5 + 72 + 10 + 11);
    assert.ok(g.edges.some((e) => e.name === "a0.h2->m0<in>"));
    // Parallel attention and MLP: a layer's heads do not feed its own MLP.
    const neox = buildGraph(randomModel("neox").cfg);
    assert.ok(!neox.edges.some((e) => e.name === "a0.h2->m0<in>") && neox.edges.some((e) => e.name === "a0.h2->m1<in>"));
    // GQA: 4 query inputs, 2 key and 2 value inputs per layer.
    const llama = buildGraph(randomModel("llama").cfg);
    assert.equal(llama.receivers.filter((r) => r.kind === "head" && r.layer === 0).length, 4 + 2 + 2);
    assert.throws(() => edgeIndex(g, "a1.h0->a0.h0<q>"), /no edge "a1\.h0->a0\.h0<q>".*edges from a1\.h0 include/);
  });

  test("pruning drops edges into unused nodes and out of nodes without inputs, iteratively", () => {
    const g = buildGraph(randomModel("attn-only").cfg);
    const m = emptyCircuit(g);
    const on = (name: string) => { m[edgeIndex(g, name)] = 1; };
    on("input->a0.h0<v>"); on("a0.h0->a1.h2<k>"); on("a1.h2->logits"); // a path: kept
    on("input->a0.h1<q>"); // a0.h1 feeds nothing: dropped
    on("a0.h3->a1.h1<q>"); // a0.h3 has no inputs, so a1.h1 then has none either...
    on("a1.h1->logits"); // ...and this goes too
    const p = pruneDangling(g, m);
    assert.deepEqual(g.edges.filter((_, i) => p[i]).map((e) => e.name), ["input->a0.h0<v>", "a0.h0->a1.h2<k>", "a1.h2->logits"]);
  });
});

for (const arch of ARCHS) {
  describe(`running circuits on ${arch}`, () => {
    const model = randomModel(arch, { dtype: "float64" });
    const t = task(model.cfg.d_vocab);
    const runner = new CircuitRunner(model, t);
    const g = runner.graph;

    test("every edge kept is the clean model; none kept is the corrupted model", () => {
      const clean = cs.noGrad(() => model.forward(t.clean)), corrupted = cs.noGrad(() => model.forward(t.corrupted));
      assertClose(cs.noGrad(() => runner.logits(fullCircuit(g))), clean, 1e-10, "all edges vs clean");
      assertClose(cs.noGrad(() => runner.logits(emptyCircuit(g))), corrupted, 1e-10, "no edges vs corrupted");
      assert.ok(Math.abs(faithfulness(runner, fullCircuit(g)).normalized - 1) < 1e-9);
      assert.ok(Math.abs(faithfulness(runner, emptyCircuit(g)).normalized) < 1e-9);
    });

    test("removing one edge s → r shifts r's input by c_s − a_s and nothing else at that hook", () => {
      // Last layer's first query head, from a head of layer 0: upstream of r nothing is patched, so a_s is the clean value.
      const l = model.cfg.n_layers - 1, e = edgeIndex(g, `a0.h1->a${l}.h0<q>`);
      const mask = fullCircuit(g); mask[e] = 0;
      const name = blockHook(l, "hook_q_input");
      let seen: Tensor | undefined;
      cs.noGrad(() => runner.logits(mask, [[name, (a) => { seen = a.detach(); }]]));
      // Independently: the clean resid_pre, plus the corrupted minus the clean output of a0.h1 (z W_O of that head).
      const { cache: c } = cs.noGrad(() => model.runWithCache(t.clean, { names: [blockHook(l, "hook_resid_pre"), "blocks.0.attn.hook_z"] }));
      const { cache: k } = cs.noGrad(() => model.runWithCache(t.corrupted, { names: ["blocks.0.attn.hook_z"] }));
      const WO = model.blocks.items[0]!.attn.W_O.select(0, 1); // [d_head, d_model]
      const out = (z: Tensor) => cs.noGrad(() => cs.matmul(z.select(2, 1).contiguous(), WO));
      const want = cs.noGrad(() => c.get(blockHook(l, "hook_resid_pre")).add(out(k.get("blocks.0.attn.hook_z"))).sub(out(c.get("blocks.0.attn.hook_z"))));
      assertClose(seen!.select(2, 0).contiguous(), want, 1e-10, "patched head's input");
      for (let h = 1; h < model.cfg.n_heads; h++) assertClose(seen!.select(2, h).contiguous(), c.get(blockHook(l, "hook_resid_pre")), 1e-12, `head ${h} untouched`);
    });

    test("EAP-IG with one step is EAP; summed over the input's edges it meets completeness M(corrupted) − M(clean)", () => {
      const eap = eapScores(runner), ig1 = eapIgScores(runner, 1);
      for (let i = 0; i < eap.length; i++) assert.ok(Math.abs(eap[i]! - ig1[i]!) <= 1e-12 * (1 + Math.abs(eap[i]!)), `edge ${g.edges[i]!.name}`);
      // The input feeds every receiver directly, so Σ_r score(input → r) = (c − a)·avg ∇_x M along the path: a Riemann sum of
      // ∫ dM = M(corrupted) − M(clean). Right sums of a smooth path converge as 1/m.
      const sumInput = (s: Float64Array) => g.edges.reduce((acc, ed, i) => acc + (ed.from === 0 ? s[i]! : 0), 0);
      const want = runner.corruptedMetric - runner.cleanMetric;
      // Right Riemann sums err by C/m + O(1/m²): Richardson's 2·S(2m) − S(m) cancels the C/m term.
      const s16 = sumInput(eapIgScores(runner, 16)), s32 = sumInput(eapIgScores(runner, 32));
      const extrapolated = 2 * s32 - s16;
      assert.ok(Math.abs(extrapolated - want) < 0.01 * Math.abs(want) + 1e-9, `Richardson-extrapolated Σ ${extrapolated} vs M(corrupted) − M(clean) ${want} (S16 ${s16}, S32 ${s32})`);
      assert.ok(Math.abs(s32 - want) < Math.abs(s16 - want) || Math.abs(s16 - want) < 1e-9, "the sum converges with steps");
    });
  });
}

describe("EAP against real edge patching", () => {
  test("exact where the metric is linear in the edge (edges into the logits, no final norm); correlated elsewhere", () => {
    const model = randomModel("attn-only", { dtype: "float64", cfg: { normalization_type: null } });
    const t = task(model.cfg.d_vocab), runner = new CircuitRunner(model, t), g = runner.graph;
    const eap = eapScores(runner);
    const real = g.edges.map((_, i) => { const m = fullCircuit(g); m[i] = 0; return runner.metricOf(m) - runner.cleanMetric; });
    g.edges.forEach((e, i) => {
      if (g.receivers[e.to]!.kind === "logits") assert.ok(Math.abs(eap[i]! - real[i]!) < 1e-9, `${e.name}: EAP ${eap[i]} vs real ${real[i]}`);
    });
    const r = pearson(real, Array.from(eap));
    assert.ok(r > 0.8, `pearson(real, EAP) = ${r}`);
  });
});

describe("ACDC's defining inequalities", () => {
  test("each removed edge raised KL by < τ (their sum is the final KL); each kept tested edge by ≥ τ; huge τ removes all", () => {
    const model = randomModel("gpt2", { dtype: "float64" });
    const runner = new CircuitRunner(model, task(model.cfg.d_vocab)), g = runner.graph;
    // τ a twentieth of the corrupted model's KL, so some edges stay and some go.
    const tau = faithfulness(runner, emptyCircuit(g)).kl / 20;
    const r = acdc(runner, { threshold: tau });
    const kl = faithfulness(runner, r.mask).kl;
    let sum = 0, tested = 0;
    r.scores.forEach((s, i) => {
      if (!r.testedEdges[i]) return;
      tested++;
      if (r.mask[i]) assert.ok(s >= tau, `${g.edges[i]!.name} kept with ΔKL ${s}`);
      else { assert.ok(s < tau, `${g.edges[i]!.name} removed with ΔKL ${s}`); sum += s; }
    });
    assert.equal(tested, r.tested);
    assert.ok(Math.abs(kl - sum) < 1e-9, `final KL ${kl} vs Σ accepted ΔKL ${sum}`);
    assert.ok(countEdges(r.mask) > 0 && countEdges(r.mask) < g.edges.length, `${countEdges(r.mask)} edges`);
    assert.equal(countEdges(acdc(runner, { threshold: 1e9 }).mask), 0);
  });

  test("pruning never changes a circuit's output", () => {
    const model = randomModel("llama", { dtype: "float64" });
    const runner = new CircuitRunner(model, task(model.cfg.d_vocab)), g = runner.graph;
    const raw: EdgeMask = topNEdges(eapScores(runner), 25), pruned = pruneDangling(g, raw);
    assert.ok(countEdges(pruned) < countEdges(raw));
    assertClose(cs.noGrad(() => runner.logits(pruned)), cs.noGrad(() => runner.logits(raw)), 1e-10, "pruned vs raw");
  });
});

describe("discovering the induction circuit (trained 2-layer attention-only model)", () => {
  let trained: InductionModel;
  let o: Parameters<typeof discoverCircuit>[1];
  let want = "";
  before(() => {
    trained = trainInductionModel({ seed: 0 });
    const m = trained.model, half = trained.half, V = m.cfg.d_vocab;
    const s = headDetectorScores(m, repeatedRandomTokens({ seqLen: 10, batch: 8, dVocab: V, seed: 99 }));
    want = `a0.h${topHead(s.previous_token_head, 0).head}->a1.h${topHead(s.induction_head, 1).head}<k>`;
    // Clean: a random half, repeated. Corrupted: no repeat at all, so predicting the copies needs the
    // whole induction mechanism (keys from the previous-token head, queries and values from the tokens).
    const rng = new cs.Rng(5);
    const clean: number[][] = [], corrupted: number[][] = [];
    const rand = () => Array.from({ length: half }, () => rng.int(0, V));
    for (let b = 0; b < 8; b++) { const seg = rand(); clean.push([...seg, ...seg]); corrupted.push([...rand(), ...rand()]); }
    const copies = Array.from({ length: half - 1 }, (_, i) => half + i);
    o = { clean, corrupted, metric: positionLossMetric(clean, copies), klPositions: copies, method: "eap-ig", curvePoints: 8 };
  });

  for (const method of ["eap-ig", "acdc"] as const) {
    test(`${method} keeps the previous-token → induction key edge; the circuit alone keeps ≥ 80% of the metric`, (t) => {
      const r = discoverCircuit(trained.model, { ...o, method, threshold: method === "acdc" ? 0.1 : undefined });
      t.diagnostic(`${method}: ${r.selection}; ${r.faithfulness.edges} of ${r.graph.edges.length} edges, faithfulness ${r.faithfulness.normalized.toFixed(3)}, KL ${r.faithfulness.kl.toFixed(3)}, ${r.seconds.total.toFixed(2)} s; ${r.edges.map((e) => e.name).join(" ")}`);
      assert.ok(r.edges.some((e) => e.name === want), `${want} not in ${r.edges.map((e) => e.name).join(", ")}`);
      assert.ok(r.faithfulness.normalized >= 0.8, `faithfulness ${r.faithfulness.normalized} with ${r.faithfulness.edges} edges`);
      assert.ok(r.faithfulness.edges < r.graph.edges.length / 2, `${r.faithfulness.edges} of ${r.graph.edges.length} edges`);
      assert.ok(Math.abs(r.curve[0]!.normalized) < 1e-9 && r.curve[0]!.topN === 0);
      assert.ok(Math.abs(r.curve[r.curve.length - 1]!.normalized - 1) < 1e-4);
    });
  }
});
