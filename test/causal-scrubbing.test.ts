// Causal scrubbing (Chan et al. 2022): the identity hypothesis reproduces the model, the empty one the
// random baseline; on a hand-built model where one head provably reads only the first token, the
// right hypothesis recovers all the loss and a wrong one the loss predicted by enumerating its
// equivalence classes; every path of the treeified graph saw an input its feature allows, and the
// scrubbed losses are recomputed by hand from the recorded inputs. The trained induction model is
// checked in circuits.test.ts (see fixtures/scrub-induction.ts), which trains it once.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  causalScrub, causalScrubMany, identityHypothesis, parseHypothesis, HypothesisError, type Hypothesis, type HypothesisNode, type TraceEntry,
} from "../src/analysis/index.js";
import { makeConfig } from "../src/model/config.js";
import { HookedTransformer } from "../src/model/transformer.js";
import { noGrad } from "../src/tensor/autodiff.js";
import { Rng } from "../src/tensor/rng.js";
import { randomModel } from "./model-fixtures.js";

const seqsOf = (rng: Rng, n: number, T: number, V: number) => Array.from({ length: n }, () => Array.from({ length: T }, () => rng.int(0, V)));
const nllOf = (logits: ArrayLike<number>, target: number) => {
  let m = -Infinity;
  for (let i = 0; i < logits.length; i++) m = Math.max(m, logits[i]!);
  let s = 0;
  for (let i = 0; i < logits.length; i++) s += Math.exp(logits[i]! - m);
  return m + Math.log(s) - logits[target]!;
};

describe("causal scrubbing: identity and empty hypotheses", () => {
  for (const arch of ["gpt2", "attn-only"] as const) {
    it(`${arch}: the identity hypothesis gives the model's loss (100%), the empty one the random baseline (0%)`, () => {
      const model = randomModel(arch, { seed: 2 });
      const V = model.cfg.d_vocab, sequences = seqsOf(new Rng(5), 12, 6, V);
      const [id, empty] = causalScrubMany(model, [identityHypothesis(model), { name: "empty", output: [] }], { sequences }, { samples: 20, seed: 3 });
      // The model's own loss from an ordinary forward pass, per reference.
      const logits = noGrad(() => model.forward(sequences));
      const want = id!.refs.map(([s, t]) => nllOf(Array.from({ length: V }, (_, v) => logits.get(s, t, v)), sequences[s]![t + 1]!));
      id!.perRef.forEach((r, i) => {
        assert.ok(Math.abs(r.model - want[i]!) < 1e-5, `model loss ${r.model} vs forward ${want[i]}`);
        assert.ok(Math.abs(r.scrubbed - want[i]!) < 1e-5, `identity scrubbed loss ${r.scrubbed} vs ${want[i]} (ref ${id!.refs[i]})`);
      });
      assert.ok(Math.abs(id!.recovered - 1) < 1e-4, `identity recovers ${id!.recovered}`);
      assert.equal(empty!.scrubbedLoss, empty!.randomLoss);
      assert.ok(empty!.recovered === 0, `empty recovers ${empty!.recovered}`);
      assert.ok(empty!.randomLoss > empty!.modelLoss - 1, "the random baseline is a real loss");
    });
  }
});

/**
 * A 1-layer attention-only model built by hand (no LayerNorm, no biases) on tokens 0..3 and 6 positions.
 * d_model = 4 token dims + 6 position dims + 4 "copy" dims. Head 0 attends (score 80/√6 vs 0) to position 0
 * and copies its token into the copy dims; head 1 attends uniformly and writes into the position dims; the
 * unembedding reads only the copy dims (×5). So the logits at any position are 5·onehot(first token) up to
 * e^-32: the output depends on the input only through head 0, and head 0 only through the token at position 0.
 */
function firstTokenModel(): HookedTransformer {
  const V = 4, T = 6, D = V + T + V, dh = 6;
  const cfg = makeConfig({ architecture: "attn-only", d_model: D, n_layers: 1, n_heads: 2, d_head: dh, d_vocab: V, n_ctx: T, normalization_type: null, attn_bias: false, positional_embedding_type: "standard" });
  const m = new HookedTransformer(cfg);
  const set = (t: { data: ArrayLike<number> & { [i: number]: number }; offset: number; version: number }, cols: number, r: number, c: number, v: number) => { t.data[t.offset + r * cols + c] = v; };
  noGrad(() => {
    const a = m.blocks.items[0]!.attn, H = 2;
    for (let v = 0; v < V; v++) set(m.embed.W_E, D, v, v, 1);
    for (let p = 0; p < T; p++) set(m.pos_embed!.W_pos, D, p, V + p, 1);
    // Stored [d_model, n_heads * d_head]: head h's column j is h * dh + j.
    for (let p = 0; p < T; p++) set(a.Wq, H * dh, V + p, 0, 1);
    set(a.Wk, H * dh, V + 0, 0, 80);
    for (let v = 0; v < V; v++) { set(a.Wv, H * dh, v, v, 1); set(a.Wo, D, v, V + T + v, 1); }
    for (let v = 0; v < V; v++) { set(a.Wv, H * dh, v, dh + v, 1); set(a.Wo, D, dh + v, V + v, 1); }
    for (let v = 0; v < V; v++) set(m.unembed.W_U, V, V + T + v, v, 5);
    for (const p of m.parameters()) p.version++;
  });
  return m;
}

/** Sequences whose even positions repeat the first token; odd positions are noise. Scored at odd positions (next token = first token). */
function firstTokenData(n: number) {
  const rng = new Rng(9);
  const sequences = Array.from({ length: n }, () => { const a = rng.int(0, 4); return Array.from({ length: 6 }, (_, p) => (p % 2 === 0 ? a : rng.int(0, 4))); });
  return { sequences, positions: [1, 3] };
}

const at0 = { kind: "tokens", at: [0] } as const, current = { kind: "tokens", offsets: [0] } as const;
const head0 = (feature: HypothesisNode["feature"], vFeature: HypothesisNode["feature"]): HypothesisNode => ({ node: "head", layer: 0, head: 0, feature, v: [{ node: "embed", feature: vFeature }] });

describe("causal scrubbing on a hand-built model that reads only the first token", () => {
  const model = firstTokenModel(), data = firstTokenData(40);
  const right: Hypothesis = { name: "head 0 copies token[0]", output: [head0(at0, at0)] };
  const wrong: Hypothesis = { name: "head 0 reads the current token", output: [head0(current, current)] };
  const [r, w] = causalScrubMany(model, [right, wrong], data, { samples: 80, seed: 1, trace: true });

  it("the model predicts the first token; the right hypothesis recovers all of the loss", () => {
    assert.ok(Math.abs(r!.modelLoss - Math.log(1 + 3 * Math.exp(-5))) < 1e-5, `model loss ${r!.modelLoss}`);
    assert.ok(Math.abs(r!.scrubbedLoss - r!.modelLoss) < 1e-5 && Math.abs(r!.recovered - 1) < 1e-5, `recovered ${r!.recovered}`);
    assert.ok(w!.recovered < 0.6, `the wrong hypothesis recovers ${w!.recovered}`);
  });

  it("every path saw an input its feature allows, relative to its parent's input (treeified sampling)", () => {
    const seqs = data.sequences;
    const byPath = (res: typeof r, p: string) => res!.trace!.find((e) => e.path === p)!;
    // right: head 0 at (i, t) draws j with seqs[j][0] = seqs[i][0]; its v input's embedding at (j, s) draws j' with seqs[j'][0] = seqs[j][0].
    const check = (e: TraceEntry, same: (a: number[], b: number[], pos: number) => boolean) =>
      e.refs.forEach(([s, t], i) => assert.ok(same(seqs[s]!, seqs[e.drawn[i]!]!, t), `${e.path}: ref ${s}@${t} drew ${e.drawn[i]}`));
    const hr = byPath(r, "output ← L0H0"), vr = byPath(r, "output ← L0H0.v ← embed");
    check(hr, (a, b) => a[0] === b[0]);
    check(vr, (a, b) => a[0] === b[0]);
    // The v input is read at every key position s ≤ t of the head's own input sequence (not the reference's).
    const wantKeys = hr.refs.flatMap(([, t], i) => Array.from({ length: t + 1 }, (_, s) => [hr.drawn[i]!, s]));
    assert.deepEqual(vr.refs, wantKeys);
    const hw = byPath(w, "output ← L0H0"), vw = byPath(w, "output ← L0H0.v ← embed");
    check(hw, (a, b, t) => a[t] === b[t]);
    check(vw, (a, b, t) => a[t] === b[t]);
    // The draws cover each equivalence class (uniform sampling, not always the reference itself).
    const hits = new Set(hw.drawn.map((j, i) => `${hw.refs[i]![0]}:${j}`));
    assert.ok(hw.drawn.filter((j, i) => j !== hw.refs[i]![0]).length > 0.5 * hw.drawn.length && hits.size > 40, "draws are spread over the classes");
  });

  it("the scrubbed losses equal a hand computation from the recorded inputs, and their mean the enumerated expectation", () => {
    const seqs = data.sequences;
    // Head 0 copies the token at key position 0 of its v input: the embedding the path drew for (j, 0).
    const handLoss = (res: typeof r) => {
      const v = res!.trace!.find((e) => e.path === "output ← L0H0.v ← embed")!;
      let k = 0;
      return res!.refs.map(([s, t]) => {
        const copied = seqs[v.drawn[k]!]![0]!;
        k += t + 1;
        return nllOf([0, 1, 2, 3].map((c) => (c === copied ? 5 : 0)), seqs[s]![t + 1]!);
      });
    };
    for (const res of [r, w]) handLoss(res).forEach((l, i) => assert.ok(Math.abs(l - res!.perRef[i]!.scrubbed) < 1e-5, `${res!.hypothesis} ref ${i}: ${res!.perRef[i]!.scrubbed} vs hand ${l}`));
    // Expectation under the wrong hypothesis, by enumeration: j uniform in {j : seqs[j][t] = seqs[i][t]}, then j' uniform in {j' : seqs[j'][0] = seqs[j][0]}.
    const M = seqs.length, loss = (copied: number, target: number) => nllOf([0, 1, 2, 3].map((c) => (c === copied ? 5 : 0)), target);
    const expected = w!.refs.map(([i, t]) => {
      const cls = [...Array(M).keys()].filter((j) => seqs[j]![t] === seqs[i]![t]);
      return cls.reduce((acc, j) => {
        const cls2 = [...Array(M).keys()].filter((q) => seqs[q]![0] === seqs[j]![0]);
        return acc + cls2.reduce((a2, q) => a2 + loss(seqs[q]![0]!, seqs[i]![t + 1]!), 0) / cls2.length;
      }, 0) / cls.length;
    });
    const mean = expected.reduce((a, b) => a + b, 0) / expected.length;
    assert.ok(Math.abs(w!.scrubbedLoss - mean) < 4 * w!.scrubbedStderr, `scrubbed ${w!.scrubbedLoss} vs enumerated ${mean} ± ${w!.scrubbedStderr}`);
    assert.ok(w!.scrubbedLoss > r!.scrubbedLoss + 1, "the wrong hypothesis loses clearly more");
  });
});

describe("hypotheses: JSON format and checks", () => {
  it("parses features and nodes, and matches the library form", () => {
    const h = parseHypothesis({
      name: "x", output: [{ node: "head", layer: 0, head: 0, feature: "token[0]", v: [{ node: "embed", feature: ["prev-token", "token", "token[pos+2]"] }] }],
    });
    assert.deepEqual(h, { name: "x", output: [{ node: "head", layer: 0, head: 0, feature: { kind: "tokens", at: [0] }, v: [{ node: "embed", feature: { kind: "tokens", offsets: [-1, 0, 2] } }] }] });
    // The JSON form scrubs exactly as the library form.
    const model = firstTokenModel(), data = firstTokenData(20);
    const a = causalScrub(model, parseHypothesis({ output: [{ node: "head", layer: 0, head: 0, feature: "token[0]", v: [{ node: "embed", feature: "token[0]" }] }] }), data, { samples: 10 });
    const b = causalScrub(model, { output: [head0(at0, at0)] }, data, { samples: 10 });
    assert.deepEqual(a.perRef, b.perRef);
  });

  it("rejects malformed hypotheses with the path named", () => {
    assert.throws(() => parseHypothesis({ output: [{ node: "head", layer: 0, head: 0, feature: "token[x]" }] }), /output\[0\]: unknown feature "token\[x\]"/);
    assert.throws(() => parseHypothesis({ output: [{ node: "attn", feature: "any" }] }), /output\[0\]: "node" must be/);
    assert.throws(() => parseHypothesis({ output: [{ node: "embed", feature: "any", q: [] }] }), /unexpected field "q" on a embed node/);
    assert.throws(() => parseHypothesis({ output: [{ node: "head", layer: 0, head: 0, feature: "any", k: [{ node: "embed" }] }] }), /output\[0\]\.k\[0\]: embed node has no "feature"/);
    assert.throws(() => parseHypothesis([]), HypothesisError);
  });

  it("rejects components the model lacks or that do not feed the input", () => {
    const model = randomModel("gpt2", { seed: 1 }), data = { sequences: seqsOf(new Rng(1), 4, 5, model.cfg.d_vocab) };
    const run = (output: HypothesisNode[]) => () => causalScrub(model, { output }, data, { samples: 2 });
    const any = { kind: "any" } as const;
    assert.throws(run([{ node: "head", layer: 9, head: 0, feature: any }]), /output: L9H0 is not a head of this model/);
    assert.throws(run([{ node: "head", layer: 0, head: 0, feature: any, q: [{ node: "head", layer: 1, head: 0, feature: any }] }]), /output ← L0H0\.q: L1H0 does not feed this input/);
    assert.throws(run([{ node: "embed", feature: any }, { node: "embed", feature: any }]), /embed is named twice/);
    assert.throws(() => causalScrub(randomModel("attn-only"), { output: [{ node: "mlp", layer: 0, feature: any }] }, data, { samples: 2 }), /MLP0 is not an MLP of this model \(it is attention-only\)/);
    assert.throws(() => causalScrub(randomModel("llama"), { output: [] }, data), /rotary/);
    assert.throws(() => causalScrub(model, { output: [] }, { sequences: [[1, 2, 3], [1, 2]] }), /sequence 1 has 2 tokens/);
    // An MLP reads the same layer's heads (sequential blocks): allowed.
    assert.doesNotThrow(run([{ node: "mlp", layer: 0, feature: any, in: [{ node: "head", layer: 0, head: 1, feature: any }] }]));
  });
});
