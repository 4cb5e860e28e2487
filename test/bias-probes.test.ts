// Bias probes on random models of every architecture, against exact expectations: identical
// prompts diverge by exactly 0 everywhere; a pair differing at position k diverges by exactly 0 at
// every position before k, in every layer (causal attention), and at layer 0 only at k; the DLA
// differences sum to the logit-difference difference computed from two separate forwards, and each
// side's DLA plus the bias constant is that side's logit difference; the mean over pairs is the
// average of the per-pair values (end-aligned when lengths differ).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as cs from "../src/index.js";
import { biasProbe, probePair } from "../src/analysis/bias-probes.js";
import { ARCHS, randomModel } from "./model-fixtures.js";

const A = [3, 14, 15, 9, 2, 6];
const target = { token: 5, incorrect: 11 };

/** logit[5] − logit[11] at the last position, from a forward of one prompt alone. */
const logitDiff = (model: cs.HookedTransformer, toks: number[]) => cs.noGrad(() => {
  const l = model.forward([toks]), T = toks.length;
  return l.get(0, T - 1, 5) - l.get(0, T - 1, 11);
});

test("identical prompts: zero divergence everywhere, zero DLA difference", () => {
  for (const arch of ARCHS) {
    const model = randomModel(arch, { seed: 1 });
    const p = probePair(model, { a: A, b: [...A] }, { target });
    for (const v of [...p.resid.flat(), ...p.heads.flat(), ...p.mlps, ...p.dla.diff]) assert.equal(v, 0, arch);
    assert.deepEqual(p.differing, []);
    assert.equal(p.logitDiff.diff, 0);
    assert.equal(p.firstDivergence, null);
    assert.equal(p.mlps.length, arch === "attn-only" ? 0 : 2);
  }
});

test("a pair differing at position k: exactly 0 before k at every layer, only k at layer 0, > 0 from k on", () => {
  for (const arch of ARCHS) {
    const model = randomModel(arch, { seed: 2 });
    for (const k of [A.length - 1, 2]) {
      const B = A.map((t, i) => (i === k ? 20 : t));
      const p = probePair(model, { a: A, b: B }, { target, threshold: 0.05 });
      assert.deepEqual(p.differing, [k]);
      assert.deepEqual(p.resid.length, model.cfg.n_layers + 1);
      p.resid.forEach((row, l) => row.forEach((v, pos) => {
        if (pos < k) assert.equal(v, 0, `${arch} k=${k} layer ${l} pos ${pos}: causal attention keeps it identical`);
        else if (l === 0 && pos > k) assert.equal(v, 0, `${arch} k=${k} 0_pre pos ${pos}: embeddings of equal tokens`);
        else if (pos === k) assert.ok(v > 0, `${arch} k=${k} layer ${l} pos ${k}`);
      }));
      // After the first block, the difference has reached the later positions.
      for (let pos = k + 1; pos < A.length; pos++) assert.ok(p.resid[model.cfg.n_layers]![pos]! > 0, `${arch} final pos ${pos}`);
      // The first divergence is the first row above the threshold at the last position.
      const T = A.length, want = p.resid.findIndex((row) => row[T - 1]! > 0.05);
      assert.equal(p.firstDivergence?.index ?? -1, want);
      if (k === T - 1) assert.equal(p.firstDivergence?.label, "0_pre");
      else assert.ok(want !== 0, "the last token is the same, so 0_pre does not diverge there");
    }
  }
});

test("DLA differences sum to the logit-difference difference; each side plus the constant is its logit difference", () => {
  for (const arch of ARCHS) {
    const model = randomModel(arch, { seed: 3 });
    const B = A.map((t, i) => (i === 1 ? 22 : t));
    const p = probePair(model, { a: A, b: B }, { target });
    const la = logitDiff(model, A), lb = logitDiff(model, B);
    const sum = (xs: number[]) => xs.reduce((s, x) => s + x, 0);
    assert.ok(Math.abs(p.logitDiff.a - la) < 1e-5 && Math.abs(p.logitDiff.b - lb) < 1e-5, `${arch}: logit diffs`);
    assert.ok(Math.abs(sum(p.dla.diff) - (la - lb)) < 1e-4, `${arch}: Σ ΔDLA ${sum(p.dla.diff)} vs ${la - lb}`);
    assert.ok(Math.abs(sum(p.dla.a) + p.dla.constant - la) < 1e-4, `${arch}: Σ DLA_A + constant vs logit diff A`);
    assert.ok(Math.abs(sum(p.dla.b) + p.dla.constant - lb) < 1e-4, `${arch}: Σ DLA_B + constant vs logit diff B`);
    // The top component is the largest |difference|, and its share is relative to the total.
    const top = p.dla.labels.indexOf(p.topComponent.label);
    assert.ok(p.dla.diff.every((d) => Math.abs(d) <= Math.abs(p.dla.diff[top]!)));
    assert.ok(Math.abs(p.topComponent.share - p.dla.diff[top]! / (la - lb)) < 1e-3 * (1 + Math.abs(p.topComponent.share)));
    assert.ok(p.heads.flat().some((v) => v > 0) && p.resid.flat().some((v) => v > 0));
  }
});

test("biasProbe: per-pair values kept, means are their averages, unequal lengths end-aligned, an SVG", () => {
  const model = randomModel("gpt2", { seed: 4 });
  const pairs = [
    { a: A, b: A.map((t, i) => (i === 2 ? 20 : t)) },
    { a: A, b: A.map((t, i) => (i === 4 ? 1 : t)) },
    { a: A.slice(1), b: A.slice(1).map((t, i) => (i === 0 ? 7 : t)) },
  ];
  const r = biasProbe(model, pairs, { target });
  assert.equal(r.pairs.length, 3);
  assert.deepEqual(r.posLabels, ["-6", "-5", "-4", "-3", "-2", "-1"]);
  const p = r.pairs;
  // Column 0 exists only in the two 6-token pairs; the last column in all three.
  assert.ok(Math.abs(r.mean.resid[1]![0]! - (p[0]!.resid[1]![0]! + p[1]!.resid[1]![0]!) / 2) < 1e-12);
  assert.ok(Math.abs(r.mean.resid[2]![5]! - (p[0]!.resid[2]![5]! + p[1]!.resid[2]![5]! + p[2]!.resid[2]![4]!) / 3) < 1e-12);
  assert.ok(Math.abs(r.mean.heads[1]![3]! - (p[0]!.heads[1]![3]! + p[1]!.heads[1]![3]! + p[2]!.heads[1]![3]!) / 3) < 1e-12);
  const c = r.mean.dla.labels.indexOf("L0H1");
  assert.ok(Math.abs(r.mean.dla.diff[c]! - (p[0]!.dla.diff[c]! + p[1]!.dla.diff[c]! + p[2]!.dla.diff[c]!) / 3) < 1e-12);
  assert.ok(Math.abs(r.mean.logitDiff.diff - (p[0]!.logitDiff.diff + p[1]!.logitDiff.diff + p[2]!.logitDiff.diff) / 3) < 1e-12);
  assert.equal(r.mean.topComponent.label, r.mean.dla.labels[r.mean.dla.diff.reduce((b, x, i, v) => (Math.abs(x) > Math.abs(v[b]!) ? i : b), 0)]);
  assert.throws(() => biasProbe(model, [{ a: A, b: A.slice(1) }], { target }), /pair 0: .*same number of tokens/);
});
