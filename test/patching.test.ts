// Activation and attribution patching: exact recovery, no-op patches, fast path against the naive
// reference for every cell, cases with derivable answers, and attribution against real patching.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as cs from "../src/index.js";
import { HookedTransformer } from "../src/model/transformer.js";
import { archConfig, randomModel, randomTokens, type Arch } from "./model-fixtures.js";

const T = 6;
const prompts = (d_vocab: number) => {
  const clean = randomTokens(d_vocab, 2, T, 11);
  // Corrupted differs from clean at position 2 only (as IOI's name swap differs in a few positions).
  const corrupted = clean.map((r) => r.map((t, p) => (p === 2 ? (t + 5) % d_vocab : t)));
  return { clean, corrupted };
};
const metric = cs.logitDiffMetric([[3, 4], [5, 6]]);

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number, msg: string) => {
  assert.equal(a.length, b.length, `${msg}: length`);
  for (let i = 0; i < a.length; i++) if (!(Math.abs(a[i]! - b[i]!) <= tol * (1 + Math.abs(b[i]!)))) assert.fail(`${msg}: cell ${i}: ${a[i]} vs ${b[i]}`);
};

test("metrics: logit difference, probability, loss and the normalized metric on hand-made logits", () => {
  // logits [batch 2, pos 2, d_vocab 3]; only the last position counts for logitDiffMetric / tokenProbMetric.
  const logits = cs.tensor([[[9, 9, 9], [1, 2, 4]], [[9, 9, 9], [0, 3, 1]]]);
  assert.equal(cs.logitDiffMetric([[2, 0], [1, 2]]).compute(logits).item(), ((4 - 1) + (3 - 1)) / 2);
  assert.equal(cs.logitDiffMetric([2, 1]).compute(logits).item(), ((4 - 2) + (1 - 3)) / 2);
  const p = Math.exp(4) / (Math.exp(1) + Math.exp(2) + Math.exp(4)), q = Math.exp(1) / (1 + Math.exp(3) + Math.exp(1));
  assert.ok(Math.abs(cs.tokenProbMetric(2).compute(logits).item() - (p + q) / 2) < 1e-6);
  const loss = cs.lossMetric([[0, 2], [1, 0]]).compute(logits).item(); // predicts token 2 then 0 from position 0
  assert.ok(Math.abs(loss - Math.log(3 * Math.exp(9)) / 1 + 9) < 1e-5);
  const n = cs.normalizedMetric(cs.logitDiffMetric([[2, 0], [1, 2]]), 2.5, 0.5);
  assert.equal(n.compute(logits).item(), 1);
  assert.throws(() => cs.normalizedMetric(metric, 1, 1), /equal/);
});

for (const arch of ["gpt2", "llama", "neox"] as Arch[]) {
  test(`${arch}: denoising the whole clean residual at any layer recovers the clean metric (exactly on the naive path)`, () => {
    const model = randomModel(arch, { seed: 1 });
    const { clean, corrupted } = prompts(model.cfg.d_vocab);
    const naive = cs.patchByLayer(model, { clean, corrupted, metric, site: "resid_pre", fast: false });
    assert.notEqual(naive.targetMetric, naive.sourceMetric, "the corruption must change the metric for this test to mean anything");
    for (const v of naive.values.toArray()) assert.equal(v, naive.sourceMetric);
    const fast = cs.patchByLayer(model, { clean, corrupted, metric, site: "resid_pre" });
    close(fast.values.toArray(), Array(model.cfg.n_layers).fill(fast.sourceMetric), 1e-5, "fast");
    assert.deepEqual(fast.axes, [{ name: "layer", labels: ["0", "1"] }]);
  });

  test(`${arch}: the fast path (start at layer, batched) equals the naive path for every cell`, () => {
    const model = randomModel(arch, { seed: 2 });
    const { clean, corrupted } = prompts(model.cfg.d_vocab);
    const cases: [string, (fast: boolean) => cs.PatchResult][] = [
      ...(["resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out"] as const)
        .filter((s) => !(s === "resid_mid" && model.cfg.parallel_attn_mlp))
        .map((site) => [`pos ${site}`, (fast: boolean) => cs.patchByPos(model, { clean, corrupted, metric, site, fast, batchSize: 4 })] as [string, (f: boolean) => cs.PatchResult]),
      ...(["z", "q", "k", "v", "pattern"] as const).map((site) => [`head ${site}`, (fast: boolean) => cs.patchByHead(model, { clean, corrupted, metric, site, fast, direction: "noising", batchSize: 3 })] as [string, (f: boolean) => cs.PatchResult]),
      ["layer mlp_out", (fast) => cs.patchByLayer(model, { clean, corrupted, metric, site: "mlp_out", fast })],
      ["pos loss", (fast) => cs.patchByPos(model, { clean, corrupted, metric: cs.lossMetric(corrupted), fast })],
    ];
    for (const [name, run] of cases) {
      const f = run(true), n = run(false);
      assert.deepEqual(f.values.shape, n.values.shape, name);
      close(f.values.toArray(), n.values.toArray(), 1e-5, name);
    }
  });
}

test("noising with the clean activation itself changes nothing", () => {
  const model = randomModel("gpt2", { seed: 3 });
  const { clean } = prompts(model.cfg.d_vocab);
  for (const r of [
    cs.patchByPos(model, { clean, corrupted: clean, metric, direction: "noising" }),
    cs.patchByHead(model, { clean, corrupted: clean, metric, direction: "noising" }),
    cs.patchByPos(model, { clean, corrupted: clean, metric, direction: "noising", site: "mlp_out", fast: false }),
  ]) close(r.values.toArray(), Array(r.values.size).fill(r.targetMetric), 1e-6, r.site);
});

test("cells with derivable answers: unchanged positions at layer 0 and a head with W_O = 0 change nothing", () => {
  const model = randomModel("gpt2", { seed: 4 });
  const { clean, corrupted } = prompts(model.cfg.d_vocab);
  // Only position 2 differs, so layer 0's residual differs only there.
  const byPos = cs.patchByPos(model, { clean, corrupted, metric });
  const v = byPos.values.toArray();
  for (let p = 0; p < T; p++) if (p !== 2) assert.equal(v[p], byPos.targetMetric, `layer 0 pos ${p}`);
  assert.notEqual(v[2], byPos.targetMetric);
  // Positions after the last cannot exist, and positions before 2 carry nothing at any layer (causal).
  for (let l = 0; l < model.cfg.n_layers; l++) for (let p = 0; p < 2; p++) close([v[l * T + p]!], [byPos.targetMetric], 1e-6, `layer ${l} pos ${p}`);
  // Head 1.2 writes nothing when its W_O rows are zero, so patching its z is a no-op.
  cs.noGrad(() => { const W = model.blocks.items[1]!.attn.Wo; const dh = model.cfg.d_head; W.data.fill(0, 2 * dh * model.cfg.d_model, 3 * dh * model.cfg.d_model); W.version++; });
  const byHead = cs.patchByHead(model, { clean, corrupted, metric });
  assert.equal(byHead.values.get(1, 2), byHead.targetMetric);
  assert.notEqual(byHead.values.get(1, 0), byHead.targetMetric);
  assert.deepEqual(byHead.axes[1], { name: "head", labels: ["0", "1", "2", "3"] });
});

test("attribution patching equals real patching where the metric is linear in the activation", () => {
  // No normalisation anywhere: logits are affine in the last block's resid_post.
  const model = randomModel("gpt2", { seed: 5, cfg: { normalization_type: null } });
  const { clean, corrupted } = prompts(model.cfg.d_vocab);
  for (const direction of ["noising", "denoising"] as const) {
    const real = cs.patchByPos(model, { clean, corrupted, metric, site: "resid_post", direction });
    const attr = cs.attributionPatch(model, { clean, corrupted, metric, site: "resid_post", by: "pos", direction });
    const L = model.cfg.n_layers - 1;
    const r = Array.from(real.values.toArray().slice(L * T), (x) => x - real.targetMetric), a = attr.values.toArray().slice(L * T);
    assert.ok(r.some((x) => Math.abs(x) > 1e-4), "the last position's patch must move the metric");
    close(a, r, 1e-4, direction);
    assert.ok(Math.abs(attr.targetMetric - real.targetMetric) < 1e-6);
  }
});

test("attribution patching correlates > 0.9 with real patching when perturbations are small", () => {
  // GPT-2 initialisation (std 0.02): each block nudges the residual a little, so the first-order term dominates.
  const model = new HookedTransformer(archConfig("gpt2", { n_layers: 3 })).initWeights(6);
  const { clean, corrupted } = prompts(model.cfg.d_vocab);
  for (const [site, by] of [["resid_pre", "pos"], ["z", "head"]] as const) {
    const real = by === "pos" ? cs.patchByPos(model, { clean, corrupted, metric, site }) : cs.patchByHead(model, { clean, corrupted, metric, site });
    const attr = cs.attributionPatch(model, { clean, corrupted, metric, site, by });
    const { pearson, points } = cs.attributionAgreement(real, attr);
    assert.ok(pearson > 0.9, `${site}: r = ${pearson}`);
    // One point per cell: x the real metric change, y the estimate (the patch technique draws them).
    assert.equal(points.length, real.values.size);
    assert.equal(points[0]!.x, real.values.toArray()[0]! - real.targetMetric);
    assert.equal(points[0]!.y, attr.values.toArray()[0]!);
    assert.equal(points[1]!.label, `layer 0, ${by} 1`);
  }
  // Attribution leaves no gradient on the parameters.
  for (const p of model.parameters()) assert.equal(p.grad ?? null, null);
});

test("pearson: perfect, anti- and undefined correlation", () => {
  assert.ok(Math.abs(cs.pearson([1, 2, 3], [2, 4, 6]) - 1) < 1e-12);
  assert.ok(Math.abs(cs.pearson([1, 2, 3], [3, 2, 1]) + 1) < 1e-12);
  assert.throws(() => cs.pearson([1], [1]), RangeError);
});
