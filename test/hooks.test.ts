// Hook acceptance tests on small random models of every architecture (gpt2, neox with parallel
// attention+MLP and partial rotary, llama with RMSNorm/SwiGLU/GQA, attention-only):
// self-patching is bitwise invisible; zero-ablating a head touches nothing upstream and removes
// exactly its contribution; gradients at hook points (leaf replacement and backward hooks) match
// central finite differences in float64; backward hooks can replace gradients; hooks never leak,
// names are checked at compile and run time; attention hook points show what TransformerLens shows.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import * as cs from "../src/index.js";
import { attnHook, blockHook, HookNameError, mlpHook, residHook, type ForwardHook, type HookName } from "../src/model/hooks.js";
import type { HookedTransformer } from "../src/model/transformer.js";
import { ARCHS, assertBitwiseEqual, assertClose, maxAbsDiff, randomModel, randomTokens, type Arch } from "./model-fixtures.js";

type Tensor = cs.Tensor;

/** Every activation of a run whose hooks are `extra` plus a recorder at every hook point (recorded after `extra`). */
function runRecording(model: HookedTransformer, toks: number[][], extra: [HookName, ForwardHook][] = []): { logits: Tensor; acts: Map<HookName, Tensor> } {
  const acts = new Map<HookName, Tensor>();
  const logits = cs.noGrad(() => model.runWithHooks(toks, { fwd: [...extra, [() => true, (a, ctx) => { acts.set(ctx.name, a.detach()); }]] }));
  return { logits, acts };
}

/** The logit difference summed over the batch at the last position: a typical circuit metric. */
function logitDiff(logits: Tensor, right: number, wrong: number): Tensor {
  const last = logits.select(1, logits.shape[1]! - 1); // [batch, d_vocab]
  return last.select(1, right).sub(last.select(1, wrong)).sum();
}

for (const arch of ARCHS) {
  describe(`hooks on ${arch}`, () => {
    const model = randomModel(arch);
    const cfg = model.cfg;
    const toks = randomTokens(cfg.d_vocab);

    test("patching every activation with its own cached value changes no logit (bitwise)", () => {
      const { logits, cache } = cs.noGrad(() => model.runWithCache(toks, { names: () => true }));
      assert.equal(cache.size, model.hookNames().length, "every hook point cached");
      const patched = cs.noGrad(() => model.runWithHooks(toks, { fwd: [[() => true, (_a, ctx) => cache.get(ctx.name)]] }));
      assertBitwiseEqual(patched, logits, "self-patched logits");
      // A hook that returns nothing is an identity too.
      const observed = cs.noGrad(() => model.runWithHooks(toks, { fwd: [[() => true, () => undefined]] }));
      assertBitwiseEqual(observed, logits, "observed logits");
      // Without hooks the fused kernels run (LayerNorm, scaled causal softmax), equal up to rounding.
      assertClose(cs.noGrad(() => model.forward(toks)), logits, 1e-5, "unhooked forward vs hooked");
    });

    test("zero-ablating one head leaves upstream untouched, removes exactly z_h W_O[h], changes the logits", () => {
      const L = 1, h = 2;
      const mask = cs.tensor(Array.from({ length: cfg.n_heads }, (_, i) => (i === h ? 0 : 1)), [1, 1, cfg.n_heads, 1]);
      const clean = runRecording(model, toks);
      const ablated = runRecording(model, toks, [[attnHook(L, "z"), (z) => z.mul(mask)]]);
      const upstreamAtL = new Set<string>([
        "hook_resid_pre", "ln1.hook_scale", "ln1.hook_normalized",
        "attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_rot_q", "attn.hook_rot_k", "attn.hook_attn_scores", "attn.hook_pattern",
        // A parallel block's MLP reads resid_pre, not the attention output.
        ...(cfg.parallel_attn_mlp ? ["ln2.hook_scale", "ln2.hook_normalized", "mlp.hook_pre", "mlp.hook_pre_linear", "mlp.hook_post", "hook_mlp_out"] : []),
      ]);
      let checked = 0;
      for (const name of model.hookNames()) {
        const m = /^blocks\.(\d+)\.(.*)$/.exec(name);
        const upstream = !m || (Number(m[1]) < L && !name.startsWith("ln_final")) || (Number(m[1]) === L && upstreamAtL.has(m[2]!));
        if (!m && name.startsWith("ln_final")) continue;
        if (!upstream) continue;
        assertBitwiseEqual(ablated.acts.get(name)!, clean.acts.get(name)!, name);
        checked++;
      }
      assert.ok(checked >= 6, `checked ${checked} upstream activations`);
      const zClean = clean.acts.get(attnHook(L, "z"))!; // [batch, pos, head_index, d_head]
      const contribution = cs.einsum("bpd,dm->bpm", zClean.select(2, h), model.blocks.at(L).attn.W_O.select(0, h));
      const delta = clean.acts.get(blockHook(L, "hook_attn_out"))!.sub(ablated.acts.get(blockHook(L, "hook_attn_out"))!);
      assertClose(delta, contribution, 1e-6, "attn_out(clean) - attn_out(ablated) vs z_h W_O[h]");
      assert.ok(maxAbsDiff(clean.logits, ablated.logits) > 1e-3, "ablating a head changes the logits");
    });

    test("hook_attn_scores is scaled and causally masked with -Infinity; hook_pattern rows sum to 1; hook_result sums to hook_attn_out", () => {
      const { cache } = cs.noGrad(() => model.runWithCache(toks, { names: () => true }));
      for (let L = 0; L < cfg.n_layers; L++) {
        const scores = cache.at(L, "attn.hook_attn_scores"); // [batch, head_index, query_pos, key_pos]
        const q = cache.at(L, cache.has(attnHook(L, "rot_q")) ? "attn.hook_rot_q" : "attn.hook_q");
        let k = cache.at(L, cache.has(attnHook(L, "rot_k")) ? "attn.hook_rot_k" : "attn.hook_k");
        // Grouped-query attention: query head i reads key head floor(i / group).
        const group = cfg.n_heads / cfg.n_key_value_heads;
        k = k.indexSelect(2, Array.from({ length: cfg.n_heads }, (_, i) => Math.floor(i / group)));
        const want = cs.einsum("bqhd,bkhd->bhqk", q, k).div(cfg.attn_scale);
        const [B, H, T] = scores.shape as [number, number, number, number];
        for (let b = 0; b < B; b++) for (let hh = 0; hh < H; hh++) for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) {
          const s = scores.get(b, hh, i, j);
          if (j > i) assert.equal(s, -Infinity, `L${L} scores[${b},${hh},${i},${j}] is a future key`);
          else assert.ok(Math.abs(s - want.get(b, hh, i, j)) <= 1e-5 * Math.max(1, Math.abs(s)), `L${L} score [${b},${hh},${i},${j}]: ${s} vs q·k/scale ${want.get(b, hh, i, j)}`);
        }
        const rowSums = cache.at(L, "attn.hook_pattern").sum(-1);
        assertClose(rowSums, cs.ones(rowSums.shape), 1e-6, `L${L} pattern row sums`);
        const res = cache.at(L, "attn.hook_result"); // [batch, pos, head_index, d_model]
        const bO = model.blocks.at(L).attn.bo;
        const summed = bO ? res.sum(2).add(bO) : res.sum(2);
        assertBitwiseEqual(summed, cache.at(L, "hook_attn_out"), `L${L} Σ_h hook_result + b_O vs hook_attn_out`);
      }
    });
  });
}

// ---- gradients at hook points, in float64 against central finite differences ----------------

function gradPoints(arch: Arch): HookName[] {
  const pts: HookName[] = [residHook(1, "pre"), attnHook(0, "z"), attnHook(1, "pattern"), attnHook(1, "attn_scores"), attnHook(0, "q"), blockHook(0, "ln1.hook_scale"), "hook_embed"];
  if (arch !== "attn-only") pts.push(mlpHook(0, "post"), mlpHook(1, "pre"));
  if (arch === "llama") pts.push(mlpHook(0, "pre_linear"));
  return pts;
}

for (const arch of ARCHS) {
  test(`${arch}: gradients w.r.t. hooked activations (leaf replacement and backward hooks) match central finite differences (float64)`, () => {
    const model = randomModel(arch, { dtype: "float64", seed: 3 });
    const toks = randomTokens(model.cfg.d_vocab, 2, 6, 11);
    const [right, wrong] = [3, 17];
    const { cache } = cs.noGrad(() => model.runWithCache(toks, { names: () => true }));
    const rng = new cs.Rng(5);
    for (const name of gradPoints(arch)) {
      // (a) the activation made a leaf by a forward hook, differentiated with grad().
      let leaf: Tensor | null = null;
      const metric = model.runWithHooks(toks, { fwd: [[name, (a) => (leaf = a.detach().requireGrad())]] });
      const [gLeaf] = cs.grad(logitDiff(metric, right, wrong), [leaf!]);
      // (b) a backward hook at the same point, during backward() into the parameters.
      let gHook: Tensor | null = null;
      const out = model.runWithHooks(toks, { bwd: [[name, (g) => { gHook = g; }]] });
      cs.grad(logitDiff(out, right, wrong), [model.embed.W_E]);
      assert.ok(gHook, `${name}: backward hook called`);
      assertClose(gHook!, gLeaf!, 1e-12, `${name}: backward-hook gradient vs leaf gradient`);
      // (c) central differences on a few elements (masked -Infinity scores have no neighbourhood).
      const act = cache.get(name);
      const flatAct = act.contiguous().toArray();
      const flatGrad = gLeaf!.contiguous().toArray();
      let tested = 0;
      for (let tries = 0; tested < 4 && tries < 200; tries++) {
        const i = rng.int(0, flatAct.length);
        if (!Number.isFinite(flatAct[i]!)) continue;
        const eps = 1e-6 * Math.max(1, Math.abs(flatAct[i]!));
        const at = (d: number) => cs.noGrad(() => {
          const data = Float64Array.from(flatAct);
          data[i] = data[i]! + d;
          const patched = new cs.Tensor(data, act.shape);
          return logitDiff(model.runWithHooks(toks, { fwd: [[name, () => patched]] }), right, wrong).item();
        });
        const fd = (at(eps) - at(-eps)) / (2 * eps);
        const g = flatGrad[i]!;
        assert.ok(Math.abs(fd - g) <= 1e-6 * Math.max(1, Math.abs(g)), `${name}[${i}]: autodiff ${g} vs finite difference ${fd}`);
        tested++;
      }
      assert.equal(tested, 4, `${name}: finite elements to test`);
      assert.ok(flatGrad.some((v) => v !== 0), `${name}: gradient is not identically zero`);
    }
  });
}

describe("backward hooks replace gradients", () => {
  const model = randomModel("gpt2", { dtype: "float64", seed: 4 });
  const toks = randomTokens(model.cfg.d_vocab);
  const wrt = () => [model.embed.W_E, model.blocks.at(0).attn.Wq, model.blocks.at(1).attn.Wq, model.blocks.at(1).mlp!.W_out];
  const grads = (bwd: [HookName, (g: Tensor) => Tensor | void][]) => cs.grad(logitDiff(model.runWithHooks(toks, { bwd }), 3, 17), wrt());

  test("doubling the gradient at blocks.1.hook_resid_pre doubles every upstream gradient exactly, leaves downstream ones alone", () => {
    const base = grads([]);
    const doubled = grads([[residHook(1, "pre"), (g) => g.mul(2)]]);
    assertBitwiseEqual(doubled[0]!, base[0]!.mul(2), "W_E (upstream)");
    assertBitwiseEqual(doubled[1]!, base[1]!.mul(2), "blocks.0 W_Q (upstream)");
    assertBitwiseEqual(doubled[2]!, base[2]!, "blocks.1 W_Q (downstream)");
    assertBitwiseEqual(doubled[3]!, base[3]!, "blocks.1 W_out (downstream)");
  });

  test("zeroing the gradient at hook_embed zeroes W_E's gradient only", () => {
    const base = grads([]);
    const cut = grads([["hook_embed", (g) => g.zerosLike()]]);
    assert.ok(base[0]!.toList().some((v) => v !== 0));
    assert.ok(cut[0]!.toList().every((v) => v === 0), "W_E gradient is zero");
    assertBitwiseEqual(cut[1]!, base[1]!, "blocks.0 W_Q");
  });

  test("a backward hook belongs to the run it was registered for", () => {
    let calls = 0;
    const out = model.runWithHooks(toks, { bwd: [[residHook(0, "post"), () => { calls++; }]] });
    cs.grad(logitDiff(out, 3, 17), [model.embed.W_E]);
    assert.equal(calls, 1);
    cs.grad(logitDiff(model.forward(toks), 3, 17), [model.embed.W_E]);
    assert.equal(calls, 1, "a later run without hooks does not call it");
  });
});

describe("hook lifetime and names", () => {
  const model = randomModel("gpt2");
  const toks = randomTokens(model.cfg.d_vocab);
  const clean = cs.noGrad(() => model.forward(toks));
  const assertNoHooks = (what: string) => {
    assert.equal(model.rt.registry, null, `${what}: registry cleared`);
    assertBitwiseEqual(cs.noGrad(() => model.forward(toks)), clean, `${what}: later forward unchanged`);
  };

  test("hooks are removed when the hook throws", () => {
    assert.throws(() => model.runWithHooks(toks, { fwd: [[attnHook(0, "z"), () => { throw new Error("hook failed"); }]] }), /hook failed/);
    assertNoHooks("throwing hook");
  });

  test("hooks are removed when the forward pass throws", () => {
    const zero: ForwardHook = (a) => a.zerosLike();
    assert.throws(() => model.runWithHooks([[0, 1, model.cfg.d_vocab]], { fwd: [[residHook(0, "pre"), zero]] }), RangeError);
    assertNoHooks("throwing forward");
    assert.throws(() => model.withHooks({ fwd: [[residHook(0, "pre"), zero]] }, () => { throw new TypeError("caller failed"); }), TypeError);
    assertNoHooks("throwing caller");
  });

  test("unknown hook names throw HookNameError listing near matches", () => {
    const bad = "blocks.0.attn.hook_zz" as unknown as HookName;
    assert.throws(() => model.runWithHooks(toks, { fwd: [[bad, () => undefined]] }), (e: unknown) =>
      e instanceof HookNameError && /unknown hook point "blocks\.0\.attn\.hook_zz"/.test(e.message) && e.message.includes('"blocks.0.attn.hook_z"'));
    // Type-correct but absent: this model has 2 layers.
    assert.throws(() => model.runWithHooks(toks, { fwd: [[[residHook(0, "pre"), residHook(5, "pre")], () => undefined]] }), (e: unknown) =>
      e instanceof HookNameError && e.message.includes('"blocks.5.hook_resid_pre"') && e.message.includes("did you mean"));
    assertNoHooks("rejected names");
  });

  test("misspelt literal hook names fail to compile", () => {
    // Each call below must be a type error; if the typing stops catching it, tsc fails on the directive.
    assert.throws(() =>
      // @ts-expect-error "hook_zz" is not an attention hook point
      model.runWithHooks(toks, { fwd: [["blocks.0.attn.hook_zz", () => undefined]] }), HookNameError);
    assert.throws(() =>
      // @ts-expect-error "hook_resid_pree" is misspelt
      model.runWithHooks(toks, { bwd: [["blocks.1.hook_resid_pree", () => undefined]] }), HookNameError);
    // @ts-expect-error "zz" is not an AttnAct
    assert.equal(attnHook(0, "zz"), "blocks.0.attn.hook_zz");
  });

  test("a hook returning the wrong shape gives a clear error", () => {
    assert.throws(() => model.runWithHooks(toks, { fwd: [[attnHook(1, "pattern"), (p) => p.sum(-1)]] }),
      /hook at "blocks\.1\.attn\.hook_pattern" returned shape \[2, 4, 7\], expected \[2, 4, 7, 7\]/);
    assertNoHooks("wrong shape");
  });
});
