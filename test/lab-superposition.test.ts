// The superposition lab (Elhage et al. 2022): the toy model's loss and gradient against a float64
// transcription, the analysis formulas on hand-built W, and small seeded training runs that must
// reproduce the paper's qualitative results (dense → top-m orthogonal; sparse → a pentagon; the
// linear model never superposes).
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { useBackend } from "../src/backend/init.js";
import { backward } from "../src/tensor/autodiff.js";
import { tensor } from "../src/tensor/create.js";
import { Rng } from "../src/tensor/rng.js";
import {
  ToyModel, importanceRows, sampleBatch, trainToyModels, evalInstanceLoss, analyse,
  featureDimensionality, featureNorms, superpositionMeasure, dimensionsPerFeature, polytopes,
} from "../src/labs/superposition/index.js";

useBackend(); // the fastest available; the training results below are identical on every backend

/** Loss and gradients of one instance by hand in float64: h = Wx, z = Wᵀh + b, y = act(z). */
function reference(W: number[][], b: number[], xs: number[][], I: number[], relu: boolean) {
  const m = W.length, n = b.length, B = xs.length;
  let loss = 0;
  const gW = W.map((r) => r.map(() => 0)), gb = b.map(() => 0);
  for (const x of xs) {
    const h = W.map((row) => row.reduce((s, w, j) => s + w * x[j]!, 0));
    const z = b.map((bi, i) => bi + W.reduce((s, row, k) => s + row[i]! * h[k]!, 0));
    const y = z.map((v) => (relu ? Math.max(0, v) : v));
    const dz = y.map((yi, i) => (2 * I[i]! * (yi - x[i]!)) / B * (relu && z[i]! <= 0 ? 0 : 1));
    loss += y.reduce((s, yi, i) => s + I[i]! * (x[i]! - yi) ** 2, 0) / B;
    dz.forEach((d, i) => { gb[i]! += d; for (let k = 0; k < m; k++) gW[k]![i]! += d * h[k]!; }); // z_i = Σ_k W_ki h_k
    const dh = W.map((row) => row.reduce((s, w, i) => s + w * dz[i]!, 0));
    for (let k = 0; k < m; k++) for (let j = 0; j < n; j++) gW[k]![j]! += dh[k]! * x[j]!; // h_k = Σ_j W_kj x_j
  }
  return { loss, gW, gb };
}

describe("toy model loss and gradient", () => {
  for (const activation of ["relu", "linear"] as const) test(`${activation}: matches a float64 transcription`, () => {
    const rng = new Rng(3), n = 6, m = 3, k = 2, B = 16;
    const model = new ToyModel({ nFeatures: n, nHidden: m, nInstances: k, activation }, rng);
    for (let i = 0; i < model.b.data.length; i++) model.b.data[i] = 0.3 * rng.normal(); // a non-zero bias exercises its gradient
    const probs = [0.5, 0.9], imp = importanceRows(n, [0.9, 0.8]);
    const x = sampleBatch(B, probs, n, rng);
    const loss = model.loss(x, tensor(imp.flat(), [k, n]));
    backward(loss);
    let total = 0;
    for (let i = 0; i < k; i++) {
      const xs = Array.from({ length: B }, (_, r) => Array.from({ length: n }, (_, j) => x.get(i, r, j)));
      const ref = reference(model.weights(i), model.bias(i), xs, imp[i]!, activation === "relu");
      total += ref.loss;
      ref.gW.forEach((row, a) => row.forEach((g, j) => assert.ok(Math.abs(model.W.grad!.get(i, a, j) - g) < 1e-5, `dW[${i},${a},${j}]: ${model.W.grad!.get(i, a, j)} vs ${g}`)));
      ref.gb.forEach((g, j) => assert.ok(Math.abs(model.b.grad!.get(i, j) - g) < 1e-5, `db[${i},${j}]`));
    }
    assert.ok(Math.abs(loss.item() - total) < 1e-5 * Math.max(1, total), `loss ${loss.item()} vs ${total}`);
  });

  test("sampleBatch: density 1 − S and values uniform on [0, 1)", () => {
    const x = sampleBatch(4000, [1, 0.1], 5, new Rng(1)).toList();
    const half = x.length / 2, dense = x.slice(0, half), sparse = x.slice(half);
    assert.ok(dense.every((v) => v > 0 && v < 1));
    const frac = sparse.filter((v) => v > 0).length / half;
    assert.ok(Math.abs(frac - 0.1) < 0.01, `density ${frac}`); // ±0.01 is > 4 standard errors at 20000 draws
    assert.ok(Math.abs(dense.reduce((s, v) => s + v, 0) / half - 0.5) < 0.01);
  });
});

describe("analysis on hand-built W", () => {
  test("orthogonal features: D = 1, no superposition, m/‖W‖² = 1", () => {
    const W = [[1, 0, 0], [0, 1, 0]]; // feature 2 not represented
    assert.deepEqual(featureDimensionality(W), [1, 1, 0]);
    assert.deepEqual(superpositionMeasure(W), [0, 0, 0]);
    assert.deepEqual(featureNorms(W), [1, 1, 0]);
    assert.equal(dimensionsPerFeature(W), 1);
  });
  test("antipodal pair: D = 1/2 each, one polytope of 2 features in 1 dim", () => {
    const W = [[1, -1, 0], [0, 0, 1]];
    assert.deepEqual(featureDimensionality(W), [0.5, 0.5, 1]);
    assert.deepEqual(superpositionMeasure(W), [1, 1, 0]);
    assert.deepEqual(polytopes(W).map((p) => p.shape), ["antipodal pair (2 features in 1 dim)", "dedicated dimension (1 feature in 1 dim)"]);
  });
  test("regular pentagon in 2 dims: D = 2/5 each", () => {
    const W = [0, 1].map((r) => Array.from({ length: 5 }, (_, i) => (r ? Math.sin : Math.cos)((2 * Math.PI * i) / 5)));
    for (const D of featureDimensionality(W)) assert.ok(Math.abs(D - 0.4) < 1e-12, `D ${D}`);
    assert.equal(polytopes(W)[0]!.shape, "pentagon (5 features in 2 dims)");
    assert.ok(Math.abs(dimensionsPerFeature(W) - 0.4) < 1e-12);
  });
});

describe("training (n=5, m=2, seeded)", () => {
  // Several instances per setting in one batched run; like the paper we read the lowest-loss one,
  // because single runs can stop in local minima (two antipodal pairs instead of a pentagon).
  const n = 5, m = 2, reps = 4, probs = [...Array(reps).fill(1), ...Array(reps).fill(0.01)];
  const imp = importanceRows(n, probs.map(() => 0.9)); // the Colab's 0.9^i
  const relu = { model: new ToyModel({ nFeatures: n, nHidden: m, nInstances: 2 * reps, activation: "relu" }, new Rng(0)), importance: imp, featureProb: probs };
  const linear = { model: new ToyModel({ nFeatures: n, nHidden: m, nInstances: 2 * reps, activation: "linear" }, new Rng(1)), importance: imp, featureProb: probs };
  trainToyModels([relu, linear], { steps: 2000, batchSize: 256, lr: 1e-2, weightDecay: 0.01, seed: 0 });
  const loss = evalInstanceLoss(relu, 20000, 0);
  const best = (from: number) => { let b = from; for (let i = from; i < from + reps; i++) if (loss[i]! < loss[b]!) b = i; return analyse(relu.model.weights(b)); };

  test("dense (S=0): the top-m features by importance, orthogonal; the rest dropped", () => {
    const a = best(0);
    // Tolerances: 2000 noisy steps leave dropped features at norm ≲ 0.25 (they decay slowly: their
    // gradient vanishes with them) and kept ones within 0.05 of 1.
    a.norms.slice(0, m).forEach((v, i) => assert.ok(Math.abs(v - 1) < 0.05, `feature ${i} norm ${v}`));
    a.norms.slice(m).forEach((v, i) => assert.ok(v < 0.3, `feature ${m + i} norm ${v}`));
    a.dimensionality.slice(0, m).forEach((D) => assert.ok(D > 0.9, `D ${D}`));
    assert.equal(a.represented, m);
  });

  test("sparse (S=0.99): more than m features, as a pentagon with D ≈ 2/5", () => {
    const a = best(reps);
    assert.ok(a.represented > m, `represented ${a.represented}`);
    assert.equal(a.polytopes.length, 1);
    assert.equal(a.polytopes[0]!.shape, "pentagon (5 features in 2 dims)");
    // ±0.03: the trained pentagon's D values sit within 0.02 of 2/5; 1/2 and 1/3 are both further away.
    for (const D of a.dimensionality) assert.ok(Math.abs(D - 0.4) < 0.03, `D ${D}`);
    assert.ok(a.inSuperposition === 5);
    // The contrast with the linear model below: ReLU packs well over m features' worth of norm.
    assert.ok(a.norms.reduce((s, v) => s + v * v, 0) > m + 1);
  });

  test("the linear model never represents more than m features", () => {
    for (let i = 0; i < 2 * reps; i++) {
      const a = analyse(linear.model.weights(i));
      // ‖W‖_F² counts represented features' worth (each has norm ≈ 1); the linear optimum is a rank-m
      // projection, ‖W‖_F² = m. (Counting norms > 0.5 is not used: 2000 steps can leave the top-m
      // subspace still rotating among features 1–3, several with norm ≈ 0.7.)
      const fro = a.norms.reduce((s, v) => s + v * v, 0);
      assert.ok(fro < m + 0.1, `instance ${i}: ‖W‖_F² = ${fro}`);
      assert.ok(a.dimsPerFeature > 0.95, `instance ${i}: m/‖W‖² = ${a.dimsPerFeature}`);
    }
  });
});
