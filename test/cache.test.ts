// ActivationCache on small random models of every architecture: the residual decompositions add up
// to the residual stream they decompose, per-head results add up to attn_out, and direct logit
// attribution of the full decomposition adds up to the logit minus the two constant terms no
// component owns (ln_final.b · W_U[:, t] and b_U[t]); plus lookups, pos picking, map round trips
// and the errors a cache without a model gives.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import * as cs from "../src/index.js";
import { ActivationCache, CacheError } from "../src/model/cache.js";
import { attnHook, blockHook, HookNameError, residHook, type HookName } from "../src/model/hooks.js";
import { processWeights } from "../src/model/weight-processing.js";
import type { HookedTransformer } from "../src/model/transformer.js";
import { ARCHS, assertBitwiseEqual, assertClose, randomModel, randomTokens } from "./model-fixtures.js";

type Tensor = cs.Tensor;

/** logits[b, p, tok[b, p]] − (ln_final.b · W_U[:, tok] + b_U[tok]): what a full DLA should sum to. */
function logitWithoutConstants(model: HookedTransformer, logits: Tensor, tok: Tensor): Tensor {
  const picked = logits.gather(2, tok.reshape([...tok.shape, 1])).reshape(tok.shape); // [batch, pos]
  const W_U = model.unembed.W_U; // [d_model, d_vocab]
  let constant = cs.zeros([model.cfg.d_vocab]);
  if (model.ln_final?.b) constant = constant.add(model.ln_final.b.reshape([1, -1]).matmul(W_U).reshape([-1]));
  if (model.unembed.b_U) constant = constant.add(model.unembed.b_U);
  return picked.sub(constant.indexSelect(0, tok));
}

for (const arch of ARCHS) {
  describe(`ActivationCache on ${arch}`, () => {
    const model = randomModel(arch, { seed: 1 });
    const cfg = model.cfg, n = cfg.n_layers;
    const toks = randomTokens(cfg.d_vocab, 2, 6, 3);
    const { logits, cache } = cs.noGrad(() => model.runWithCache(toks, { names: () => true }));
    const hasMid = !cfg.attn_only && !cfg.parallel_attn_mlp;
    const embedLabels = cfg.positional_embedding_type === "standard" ? ["embed", "pos_embed"] : ["embed"];

    test("decomposeResid sums to the residual stream it decomposes", () => {
      const full = cs.noGrad(() => cache.decomposeResid());
      const perLayer = (l: number) => (cfg.attn_only ? [`${l}_attn_out`] : [`${l}_attn_out`, `${l}_mlp_out`]);
      assert.deepEqual(full.labels, [...embedLabels, ...perLayer(0), ...perLayer(1)]);
      assert.deepEqual(full.components.shape, [full.labels.length, 2, 6, cfg.d_model]);
      assertClose(full.components.sum(0), cache.get(residHook(n - 1, "post")), 1e-5, "Σ components vs final resid_post");
      assertClose(cache.decomposeResid(1).components.sum(0), cache.get(residHook(1, "pre")), 1e-5, "Σ components vs blocks.1.hook_resid_pre");
      const noEmbeds = cache.decomposeResid(1, { inclEmbeds: false });
      assert.deepEqual(noEmbeds.labels, perLayer(0));
      if (cfg.attn_only) {
        assert.throws(() => cache.decomposeResid(1, { mlpInput: true }), CacheError);
      } else {
        const mlpIn = cache.decomposeResid(1, { mlpInput: true });
        // A parallel block's MLP reads resid_pre; a sequential one's reads resid_mid.
        const target = hasMid ? cache.get(residHook(1, "mid")) : cache.get(residHook(1, "pre"));
        assert.equal(mlpIn.labels.at(-1), hasMid ? "1_attn_out" : "0_mlp_out");
        assertClose(mlpIn.components.sum(0), target, 1e-5, "Σ components vs blocks.1 MLP input");
      }
    });

    test("accumulatedResid walks the residual stream and ends at the final residual", () => {
      const acc = cache.accumulatedResid();
      assert.deepEqual(acc.labels, ["0_pre", "1_pre", "final_post"]);
      assertBitwiseEqual(acc.components.select(0, 2), cache.get(residHook(n - 1, "post")), "last element vs final resid_post");
      assertBitwiseEqual(acc.components.select(0, 1), cache.get(residHook(1, "pre")), "1_pre");
      assert.deepEqual(cache.accumulatedResid(1).labels, ["0_pre", "1_pre"]);
      if (hasMid) {
        assert.deepEqual(cache.accumulatedResid(undefined, { inclMid: true }).labels, ["0_pre", "0_mid", "1_pre", "1_mid", "final_post"]);
        const mlpIn = cache.accumulatedResid(1, { mlpInput: true });
        assert.deepEqual(mlpIn.labels, ["0_pre", "1_pre", "1_mid"]);
        assertBitwiseEqual(mlpIn.components.select(0, 2), cache.get(residHook(1, "mid")), "1_mid");
      } else {
        assert.throws(() => cache.accumulatedResid(undefined, { inclMid: true }), /no hook_resid_mid/);
      }
      const last = cache.accumulatedResid(undefined, { pos: -1 });
      assert.deepEqual(last.components.shape, [3, 2, cfg.d_model]);
      assertBitwiseEqual(last.components.select(0, 2), cache.get(residHook(n - 1, "post")).select(1, 5), "pos -1 picks the last position");
    });

    test("stackHeadResults summed over heads plus b_O equals attn_out, from hook_result or from hook_z and W_O", () => {
      const fromResult = cache.stackHeadResults();
      const { cache: zOnly } = cs.noGrad(() => model.runWithCache(toks, { names: (nm: HookName) => !nm.endsWith("hook_result") }));
      assert.ok(!zOnly.has(attnHook(0, "result")));
      const fromZ = zOnly.stackHeadResults();
      assert.deepEqual(fromResult.labels, ["L0H0", "L0H1", "L0H2", "L0H3", "L1H0", "L1H1", "L1H2", "L1H3"]);
      assert.deepEqual(fromZ.labels, fromResult.labels);
      assert.deepEqual(fromZ.components.shape, [n * cfg.n_heads, 2, 6, cfg.d_model]);
      assertClose(fromZ.components, fromResult.components, 1e-6, "z W_O vs hook_result");
      for (let l = 0; l < n; l++) {
        const bO = model.blocks.at(l).attn.bo;
        for (const [what, stack, c] of [["hook_result", fromResult, cache], ["hook_z", fromZ, zOnly]] as const) {
          const heads = stack.components.slice(0, l * cfg.n_heads, (l + 1) * cfg.n_heads).sum(0);
          assertClose(bO ? heads.add(bO) : heads, c.at(l, "hook_attn_out"), 1e-5, `L${l} from ${what}: Σ heads + b_O vs attn_out`);
        }
      }
      const first = cache.stackHeadResults(1, { pos: 2 });
      assert.deepEqual(first.components.shape, [cfg.n_heads, 2, cfg.d_model]);
      assert.equal(first.labels.length, cfg.n_heads);
    });

    test("applyLnToStack: the components through the norm sum to its output minus b", () => {
      for (const [layer, name, norm] of [
        [undefined, "ln_final", model.ln_final],
        [1, "blocks.1.ln1", model.blocks.at(1).ln1],
      ] as const) {
        const stack = cache.applyLnToStack(cache.decomposeResid(layer), layer);
        if (!norm) continue;
        const normalized = cache.get(`${name}.hook_normalized` as HookName); // [batch, pos, d_model]
        assertClose(stack.components.sum(0), normalized.mul(norm.w), 1e-5, `${name}: Σ components vs hook_normalized · w`);
      }
      if (hasMid) {
        const stack = cache.applyLnToStack(cache.decomposeResid(1, { mlpInput: true }), 1, { mlpInput: true });
        assertClose(stack.components.sum(0), cache.at(1, "ln2.hook_normalized").mul(model.blocks.at(1).ln2!.w), 1e-5, "ln2");
      }
      assert.throws(() => cache.applyLnToStack(cache.decomposeResid(undefined, { pos: 1 })), /pass the same pos/);
    });

    test("logitAttrs of the full decomposition sums to the logit minus ln_final.b · W_U[:, t] and b_U[t]", () => {
      const tok = cs.tensor(randomTokens(cfg.d_vocab, 2, 6, 9), [2, 6], "int32");
      const stack = cache.applyLnToStack(cache.decomposeResid());
      const attrs = cache.logitAttrs(stack, { token: tok });
      assert.deepEqual(attrs.components.shape, [stack.labels.length, 2, 6]);
      assert.deepEqual(attrs.labels, stack.labels);
      assertClose(attrs.components.sum(0), logitWithoutConstants(model, logits, tok), 1e-4, "Σ DLA vs logit");
      // Logit difference between two fixed tokens, three ways: numbers, a direction, and tensors at one position.
      const [a, b] = [5, 11];
      const diff = cache.logitAttrs(stack, { token: a, incorrect: b }).components.sum(0);
      const W_U = model.unembed.W_U;
      const dir = W_U.select(1, a).sub(W_U.select(1, b));
      assertClose(cache.logitAttrs(stack, { direction: dir }).components.sum(0), diff, 1e-6, "direction vs token pair");
      const ld = logitWithoutConstants(model, logits, cs.full([2, 6], a, "int32")).sub(logitWithoutConstants(model, logits, cs.full([2, 6], b, "int32")));
      assertClose(diff, ld, 1e-4, "Σ DLA of a logit difference");
      const atLast = cache.logitAttrs(cache.applyLnToStack(cache.decomposeResid(undefined, { pos: -1 }), undefined, { pos: -1 }), { token: tok }, { pos: -1 });
      assert.deepEqual(atLast.components.shape, [stack.labels.length, 2]);
      assertClose(atLast.components, attrs.components.select(2, 5), 1e-6, "pos -1 vs full then pick");
    });
  });
}

test("after processWeights, DLA of the full decomposition sums to the logit minus b_U[t] (TransformerLens's setting)", () => {
  for (const arch of ARCHS) {
    const model = randomModel(arch, { seed: 2 });
    processWeights(model);
    const toks = randomTokens(model.cfg.d_vocab, 2, 5, 4);
    const { logits, cache } = cs.noGrad(() => model.runWithCache(toks, { names: () => true }));
    const tok = cs.tensor(toks, [2, 5], "int32");
    const heads = cache.stackHeadResults();
    const attrs = cache.logitAttrs(cache.applyLnToStack(cache.decomposeResid()), { token: tok });
    const bU = model.unembed.b_U ? model.unembed.b_U.indexSelect(0, tok) : cs.zeros([2, 5]);
    const picked = logits.gather(2, tok.reshape([2, 5, 1])).reshape([2, 5]);
    assertClose(attrs.components.sum(0), picked.sub(bU), 1e-4, `${arch}: Σ DLA vs logit − b_U`);
    assert.equal(heads.labels.length, model.cfg.n_layers * model.cfg.n_heads);
  }
});

test("runWithCache caches every hook point except the per-head attn.hook_result by default; asking by name adds it", () => {
  const model = randomModel("gpt2", { seed: 6 });
  const toks = randomTokens(model.cfg.d_vocab, 1, 4, 2);
  const { cache } = cs.noGrad(() => model.runWithCache(toks));
  const expected = model.hookNames().filter((n) => !n.endsWith(".attn.hook_result"));
  assert.deepEqual(cache.names, expected);
  const { cache: withResult } = cs.noGrad(() => model.runWithCache(toks, { names: ["blocks.0.attn.hook_result"] }));
  assert.deepEqual(withResult.get("blocks.0.attn.hook_result").shape, [1, 4, model.cfg.n_heads, model.cfg.d_model]);
});

describe("lookups, maps and a cache without a model", () => {
  const model = randomModel("gpt2", { seed: 5 });
  const toks = randomTokens(model.cfg.d_vocab, 1, 4, 2);
  const { cache } = cs.noGrad(() => model.runWithCache(toks, { names: () => true }));

  test("at(layer, name) is get(blocks.layer.name), negative layers from the end", () => {
    assert.equal(cache.at(1, "attn.hook_z"), cache.get("blocks.1.attn.hook_z"));
    assert.equal(cache.at(-1, "hook_resid_post"), cache.get(blockHook(1, "hook_resid_post")));
    assert.throws(() => cache.at(2, "hook_resid_pre"), RangeError);
    assert.throws(() => cache.get("blocks.0.attn.hook_zz" as unknown as HookName), HookNameError);
    // @ts-expect-error "hook_resid_preee" is not a block hook point
    assert.throws(() => cache.at(0, "hook_resid_preee"), HookNameError);
  });

  test("a filtered-out activation is reported as such", () => {
    const { cache: few } = cs.noGrad(() => model.runWithCache(toks, { names: [residHook(0, "pre")] }));
    assert.equal(few.size, 1);
    assert.throws(() => few.get(residHook(0, "post")), /was not cached/);
    assert.throws(() => few.decomposeResid(), /"hook_embed" was not cached/);
  });

  test("toMap/fromMap round-trip; decompositions need the model", () => {
    const map = cache.toMap();
    assert.equal(map.size, model.hookNames().length);
    const withModel = ActivationCache.fromMap(map, model);
    assertBitwiseEqual(withModel.stackHeadResults().components, cache.stackHeadResults().components, "stackHeadResults after round trip");
    const bare = ActivationCache.fromMap(map);
    assert.deepEqual(bare.names, cache.names);
    // Structure comes from the names alone; weights need the model.
    assertBitwiseEqual(bare.decomposeResid().components, cache.decomposeResid().components, "decomposeResid without a model");
    assert.throws(() => bare.stackHeadResults(), CacheError);
    assert.throws(() => bare.logitAttrs(bare.decomposeResid(), { token: 1 }), /needs the model's weights/);
    const bad = new Map(map);
    bad.set("blocks.7.hook_resid_pre", cs.zeros([1]));
    assert.throws(() => ActivationCache.fromMap(bad, model), HookNameError);
  });
});
