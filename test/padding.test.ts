// Padded batches: loss over real targets only on GPT-2, NeoX and Llama snapshots; explicit position
// ids; and activation patching, attribution patching, layer integrated gradients, the "all"-position
// metrics, ablation, path patching, circuit discovery, the logit lens and DLA on left- and
// right-padded batches against each prompt run alone, unpadded.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as cs from "../src/index.js";
import type { HookedTransformer } from "../src/model/transformer.js";
import type { HookName } from "../src/model/hooks.js";
import { randomModel } from "./model-fixtures.js";

const SHARED = path.resolve(process.cwd(), "../shared/models");
const tmpDirs: string[] = [];
process.on("exit", () => { for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true }); });

type Side = "left" | "right";

/** Rows of different lengths padded to the longest with `pad`: tokens and mask [batch, pos], and each row's offset. */
function padRows(rows: readonly (readonly number[])[], side: Side, pad: number): { tokens: cs.Tensor; mask: cs.Tensor; offsets: number[] } {
  const T = Math.max(...rows.map((r) => r.length));
  const toks = new Int32Array(rows.length * T).fill(pad), mask = new Int32Array(rows.length * T);
  const offsets = rows.map((r, b) => {
    const off = side === "left" ? T - r.length : 0;
    toks.set(r, b * T + off); mask.fill(1, b * T + off, b * T + off + r.length);
    return off;
  });
  return { tokens: new cs.Tensor(toks, [rows.length, T]), mask: new cs.Tensor(mask, [rows.length, T]), offsets };
}

const randomRows = (V: number, lengths: readonly number[], seed: number) => {
  const rng = new cs.Rng(seed);
  return lengths.map((n) => Array.from({ length: n }, () => rng.int(0, V)));
};

/** The mean next-token loss over every target of every row, each row run alone (per-token losses summed in float64). */
function unpaddedMeanLoss(model: HookedTransformer, rows: readonly (readonly number[])[]): number {
  let sum = 0, n = 0;
  for (const r of rows) {
    const logits = cs.noGrad(() => model.forward([r]));
    const T = r.length;
    const per = cs.crossEntropy(cs.slice(logits, 1, 0, T - 1), new cs.Tensor(Int32Array.from(r.slice(1)), [1, T - 1]), { reduction: "none" }).toArray();
    for (const v of per) { sum += v; n++; }
  }
  return sum / n;
}

function neoxSnapshot(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cs-padding-neox-")); tmpDirs.push(dir);
  cs.saveHF(randomModel("neox", { seed: 3, dtype: "float64", cfg: { unembed_bias: false } }), dir);
  return dir;
}

const snapshots: [string, () => string][] = [
  ["GPT-2 (tiny-gpt2)", () => path.join(SHARED, "tiny-gpt2")],
  ["NeoX (a random 2-layer model saved in HF layout)", neoxSnapshot],
  ["Llama (tiny-random-llama)", () => path.join(SHARED, "tiny-random-llama")],
];

for (const [name, folder] of snapshots) {
  const skip = name.includes("tiny") && !fs.existsSync(folder()) ? `${folder()} not found` : false;
  test(`loss on a padded batch is the mean over real targets (${name}), left and right padding`, { skip }, () => {
    for (const dtype of ["float64", "float32"] as const) {
      const { model } = cs.loadPretrained(folder(), { dtype });
      const rows = randomRows(model.cfg.d_vocab, [7, 4, 2], 5);
      const want = unpaddedMeanLoss(model, rows);
      for (const side of ["left", "right"] as Side[]) {
        const { tokens, mask } = padRows(rows, side, 0);
        const got = cs.noGrad(() => model.loss(tokens, { attentionMask: mask })).item();
        const unmasked = cs.noGrad(() => model.loss(tokens)).item();
        const diff = Math.abs(got - want);
        console.log(`${name} ${dtype} ${side}: padded loss ${got.toFixed(6)}, unpadded mean over real targets ${want.toFixed(6)} (|diff| ${diff.toExponential(2)}); without the mask ${unmasked.toFixed(6)}`);
        const tol = dtype === "float64" ? 1e-6 : 1e-5;
        assert.ok(diff <= tol, `${dtype} ${side}: ${got} vs ${want}`);
        // The mask matters: averaging over the pad targets too gives a number outside the tolerance.
        assert.ok(Math.abs(unmasked - want) > 10 * tol, `${side}: the unmasked loss ${unmasked} should differ from ${want}`);
      }
    }
  });
}

test("loss: a mask that leaves no real target, and lastPositionOnly, are errors", () => {
  const model = randomModel("gpt2", { seed: 0 });
  const toks = new cs.Tensor(Int32Array.from([1, 2, 3]), [1, 3]);
  assert.throws(() => model.loss(toks, { attentionMask: new cs.Tensor(Int32Array.from([0, 0, 1]), [1, 3]) }), /no position whose token and next token are both real/);
  assert.throws(() => model.loss(toks, { lastPositionOnly: true }), /lastPositionOnly/);
});

test("positionIds: the positions derived from a mask, passed explicitly, give the same logits; rotary models are shift-invariant", () => {
  for (const arch of ["gpt2", "llama", "neox"] as const) {
    const model = randomModel(arch, { seed: 2, dtype: "float64" });
    const rows = randomRows(model.cfg.d_vocab, [6, 3], 9);
    const { tokens, mask } = padRows(rows, "left", 0);
    // Hugging Face's position_ids for left padding: cumsum(mask) − 1, padding clipped to 0.
    const md = mask.toArray(), pos = new Int32Array(md.length);
    for (let b = 0; b < 2; b++) { let c = 0; for (let t = 0; t < 6; t++) { c += md[b * 6 + t]!; pos[b * 6 + t] = Math.max(c - 1, 0); } }
    const derived = cs.noGrad(() => model.forward(tokens, { attentionMask: mask })).toArray();
    const explicit = cs.noGrad(() => model.forward(tokens, { attentionMask: mask, positionIds: new cs.Tensor(pos, [2, 6]) })).toArray();
    assert.deepEqual(Array.from(explicit), Array.from(derived), `${arch}: explicit positions = derived ones`);
    // A custom offset: the same sequence at positions 5..10.
    const one = [rows[0]!];
    const shifted = cs.noGrad(() => model.forward(one, { positionIds: new cs.Tensor(Int32Array.from([5, 6, 7, 8, 9, 10]), [1, 6]) })).toArray();
    const plain = cs.noGrad(() => model.forward(one)).toArray();
    let worst = 0;
    for (let i = 0; i < plain.length; i++) worst = Math.max(worst, Math.abs(shifted[i]! - plain[i]!));
    if (arch === "gpt2") assert.ok(worst > 1e-3, "gpt2: learned positions make an offset change the logits");
    else assert.ok(worst < 1e-9, `${arch}: RoPE scores depend on relative positions only (worst ${worst})`);
  }
  const model = randomModel("gpt2", { seed: 2 });
  assert.throws(() => model.forward([[1, 2]], { positionIds: new cs.Tensor(Int32Array.from([0, -1]), [1, 2]) }), /positionIds: -1 at \[0, 1\]/);
  assert.throws(() => model.forward([[1, 2]], { positionIds: new cs.Tensor(Int32Array.from([0, 1, 2]), [1, 3]) }), /positionIds must be \[batch, pos\] = \[1, 2\]/);
});

// ---- techniques on padded batches ---------------------------------------------------------------

const lengths = [6, 4];
const answers: [number, number][] = [[3, 4], [5, 6]];

/** Clean rows and corrupted rows (position 1 changed), for a model's vocabulary. */
function pair(V: number) {
  const clean = randomRows(V, lengths, 21);
  const corrupted = clean.map((r) => r.map((t, p) => (p === 1 ? (t + 7) % V : t)));
  return { clean, corrupted };
}

/** The expected padded [layer, pos] sweep: the mean over rows of row b's unpadded value at pos − offset (its target metric at padding). */
function expectedByPos(per: cs.PatchResult[], offsets: number[], L: number, T: number): number[] {
  const out: number[] = [];
  for (let l = 0; l < L; l++) for (let p = 0; p < T; p++) {
    let s = 0;
    per.forEach((r, b) => {
      const q = p - offsets[b]!, n = r.values.shape[1]!;
      s += q >= 0 && q < n ? r.values.toArray()[l * n + q]! : r.targetMetric;
    });
    out.push(s / per.length);
  }
  return out;
}

function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, msg: string): number {
  assert.equal(got.length, want.length, `${msg}: length`);
  let worst = 0;
  // NaN matches NaN only (path patching marks heads that are not before the receivers with NaN).
  for (let i = 0; i < got.length; i++) worst = Math.max(worst, Number.isNaN(got[i]!) && Number.isNaN(want[i]!) ? 0 : Number.isNaN(got[i]! - want[i]!) ? Infinity : Math.abs(got[i]! - want[i]!));
  assert.ok(worst <= tol, `${msg}: worst |diff| ${worst}`);
  return worst;
}

for (const arch of ["gpt2", "llama"] as const) {
  test(`${arch}: patchByPos, patchByHead, patchByLayer and attributionPatch on a left- and right-padded batch equal each prompt unpadded`, () => {
    const model = randomModel(arch, { seed: 4, dtype: "float64" });
    const { clean, corrupted } = pair(model.cfg.d_vocab);
    const L = model.cfg.n_layers;
    const alone = (b: number) => ({ clean: [clean[b]!], corrupted: [corrupted[b]!], metric: cs.logitDiffMetric(answers[b]!) });
    const perPos = [0, 1].map((b) => cs.patchByPos(model, alone(b)));
    const perHead = [0, 1].map((b) => cs.patchByHead(model, alone(b)));
    const perAttr = [0, 1].map((b) => cs.attributionPatch(model, { ...alone(b), site: "resid_pre", by: "pos" }));
    const perLayer = [0, 1].map((b) => cs.patchByLayer(model, { ...alone(b), site: "mlp_out" }));
    for (const side of ["left", "right"] as Side[]) {
      const c = padRows(clean, side, 0), k = padRows(corrupted, side, 0), T = c.tokens.shape[1]!;
      assert.deepEqual(c.mask.toArray(), k.mask.toArray());
      const o = { clean: c.tokens, corrupted: k.tokens, metric: cs.logitDiffMetric(answers), attentionMask: c.mask };
      for (const fast of [true, false]) {
        const byPos = cs.patchByPos(model, { ...o, fast });
        const w = assertClose(byPos.values.toArray(), expectedByPos(perPos, c.offsets, L, T), 1e-9, `${side} patchByPos (fast ${fast})`);
        assertClose([byPos.targetMetric, byPos.sourceMetric], [(perPos[0]!.targetMetric + perPos[1]!.targetMetric) / 2, (perPos[0]!.sourceMetric + perPos[1]!.sourceMetric) / 2], 1e-9, `${side} baselines`);
        console.log(`${arch} ${side} padding, patchByPos (fast ${fast}): worst |diff| from the unpadded prompts ${w.toExponential(2)}`);
      }
      const byHead = cs.patchByHead(model, o);
      const wantHead = byHead.values.toArray().map((_, i) => (perHead[0]!.values.toArray()[i]! + perHead[1]!.values.toArray()[i]!) / 2);
      assertClose(byHead.values.toArray(), wantHead, 1e-9, `${side} patchByHead`);
      const byLayer = cs.patchByLayer(model, { ...o, site: "mlp_out" });
      assertClose(byLayer.values.toArray(), byLayer.values.toArray().map((_, i) => (perLayer[0]!.values.toArray()[i]! + perLayer[1]!.values.toArray()[i]!) / 2), 1e-9, `${side} patchByLayer`);
      const attr = cs.attributionPatch(model, { ...o, site: "resid_pre", by: "pos" });
      // Attribution is linear in the metric's rows: the mean of each prompt's values at its real positions, 0 at padding.
      const wantAttr: number[] = [];
      for (let l = 0; l < L; l++) for (let p = 0; p < T; p++) {
        let s = 0;
        perAttr.forEach((r, b) => { const q = p - c.offsets[b]!, n = r.values.shape[1]!; if (q >= 0 && q < n) s += r.values.toArray()[l * n + q]!; });
        wantAttr.push(s / 2);
      }
      const wa = assertClose(attr.values.toArray(), wantAttr, 1e-9, `${side} attributionPatch`);
      console.log(`${arch} ${side} padding: patchByHead and attributionPatch agree with the unpadded prompts (attribution worst |diff| ${wa.toExponential(2)})`);
    }
  });

  test(`${arch}: layer integrated gradients on a left- and right-padded input equal the unpadded input's, with 0 at padding`, () => {
    const model = randomModel(arch, { seed: 5, dtype: "float64" });
    const toks = randomRows(model.cfg.d_vocab, [5], 33)[0]!;
    const hook = "hook_embed" as HookName;
    const ref = cs.layerIntegratedGradients(model, toks, hook, cs.logitDiffOf(3, 4), { steps: 16 });
    for (const side of ["left", "right"] as Side[]) {
      const padded = side === "left" ? [0, 0, ...toks] : [...toks, 0, 0];
      const mask = side === "left" ? [0, 0, 1, 1, 1, 1, 1] : [1, 1, 1, 1, 1, 0, 0];
      const off = side === "left" ? 2 : 0;
      // Score positions index the padded sequence: under right padding the last real token is at 4.
      const score = cs.logitDiffOf(3, 4, side === "left" ? -1 : toks.length - 1);
      const r = cs.layerIntegratedGradients(model, padded, hook, score, { steps: 16, attentionMask: mask });
      const want = new Array<number>(padded.length).fill(0);
      ref.perPosition.forEach((v, p) => { want[p + off] = v; });
      const w = assertClose(r.perPosition, want, 1e-9, `${side} per-position attributions`);
      assertClose([r.completeness.fInput, r.completeness.fBaseline, r.completeness.sum], [ref.completeness.fInput, ref.completeness.fBaseline, ref.completeness.sum], 1e-9, `${side} completeness`);
      console.log(`${arch} ${side} padding, layer IG on hook_embed: worst |diff| ${w.toExponential(2)}, completeness gap ${r.completeness.gap.toExponential(2)}`);
    }
  });
}

test("generate: positionIds equal to the derived ones change nothing; offset positions give the same tokens with and without the KV cache", () => {
  const model = randomModel("gpt2", { seed: 6, dtype: "float64" });
  const rows = randomRows(model.cfg.d_vocab, [5, 3], 17);
  const { tokens, mask } = padRows(rows, "left", 0);
  const md = mask.toArray(), pos = new Int32Array(md.length);
  for (let b = 0; b < 2; b++) { let c = 0; for (let t = 0; t < 5; t++) { c += md[b * 5 + t]!; pos[b * 5 + t] = Math.max(c - 1, 0); } }
  const base = cs.generate(model, tokens, { maxNewTokens: 4, temperature: 0, attentionMask: mask });
  const same = cs.generate(model, tokens, { maxNewTokens: 4, temperature: 0, attentionMask: mask, positionIds: new cs.Tensor(pos, [2, 5]) });
  assert.deepEqual(same.tokens, base.tokens);
  assert.deepEqual(same.logprobs, base.logprobs);
  // Positions 3.. for every prompt token: the cached and uncached runs must agree on them step after step.
  const off = new cs.Tensor(Int32Array.from(pos.map((p) => p + 3)), [2, 5]);
  const cached = cs.generate(model, tokens, { maxNewTokens: 4, temperature: 0, attentionMask: mask, positionIds: off });
  const uncached = cs.generate(model, tokens, { maxNewTokens: 4, temperature: 0, attentionMask: mask, positionIds: off, useCache: false });
  assert.deepEqual(cached.tokens, uncached.tokens);
  for (let b = 0; b < 2; b++) assertClose(cached.logprobs[b]!, uncached.logprobs[b]!, 1e-9, `row ${b} logprobs`);
  assert.notDeepEqual(cached.logprobs, base.logprobs, "learned positions: the offset changes the distribution");
  assert.throws(() => cs.generate(model, tokens, { maxNewTokens: 1, positionIds: new cs.Tensor(pos, [1, 10]), attentionMask: mask }), /positionIds must be \[batch, pos\] = \[2, 5\]/);
});

// ---- "all"-position metrics on padded batches ---------------------------------------------------

/** Padded rows as plain arrays (what lossMetric and positionLossMetric take). */
const rowsOf = (t: cs.Tensor): number[][] => {
  const [B, T] = t.shape as [number, number], d = t.toArray();
  return Array.from({ length: B }, (_, b) => Array.from(d.slice(b * T, (b + 1) * T)));
};

for (const arch of ["gpt2", "llama", "neox"] as const) {
  test(`${arch}: lossMetric and positionLossMetric skip padded targets; patchByPos with a loss metric on a padded batch pools each prompt's unpadded loss`, () => {
    const model = randomModel(arch, { seed: 7, dtype: "float64" });
    const { clean, corrupted } = pair(model.cfg.d_vocab);
    const L = model.cfg.n_layers;
    // Each prompt alone: its loss sweep, weighted by its number of targets (the padded metric is the mean over every real target).
    const perPos = [0, 1].map((b) => cs.patchByPos(model, { clean: [clean[b]!], corrupted: [corrupted[b]!], metric: cs.lossMetric([corrupted[b]!]) }));
    const w = lengths.map((n) => (n - 1) / (lengths[0]! + lengths[1]! - 2));
    for (const side of ["left", "right"] as Side[]) {
      const c = padRows(clean, side, 0), k = padRows(corrupted, side, 0), T = c.tokens.shape[1]!;
      const metric = cs.lossMetric(rowsOf(k.tokens));
      // The metric alone equals model.loss under the mask; without the mask it counts the pad targets too.
      const logits = cs.noGrad(() => model.forward(k.tokens, { attentionMask: k.mask }));
      const masked = cs.noGrad(() => metric.compute(logits, k.mask).item()), loss = cs.noGrad(() => model.loss(k.tokens, { attentionMask: k.mask }).item());
      assert.ok(Math.abs(masked - loss) < 1e-12, `${side}: lossMetric ${masked} vs model.loss ${loss}`);
      assert.ok(Math.abs(cs.noGrad(() => metric.compute(logits).item()) - loss) > 1e-4, `${side}: without the mask the pad targets count`);
      for (const fast of [true, false]) {
        const r = cs.patchByPos(model, { clean: c.tokens, corrupted: k.tokens, metric, attentionMask: c.mask, fast });
        const want: number[] = [];
        for (let l = 0; l < L; l++) for (let p = 0; p < T; p++) {
          let s = 0;
          perPos.forEach((pr, b) => { const q = p - c.offsets[b]!, n = pr.values.shape[1]!; s += w[b]! * (q >= 0 && q < n ? pr.values.toArray()[l * n + q]! : pr.targetMetric); });
          want.push(s);
        }
        const worst = assertClose(r.values.toArray(), want, 1e-9, `${side} patchByPos loss (fast ${fast})`);
        assertClose([r.targetMetric, r.sourceMetric], [w[0]! * perPos[0]!.targetMetric + w[1]! * perPos[1]!.targetMetric, w[0]! * perPos[0]!.sourceMetric + w[1]! * perPos[1]!.sourceMetric], 1e-9, `${side} loss baselines`);
        console.log(`${arch} ${side} padding, patchByPos with lossMetric (fast ${fast}): worst |diff| from the pooled unpadded prompts ${worst.toExponential(2)}`);
      }
      // positionLossMetric at padded columns 1..3: a column counts in a row where it and the next are real.
      const cols = [1, 2, 3];
      const plm = cs.positionLossMetric(rowsOf(k.tokens), cols);
      let sum = 0, n = 0;
      corrupted.forEach((row, b) => {
        const lg = cs.noGrad(() => model.forward([row]));
        const per = cs.crossEntropy(cs.slice(lg, 1, 0, row.length - 1), new cs.Tensor(Int32Array.from(row.slice(1)), [1, row.length - 1]), { reduction: "none" }).toArray();
        for (const p of cols) { const q = p - k.offsets[b]!; if (q >= 0 && q < row.length - 1) { sum += per[q]!; n++; } }
      });
      const got = cs.noGrad(() => plm.compute(logits, k.mask).item());
      assert.ok(Math.abs(got - sum / n) < 1e-9, `${side}: positionLossMetric ${got} vs ${sum / n} over ${n} real targets`);
      // normalizedMetric passes the mask on.
      const nm = cs.normalizedMetric(metric, 1, 2);
      assert.ok(Math.abs(cs.noGrad(() => nm.compute(logits, k.mask).item()) - (masked - 2) / -1) < 1e-12, `${side}: normalizedMetric forwards the mask`);
    }
    assert.throws(() => cs.lossMetric([[1, 2, 3]]).compute(cs.noGrad(() => model.forward([[1, 2, 3]])), new cs.Tensor(Int32Array.from([1, 0, 1]), [1, 3])), /lossMetric: the attentionMask leaves no target position/);
    assert.throws(() => cs.lossMetric([[1, 2, 3]]).compute(cs.noGrad(() => model.forward([[1, 2, 3]])), new cs.Tensor(Int32Array.from([1, 1]), [1, 2])), /lossMetric: attentionMask must be \[batch, pos\] = \[1, 3\]/);
  });
}

// ---- ablation on padded batches -----------------------------------------------------------------

const refLengths = [7, 6, 8];

for (const arch of ["gpt2", "llama", "neox"] as const) {
  test(`${arch}: ablate and ablationSweep (zero, mean, resample) on left- and right-padded prompts and references equal each prompt alone with its unpadded reference rows`, () => {
    const model = randomModel(arch, { seed: 8, dtype: "float64" });
    const V = model.cfg.d_vocab, L = model.cfg.n_layers;
    const { clean } = pair(V);
    const ref = randomRows(V, refLengths, 41);
    const seed = 3, rng = new cs.Rng(seed), drawn = [rng.int(0, ref.length), rng.int(0, ref.length)];
    // Prompt b alone: the reference rows cut to its length (causal, so their activations there are unchanged), unpadded;
    // resample gets the one row the batch draws for b.
    const aloneRef = (kind: cs.AblationKind, b: number) => (kind === "resample" ? [ref[drawn[b]!]!.slice(0, lengths[b])] : ref.map((r) => r.slice(0, lengths[b])));
    for (const side of ["left", "right"] as Side[]) {
      const x = padRows(clean, side, 0), r = padRows(ref, side === "left" ? "right" : "left", 0), T = x.tokens.shape[1]!;
      const pads = { attentionMask: x.mask, referenceAttentionMask: r.mask };
      for (const kind of ["zero", "mean", "resample"] as const) {
        const base = { kind, seed, reference: r.tokens, ...pads };
        // ablate(): the logits at each row's real positions are the prompt's own.
        const target = { layer: 1, mlp: true } as const;
        const got = ablate3(cs.ablate(model, x.tokens, { ...base, target }));
        let worstLogits = 0;
        [0, 1].forEach((b) => {
          const want = ablate3(cs.ablate(model, [clean[b]!], { kind, seed: 0, reference: aloneRef(kind, b), target }));
          for (let q = 0; q < lengths[b]!; q++) for (let v = 0; v < V; v++) worstLogits = Math.max(worstLogits, Math.abs(got[b]![q + x.offsets[b]!]![v]! - want[0]![q]![v]!));
        });
        assert.ok(worstLogits < 1e-9, `${side} ${kind} ablate: worst |diff| ${worstLogits}`);
        for (const fast of [true, false]) {
          const per = [0, 1].map((b) => cs.ablationSweep(model, [clean[b]!], { kind, seed: 0, reference: aloneRef(kind, b), metric: cs.logitDiffMetric(answers[b]!), fast }));
          const sw = cs.ablationSweep(model, x.tokens, { ...base, metric: cs.logitDiffMetric(answers), fast });
          const w = assertClose(sw.values.toArray(), sw.values.toArray().map((_, i) => (per[0]!.values.toArray()[i]! + per[1]!.values.toArray()[i]!) / 2), 1e-9, `${side} ${kind} heads sweep (fast ${fast})`);
          assert.ok(Math.abs(sw.cleanMetric - (per[0]!.cleanMetric + per[1]!.cleanMetric) / 2) < 1e-9, `${side} ${kind}: clean metric`);
          console.log(`${arch} ${side} padding, ${kind} ablation over heads (fast ${fast}): worst |diff| from the unpadded prompts ${w.toExponential(2)}; ablate() logits ${worstLogits.toExponential(2)}`);
        }
        if (kind === "mean") {
          // Positions index the padded columns: row b's value at column p is its unpadded value at p − offset (0 at padding).
          const per = [0, 1].map((b) => cs.ablationSweep(model, [clean[b]!], { kind, reference: aloneRef(kind, b), metric: cs.logitDiffMetric(answers[b]!), over: "positions" }));
          const sw = cs.ablationSweep(model, x.tokens, { ...base, metric: cs.logitDiffMetric(answers), over: "positions" });
          const want: number[] = [];
          for (let l = 0; l < L; l++) for (let p = 0; p < T; p++) {
            let s = 0;
            per.forEach((pr, b) => { const q = p - x.offsets[b]!, n = pr.values.shape[1]!; if (q >= 0 && q < n) s += pr.values.toArray()[l * n + q]!; });
            want.push(s / 2);
          }
          assertClose(sw.values.toArray(), want, 1e-9, `${side} mean positions sweep`);
        }
      }
      // A left-padded reference (right-padded input): without its mask the pad columns would count at the first positions.
      if (side === "left") continue;
      const unmasked = cs.ablationSweep(model, x.tokens, { kind: "mean", reference: r.tokens, attentionMask: x.mask, metric: cs.logitDiffMetric(answers) });
      const masked = cs.ablationSweep(model, x.tokens, { kind: "mean", reference: r.tokens, ...pads, metric: cs.logitDiffMetric(answers) });
      assert.ok(assertCloseOrDiff(unmasked.values.toArray(), masked.values.toArray()) > 1e-6, `${side}: the reference mask matters`);
    }
    const short = padRows(randomRows(V, [3, 2], 5), "right", 0);
    assert.throws(() => cs.ablate(model, [clean[0]!], { kind: "mean", target: { layer: 0, head: 0 }, reference: short.tokens, referenceAttentionMask: short.mask }), /no reference row has a real token at position 3, which input row 0 needs/);
    assert.throws(() => cs.ablate(model, [clean[0]!], { kind: "resample", target: { layer: 0, head: 0 }, reference: short.tokens, referenceAttentionMask: short.mask }), /resampled reference row \d has no real token at position \d/);
    assert.throws(() => cs.ablate(model, [clean[0]!], { kind: "mean", target: { layer: 0, head: 0 }, reference: short.tokens, referenceAttentionMask: new cs.Tensor(Int32Array.from([1, 1]), [1, 2]) }), /ablate: referenceAttentionMask must be \[batch, pos\] = \[2, 3\]/);
  });
}

/** Logits [batch, pos, d_vocab] as nested arrays. */
function ablate3(t: cs.Tensor): number[][][] {
  const [B, T, V] = t.shape as [number, number, number], d = t.toArray();
  return Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, p) => Array.from(d.slice((b * T + p) * V, (b * T + p + 1) * V))));
}

function assertCloseOrDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

// ---- path patching on padded batches ------------------------------------------------------------

for (const arch of ["gpt2", "llama", "neox"] as const) {
  test(`${arch}: pathPatch and pathPatchSweep on left- and right-padded prompts equal each prompt alone`, () => {
    const model = randomModel(arch, { seed: 9, dtype: "float64" });
    const { clean, corrupted } = pair(model.cfg.d_vocab);
    const receiverSets: (cs.PathPatchOptions["receivers"])[] = ["logits", [{ layer: 1, head: 0, input: "q" }, { layer: 1, head: 1, input: "v" }, { layer: 1, head: 3, input: "k" }]];
    const w = lengths.map((n) => (n - 1) / (lengths[0]! + lengths[1]! - 2));
    for (const side of ["left", "right"] as Side[]) {
      const c = padRows(clean, side, 0), k = padRows(corrupted, side, 0);
      for (const receivers of receiverSets) for (const freezeMlps of [false, true]) for (const direction of ["noising", "denoising"] as const) {
        const alone = (b: number) => cs.pathPatchSweep(model, { clean: [clean[b]!], corrupted: [corrupted[b]!], metric: cs.logitDiffMetric(answers[b]!), receivers, freezeMlps, direction });
        const per = [alone(0), alone(1)];
        const got = cs.pathPatchSweep(model, { clean: c.tokens, corrupted: k.tokens, metric: cs.logitDiffMetric(answers), receivers, freezeMlps, direction, attentionMask: c.mask });
        const mean = (f: (r: cs.PathPatchSweep) => number) => (f(per[0]!) + f(per[1]!)) / 2;
        const worst = assertClose(got.values.toArray(), got.values.toArray().map((_, i) => mean((r) => r.values.toArray()[i]!)), 1e-9, `${side} ${JSON.stringify(receivers)} freezeMlps ${freezeMlps} ${direction}`);
        assertClose([got.cleanMetric, got.corruptedMetric, got.targetMetric], [mean((r) => r.cleanMetric), mean((r) => r.corruptedMetric), mean((r) => r.targetMetric)], 1e-9, `${side} baselines`);
        if (freezeMlps && direction === "noising") console.log(`${arch} ${side} padding, pathPatchSweep to ${receivers === "logits" ? "logits" : "3 receiver inputs"} (freezeMlps): worst |diff| from the unpadded prompts ${worst.toExponential(2)}`);
      }
      // Several senders at once, with a loss metric (pooled over every real target).
      const sender = [{ layer: 0, head: 1 }, { layer: 0, head: 2 }];
      const per = [0, 1].map((b) => cs.pathPatch(model, { clean: [clean[b]!], corrupted: [corrupted[b]!], metric: cs.lossMetric([clean[b]!]), receivers: "logits", sender }));
      const got = cs.pathPatch(model, { clean: c.tokens, corrupted: k.tokens, metric: cs.lossMetric(rowsOf(c.tokens)), receivers: "logits", sender, attentionMask: c.mask });
      assertClose([got.value, got.cleanMetric, got.corruptedMetric], [w[0]! * per[0]!.value + w[1]! * per[1]!.value, w[0]! * per[0]!.cleanMetric + w[1]! * per[1]!.cleanMetric, w[0]! * per[0]!.corruptedMetric + w[1]! * per[1]!.corruptedMetric], 1e-9, `${side} pathPatch with lossMetric`);
    }
    const c = padRows(clean, "left", 0);
    assert.throws(() => cs.pathPatch(model, { clean: c.tokens, corrupted: c.tokens, metric: cs.logitDiffMetric(answers), receivers: "logits", sender: { layer: 0, head: 0 }, attentionMask: cs.slice(c.mask, 0, 0, 1) }), /pathPatch: attentionMask must be \[batch, pos\] = \[2, 6\]/);
    assert.throws(() => cs.ablationSweep(model, c.tokens, { kind: "zero", metric: cs.logitDiffMetric(answers), attentionMask: new cs.Tensor(new Int32Array(12), [2, 6]) }), /ablationSweep: attentionMask row 0 has no real token/);
  });
}

// ---- circuit discovery on padded batches --------------------------------------------------------

/** A seeded random edge mask keeping about half the edges. */
function randomMask(n: number, seed: number): Uint8Array {
  const rng = new cs.Rng(seed);
  return Uint8Array.from({ length: n }, () => (rng.uniform() < 0.5 ? 1 : 0));
}

for (const arch of ["gpt2", "llama", "neox"] as const) {
  test(`${arch}: CircuitRunner, EAP and EAP-IG on left- and right-padded prompts equal the mean of each prompt alone; discoverCircuit (EAP, EAP-IG, ACDC) on one padded prompt equals it unpadded`, () => {
    const model = randomModel(arch, { seed: 10, dtype: "float64" });
    const { clean, corrupted } = pair(model.cfg.d_vocab);
    const alone = [0, 1].map((b) => new cs.CircuitRunner(model, { clean: [clean[b]!], corrupted: [corrupted[b]!], metric: cs.logitDiffMetric(answers[b]!) }));
    const E = alone[0]!.graph.edges.length;
    const eapAlone = alone.map((r) => cs.eapScores(r)), igAlone = alone.map((r) => cs.eapIgScores(r, 4));
    const masks = [randomMask(E, 1), randomMask(E, 2)];
    for (const side of ["left", "right"] as Side[]) {
      const c = padRows(clean, side, 0), k = padRows(corrupted, side, 0);
      const runner = new cs.CircuitRunner(model, { clean: c.tokens, corrupted: k.tokens, metric: cs.logitDiffMetric(answers), attentionMask: c.mask });
      const mean = (f: (r: cs.CircuitRunner) => number) => (f(alone[0]!) + f(alone[1]!)) / 2;
      assertClose([runner.cleanMetric, runner.corruptedMetric], [mean((r) => r.cleanMetric), mean((r) => r.corruptedMetric)], 1e-9, `${side} runner baselines`);
      // Any circuit: its metric, and its KL to the clean model at each row's last real token, are the prompts' means.
      for (const m of masks) {
        assertClose([runner.metricOf(m), runner.klToClean(runner.logits(m))], [mean((r) => r.metricOf(m)), mean((r) => r.klToClean(r.logits(m)))], 1e-9, `${side} circuit metric and KL`);
      }
      const eap = cs.eapScores(runner), ig = cs.eapIgScores(runner, 4);
      const we = assertClose(eap, eap.map((_, i) => (eapAlone[0]![i]! + eapAlone[1]![i]!) / 2), 1e-9, `${side} EAP scores`);
      const wi = assertClose(ig, ig.map((_, i) => (igAlone[0]![i]! + igAlone[1]![i]!) / 2), 1e-9, `${side} EAP-IG scores`);
      console.log(`${arch} ${side} padding, ${E} edges: EAP worst |diff| ${we.toExponential(2)}, EAP-IG ${wi.toExponential(2)} from the mean of the unpadded prompts`);
      // One prompt padded by 2 tokens: every method chooses the same circuit as the prompt alone.
      const row = clean[1]!, crow = corrupted[1]!;
      const one = padRows([row, [...row, 1, 1]], side, 0), onek = padRows([crow, [...crow, 1, 1]], side, 0);
      const padded1 = { clean: cs.slice(one.tokens, 0, 0, 1), corrupted: cs.slice(onek.tokens, 0, 0, 1), attentionMask: cs.slice(one.mask, 0, 0, 1) };
      for (const [method, metric, extra] of [
        ["eap", cs.logitDiffMetric(answers[1]!), {}], ["eap-ig", cs.logitDiffMetric(answers[1]!), { steps: 4 }], ["acdc", cs.logitDiffMetric(answers[1]!), { threshold: 0.005 }],
        ["eap", cs.lossMetric(rowsOf(padded1.clean)), { topN: 12 }],
      ] as const) {
        const unpaddedMetric = method === "eap" && metric.positions === "all" ? cs.lossMetric([row]) : metric;
        const want = cs.discoverCircuit(model, { clean: [row], corrupted: [crow], metric: unpaddedMetric, method, curvePoints: 4, ...extra });
        const got = cs.discoverCircuit(model, { ...padded1, metric, method, curvePoints: 4, ...extra });
        assert.deepEqual(Array.from(got.mask), Array.from(want.mask), `${side} ${method} (${metric.name}): the same circuit`);
        const ws = assertClose(got.scores, want.scores, 1e-9, `${side} ${method} scores`);
        assertClose([got.faithfulness.metric, got.faithfulness.kl, got.cleanMetric, got.corruptedMetric], [want.faithfulness.metric, want.faithfulness.kl, want.cleanMetric, want.corruptedMetric], 1e-9, `${side} ${method} faithfulness`);
        console.log(`${arch} ${side} padding, discoverCircuit ${method} (${metric.name}): ${got.edges.length} edges as unpadded, scores worst |diff| ${ws.toExponential(2)}`);
      }
      const bad = new cs.CircuitRunner(model, { clean: c.tokens, corrupted: k.tokens, metric: cs.logitDiffMetric(answers), attentionMask: c.mask, klPositions: [9] });
      assert.throws(() => bad.klToClean(bad.cleanLogits), /circuit: klPositions entry 9 is outside \[0, 6\)/);
    }
  });
}

// ---- logit lens and direct logit attribution from a padded cache --------------------------------

/** Row b's entries of x [..., batch, pos, ...rest] at its real positions, as a flat list. */
function realEntries(x: cs.Tensor, batchDim: number, b: number, offset: number, n: number): number[] {
  const s = x.shape, d = x.toArray(), T = s[batchDim + 1]!;
  const outer = s.slice(0, batchDim).reduce((a, v) => a * v, 1), inner = s.slice(batchDim + 2).reduce((a, v) => a * v, 1), B = s[batchDim]!;
  const out: number[] = [];
  for (let o = 0; o < outer; o++) for (let q = 0; q < n; q++) for (let i = 0; i < inner; i++) out.push(d[((o * B + b) * T + offset + q) * inner + i]!);
  return out;
}

for (const arch of ["gpt2", "llama", "neox"] as const) {
  test(`${arch}: logitLens and head / MLP / neuron DLA from runWithCache with a mask give each prompt's unpadded values at its real positions`, () => {
    const model = randomModel(arch, { seed: 11, dtype: "float64" });
    const { clean } = pair(model.cfg.d_vocab);
    const target = { token: 3, incorrect: 4 };
    const views = (cache: cs.ActivationCache) => ({
      lens: cs.logitLens(model, cache, { topK: 1 }).logits, lensCached: cs.logitLens(model, cache, { topK: 1, lnScale: "cached" }).logits,
      heads: cs.headLogitAttribution(cache, target).components, mlps: cs.mlpLogitAttribution(cache, target).components,
      neurons: cs.neuronLogitAttribution(model, cache, 1, target).components,
    });
    // The batch axis: logits [layer, batch, pos, d_vocab]; DLA components [n, batch, pos].
    const alone = [0, 1].map((b) => views(cs.noGrad(() => model.runWithCache([clean[b]!])).cache));
    for (const side of ["left", "right"] as Side[]) {
      const x = padRows(clean, side, 0);
      const got = views(cs.noGrad(() => model.runWithCache(x.tokens, { attentionMask: x.mask })).cache);
      let worst = 0;
      for (const key of Object.keys(got) as (keyof typeof got)[]) for (const b of [0, 1]) {
        worst = Math.max(worst, assertClose(realEntries(got[key], 1, b, x.offsets[b]!, lengths[b]!), realEntries(alone[b]![key], 1, 0, 0, lengths[b]!), 1e-9, `${side} ${key} row ${b}`));
      }
      console.log(`${arch} ${side} padding: logit lens (recomputed and cached scale), head, MLP and neuron DLA at real positions: worst |diff| ${worst.toExponential(2)}`);
    }
  });
}
