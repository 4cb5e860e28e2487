// TransformerLens's optional hook points use_split_qkv_input (blocks.L.hook_q_input / hook_k_input /
// hook_v_input, one copy of resid_pre per head) and use_hook_mlp_in (blocks.L.hook_mlp_in), on every
// architecture: off by default (no new hook points), the same logits as the unsplit model when on,
// the copies equal resid_pre (resid_mid / resid_pre for the MLP), and editing one head's copy moves
// only that head's q, k or v (the other heads' bitwise unchanged), with n_key_value_heads copies
// for k and v under grouped-query attention.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import * as cs from "../src/index.js";
import { blockHook, type HookName } from "../src/model/hooks.js";
import { backward } from "../src/tensor/autodiff.js";
import { ARCHS, assertBitwiseEqual, assertClose, randomModel, randomTokens } from "./model-fixtures.js";

const SPLIT = { use_split_qkv_input: true, use_hook_mlp_in: true } as const;

for (const arch of ARCHS) {
  describe(`split q/k/v inputs and hook_mlp_in on ${arch}`, () => {
    const plain = randomModel(arch, { dtype: "float64" });
    const split = randomModel(arch, { dtype: "float64", cfg: SPLIT });
    const cfg = split.cfg, L = cfg.n_layers, H = cfg.n_heads, Hkv = cfg.n_key_value_heads;
    const toks = randomTokens(cfg.d_vocab);

    test("off by default: no new hook points; on: the same logits as the unsplit model", () => {
      assert.ok(!plain.hookNames().some((n) => /hook_(q|k|v)_input|hook_mlp_in/.test(n)), "no split hook points by default");
      assertBitwiseEqual(split.unembed.W_U, plain.unembed.W_U, "same weights");
      const a = cs.noGrad(() => plain.forward(toks)), b = cs.noGrad(() => split.forward(toks));
      assertClose(b, a, 1e-10, "split-input logits vs unsplit");
    });

    test("runWithCache records the copies: [batch, pos, heads, d_model], each head's copy equal to resid_pre", () => {
      const { cache } = cs.noGrad(() => split.runWithCache(toks));
      for (let l = 0; l < L; l++) {
        const pre = cache.get(blockHook(l, "hook_resid_pre"));
        const [B, T, D] = pre.shape as [number, number, number];
        for (const [name, heads] of [["hook_q_input", H], ["hook_k_input", Hkv], ["hook_v_input", Hkv]] as const) {
          const x = cache.get(blockHook(l, name));
          assert.deepEqual(x.shape, [B, T, heads, D], `${name} shape`);
          for (let h = 0; h < heads; h++) assertBitwiseEqual(x.select(2, h).contiguous(), pre, `L${l} ${name} head ${h}`);
        }
        if (cfg.attn_only) { assert.ok(!split.hookNames().includes(blockHook(l, "hook_mlp_in")), "no MLP, no hook_mlp_in"); continue; }
        const mlpIn = cache.get(blockHook(l, "hook_mlp_in"));
        assertBitwiseEqual(mlpIn, cache.get(blockHook(l, cfg.parallel_attn_mlp ? "hook_resid_pre" : "hook_resid_mid")), `L${l} hook_mlp_in`);
      }
      // Forward order: the copies right after resid_pre, hook_mlp_in before ln2.
      const names = split.hookNames();
      assert.equal(names.indexOf(blockHook(0, "hook_q_input")), names.indexOf(blockHook(0, "hook_resid_pre")) + 1);
      if (!cfg.attn_only && cfg.normalization_type) assert.ok(names.indexOf(blockHook(0, "hook_mlp_in")) < names.indexOf(blockHook(0, "ln2.hook_scale")));
    });

    test("editing one head's input copy moves only that head's q, k or v", () => {
      for (const [input, act, heads] of [["q", "attn.hook_q", H], ["k", "attn.hook_k", Hkv], ["v", "attn.hook_v", Hkv]] as const) {
        const h = heads - 1, l = L - 1;
        const hookName = blockHook(l, `hook_${input}_input`) as HookName;
        // Adds `shift` to head h's copy (shift 0 gives the baseline through the same arithmetic).
        const run = (shift: number) => {
          let seen: cs.Tensor | undefined;
          cs.noGrad(() => split.runWithHooks(toks, {
            fwd: [
              [hookName, (x) => {
                const d = new Float64Array(x.size);
                const [B, T, Hx, D] = x.shape as [number, number, number, number];
                for (let o = 0; o < B * T; o++) for (let j = 0; j < D; j++) d[(o * Hx + h) * D + j] = shift * (1 + 0.2 * j);
                return x.add(new cs.Tensor(d, x.shape));
              }],
              [blockHook(l, act), (a) => { seen = a.detach(); }],
            ],
          }));
          return seen!;
        };
        const before = run(0), after = run(0.5);
        for (let g = 0; g < heads; g++) {
          const b0 = before.select(2, g).contiguous(), a0 = after.select(2, g).contiguous();
          if (g === h) assert.ok(cs.noGrad(() => b0.sub(a0).abs().max().item()) > 1e-3, `${input} head ${g} moved`);
          else assertBitwiseEqual(a0, b0, `${input} head ${g} untouched by head ${h}'s copy`);
        }
      }
    });

    test("gradients: d(metric)/d(resid_pre) of the unsplit model = the skip path's + Σ over the copies' (+ hook_mlp_in's when parallel)", () => {
      const l = L - 1, parallel = cfg.parallel_attn_mlp && !cfg.attn_only;
      const metric = (logits: cs.Tensor) => logits.select(1, 2).select(1, 3).sum();
      const grads = new Map<string, cs.Tensor>();
      const keep = (a: cs.Tensor, ctx: { name: HookName }) => { grads.set(ctx.name, a); };
      const skip = blockHook(l, cfg.attn_only || cfg.parallel_attn_mlp ? "hook_resid_post" : "hook_resid_mid");
      const copies: HookName[] = [blockHook(l, "hook_q_input"), blockHook(l, "hook_k_input"), blockHook(l, "hook_v_input")];
      const names: HookName[] = [...copies, skip, ...(parallel ? [blockHook(l, "hook_mlp_in")] : [])];
      backward(metric(split.runWithHooks(toks, { bwd: names.map((n) => [n, keep] as const) })));
      let total = grads.get(skip)!;
      for (const n of copies) total = total.add(grads.get(n)!.sum(2));
      if (parallel) total = total.add(grads.get(blockHook(l, "hook_mlp_in"))!);
      let pre: cs.Tensor | undefined;
      backward(metric(plain.runWithHooks(toks, { bwd: [[blockHook(l, "hook_resid_pre"), (a) => { pre = a; }]] })));
      assertClose(total, pre!, 1e-9, "Σ of the split gradients vs the unsplit resid_pre gradient");
    });
  });
}

test("a snapshot of a split-input model saves as the plain architecture (the flags are run-time choices)", () => {
  const m = randomModel("gpt2", { cfg: { ...SPLIT, unembed_bias: false } });
  const json = cs.configToHF(m.cfg);
  assert.equal(json["model_type"], "gpt2");
});
