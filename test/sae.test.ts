// Sparse autoencoders and transcoders (src/sae/): the activations' behaviour, recovery of a known
// sparse dictionary, a transcoder on a model's MLP, metrics against hand computations, SAELens-layout
// save/load (bitwise, with named errors) and bit-identical resume. All seeded; each test a few seconds.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as cs from "../src/index.js";
import { SparseAutoencoder, geometricMedian, rowMean } from "../src/sae/model.js";
import { coefficientAt, defaultSaeTrainConfig, foldScale, lrAt, trainSae } from "../src/sae/train.js";
import { latentDashboards, latentLogitEffects } from "../src/sae/dashboard.js";
import { collectActivations, modelBatchSource, rowsBatchSource } from "../src/sae/activations.js";
import { syntheticFeatures, syntheticRows, maxCosines } from "../src/sae/synthetic.js";
import { reconstructionMetrics, downstreamMetrics, splicedLogits } from "../src/sae/metrics.js";
import { loadSae, saveSae, SaeLoadError } from "../src/sae/io.js";
import { SaeConfigError, configFromJson, configToJson } from "../src/sae/config.js";
import { assertBitwiseEqual, randomModel, randomTokens } from "./model-fixtures.js";

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "circuitscope-sae-"));
const setParam = (p: cs.Tensor, v: number[]) => { p.data.set(v); p.version++; };

test("topk keeps exactly k latents per token: the k largest pre-activations", () => {
  const sae = new SparseAutoencoder({ d_in: 8, d_sae: 32, hook_name: "x", activation: "topk", k: 5 }, { seed: 3 });
  setParam(sae.b_enc, new Array(32).fill(10)); // every pre-activation positive, so ReLU drops none of the k
  const x = cs.randn([40, 8], { rng: new cs.Rng(1) });
  const f = cs.noGrad(() => sae.encode(x)), pre = cs.noGrad(() => sae.preacts(x));
  const F = f.toArray(), P = pre.toArray();
  for (let r = 0; r < 40; r++) {
    const row = Array.from(F.subarray(r * 32, (r + 1) * 32)), prow = Array.from(P.subarray(r * 32, (r + 1) * 32));
    assert.equal(row.filter((v) => v !== 0).length, 5, `row ${r}`);
    const kth = [...prow].sort((a, b) => b - a)[4]!;
    row.forEach((v, i) => { if (v !== 0) { assert.ok(prow[i]! >= kth); assert.equal(v, prow[i]); } });
  }
  // With negative pre-activations ReLU leaves fewer than k.
  setParam(sae.b_enc, new Array(32).fill(-10));
  assert.equal([...cs.noGrad(() => sae.encode(x)).toArray()].filter((v) => v !== 0).length, 0);
});

test("jumprelu fires exactly where the pre-activation exceeds θ, passing it unshifted; θ's gradient comes from the kernel band only", () => {
  const sae = new SparseAutoencoder({ d_in: 2, d_sae: 3, hook_name: "x", activation: "jumprelu", dtype: "float64", apply_b_dec_to_input: false });
  cs.noGrad(() => {
    setParam(sae.W_enc, [1, 0, 1, 0, 1, 1]); // pre = [x0, x1, x0 + x1]
    setParam(sae.threshold!, [0.5, 0.2, 1.0]);
  });
  const x = cs.tensor([0.6, 0.1, 0.4, 0.7, 0.5, 0.3], [3, 2], "float64");
  const f = cs.noGrad(() => sae.encode(x));
  assert.deepEqual([...f.toArray()].map((v) => +v.toFixed(12)), [0.6, 0, 0, 0, 0.7, 1.1, 0, 0.3, 0]);
  // L0 penalty gradient to θ with bandwidth 0.25: only |pre − θ| < 0.125 counts (−1/ε each).
  const pre = sae.preacts(x);
  const l0 = cs.heavisideStep(pre, sae.threshold!, 0.25).sum();
  const [g] = cs.grad(l0, [sae.threshold!]);
  // pre rows: [0.6, 0.1, 0.7], [0.4, 0.7, 1.1], [0.5, 0.3, 0.8]; θ = [0.5, 0.2, 1.0]
  // latent 0: |0.1|, |−0.1|, |0| → 3 in band; latent 1: |−0.1|, |0.5|, |0.1| → 2; latent 2: |−0.3|, |0.1|, |−0.2| → 1.
  assert.deepEqual([...g!.toArray()].map((v) => +v.toFixed(9)), [-12, -8, -4]);
});

test("a ReLU SAE trained on synthetic sparse features in superposition recovers the dictionary (max cosine > 0.9 for every feature)", () => {
  const spec = { d: 16, nFeatures: 32, p: 0.04, seed: 1 };
  const feats = syntheticFeatures(spec);
  const sae = new SparseAutoencoder({ d_in: 16, d_sae: 64, hook_name: "synthetic" }, { seed: 0 });
  const r = trainSae(sae, rowsBatchSource((c) => syntheticRows(spec, feats, 4096, c), 256, 0), {
    config: { steps: 500, lr: 3e-3, sparsityCoefficient: 1, sparsityWarmupSteps: 100, lrDecaySteps: 100, deadTokens: 5000 },
  });
  const cos = maxCosines(feats, sae.W_dec.toArray(), 64);
  console.log(`synthetic ReLU SAE: min over 32 true features of max cosine ${Math.min(...cos).toFixed(4)}, mean ${(cos.reduce((a, b) => a + b) / 32).toFixed(4)}, L0 ${r.final!.l0.toFixed(2)} (true ${(32 * 0.04).toFixed(2)}), ${r.seconds.toFixed(1)} s`);
  assert.ok(cos.every((c) => c > 0.9), `cosines ${cos.map((c) => c.toFixed(3)).join(" ")}`);
  // A random dictionary of the same size does not: the test can fail.
  const random = maxCosines(feats, new SparseAutoencoder({ d_in: 16, d_sae: 64, hook_name: "s" }, { seed: 9 }).W_dec.toArray(), 64);
  assert.ok(random.some((c) => c < 0.9));
});

test("topk with AuxK and jumprelu with its L0 penalty train on the same data; a larger L0 coefficient gives a sparser JumpReLU", () => {
  const spec = { d: 16, nFeatures: 32, p: 0.04, seed: 1 };
  const feats = syntheticFeatures(spec);
  const data = () => rowsBatchSource((c) => syntheticRows(spec, feats, 2048, c), 256, 0);
  const topk = new SparseAutoencoder({ d_in: 16, d_sae: 64, hook_name: "s", activation: "topk", k: 4 }, { seed: 0, decoderNorm: 1 });
  const rt = trainSae(topk, data(), { config: { steps: 300, lr: 3e-3, lrDecaySteps: 60, deadTokens: 1024 } });
  assert.ok(rt.final!.l0 <= 4 + 1e-9);
  const evT = reconstructionMetrics(topk, syntheticRows(spec, feats, 2048, 99)).explainedVariance;
  assert.ok(evT > 0.8, `topk explained variance ${evT}`);
  const l0s = [0.01, 0.2].map((coef) => {
    const j = new SparseAutoencoder({ d_in: 16, d_sae: 64, hook_name: "s", activation: "jumprelu" }, { seed: 0, threshold: 0.1 });
    trainSae(j, data(), { config: { steps: 300, lr: 3e-3, sparsityCoefficient: coef, bandwidth: 0.05, lrDecaySteps: 60 } });
    return reconstructionMetrics(j, syntheticRows(spec, feats, 2048, 99)).l0;
  });
  console.log(`topk k=4: explained variance ${evT.toFixed(3)}; jumprelu L0 at λ = 0.01: ${l0s[0]!.toFixed(2)}, at λ = 0.2: ${l0s[1]!.toFixed(2)}`);
  assert.ok(l0s[1]! < l0s[0]!, `L0 ${l0s}`);
});

test("reconstruction metrics equal a hand computation", () => {
  // d_in = d_out = 2, d_sae = 2, W_enc = W_dec = I, biases 0: f = relu(x), ŷ = relu(x).
  const sae = new SparseAutoencoder({ d_in: 2, d_sae: 2, hook_name: "x", dtype: "float64" });
  cs.noGrad(() => { setParam(sae.W_enc, [1, 0, 0, 1]); setParam(sae.W_dec, [1, 0, 0, 1]); });
  const x = new Float32Array([1, -1, 2, 0, -1, 3, 0.5, 0.5]); // 4 tokens
  const m = reconstructionMetrics(sae, { x, y: x, n: 4, dIn: 2, dOut: 2 }, { denseThreshold: 0.6, bins: 4 });
  // errors: (0, −1), (0, 0), (−1, 0), (0, 0) → SSE 2, MSE 2/8
  assert.equal(m.mse, 0.25);
  // ȳ = (0.625, 0.625); SST = Σ(y − ȳ)² = (0.140625 + 1.890625 + 2.640625 + 0.015625) + (2.640625 + 0.390625 + 5.640625 + 0.015625) = 13.375
  assert.ok(Math.abs(m.explainedVariance - (1 - 2 / 13.375)) < 1e-12, `${m.explainedVariance}`);
  // f: (1,0), (2,0), (0,3), (0.5,0.5): L0 = 5/4, L1 = 7/4; latent 0 fires on 3/4 tokens, latent 1 on 2/4
  assert.equal(m.l0, 1.25); assert.equal(m.l1, 1.75);
  assert.deepEqual(m.firingFrequency, [0.75, 0.5]);
  assert.equal(m.deadFraction, 0); assert.equal(m.denseFraction, 0.5);
  // log10 frequencies −0.125 and −0.301 over edges [−1, −0.75, −0.5, −0.25, 0]
  assert.deepEqual(m.density.edges, [-1, -0.75, -0.5, -0.25, 0]);
  assert.deepEqual(m.density.counts, [0, 0, 1, 1]);
});

test("downstream metrics: an identity SAE recovers 100% of CE with zero KL, a zero SAE 0%; CE and KL match crossEntropy and logSoftmax", () => {
  const model = randomModel("gpt2", { seed: 2 });
  const tokens = randomTokens(model.cfg.d_vocab, 3, 9, 4);
  const d = model.cfg.d_model, hook = "blocks.1.hook_resid_pre";
  // relu(x) − relu(−x) = x: W_enc = [I, −I], W_dec = [I; −I].
  const id = new SparseAutoencoder({ d_in: d, d_sae: 2 * d, hook_name: hook });
  const enc = new Array(d * 2 * d).fill(0), dec = new Array(2 * d * d).fill(0);
  for (let i = 0; i < d; i++) { enc[i * 2 * d + i] = 1; enc[i * 2 * d + d + i] = -1; dec[i * d + i] = 1; dec[(d + i) * d + i] = -1; }
  cs.noGrad(() => { setParam(id.W_enc, enc); setParam(id.W_dec, dec); });
  const m = downstreamMetrics(model, id, [tokens], { skipPositions: 1 });
  assert.equal(m.predictions, 3 * 7);
  assert.ok(Math.abs(m.ceSae - m.ceClean) < 1e-5 && Math.abs(m.ceRecovered - 1) < 1e-4 && Math.abs(m.klSae) < 1e-6, JSON.stringify(m));
  // The same numbers by the engine's own ops on positions 1..T−2.
  const ce = (logits: cs.Tensor) => cs.noGrad(() => cs.crossEntropy(logits.slice(1, 1, -1), cs.tensor(tokens.map((r) => r.slice(2)), [3, 7], "int32"))).item();
  const clean = cs.noGrad(() => model.forward(tokens)), zero = cs.noGrad(() => splicedLogits(model, id, tokens, "zero", 1));
  assert.ok(Math.abs(ce(clean) - m.ceClean) < 1e-5 && Math.abs(ce(zero) - m.ceZero) < 1e-5, `${ce(clean)} ${m.ceClean} ${ce(zero)} ${m.ceZero}`);
  const lc = cs.noGrad(() => clean.slice(1, 1, -1).logSoftmax()), lz = cs.noGrad(() => zero.slice(1, 1, -1).logSoftmax());
  const kl = cs.noGrad(() => lc.exp().mul(lc.sub(lz)).sum(-1).mean()).item();
  assert.ok(Math.abs(kl - m.klZero) < 1e-5, `KL ${kl} vs ${m.klZero}`);
  // A zero SAE outputs b_dec = 0: the zero ablation exactly.
  const z = new SparseAutoencoder({ d_in: d, d_sae: 4, hook_name: hook });
  cs.noGrad(() => { z.W_dec.data.fill(0); z.W_dec.version++; });
  const mz = downstreamMetrics(model, z, [tokens], { skipPositions: 1 });
  assert.ok(Math.abs(mz.ceRecovered) < 1e-4 && Math.abs(mz.ceSae - mz.ceZero) < 1e-5, JSON.stringify(mz));
});

test("a transcoder trained on a model's MLP (ln2.hook_normalized → hook_mlp_out) predicts it far better than the mean", () => {
  const model = randomModel("gpt2", { seed: 5 });
  const windows = Array.from({ length: 64 }, (_, i) => randomTokens(model.cfg.d_vocab, 1, 16, 100 + i)[0]!);
  const spec = { hookIn: "blocks.0.ln2.hook_normalized", hookOut: "blocks.0.hook_mlp_out", skipPositions: 0, batchWindows: 16 } as const;
  const tc = new SparseAutoencoder({ d_in: 16, d_sae: 96, d_out: 16, hook_name: spec.hookIn, hook_name_out: spec.hookOut, skip: true }, { seed: 1 });
  const data = modelBatchSource(model, windows.slice(0, 48), { ...spec, chunkWindows: 48, batchTokens: 128, seed: 0 });
  const r = trainSae(tc, data, { config: { steps: 400, lr: 3e-3, sparsityCoefficient: 0.01, lrDecaySteps: 80 } });
  const held = collectActivations(model, windows.slice(48), spec);
  const m = reconstructionMetrics(tc, held);
  // Baseline: predicting the held-out mean has MSE = the variance per element (explained variance 0).
  console.log(`transcoder on blocks.0 MLP: held-out MSE ${m.mse.toExponential(3)} vs mean baseline ${(m.mse / (1 - m.explainedVariance)).toExponential(3)} (explained variance ${m.explainedVariance.toFixed(3)}), L0 ${m.l0.toFixed(1)}, ${r.seconds.toFixed(1)} s`);
  assert.ok(m.explainedVariance > 0.8, `explained variance ${m.explainedVariance}`);
});

test("save → load round trip in SAELens layout is bitwise, for every architecture", () => {
  const dir = tmp();
  const cases = [
    { d_in: 6, d_sae: 10, hook_name: "blocks.0.hook_resid_post" },
    { d_in: 6, d_sae: 10, hook_name: "blocks.0.hook_resid_post", activation: "topk", k: 3 },
    { d_in: 6, d_sae: 10, hook_name: "blocks.0.hook_resid_post", activation: "jumprelu" },
    { d_in: 6, d_sae: 10, d_out: 4, hook_name: "blocks.0.ln2.hook_normalized", hook_name_out: "blocks.0.hook_mlp_out", skip: true, activation: "jumprelu" },
  ] as const;
  cases.forEach((c, i) => {
    const sae = new SparseAutoencoder(c, { seed: i });
    cs.noGrad(() => { for (const p of sae.parameters()) { p.data.set(cs.randn(p.shape, { rng: new cs.Rng(i + 10) }).data); p.version++; } });
    const folder = path.join(dir, `s${i}`);
    saveSae(sae, folder);
    const cfg = JSON.parse(fs.readFileSync(path.join(folder, "cfg.json"), "utf8"));
    assert.deepEqual(Object.keys(cfg).slice(0, 3), ["architecture", "d_in", "d_sae"]);
    const back = loadSae(folder);
    assert.deepEqual(configToJson(back.cfg), configToJson(sae.cfg));
    for (const [n, p] of sae.namedParameters()) assertBitwiseEqual(back.namedParameters().find(([m]) => m === n)![1], p, n);
  });
  const names = cs.SafetensorsFile.open(path.join(dir, "s2", "sae_weights.safetensors")).names().sort();
  assert.deepEqual(names, ["W_dec", "W_enc", "b_dec", "b_enc", "threshold"]);
});

test("loading names what is wrong: missing folder, bad config, unknown architecture, wrong shape, missing tensor", () => {
  const dir = tmp(), folder = path.join(dir, "s");
  saveSae(new SparseAutoencoder({ d_in: 4, d_sae: 8, hook_name: "blocks.0.hook_resid_pre" }), folder);
  const cfgFile = path.join(folder, "cfg.json"), good = fs.readFileSync(cfgFile, "utf8");
  assert.throws(() => loadSae(path.join(dir, "nope")), (e: Error) => e instanceof SaeLoadError && /no SAE folder/.test(e.message));
  const edit = (f: (j: Record<string, unknown>) => void) => { const j = JSON.parse(good); f(j); fs.writeFileSync(cfgFile, JSON.stringify(j)); };
  edit((j) => { j.architecture = "gated"; });
  assert.throws(() => loadSae(folder), (e: Error) => e instanceof SaeConfigError && /unknown architecture "gated"/.test(e.message));
  edit((j) => { j.d_sae = -3; });
  assert.throws(() => loadSae(folder), /d_sae must be a positive integer/);
  edit((j) => { j.d_sae = 9; });
  assert.throws(() => loadSae(folder), /W_enc is \[4, 8\], cfg.json \(d_in 4, d_sae 9, d_out 4\) needs \[4, 9\]/);
  edit((j) => { j.architecture = "jumprelu"; });
  assert.throws(() => loadSae(folder), /missing tensor threshold/);
  edit((j) => { j.architecture = "topk"; });
  assert.throws(() => loadSae(folder), /k must be a positive integer/);
  fs.writeFileSync(cfgFile, "{ not json");
  assert.throws(() => loadSae(folder), /not valid JSON/);
  assert.throws(() => configFromJson({ architecture: "transcoder", d_in: 2, d_sae: 3, d_out: 2, metadata: { hook_name: "a" } }), /hook_name_out/);
});

test("training resumes from its checkpoint bit-identically (with resampling and AuxK on the way)", () => {
  const spec = { d: 8, nFeatures: 12, p: 0.1, seed: 2 };
  const feats = syntheticFeatures(spec);
  const src = () => rowsBatchSource((c) => syntheticRows(spec, feats, 512, c), 64, 3);
  const config = { steps: 40, lr: 3e-3, sparsityCoefficient: 0.5, sparsityWarmupSteps: 10, lrDecaySteps: 10, deadTokens: 128, resampleEvery: 10 };
  for (const activation of ["relu", "topk", "jumprelu"] as const) {
    const make = () => new SparseAutoencoder({ d_in: 8, d_sae: 24, hook_name: "s", activation, k: activation === "topk" ? 3 : null }, { seed: 4 });
    const straight = make();
    trainSae(straight, src(), { config });
    const file = path.join(tmp(), "ckpt.safetensors");
    trainSae(make(), src(), { config, checkpointFile: file, stopAfter: 17 });
    const resumed = make();
    const r = trainSae(resumed, src(), { config, checkpointFile: file, resume: true });
    assert.equal(r.resumedFrom, 17);
    for (const [n, p] of straight.namedParameters()) assertBitwiseEqual(resumed.namedParameters().find(([m]) => m === n)![1], p, `${activation} ${n}`);
    assert.throws(() => trainSae(make(), src(), { config: { ...config, lr: 1e-3 }, checkpointFile: file, resume: true }), /different settings/);
  }
});

test("dashboards: the streamed top examples of a latent equal a brute-force scan of sae.encode; logit effects equal centred W_dec · w · W_U", () => {
  const model = randomModel("gpt2", { seed: 3 });
  const hook = "blocks.1.hook_resid_post";
  const sae = new SparseAutoencoder({ d_in: 16, d_sae: 24, hook_name: hook }, { seed: 2, decoderNorm: 1 });
  const batches = [0, 1, 2].map((b) => randomTokens(model.cfg.d_vocab, 2, 10, 40 + b));
  const latents = [3, 7];
  const dash = latentDashboards(model, sae, batches, { latents, k: 4, contextBefore: 2, contextAfter: 1, skipPositions: 1, topLogits: 3 });
  // Brute force: every (sequence, position) activation of each latent.
  const all: { v: number; seq: number; pos: number; latent: number }[] = [];
  batches.forEach((b, bi) => {
    const acts = cs.noGrad(() => { const c = model.runWithCache(b).cache; return sae.encode(c.get(hook)); }).toArray();
    b.forEach((_, r) => { for (let p = 1; p < 10; p++) latents.forEach((l) => all.push({ v: acts[(r * 10 + p) * 24 + l]!, seq: bi * 2 + r, pos: p, latent: l })); });
  });
  latents.forEach((l, j) => {
    const want = all.filter((a) => a.latent === l).sort((a, b) => b.v - a.v || a.seq - b.seq || a.pos - b.pos).slice(0, 4);
    assert.deepEqual(dash[j]!.examples.map((e) => [e.sequence, e.position]), want.map((w) => [w.seq, w.pos]));
    dash[j]!.examples.forEach((e, i) => { assert.ok(Math.abs(e.value - want[i]!.v) < 1e-6); assert.ok(Math.abs(e.acts[e.offset]! - e.value) < 1e-6); });
    const fired = all.filter((a) => a.latent === l && a.v > 0).length / all.filter((a) => a.latent === l).length;
    assert.ok(Math.abs(dash[j]!.density - fired) < 1e-12);
  });
  // Logit effects by hand for latent 7.
  const W = sae.W_dec.toArray(), w = model.ln_final!.w.toArray(), U = model.unembed.W_U.toArray(), V = model.cfg.d_vocab;
  const row = Array.from({ length: 16 }, (_, i) => W[7 * 16 + i]!), mean = row.reduce((a, b) => a + b) / 16;
  const eff = Array.from({ length: V }, (_, v) => row.reduce((s, x, i) => s + (x - mean) * w[i]! * U[i * V + v]!, 0));
  const order = eff.map((value, token) => ({ token, value })).sort((a, b) => b.value - a.value);
  const got = dash[1]!.logits!;
  assert.deepEqual(got.positive.map((e) => e.token), order.slice(0, 3).map((e) => e.token));
  assert.deepEqual(got.negative.map((e) => e.token), order.slice(-3).reverse().map((e) => e.token));
  assert.ok(Math.abs(got.positive[0]!.value - order[0]!.value) < 1e-5);
  assert.equal(got.via, "direct");
  // A decoder that writes to mlp.hook_post reaches the residual stream through W_out.
  const post = new SparseAutoencoder({ d_in: 24, d_sae: 8, hook_name: "blocks.0.mlp.hook_post" });
  assert.equal(latentLogitEffects(model, post, [0])[0]!.via, "through W_out of block 0");
});

test("activation normalisation folds back exactly: the folded SAE on x equals the trained one on s·x, divided by s_out", () => {
  for (const c of [
    { d_in: 6, d_sae: 12, hook_name: "a" },
    { d_in: 6, d_sae: 12, d_out: 4, hook_name: "a", hook_name_out: "b", skip: true, activation: "jumprelu" },
  ] as const) {
    const sae = new SparseAutoencoder({ ...c, dtype: "float64" }, { seed: 1 });
    cs.noGrad(() => { for (const p of sae.parameters()) { p.data.set(cs.randn(p.shape, { rng: new cs.Rng(5), std: 0.5, dtype: "float64" }).data); p.version++; } });
    const x = cs.randn([5, 6], { rng: new cs.Rng(6), dtype: "float64" });
    const scale = { in: 3, out: c.d_in === 6 && !("d_out" in c) ? 3 : 0.25 };
    const want = cs.noGrad(() => sae.forward(x.mul(scale.in)).div(scale.out));
    foldScale(sae, scale);
    const got = cs.noGrad(() => sae.forward(x));
    const d = Math.max(...Array.from(got.toArray(), (v, i) => Math.abs(v - want.toArray()[i]!)));
    assert.ok(d < 1e-12, `${JSON.stringify(c)}: ${d}`);
  }
});

test("schedules and b_dec initialisation: LR warm-up and final decay, sparsity warm-up, geometric median by hand", () => {
  const c = { ...defaultSaeTrainConfig, steps: 100, lr: 1e-3, lrWarmupSteps: 10, lrDecaySteps: 20, sparsityCoefficient: 4, sparsityWarmupSteps: 8 };
  assert.equal(lrAt(c, 0), 1e-4);            // (0 + 1)/10 of the peak
  assert.equal(lrAt(c, 50), 1e-3);
  assert.equal(lrAt(c, 90), 1e-3 * 10 / 20); // 10 steps left of 20
  assert.equal(coefficientAt(c, 1), 1);       // 4 · 2/8
  assert.equal(coefficientAt(c, 30), 4);
  // 1-D: the median of {0, 1, 10} is 1 (the mean is 11/3).
  assert.ok(Math.abs(geometricMedian(new Float64Array([0, 1, 10]), 1, 500)[0]! - 1) < 1e-3);
  // A square's corners and a far outlier: the median stays near the square, the mean does not.
  const pts = new Float64Array([0, 0, 1, 0, 0, 1, 1, 1, 50, 50]);
  const gm = geometricMedian(pts, 2, 500), mean = rowMean(pts, 2);
  const cost = (p: ArrayLike<number>) => { let s = 0; for (let i = 0; i < 5; i++) s += Math.hypot(pts[2 * i]! - p[0]!, pts[2 * i + 1]! - p[1]!); return s; };
  assert.deepEqual(Array.from(mean), [10.4, 10.4]);
  assert.ok(gm[0]! < 1 && gm[1]! < 1 && Math.abs(gm[0]! - gm[1]!) < 1e-9, `${gm}`);
  for (const [dx, dy] of [[1e-3, 0], [0, 1e-3], [-1e-3, 0], [0, -1e-3]]) assert.ok(cost(gm) <= cost([gm[0]! + dx!, gm[1]! + dy!]) + 1e-9, "a local minimum of the summed distance");
});

test("resampling revives latents killed at initialisation toward features the live ones miss (ReLU); without it they stay dead", () => {
  const spec = { d: 16, nFeatures: 32, p: 0.04, seed: 1 };
  const feats = syntheticFeatures(spec);
  const run = (resampleEvery: number) => {
    const sae = new SparseAutoencoder({ d_in: 16, d_sae: 64, hook_name: "s" }, { seed: 0 });
    cs.noGrad(() => { for (let j = 0; j < 48; j++) sae.b_enc.data[j] = -100; sae.b_enc.version++; }); // 16 live latents for 32 features
    const logs: number[] = [];
    const r = trainSae(sae, rowsBatchSource((c) => syntheticRows(spec, feats, 4096, c), 256, 0), {
      config: { steps: 1000, lr: 3e-3, sparsityCoefficient: 1, lrDecaySteps: 100, deadTokens: 5000, resampleEvery, bDecInit: "mean" },
      logEvery: 1, onStep: (l) => logs.push(l.resampled),
    });
    const cos = maxCosines(feats, sae.W_dec.toArray(), 64);
    return { dead: r.deadFraction, resampled: logs.reduce((a, b) => a + b, 0), found: cos.filter((c) => c > 0.9).length };
  };
  const without = run(0), withR = run(200);
  console.log(`resampling: dead ${(100 * without.dead).toFixed(1)}% without, ${(100 * withR.dead).toFixed(1)}% with (${withR.resampled} latent resamplings); true features found (cosine > 0.9) ${without.found}/32 without, ${withR.found}/32 with`);
  assert.ok(without.dead >= 0.75 && without.resampled === 0 && without.found <= 16, JSON.stringify(without));
  assert.ok(withR.dead < 0.6 && withR.resampled >= 48 && withR.found >= 26, JSON.stringify(withR));
});
