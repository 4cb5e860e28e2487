// Generation: the KV-cached path against re-running the whole sequence, left-padded batches against
// single prompts, seeded sampling, top-k/top-p against hand-computed distributions, EOS stopping,
// and hooks firing at every step, on small random models of each architecture.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as cs from "../src/index.js";
import { makeConfig, type ModelConfig } from "../src/model/config.js";
import { HookedTransformer } from "../src/model/transformer.js";
import { generate, sampleToken, samplingDistribution, type GenerateOptions } from "../src/model/generate.js";
import { attnHook, residHook } from "../src/model/hooks.js";
import { appendPositions } from "../src/model/kv-cache.js";
import type { KVCache } from "../src/model/components.js";
import { assertClose } from "./helpers.js";

const V = 50;
const configs: Record<string, ModelConfig> = {
  gpt2: makeConfig({ architecture: "gpt2", d_model: 32, n_layers: 2, n_heads: 4, d_vocab: V, n_ctx: 64 }),
  // Partial rotary (4 of 8 dims per head) and parallel attention + MLP.
  neox: makeConfig({ architecture: "neox", d_model: 32, n_layers: 2, n_heads: 4, d_vocab: V, rotary_dim: 4 }),
  // RMSNorm, SwiGLU, grouped-query attention (4 query heads share 2 key/value heads).
  llama: makeConfig({ architecture: "llama", d_model: 32, n_layers: 2, n_heads: 4, n_key_value_heads: 2, d_vocab: V }),
};

/** A random model whose logits are spread out (embeddings scaled up), so greedy choices are not near-ties. */
function randomModel(cfg: ModelConfig, seed = 1): HookedTransformer {
  const m = new HookedTransformer(cfg).initWeights(seed);
  cs.noGrad(() => {
    for (const [name, p] of m.namedParameters()) {
      if (!/W_E|W_U/.test(name)) continue;
      for (let i = 0; i < p.data.length; i++) p.data[i]! *= 30;
      p.version++;
    }
  });
  return m;
}

const greedy: Omit<GenerateOptions, "maxNewTokens"> = { doSample: false };
const prompts = [[3, 14, 15, 9, 2], [6, 5, 3, 5, 8]];

for (const [arch, cfg] of Object.entries(configs)) {
  test(`${arch}: KV-cached greedy generation equals re-running the full sequence (tokens and logits)`, () => {
    const m = randomModel(cfg);
    const cached = generate(m, prompts, { ...greedy, maxNewTokens: 8, returnLogits: true });
    const full = generate(m, prompts, { ...greedy, maxNewTokens: 8, returnLogits: true, useCache: false });
    assert.deepEqual(cached.newTokens, full.newTokens);
    assert.equal(cached.newTokens[0]!.length, 8);
    assert.deepEqual(cached.logits!.shape, [2, 8, V]);
    assertClose(cached.logits!, full.logits!, { rtol: 1e-5, atol: 1e-5, msg: `${arch} logits` });
    // The logits of step 0 are those of the prompt's last position.
    const direct = cs.noGrad(() => m.forward(prompts).select(1, 4));
    assertClose(cached.logits!.select(1, 0), direct, { rtol: 1e-5, atol: 1e-5 });
  });

  test(`${arch}: a left-padded batch of unequal prompts generates what each prompt generates alone`, () => {
    const m = randomModel(cfg, 2);
    const ragged = [[7, 1, 4], [2, 9, 9, 4, 11, 30], [42]];
    const batch = generate(m, ragged, { ...greedy, maxNewTokens: 6, returnLogits: true });
    assert.deepEqual(batch.sequences.shape, [3, 12]);
    assert.deepEqual(batch.attentionMask.toNested(), [
      [0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1],
    ]);
    ragged.forEach((p, b) => {
      const alone = generate(m, [p], { ...greedy, maxNewTokens: 6, returnLogits: true });
      assert.deepEqual(batch.newTokens[b], alone.newTokens[0], `prompt ${b}`);
      assert.deepEqual(batch.tokens[b], [...p, ...alone.newTokens[0]!]);
      assertClose(batch.logits!.select(0, b), alone.logits!.select(0, 0), { rtol: 1e-4, atol: 1e-4, msg: `${arch} prompt ${b}` });
    });
    // The uncached path pads the same way.
    const full = generate(m, ragged, { ...greedy, maxNewTokens: 6, useCache: false });
    assert.deepEqual(full.newTokens, batch.newTokens);
  });
}

test("a padded token tensor with its attentionMask generates like the ragged arrays", () => {
  const m = randomModel(configs.gpt2!);
  const tokens = new cs.Tensor(Int32Array.from([0, 0, 7, 1, 4, 2, 9, 3, 5, 6]), [2, 5]);
  const mask = new cs.Tensor(Int32Array.from([0, 0, 1, 1, 1, 1, 1, 1, 1, 1]), [2, 5]);
  const a = generate(m, tokens, { ...greedy, maxNewTokens: 4, attentionMask: mask });
  const b = generate(m, [[7, 1, 4], [2, 9, 3, 5, 6]], { ...greedy, maxNewTokens: 4 });
  assert.deepEqual(a.newTokens, b.newTokens);
  const right = new cs.Tensor(Int32Array.from([1, 1, 1, 0, 0, 1, 1, 1, 1, 1]), [2, 5]);
  assert.throws(() => generate(m, tokens, { ...greedy, maxNewTokens: 1, attentionMask: right }), /left padded/);
});

test("seeded sampling: same seed, same tokens; different seed, different tokens", () => {
  const m = randomModel(configs.llama!);
  const opts = { maxNewTokens: 12, temperature: 1.5 };
  const a = generate(m, prompts, { ...opts, seed: 7 });
  const b = generate(m, prompts, { ...opts, seed: 7 });
  const c = generate(m, prompts, { ...opts, seed: 8 });
  assert.deepEqual(a.newTokens, b.newTokens);
  assert.notDeepEqual(a.newTokens, c.newTokens);
  // An Rng passed in is advanced: two runs in a row from one generator differ.
  const rng = new cs.Rng(7);
  const r1 = generate(m, prompts, { ...opts, rng }), r2 = generate(m, prompts, { ...opts, rng });
  assert.deepEqual(r1.newTokens, a.newTokens);
  assert.notDeepEqual(r1.newTokens, r2.newTokens);
});

test("top-k = 1 sampling and temperature 0 both equal greedy decoding", () => {
  const m = randomModel(configs.neox!);
  const g = generate(m, prompts, { ...greedy, maxNewTokens: 8 });
  assert.deepEqual(generate(m, prompts, { maxNewTokens: 8, topK: 1, temperature: 2, seed: 3 }).newTokens, g.newTokens);
  assert.deepEqual(generate(m, prompts, { maxNewTokens: 8, temperature: 0, seed: 3 }).newTokens, g.newTokens);
  // Sampling at temperature 1 does leave the greedy path on this model.
  assert.notDeepEqual(generate(m, prompts, { maxNewTokens: 8, seed: 3 }).newTokens, g.newTokens);
});

test("top-p keeps the smallest most-likely set reaching p; top-k applies first; temperature scales logits", () => {
  const logits = [0.5, 0.3, 0.15, 0.05].map(Math.log); // probabilities 0.5, 0.3, 0.15, 0.05
  const dist = (o: Parameters<typeof samplingDistribution>[1]) => {
    const d = samplingDistribution(logits, o);
    return { tokens: Array.from(d.tokens), probs: Array.from(d.probs) };
  };
  const close = (got: number[], want: number[]) => assertClose(got, want, { rtol: 1e-12, atol: 1e-12 });
  let d = dist({ topP: 0.75 }); // 0.5 < 0.75 <= 0.8
  assert.deepEqual(d.tokens, [0, 1]); close(d.probs, [0.625, 0.375]);
  d = dist({ topP: 0.81 }); // 0.8 < 0.81 <= 0.95
  assert.deepEqual(d.tokens, [0, 1, 2]); close(d.probs, [0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95]);
  d = dist({ topP: 0.4 });
  assert.deepEqual(d.tokens, [0]); close(d.probs, [1]);
  d = dist({ topP: 1 });
  assert.deepEqual(d.tokens, [0, 1, 2, 3]); close(d.probs, [0.5, 0.3, 0.15, 0.05]);
  // After top-3 the probabilities are 0.5/0.95, 0.3/0.95 (sum 0.842), so p = 0.83 keeps two.
  d = dist({ topK: 3, topP: 0.83 });
  assert.deepEqual(d.tokens, [0, 1]); close(d.probs, [0.625, 0.375]);
  d = dist({ topP: 0.83 });
  assert.deepEqual(d.tokens, [0, 1, 2]);
  // Temperature 2: p ∝ sqrt(0.5), sqrt(0.3), sqrt(0.15), sqrt(0.05).
  const s = [0.5, 0.3, 0.15, 0.05].map(Math.sqrt), z = s.reduce((a, b) => a + b);
  d = dist({ temperature: 2 });
  close(d.probs, s.map((x) => x / z));
  d = dist({ temperature: 2, topP: 0.6 }); // (s0 + s1) / z = 0.67 reaches 0.6, s0 / z = 0.38 does not
  assert.deepEqual(d.tokens, [0, 1]); close(d.probs, [s[0]! / (s[0]! + s[1]!), s[1]! / (s[0]! + s[1]!)]);
  // Ties in top-k go to the lower token id.
  assert.deepEqual(Array.from(samplingDistribution([1, 3, 3, 3, 0], { topK: 2 }).tokens), [1, 2]);
  assert.throws(() => samplingDistribution(logits, { topP: 0 }), /topP/);
  assert.throws(() => samplingDistribution(logits, { topK: 0 }), /topK/);
  assert.throws(() => samplingDistribution(logits, { temperature: -1 }), /temperature/);
});

test("draws follow the filtered distribution", () => {
  const logits = [0.5, 0.3, 0.15, 0.05].map(Math.log);
  const rng = new cs.Rng(11), n = 20000, counts = [0, 0, 0, 0];
  for (let i = 0; i < n; i++) counts[sampleToken(logits, { topP: 0.75 }, rng)]!++;
  assert.equal(counts[2]! + counts[3]!, 0);
  // Binomial standard deviation sqrt(0.625 * 0.375 / 20000) = 0.0034; allow 4 of them.
  assert.ok(Math.abs(counts[0]! / n - 0.625) < 0.014, `frequency of token 0: ${counts[0]! / n}`);
});

test("temperature near 0 approaches greedy without overflow", () => {
  const logits = [2.0, 2.001, -5, 1.999];
  const d = samplingDistribution(logits, { temperature: 1e-6 });
  assert.equal(d.tokens[0], 1);
  assert.ok(d.probs[0]! > 1 - 1e-12 && d.probs.every((p) => Number.isFinite(p)));
  assert.equal(sampleToken(logits, { temperature: 0 }), 1);
});

test("EOS stops each sequence of a batch on its own; the loop ends when all have stopped", () => {
  const m = randomModel(configs.gpt2!);
  const free = generate(m, prompts, { ...greedy, maxNewTokens: 10 });
  const [r0, r1] = free.newTokens as [number[], number[]];
  // A token sequence 0 emits and sequence 1 never does.
  const i = r0.findIndex((t, j) => !r1.includes(t) && !r0.slice(0, j).includes(t));
  assert.ok(i >= 0, `no usable EOS in ${JSON.stringify(free.newTokens)}`);
  const eos = r0[i]!;
  const res = generate(m, prompts, { ...greedy, maxNewTokens: 10, eosTokenId: eos, padTokenId: 0 });
  assert.deepEqual(res.newTokens[0], r0.slice(0, i + 1));
  assert.deepEqual(res.newTokens[1], r1);
  assert.deepEqual(res.stopReasons, ["eos", "length"]);
  assert.equal(res.logprobs[0]!.length, i + 1);
  // The padded tensor continues the stopped row with the filler.
  assert.deepEqual(res.sequences.toNested(), [[...prompts[0]!, ...r0.slice(0, i + 1), ...new Array(9 - i).fill(0)], [...prompts[1]!, ...r1]]);
  // stopAtEos false ignores it.
  assert.deepEqual(generate(m, prompts, { ...greedy, maxNewTokens: 10, eosTokenId: eos, stopAtEos: false }).newTokens, free.newTokens);
  // When every sequence stops, no further steps run.
  let steps = 0;
  const one = generate(m, [prompts[0]!], { ...greedy, maxNewTokens: 10, eosTokenId: eos, onStep: () => { steps++; } });
  assert.equal(steps, i + 1);
  assert.deepEqual(one.stopReasons, ["eos"]);
});

test("logprobs are the model's log-probabilities of the chosen tokens", () => {
  const m = randomModel(configs.gpt2!);
  const res = generate(m, [prompts[0]!], { maxNewTokens: 5, seed: 4, returnLogits: true });
  const lsm = res.logits!.logSoftmax(-1);
  res.newTokens[0]!.forEach((t, s) => assertClose([res.logprobs[0]![s]!], [lsm.get(0, s, t)], { rtol: 1e-5, atol: 1e-5 }));
});

test("hooks fire at every step (the prompt once, then one position per step) and act on generation", () => {
  const m = randomModel(configs.llama!);
  const shapes: number[][] = [];
  const patterns: cs.Tensor[] = [];
  const progress: number[] = [];
  const res = m.withHooks({
    fwd: [
      ["hook_embed", (a) => { shapes.push([...a.shape]); }],
      // Kept, so it survives the step's memory scope.
      [attnHook(1, "pattern"), (a) => { patterns.push(cs.keep(a)); }],
    ],
  }, () => generate(m, prompts, { ...greedy, maxNewTokens: 4, onStep: (p) => progress.push(p.step) }));
  assert.deepEqual(shapes, [[2, 5, 32], [2, 1, 32], [2, 1, 32], [2, 1, 32]]);
  assert.deepEqual(patterns.map((p) => p.shape), [[2, 4, 5, 5], [2, 4, 1, 6], [2, 4, 1, 7], [2, 4, 1, 8]]);
  assertClose(patterns[3]!.sum(-1), cs.ones([2, 4, 1]), { rtol: 1e-5, atol: 1e-5 });
  assert.deepEqual(progress, [1, 2, 3, 4]);
  assert.equal(res.newTokens[0]!.length, 4);

  // An editing hook applies at every step: the cached and uncached runs agree, and differ from no hook.
  const halve = { fwd: [[residHook(1, "pre"), (a: cs.Tensor) => a.mul(0.5)] as const] };
  const hooked = m.withHooks(halve, () => generate(m, prompts, { ...greedy, maxNewTokens: 6, returnLogits: true }));
  const hookedFull = m.withHooks(halve, () => generate(m, prompts, { ...greedy, maxNewTokens: 6, returnLogits: true, useCache: false }));
  assert.deepEqual(hooked.newTokens, hookedFull.newTokens);
  assertClose(hooked.logits!, hookedFull.logits!, { rtol: 1e-5, atol: 1e-5 });
  const plain = generate(m, prompts, { ...greedy, maxNewTokens: 6, returnLogits: true });
  assert.ok(hooked.logits!.sub(plain.logits!).abs().max().item() > 1e-2);
});

test("results stay readable when generate runs inside the caller's scope", () => {
  const m = randomModel(configs.gpt2!);
  const inside = cs.scope(() => generate(m, prompts, { ...greedy, maxNewTokens: 3, returnLogits: true }));
  const outside = generate(m, prompts, { ...greedy, maxNewTokens: 3, returnLogits: true });
  assert.deepEqual(inside.newTokens, outside.newTokens);
  assertClose(inside.logits!, outside.logits!, { rtol: 0, atol: 0 });
});

test("argument errors name the problem", () => {
  const m = randomModel(configs.gpt2!);
  assert.throws(() => generate(m, prompts, { maxNewTokens: 60 }), /exceed n_ctx = 64/);
  assert.throws(() => generate(m, prompts, { maxNewTokens: -1 }), /maxNewTokens/);
  assert.throws(() => generate(m, [[1, 2], []], { maxNewTokens: 1 }), /at least one token/);
  assert.throws(() => generate(m, [[1, V]], { maxNewTokens: 1 }), /outside the vocabulary/);
  assert.deepEqual(generate(m, prompts, { maxNewTokens: 0 }).newTokens, [[], []]);
});

test("appendPositions: successive appends equal concat, across reallocations, batches and strided inputs", () => {
  const rng = new cs.Rng(5);
  // Batch 2, 3 heads, d_head 4; the new positions arrive as a permuted (non-contiguous) view.
  const parts = [9, 1, 1, 7, 1, 19].map((T) => cs.randn([2, 3, T, 4], { rng }).permute(0, 2, 1, 3));
  let view: cs.Tensor | null = null, ref: cs.Tensor | null = null;
  const storages = new Set<unknown>();
  for (const x of parts) {
    view = appendPositions(view, x);
    ref = ref ? cs.concat([ref, x], 1) : x;
    storages.add(view.rawData);
    assertClose(view, ref, { rtol: 0, atol: 0 });
  }
  // 9 positions get room for 18; the append reaching 19 reallocates (room for 38), which holds all 38.
  assert.equal(storages.size, 2);
});

test("appendPositions: two continuations of one cached prefix do not overwrite each other", () => {
  const rng = new cs.Rng(6);
  const x0 = cs.randn([1, 4, 2, 3], { rng }), x1 = cs.randn([1, 1, 2, 3], { rng }), x2 = cs.randn([1, 1, 2, 3], { rng });
  const prefix = appendPositions(null, x0);
  const a = appendPositions(prefix, x1);
  const b = appendPositions(prefix, x2);
  const a2 = appendPositions(a, x2);
  assertClose(a, cs.concat([x0, x1], 1), { rtol: 0, atol: 0 });
  assertClose(b, cs.concat([x0, x2], 1), { rtol: 0, atol: 0 });
  assertClose(a2, cs.concat([x0, x1, x2], 1), { rtol: 0, atol: 0 });
  assert.equal(a.rawData, prefix.rawData, "the first continuation extends the prefix's buffer in place");
  assert.notEqual(b.rawData, prefix.rawData, "the second copies");
});

for (const [arch, cfg] of Object.entries(configs)) {
  test(`${arch}: a cached prompt can be continued twice; both match full forwards`, () => {
    const m = randomModel(cfg, 3);
    cs.noGrad(() => {
      const cache: KVCache = { keys: new Array(cfg.n_layers).fill(null), values: new Array(cfg.n_layers).fill(null) };
      m.forward([prompts[0]!], { kvCache: cache });
      const fork = (): KVCache => ({ keys: [...cache.keys], values: [...cache.values] });
      const c1 = fork(), c2 = fork();
      const l1 = m.forward([[11, 12]], { kvCache: c1 }), l2 = m.forward([[13]], { kvCache: c2 });
      const l1b = m.forward([[14]], { kvCache: c1 });
      assertClose(l1, m.forward([[...prompts[0]!, 11, 12]]).slice(1, 5, 7), { rtol: 1e-5, atol: 1e-5 });
      assertClose(l2, m.forward([[...prompts[0]!, 13]]).slice(1, 5, 6), { rtol: 1e-5, atol: 1e-5 });
      assertClose(l1b, m.forward([[...prompts[0]!, 11, 12, 14]]).slice(1, 7, 8), { rtol: 1e-5, atol: 1e-5 });
    });
  });
}

for (const arch of ["neox", "llama"] as const) {
  test(`${arch}: rotary tables grown step by step give the logits of one full forward on a fresh model`, () => {
    const grown = randomModel(configs[arch]!, 4), fresh = randomModel(configs[arch]!, 4);
    const res = generate(grown, [prompts[0]!], { ...greedy, maxNewTokens: 12, returnLogits: true });
    const full = cs.noGrad(() => fresh.forward(res.sequences).slice(1, 4, 16));
    assertClose(res.logits!, full, { rtol: 1e-5, atol: 1e-5 });
  });
}

test("forward with lastPositionOnly gives the last position's logits; ln_final hooks still see every position", () => {
  const m = randomModel(configs.gpt2!);
  const seen: number[][] = [];
  const last = m.withHooks({ fwd: [["ln_final.hook_normalized", (a) => { seen.push([...a.shape]); }]] },
    () => cs.noGrad(() => m.forward(prompts, { lastPositionOnly: true })));
  assert.deepEqual(last.shape, [2, 1, V]);
  assert.deepEqual(seen, [[2, 5, 32]]);
  assertClose(last, cs.noGrad(() => m.forward(prompts)).slice(1, 4, 5), { rtol: 1e-5, atol: 1e-5 });
});

test("contextOverflow: 'slide' continues past n_ctx on the last n_ctx tokens, as a manual argmax loop does", () => {
  const m = randomModel(configs.gpt2!, 3); // n_ctx 64, learned positions
  const ragged = [[3, 14, 15, 9, 2], [6, 5, 3]];
  const slid = generate(m, ragged, { ...greedy, maxNewTokens: 70, contextOverflow: "slide" });
  // The reference: one unpadded sequence at a time, each step a full forward over its last 64 tokens.
  for (const [b, p] of ragged.entries()) {
    const seq = [...p];
    for (let s = 0; s < 70; s++) {
      const ctx = seq.slice(-64);
      const row = cs.noGrad(() => m.forward([ctx]).select(1, ctx.length - 1).select(0, 0).toArray() as Float32Array);
      seq.push(row.indexOf(Math.max(...row)));
    }
    assert.deepEqual(slid.tokens[b], seq, `sequence ${b}`);
  }
  assert.throws(() => generate(m, [new Array<number>(65).fill(1)], { maxNewTokens: 1, contextOverflow: "slide" }), /longer than n_ctx = 64/);
  assert.throws(() => generate(m, prompts, { maxNewTokens: 1, contextOverflow: "wrap" as "slide" }), /contextOverflow/);
});
