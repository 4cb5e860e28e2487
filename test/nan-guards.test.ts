// Silent garbage made loud: NaN/Inf in loaded weights (named by tensor) and in a forward pass (named
// by the first hook point that holds one), negative norm epsilons in configs, invalid token ids in
// tensors, and optimizer settings and state checked when a checkpoint is resumed.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as cs from "../src/index.js";
import { CheckpointError, loadCheckpointFile, saveCheckpointFile } from "../src/train/checkpoint.js";
import { randomModel } from "./model-fixtures.js";

const SHARED = path.resolve(process.cwd(), "../shared/models");
const tmpDirs: string[] = [];
const tmp = (): string => { const d = fs.mkdtempSync(path.join(os.tmpdir(), "cs-nan-")); tmpDirs.push(d); return d; };
process.on("exit", () => { for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true }); });

/** A GPT-2 snapshot whose tensor `name` has element `at` set to `value`. */
function poisonedSnapshot(name: string, at: number, value: number): string {
  const dir = tmp();
  cs.saveHF(randomModel("gpt2", { seed: 1, cfg: { unembed_bias: false } }), dir);
  const file = path.join(dir, "model.safetensors");
  const tensors = cs.loadSafetensors(file);
  const t = tensors.get(name);
  assert.ok(t, `${name} is in the snapshot (has ${[...tensors.keys()].join(", ")})`);
  t.data[at] = value;
  cs.saveSafetensors(file, tensors, { format: "pt" });
  return dir;
}

test("loading: a NaN or Inf weight is named by its tensor; checkFinite: false loads it, and the first forward names the hook point", () => {
  const dir = poisonedSnapshot("transformer.h.1.mlp.c_fc.weight", 7, NaN);
  assert.throws(() => cs.loadPretrained(dir), (e: unknown) => e instanceof cs.NonFiniteError && e.where === "transformer.h.1.mlp.c_fc.weight" && /holds NaN at \[0, 7\]/.test(e.message));
  const { model } = cs.loadPretrained(dir, { checkFinite: false });
  assert.equal(model.checkFinite, false, "checkFinite: false at load turns the logits check off too");
  const logits = cs.noGrad(() => model.forward([[1, 2, 3]]));
  assert.ok(Number.isNaN(logits.toArray()[0]!), "without the check the NaN reaches the logits");
  model.checkFinite = true;
  assert.throws(() => cs.noGrad(() => model.forward([[1, 2, 3]])), (e: unknown) => {
    assert.ok(e instanceof cs.NonFiniteError);
    console.log(`forward: ${e.message}`);
    // W_in feeds blocks.1.mlp.hook_pre, the first activation it can touch.
    return e.where === "blocks.1.mlp.hook_pre" && /parameter blocks\.1\.mlp\.W_in holds NaN/.test(e.message);
  });
  assert.doesNotThrow(() => cs.noGrad(() => model.forward([[1, 2, 3]], { checkFinite: false })));
  const inf = poisonedSnapshot("transformer.wte.weight", 3, -Infinity);
  assert.throws(() => cs.loadPretrained(inf), /transformer\.wte\.weight" holds -Infinity at \[0, 3\]/);
});

test("config: a negative layer_norm_epsilon / rms_norm_eps is rejected by name", () => {
  const dir = tmp();
  cs.saveHF(randomModel("gpt2", { seed: 1, cfg: { unembed_bias: false } }), dir);
  const cfgFile = path.join(dir, "config.json");
  const json = JSON.parse(fs.readFileSync(cfgFile, "utf8")) as Record<string, unknown>;
  fs.writeFileSync(cfgFile, JSON.stringify({ ...json, layer_norm_epsilon: -1 }));
  assert.throws(() => cs.loadPretrained(dir), (e: unknown) => e instanceof cs.HFConfigError && /"layer_norm_epsilon" must be >= 0, got -1/.test(e.message));
  assert.throws(() => cs.configFromHF({ architectures: ["LlamaForCausalLM"], hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 16, vocab_size: 10, rms_norm_eps: -1e-6 }), /"rms_norm_eps" must be >= 0/);
  assert.throws(() => cs.makeConfig({ d_model: 8, n_layers: 1, n_heads: 2, d_vocab: 10, eps: -1 }), /eps must be a finite number >= 0, got -1/);
  assert.throws(() => cs.makeConfig({ d_model: 8, n_layers: 1, n_heads: 2, d_vocab: 10, eps: NaN }), /eps must be a finite number >= 0, got NaN/);
});

test("forward: eps = -1 set after construction is traced to the first norm hook, with the epsilon named", { skip: fs.existsSync(path.join(SHARED, "tiny-gpt2")) ? false : "tiny-gpt2 not found" }, () => {
  const { model } = cs.loadPretrained(path.join(SHARED, "tiny-gpt2"));
  const ok = cs.noGrad(() => model.forward([[464, 318, 257]])).toArray();
  assert.ok(ok.every(Number.isFinite));
  model.cfg.eps = -1; // d_model 2: every residual's variance is below 1, so variance + eps < 0
  assert.throws(() => cs.noGrad(() => model.forward([[464, 318, 257]])), (e: unknown) => {
    assert.ok(e instanceof cs.NonFiniteError);
    console.log(`tiny-gpt2 with eps = -1: ${e.message}`);
    return e.where === "blocks.0.ln1.hook_scale" && /eps \(layer_norm_epsilon \/ rms_norm_eps\) = -1/.test(e.message);
  });
});

test("forward: NaN written by a user's hook is named at that hook; a NaN unembedding is named as such; the KV cache is left as it was", () => {
  const model = randomModel("llama", { seed: 2 });
  const nanAt = (a: cs.Tensor) => { const b = a.contiguous(); const d = b.data.slice(); d[5] = NaN; return new cs.Tensor(d, b.shape); };
  assert.throws(() => cs.noGrad(() => model.runWithHooks([[1, 2, 3]], { fwd: [["blocks.1.hook_resid_mid", nanAt]] })), (e: unknown) => e instanceof cs.NonFiniteError && e.where === "blocks.1.hook_resid_mid");
  // Under gradients too (the probe rerun is without them).
  assert.throws(() => model.runWithHooks([[1, 2, 3]], { fwd: [["blocks.0.attn.hook_z", nanAt]] }), (e: unknown) => e instanceof cs.NonFiniteError && e.where === "blocks.0.attn.hook_z");
  // Generation: a failed step leaves the cache as it was before the call.
  const kv: cs.KVCache = { keys: [], values: [] };
  cs.noGrad(() => model.forward([[1, 2, 3]], { kvCache: kv }));
  const before = kv.keys.map((k) => k!.shape[1]);
  cs.noGrad(() => { model.unembed.W_U.data[0] = Infinity; model.unembed.W_U.version++; }); // version: linear() repacks it
  assert.throws(() => cs.noGrad(() => model.forward([[4]], { kvCache: kv, lastPositionOnly: true })), (e: unknown) => {
    assert.ok(e instanceof cs.NonFiniteError);
    return e.where === "logits" && /arises in the unembedding/.test(e.message) && /parameter unembed\.W_U holds Infinity at \[0, 0\]/.test(e.message);
  });
  assert.deepEqual(kv.keys.map((k) => k!.shape[1]), before);
});

test("tokens: a tensor with negative, NaN, non-integer or too large ids is rejected like a number[]", () => {
  const model = randomModel("gpt2", { seed: 0 });
  const V = model.cfg.d_vocab;
  const cases: [cs.Tensor, RegExp][] = [
    [new cs.Tensor(Int32Array.from([1, -1, 2]), [1, 3]), /token -1 at \[0, 1\] is outside the vocabulary \[0, 29\)/],
    [new cs.Tensor(Int32Array.from([1, 2, V]), [3]), new RegExp(`token ${V} at \\[0, 2\\] is outside`)],
    [new cs.Tensor(Float32Array.from([1, 2, 3, NaN]), [2, 2]), /token NaN at \[1, 1\] .*must be integers/],
    [new cs.Tensor(Float64Array.from([2.5, 1]), [1, 2]), /token 2\.5 at \[0, 0\] .*must be integers/],
  ];
  for (const [t, re] of cases) {
    assert.throws(() => model.forward(t), (e: unknown) => e instanceof RangeError && re.test(e.message), `${re}`);
  }
  assert.throws(() => model.forward([[1, 2], [3, -4]]), /token -4 at \[1, 1\] is outside the vocabulary/);
  // Float ids that are whole numbers are fine, as before.
  assert.doesNotThrow(() => cs.noGrad(() => model.forward(new cs.Tensor(Float32Array.from([1, 2]), [1, 2]))));
});

test("optimizer: bad settings and state are rejected on construction and on loadStateDict, leaving the optimizer unchanged", () => {
  const p = () => cs.zeros([3]).requireGrad();
  for (const [opts, re] of [[{ beta1: 1 }, /beta1 = 1 must be in \[0, 1\)/], [{ beta2: -0.1 }, /beta2 = -0\.1/], [{ eps: 0 }, /eps = 0 must be finite and > 0/], [{ weightDecay: NaN }, /weightDecay = NaN must be finite/], [{ lr: -1 }, /lr = -1/]] as const)
    assert.throws(() => new cs.AdamW([p()], opts), re);
  assert.throws(() => new cs.SGD([p()], { lr: 0.1, momentum: -1 }), /momentum = -1/);
  const w = p();
  const opt = new cs.AdamW([w]);
  w.grad = cs.ones([3]); opt.step();
  const good = opt.stateDict();
  const tamper = (f: (sd: typeof good) => void) => { const sd = structuredClone(good); f(sd); return sd; };
  const bad: [typeof good, RegExp][] = [
    [tamper((sd) => { sd.groups[0]!.hyper.eps = -1e-8; }), /group 0: eps = -1e-8 must be finite and > 0/],
    [tamper((sd) => { sd.groups[0]!.hyper.beta2 = 1; }), /group 0: beta2 = 1 must be in \[0, 1\)/],
    [tamper((sd) => { sd.groups[0]!.hyper.weightDecay = Infinity; }), /weightDecay = Infinity must be finite/],
    [tamper((sd) => { sd.steps = -1; }), /steps = -1 must be an integer >= 0/],
    [tamper((sd) => { sd.state[0]!.step = 1.5; }), /parameter 0 has step 1\.5/],
    [tamper((sd) => { sd.state[0]!.buffers.exp_avg_sq![1] = NaN; }), /buffer "exp_avg_sq" holds NaN at element 1/],
  ];
  for (const [sd, re] of bad) assert.throws(() => opt.loadStateDict(sd), re);
  assert.deepEqual(opt.stateDict(), good, "a rejected state changes nothing");
});

test("checkpoint resume: a NaN parameter or an invalid optimizer setting in the file is named", () => {
  const dir = tmp();
  const w = cs.zeros([2, 2]).requireGrad();
  const opt = new cs.AdamW([w]);
  w.grad = cs.ones([2, 2]); opt.step();
  const save = (file: string) => saveCheckpointFile(file, "state", { flatParams: [w], names: ["w"], opt, version: 1, state: {} });
  const okFile = path.join(dir, "ok.safetensors");
  save(okFile);
  const fresh = () => { const v = cs.zeros([2, 2]).requireGrad(); return { v, o: new cs.AdamW([v]) }; };
  const f = fresh();
  assert.doesNotThrow(() => loadCheckpointFile(okFile, "state", 1, [f.v], ["w"], f.o));
  opt.groups[0]!.beta1 = 1.5; // as a hand-edited or corrupted checkpoint would carry it
  const badHyper = path.join(dir, "beta.safetensors");
  save(badHyper);
  const g = fresh();
  assert.throws(() => loadCheckpointFile(badHyper, "state", 1, [g.v], ["w"], g.o), (e: unknown) => e instanceof CheckpointError && /beta\.safetensors: loadStateDict: group 0: beta1 = 1\.5 must be in \[0, 1\)/.test(e.message));
  opt.groups[0]!.beta1 = 0.9;
  w.data[3] = NaN;
  const nanFile = path.join(dir, "nan.safetensors");
  save(nanFile);
  const h = fresh();
  assert.throws(() => loadCheckpointFile(nanFile, "state", 1, [h.v], ["w"], h.o), /param\.0 \(w\) holds NaN at \[1, 1\]/);
  assert.equal(h.v.data[3], 0, "the model is left as it was");
});

test("the logits check: one backend sum, confirmed element by element when it is not finite; overflow is no false alarm", () => {
  const logits = cs.randn([1, 128, 50257], { rng: new cs.Rng(0) });
  const t0 = performance.now();
  const ok = cs.allFinite(logits);
  const ms = performance.now() - t0;
  assert.equal(ok, true);
  console.log(`allFinite over ${logits.size} logits (GPT-2 small, 128 tokens): ${ms.toFixed(2)} ms on the ${cs.getBackend().name} backend`);
  for (const [v, name] of [[NaN, "NaN"], [Infinity, "Infinity"], [-Infinity, "-Infinity"]] as const) {
    const d = logits.data.slice(); d[d.length - 1] = v;
    const t = new cs.Tensor(d, logits.shape);
    assert.equal(cs.allFinite(t), false, name);
    assert.equal(cs.nonFiniteAt(t), `${name} at [0, 127, 50256]`);
  }
  // Finite float32 values whose sum overflows: still all finite.
  assert.equal(cs.allFinite(new cs.Tensor(Float32Array.from([3e38, 3e38, 3e38]), [3])), true);
});
