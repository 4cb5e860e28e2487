// The grokking lab (Nanda et al. 2023): the Fourier basis is orthonormal, a synthetic embedding and
// synthetic logits built from known frequencies are recovered exactly, the original→circuitscope
// weight mapping matches a hand-written forward pass of the original layout, and on the real grokked
// checkpoint (skipped when ../shared is absent) the paper's acceptance criteria hold.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { useBackend } from "../src/backend/init.js";
import { Tensor } from "../src/tensor/tensor.js";
import { Rng } from "../src/tensor/rng.js";
import {
  fourierBasis, frequencyNorms, keyFrequencies, normFraction, fitLogits, outputBiasShare, progressMeasures, omega, modelFromOriginal,
  evaluateAllPairs, loadGrokkingCheckpoint, analyseModel, splitPairs, trainGrokking, saveGrokkingCheckpoint, toOriginal,
  accuracySeparation, lossSeparation, grokkingCriteria, criteriaTable, lastPositionLogits, allPairTokens, type ModelAnalysis,
} from "../src/labs/grokking/index.js";
import { slice } from "../src/tensor/ops/movement.js";
import { noGrad } from "../src/tensor/autodiff.js";

useBackend();

describe("Fourier basis", () => {
  for (const p of [7, 113]) test(`orthonormal for p = ${p}`, () => {
    const { matrix: F } = fourierBasis(p);
    let worst = 0;
    for (let i = 0; i < p; i++) for (let j = 0; j < p; j++) {
      let s = 0;
      for (let x = 0; x < p; x++) s += F[i * p + x]! * F[j * p + x]!;
      worst = Math.max(worst, Math.abs(s - (i === j ? 1 : 0)));
    }
    assert.ok(worst < 1e-10, `max |F Fᵀ − I| = ${worst}`);
  });
  test("rejects even p", () => assert.throws(() => fourierBasis(10), RangeError));
});

describe("recovering known frequencies", () => {
  const p = 31, D = 16, rng = new Rng(1);
  test("an embedding built from frequencies 3, 7, 12 plus small noise", () => {
    const E = new Float64Array(p * D), keys = [3, 7, 12];
    for (let j = 0; j < D; j++) {
      const amp = keys.map(() => [rng.normal(), rng.normal()]);
      for (let x = 0; x < p; x++) {
        let v = 0.01 * rng.normal();
        keys.forEach((k, i) => { v += amp[i]![0]! * Math.cos(omega(k, p) * x) + amp[i]![1]! * Math.sin(omega(k, p) * x); });
        E[x * D + j] = v;
      }
    }
    const norms = frequencyNorms(fourierBasis(p), E, D);
    assert.deepEqual(keyFrequencies(norms), keys);
    assert.ok(normFraction(norms, keys) > 0.99, `fraction ${normFraction(norms, keys)}`);
    // Parseval: the basis is orthonormal, so the norms sum to ‖E‖².
    assert.ok(Math.abs(norms.reduce((s, v) => s + v, 0) - E.reduce((s, v) => s + v * v, 0)) < 1e-8);
  });
  test("logits Σ α_k cos(w_k(a+b−c)) + per-row offset: α recovered, variance 100%, progress measures", () => {
    const alpha = new Map([[2, 5], [9, 3]]);
    const L = new Float64Array(p ** 3);
    for (let a = 0; a < p; a++) for (let b = 0; b < p; b++) for (let c = 0; c < p; c++) {
      let v = a - b; // a per-(a, b) offset that softmax ignores and the fit must too
      for (const [k, al] of alpha) v += al * Math.cos(omega(k, p) * (a + b - c));
      L[(a * p + b) * p + c] = v;
    }
    const fit = fitLogits(L, p, [2, 9]);
    for (const [k, al] of alpha) assert.ok(Math.abs(fit.alpha.get(k)! - al) < 1e-9, `α_${k} = ${fit.alpha.get(k)}`);
    assert.ok(Math.abs(fit.varianceExplained - 1) < 1e-9, `explained ${fit.varianceExplained}`);
    assert.ok(fitLogits(L, p, [2]).varianceExplained < 0.8); // one of the two terms is not enough
    assert.ok(outputBiasShare(L, p) < 1e-12, `bias share ${outputBiasShare(L, p)}`);
    // Add a bias over outputs β_c = cos(w_1 c), orthogonal to both terms: its share is ‖β‖²p² / (‖L‖² + ‖β‖²p²) exactly,
    // with ‖Σ α_k cos(w_k(a+b−c))‖² = Σ α_k² p³/2 and ‖β‖² = p/2.
    const Lb = L.map((v, i) => v + Math.cos(omega(1, p) * (i % p)));
    const want = (p ** 3 / 2) / ((25 + 9) * p ** 3 / 2 + p ** 3 / 2);
    assert.ok(Math.abs(outputBiasShare(Lb, p) - want) < 1e-9, `bias share ${outputBiasShare(Lb, p)} vs ${want}`);
    assert.ok(Math.abs(fitLogits(Lb, p, [2, 9]).varianceExplained - (1 - want)) < 1e-9);
    const train = splitPairs(p, 0.3, 0);
    const pm = progressMeasures(L, p, [2, 9], train);
    // Removing both frequencies leaves only the offset: uniform over c, so exactly chance.
    assert.ok(Math.abs(pm.excludedLoss - Math.log(p)) < 1e-9, `excluded ${pm.excludedLoss}`);
    assert.ok(pm.restrictedLoss < Math.log(p) - 1, `restricted ${pm.restrictedLoss}`);
  });
});

test("original layouts map onto HookedTransformer: matches a hand-written forward of the original", () => {
  const p = 5, D = 8, H = 2, dh = 4, M = 12, V = p + 1, rng = new Rng(3);
  const r = (shape: number[]) => { const n = shape.reduce((a, b) => a * b, 1); return new Tensor(Float32Array.from({ length: n }, () => 0.5 * rng.normal()), shape); };
  const w = new Map<string, Tensor>([
    ["embed.W_E", r([D, V])], ["pos_embed.W_pos", r([3, D])], ["blocks.0.attn.W_Q", r([H, dh, D])], ["blocks.0.attn.W_K", r([H, dh, D])],
    ["blocks.0.attn.W_V", r([H, dh, D])], ["blocks.0.attn.W_O", r([D, H * dh])], ["blocks.0.mlp.W_in", r([M, D])], ["blocks.0.mlp.b_in", r([M])],
    ["blocks.0.mlp.W_out", r([D, M])], ["blocks.0.mlp.b_out", r([D])], ["unembed.W_U", r([D, V])],
  ]);
  const g = (n: string) => Array.from(w.get(n)!.toArray());
  const [WE, Wp, WQ, WK, WV, WO, Win, bin, Wout, bout, WU] = ["embed.W_E", "pos_embed.W_pos", "blocks.0.attn.W_Q", "blocks.0.attn.W_K", "blocks.0.attn.W_V", "blocks.0.attn.W_O", "blocks.0.mlp.W_in", "blocks.0.mlp.b_in", "blocks.0.mlp.W_out", "blocks.0.mlp.b_out", "unembed.W_U"].map(g) as number[][];
  // The original model (progress-measures-paper transformers.py), written out: x0 = W_E[:, t] + W_pos[pos].
  const ref = (toks: number[]) => {
    const x = toks.map((t, i) => Array.from({ length: D }, (_, d) => WE![d * V + t]! + Wp![i * D + d]!));
    const proj = (W: number[], h: number, v: number[]) => Array.from({ length: dh }, (_, j) => v.reduce((s, xv, d) => s + W[(h * dh + j) * D + d]! * xv, 0));
    const z = new Array<number>(H * dh).fill(0), q = 2;
    for (let h = 0; h < H; h++) {
      const qv = proj(WQ!, h, x[q]!), sc = [0, 1, 2].map((k) => proj(WK!, h, x[k]!).reduce((s, kv, j) => s + kv * qv[j]!, 0) / Math.sqrt(dh));
      const mx = Math.max(...sc), e = sc.map((s) => Math.exp(s - mx)), Z = e.reduce((a, b) => a + b, 0);
      for (let k = 0; k < 3; k++) proj(WV!, h, x[k]!).forEach((v, j) => { z[h * dh + j]! += (e[k]! / Z) * v; });
    }
    const x1 = x[q]!.map((v, d) => v + z.reduce((s, zv, i) => s + WO![d * H * dh + i]! * zv, 0));
    const hid = Array.from({ length: M }, (_, m) => Math.max(0, bin![m]! + x1.reduce((s, v, d) => s + Win![m * D + d]! * v, 0)));
    const x2 = x1.map((v, d) => v + bout![d]! + hid.reduce((s, hv, m) => s + Wout![d * M + m]! * hv, 0));
    return Array.from({ length: V }, (_, c) => x2.reduce((s, v, d) => s + v * WU![d * V + c]!, 0));
  };
  const model = modelFromOriginal(w, p);
  const ev = evaluateAllPairs(model, p);
  let worst = 0;
  for (const [a, b] of [[0, 0], [1, 3], [4, 2], [3, 4]] as const) {
    const want = ref([a, b, p]);
    for (let c = 0; c < p; c++) worst = Math.max(worst, Math.abs(ev.logits[(a * p + b) * p + c]! - want[c]!));
  }
  assert.ok(worst < 1e-4, `max |logit difference| = ${worst}`);
  w.set("blocks.0.attn.W_O", r([D, D + 1]));
  assert.throws(() => modelFromOriginal(w, p), /blocks\.0\.attn\.W_O: expected \[8,8\], got \[8,9\]/);
});

describe("acceptance criteria from curves", () => {
  // Hand-made curves logged every 10 epochs: train accuracy reaches 99% at epoch 300, test at 2400 (8×);
  // earlier values just below the bar (0.989) must not count.
  const epochs = Array.from({ length: 400 }, (_, i) => 10 * i);
  const trainAcc = epochs.map((e) => (e < 300 ? Math.min(0.989, e / 300) : 1));
  const testAcc = epochs.map((e) => (e < 2400 ? 0.989 * e / 2400 : 0.995));
  const analysis = (over: Partial<ModelAnalysis>): ModelAnalysis => ({
    p: 7, accuracy: { all: 1, train: 1, test: 0.995 }, loss: { train: 0, test: 0 }, embedNorms: [], keyFrequencies: [1, 2, 3],
    embedKeyFraction: 0.85, logitVarianceExplained: 0.93, logitOutputBiasShare: 0, alpha: [], logitVarianceByFrequency: [], progress: { restrictedLoss: 0, excludedLoss: 0, excludedTestLoss: 0 }, ...over,
  });
  test("separation: first epochs at ≥ 99% and their ratio", () => {
    assert.deepEqual(accuracySeparation(epochs, trainAcc, testAcc), { basis: "accuracy ≥ 99%", trainEpoch: 300, testEpoch: 2400, ratio: 8 });
    // Loss curves: the first epoch below 0.01.
    const sl = lossSeparation([0, 10, 20, 30], [1, 0.01, 0.009, 0], [5, 4, 3, 0.001]);
    assert.deepEqual(sl, { basis: "loss < 0.01", trainEpoch: 20, testEpoch: 30, ratio: 1.5 });
    // Never reaching the bar leaves the ratio undefined, and the criterion fails.
    const never = accuracySeparation(epochs, trainAcc, testAcc.map(() => 0.5));
    assert.equal(never.ratio, null);
    assert.equal(grokkingCriteria(analysis({}), never).find((c) => c.name.startsWith("train/test"))!.pass, false);
    assert.throws(() => accuracySeparation([0, 10], [1], [1]), RangeError);
  });
  test("each criterion passes and fails at its bar", () => {
    const sep = accuracySeparation(epochs, trainAcc, testAcc);
    const pass = grokkingCriteria(analysis({}), sep);
    assert.deepEqual(pass.map((c) => [c.value, c.pass]), [[0.995, true], [8, true], [3, true], [0.85, true], [0.93, true]]);
    const fail = grokkingCriteria(analysis({ accuracy: { all: 1, train: 1, test: 0.99 }, keyFrequencies: [1, 2, 3, 4, 5, 6, 7], embedKeyFraction: 0.79, logitVarianceExplained: 0.8 }),
      accuracySeparation(epochs, trainAcc, testAcc.map((v, i) => (epochs[i]! >= 1200 ? 0.995 : v))));
    assert.deepEqual(fail.map((c) => [c.value, c.pass]), [[0.99, false], [4, false], [7, false], [0.79, false], [0.8, false]]);
    assert.match(criteriaTable(pass).join("\n"), /\| train\/test separation \| 8\.0× \| ≥ 5× \| pass \| first epoch at accuracy ≥ 99%: train 300, test 2400 \|/);
  });
});

test("training runs, records losses, memorises the training pairs, and saves a checkpoint that loads back", () => {
  const r = trainGrokking({ p: 7, dModel: 16, nHeads: 2, dMlp: 32, fracTrain: 0.6, epochs: 300, lr: 1e-2, weightDecay: 0.1, seed: 0, logEvery: 10, evalEvery: 100 });
  assert.equal(r.epochs.length, 30);
  assert.equal(r.trainAcc.length, 30);
  assert.ok(r.trainAcc.at(-1)! > r.trainAcc[0]!, `train accuracy ${r.trainAcc[0]} → ${r.trainAcc.at(-1)}`);
  // The training fast path (MLP at the last position only) gives forward's logits.
  const fast = noGrad(() => lastPositionLogits(r.model, allPairTokens(7), 7).toArray());
  const full = noGrad(() => slice(r.model.forward(allPairTokens(7), { lastPositionOnly: true }), 2, 0, 7).contiguous().toArray());
  assert.ok(fast.every((v, i) => Math.abs(v - full[i]!) < 1e-5), "lastPositionLogits differs from forward");
  assert.deepEqual(r.snapshots.map((s) => s.epoch), [100, 200, 300]);
  assert.ok(r.trainLoss.at(-1)! < 0.1 * r.trainLoss[0]!, `train loss ${r.trainLoss[0]} → ${r.trainLoss.at(-1)}`);
  assert.equal(r.trainSet.size, Math.round(0.6 * 49));
  assert.deepEqual([...toOriginal(r.model).get("blocks.0.attn.W_Q")!.shape], [2, 8, 16]); // [n_heads, d_head, d_model]
  const dir = mkdtempSync(join(tmpdir(), "grokking-ck-"));
  try {
    saveGrokkingCheckpoint(dir, r.model, 7, r.trainSet, { epochsPerPoint: 10, train: r.trainLoss, test: r.testLoss }, { lr: 1e-2 });
    const back = loadGrokkingCheckpoint(dir);
    assert.deepEqual([...back.trainSet].sort((a, b) => a - b), [...r.trainSet].sort((a, b) => a - b));
    assert.equal(back.curves?.train.length, 30);
    const [x, y] = [evaluateAllPairs(r.model, 7).logits, evaluateAllPairs(back.model, 7).logits];
    assert.ok(x.every((v, i) => Math.abs(v - y[i]!) < 1e-5), "saved and reloaded logits differ");
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

describe("training checkpoints and resume", () => {
  const base = { p: 7, dModel: 16, nHeads: 2, dMlp: 32, fracTrain: 0.6, epochs: 90, lr: 1e-2, weightDecay: 0.1, seed: 1, logEvery: 10, evalEvery: 30, checkpointEvery: 20 };
  test("a run stopped at epoch 50 and resumed from its epoch-40 checkpoint ends bitwise where an uninterrupted run does", () => {
    const dirA = mkdtempSync(join(tmpdir(), "grok-resume-a-")), dirB = mkdtempSync(join(tmpdir(), "grok-resume-b-"));
    try {
      const whole = trainGrokking({ ...base, outDir: dirA });
      assert.equal(whole.stopped, false);
      const killed = trainGrokking({ ...base, outDir: dirB, stopAfter: 50 });
      assert.equal(killed.stopped, true);
      assert.equal(killed.epochs.at(-1), 40); // logged before epoch 50's update; nothing past the kill
      const resumed = trainGrokking({ ...base, outDir: dirB, resume: true });
      assert.equal(resumed.resumedFrom, 40);
      for (const k of ["epochs", "trainLoss", "testLoss", "trainAcc", "testAcc"] as const) assert.deepEqual(resumed[k], whole[k], k);
      assert.deepEqual(resumed.snapshots.map((s) => s.epoch), [30, 60, 90]);
      resumed.snapshots.forEach((s, i) => assert.deepEqual(s.logits, whole.snapshots[i]!.logits, `snapshot ${s.epoch}`));
      const pw = whole.model.parameters(), pr = resumed.model.parameters();
      pw.forEach((p, i) => assert.deepEqual(pr[i]!.toArray(), p.toArray(), `parameter ${i}`));
      // Resuming a finished run trains nothing and returns the same model.
      const again = trainGrokking({ ...base, outDir: dirB, resume: true });
      assert.equal(again.resumedFrom, 90);
      assert.deepEqual(again.trainLoss, whole.trainLoss);
    } finally { rmSync(dirA, { recursive: true, force: true }); rmSync(dirB, { recursive: true, force: true }); }
  });
  test("resuming with other settings names the setting", () => {
    const dir = mkdtempSync(join(tmpdir(), "grok-resume-c-"));
    try {
      trainGrokking({ ...base, outDir: dir, stopAfter: 20 });
      assert.throws(() => trainGrokking({ ...base, lr: 2e-2, outDir: dir, resume: true }), /trained with lr = 0\.01, this run has 0\.02/);
    } finally { rmSync(dir, { recursive: true, force: true }); }
  });
  test("the CLI refuses to overwrite a checkpoint without --resume", () => {
    const main = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
    const out = mkdtempSync(join(tmpdir(), "grok-cli-"));
    const args = [main, "lab", "grokking", "--train", "--p", "7", "--d-model", "16", "--heads", "2", "--frac", "0.6", "--epochs", "40", "--lr", "0.01", "--checkpoint-every", "20", "--out", out, "--json"];
    try {
      const first = spawnSync(process.execPath, args, { encoding: "utf8", timeout: 60_000 });
      assert.equal(first.status, 0, first.stderr);
      assert.ok(existsSync(join(out, "checkpoint", "ckpt.safetensors")));
      const second = spawnSync(process.execPath, args, { encoding: "utf8", timeout: 60_000 });
      assert.notEqual(second.status, 0);
      assert.match(second.stderr, /already has a training checkpoint; pass --resume/);
      const third = spawnSync(process.execPath, [...args, "--resume"], { encoding: "utf8", timeout: 60_000 });
      assert.equal(third.status, 0, third.stderr);
      const [a, b] = [first, third].map((r) => JSON.parse(r.stdout) as { training: { trainLoss: number[] } });
      assert.deepEqual(b!.training.trainLoss, a!.training.trainLoss);
    } finally { rmSync(out, { recursive: true, force: true }); }
  });
});

const ckDir = fileURLToPath(new URL("../../../shared/models/grokking-mod113", import.meta.url));
describe("the real grokked checkpoint (Nanda et al. 2023, p = 113)", { skip: existsSync(ckDir) ? false : `${ckDir} absent` }, () => {
  test("acceptance criteria: accuracy, key frequencies, logit variance, progress measures", () => {
    const ck = loadGrokkingCheckpoint(ckDir);
    assert.equal(ck.trainSet.size, 3830);
    const a = analyseModel(ck.model, ck.p, ck.trainSet);
    assert.ok(a.accuracy.all >= 0.99, `accuracy ${a.accuracy.all}`);
    // The stored final losses (config.json) are reproduced, which pins the weight mapping.
    assert.ok(Math.abs(Math.log(a.loss.train / 9.20252816696153e-9)) < 0.05, `train loss ${a.loss.train}`);
    assert.ok(Math.abs(Math.log(a.loss.test / 4.991517682242705e-7)) < 0.05, `test loss ${a.loss.test}`);
    assert.ok(a.keyFrequencies.length <= 6, `key frequencies ${a.keyFrequencies}`);
    assert.ok(a.embedKeyFraction >= 0.8, `‖W_E‖² share ${a.embedKeyFraction}`);
    assert.ok(a.logitVarianceExplained >= 0.9, `logit variance explained ${a.logitVarianceExplained}`);
    // §5.1: keeping only the key frequencies keeps the loss low; removing them breaks the model.
    assert.ok(a.progress.restrictedLoss < 0.01, `restricted ${a.progress.restrictedLoss}`);
    assert.ok(a.progress.excludedLoss > Math.log(ck.p), `excluded ${a.progress.excludedLoss}`);
  });

  test("circuitscope lab grokking --checkpoint writes the report and one JSON document", () => {
    const main = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
    const out = mkdtempSync(join(tmpdir(), "grokking-lab-"));
    try {
      const r = spawnSync(process.execPath, [main, "lab", "grokking", "--checkpoint", ckDir, "--out", out, "--json"], { encoding: "utf8", timeout: 60_000 });
      assert.equal(r.status, 0, r.stderr);
      const doc = JSON.parse(r.stdout) as { checkpoint: { keyFrequencies: number[]; accuracy: { all: number } } };
      assert.ok(doc.checkpoint.accuracy.all >= 0.99);
      for (const f of ["report.md", "embedding-fourier-norms.svg", "logit-fourier.svg", "loss-curves.svg"]) assert.ok(existsSync(join(out, f)), f);
      assert.match(readFileSync(join(out, "report.md"), "utf8"), new RegExp(`key frequencies \\(§4\\.1\\) \\| ${doc.checkpoint.keyFrequencies.join(", ")}`));
    } finally { rmSync(out, { recursive: true, force: true }); }
  });
});

test("circuitscope lab grokking without --checkpoint or --train is a usage error", () => {
  const main = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
  const r = spawnSync(process.execPath, [main, "lab", "grokking"], { encoding: "utf8", timeout: 60_000 });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /give --checkpoint/);
});
