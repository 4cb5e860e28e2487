// Weight processing leaves the model's function unchanged, proven per step and per architecture on
// random models whose norm weights and biases are random too: logits for foldLayerNorm,
// centerWritingWeights and foldValueBiases; log-probs for centerUnembed (it shifts each position's
// logits by one constant, which the test also checks). float32 to 1e-4, float64 to 1e-10. Steps
// an architecture does not allow are refused before any weight changes.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import * as cs from "../src/index.js";
import { centerUnembed, centerWritingWeights, foldLayerNorm, foldValueBiases, processWeights, WeightProcessingError } from "../src/model/weight-processing.js";
import { residHook } from "../src/model/hooks.js";
import type { HookedTransformer } from "../src/model/transformer.js";
import { ARCHS, assertBitwiseEqual, assertClose, maxAbsDiff, randomModel, randomTokens, type Arch } from "./model-fixtures.js";

type Tensor = cs.Tensor;

const TOL = { float32: 1e-4, float64: 1e-10 } as const;
const logits = (m: HookedTransformer, toks: number[][]) => cs.noGrad(() => m.forward(toks));
const snapshot = (m: HookedTransformer) => new Map(m.namedParameters().map(([n, p]) => [n, new cs.Tensor(p.toArray().slice(), p.shape)] as const));

type Step = "foldLayerNorm" | "centerWritingWeights" | "foldValueBiases";
const STEPS: Record<Step, (m: HookedTransformer) => void> = { foldLayerNorm, centerWritingWeights, foldValueBiases };
/** Which logit-preserving steps apply to an architecture (centring writing weights needs LayerNorm). */
const applicable = (arch: Arch): Step[] => (arch === "llama" ? ["foldLayerNorm", "foldValueBiases"] : ["foldLayerNorm", "centerWritingWeights", "foldValueBiases"]);

for (const dtype of ["float32", "float64"] as const) {
  for (const arch of ARCHS) {
    describe(`weight processing on ${arch} (${dtype})`, () => {
      const toks = randomTokens(29, 2, 8, 21);

      for (const step of applicable(arch)) {
        test(`${step} leaves the logits unchanged`, () => {
          const model = randomModel(arch, { dtype, seed: 6 });
          const before = logits(model, toks);
          const params = snapshot(model);
          STEPS[step](model);
          const changed = model.namedParameters().filter(([n, p]) => maxAbsDiff(p, params.get(n)!) > 0).map(([n]) => n);
          // Llama has no attention biases, so folding value biases has nothing to do there.
          if (!(arch === "llama" && step === "foldValueBiases")) assert.ok(changed.length > 0, `${step} changed some weight`);
          assertClose(logits(model, toks), before, TOL[dtype], `${step}: logits`);
        });
      }

      test("centerUnembed shifts each position's logits by one constant: log-probs unchanged", () => {
        const model = randomModel(arch, { dtype, seed: 6 });
        const before = logits(model, toks);
        centerUnembed(model);
        const after = logits(model, toks);
        assertClose(after.logSoftmax(-1), before.logSoftmax(-1), TOL[dtype], "log-probs");
        const shift = after.sub(before); // [batch, pos, d_vocab]
        assertClose(shift, shift.mean(-1, true).expand(shift.shape), TOL[dtype], "shift is constant over d_vocab");
        assert.ok(maxAbsDiff(after, before) > 1e-3, "logits themselves moved");
        assertClose(model.unembed.W_U.mean(-1), cs.zeros([model.cfg.d_model], dtype), TOL[dtype], "W_U rows have zero mean over d_vocab");
      });

      test("processWeights applies every valid step: log-probs unchanged, norms folded to w = 1, b = 0", () => {
        const model = randomModel(arch, { dtype, seed: 8 });
        const before = logits(model, toks);
        const steps = processWeights(model);
        assert.deepEqual(steps, arch === "llama" ? ["foldLn", "centerUnembed", "foldValueBiases"] : ["foldLn", "centerWritingWeights", "centerUnembed", "foldValueBiases"]);
        assertClose(logits(model, toks).logSoftmax(-1), before.logSoftmax(-1), TOL[dtype], "log-probs");
        for (const [name, p] of model.namedParameters()) {
          const leaf = name.split(".").pop()!;
          if (leaf === "w") assert.ok(p.toList().every((v) => v === 1), `${name} = 1`);
          if ((leaf === "b" && !name.startsWith("unembed")) || leaf === "b_V") assert.ok(p.toList().every((v) => v === 0), `${name} = 0`);
        }
        if (arch !== "llama") {
          // LayerNorm's output is centred, so folding also centres every reader over d_model (axis 0 in our layout).
          const readers: [string, Tensor][] = [["W_Q", model.blocks.at(0).attn.Wq], ["W_V", model.blocks.at(1).attn.Wv], ["W_U", model.unembed.W_U]];
          if (model.blocks.at(0).mlp) readers.push(["W_in", model.blocks.at(0).mlp!.W_in]);
          for (const [n, W] of readers) assertClose(W.mean(0), cs.zeros([W.shape[1]!], dtype), TOL[dtype], `${n} centred over d_model`);
          // Everything written into the residual stream has zero mean over d_model, so the stream does.
          const { cache } = cs.noGrad(() => model.runWithCache(toks));
          const resid = cache.get(residHook(model.cfg.n_layers - 1, "post"));
          assertClose(resid.mean(-1), cs.zeros([2, 8], dtype), TOL[dtype], "final resid_post mean over d_model");
        }
        // A second pass finds nothing left to do.
        const once = snapshot(model);
        processWeights(model);
        for (const [n, p] of model.namedParameters()) assertClose(p, once.get(n)!, TOL[dtype], `idempotent: ${n}`);
      });
    });
  }
}

describe("steps an architecture does not allow are refused, with nothing changed", () => {
  const toks = randomTokens(29);

  test("RMSNorm: centerWritingWeights throws WeightProcessingError; folding only scales by w", () => {
    const model = randomModel("llama", { seed: 2 });
    const params = snapshot(model);
    assert.throws(() => processWeights(model, { centerWritingWeights: true }), (e: unknown) => e instanceof WeightProcessingError && /LayerNorm .* this model uses RMS/.test(e.message));
    assert.throws(() => centerWritingWeights(model), WeightProcessingError);
    for (const [n, p] of model.namedParameters()) assertBitwiseEqual(p, params.get(n)!, `unchanged: ${n}`);
    const before = logits(model, toks);
    const W = model.blocks.at(0).attn.Wq.toArray().slice(), w = model.blocks.at(0).ln1!.w.toArray().slice();
    foldLayerNorm(model);
    // RMSNorm does not centre, so W_Q is scaled row by row and nothing else: W'[i, j] = w[i] W[i, j].
    const Wd = model.blocks.at(0).attn.Wq;
    const cols = Wd.shape[1]!;
    for (let i = 0; i < 3; i++) assert.ok(Math.abs(Wd.get(i, 1) - Math.fround(w[i]! * W[i * cols + 1]!)) <= 1e-7, `W_Q[${i}, 1]`);
    assertClose(logits(model, toks), before, 1e-4, "logits after folding RMSNorm");
  });

  test("GPT-2 without b_U (as loaded from Hugging Face) gets a zero b_U that takes ln_final.b; outputs unchanged", () => {
    const model = randomModel("gpt2", { seed: 3, cfg: { unembed_bias: false } });
    assert.equal(model.unembed.b_U, null);
    const before = logits(model, toks);
    processWeights(model);
    assert.ok(model.unembed.b_U, "b_U added");
    assert.equal(model.cfg.unembed_bias, true);
    assert.ok(model.namedParameters().some(([n]) => n === "unembed.b_U"), "b_U is a registered parameter");
    assertClose(logits(model, toks).logSoftmax(-1), before.logSoftmax(-1), 1e-4, "log-probs");
  });


  test("no normalisation: foldLn and centerWritingWeights are refused, the rest applies", () => {
    const model = randomModel("gpt2", { seed: 4, cfg: { normalization_type: null } });
    assert.throws(() => processWeights(model, { foldLn: true }), /no normalisation layers/);
    assert.throws(() => processWeights(model, { centerWritingWeights: true }), /uses no normalisation/);
    const before = logits(model, toks);
    assert.deepEqual(processWeights(model), ["centerUnembed", "foldValueBiases"]);
    assertClose(logits(model, toks).logSoftmax(-1), before.logSoftmax(-1), 1e-4, "log-probs");
  });
});

test("foldValueBiases under grouped-query attention gives each query head its key/value head's bias", () => {
  // Llama-style composition with attention biases on, so there is a b_V to fold.
  const model = randomModel("llama", { seed: 9, dtype: "float64", cfg: { attn_bias: true } });
  const toks = randomTokens(29);
  const before = logits(model, toks);
  const bv: Tensor = new cs.Tensor(model.blocks.at(0).attn.bv!.toArray().slice(), [model.cfg.n_key_value_heads * model.cfg.d_head]);
  assert.ok(bv.toList().some((v) => v !== 0));
  foldValueBiases(model);
  assertClose(logits(model, toks), before, 1e-10, "logits");
  assert.ok(model.blocks.at(0).attn.bv!.toList().every((v) => v === 0), "b_V zeroed");
});
