// Shared checks for the architecture tests (test/arch-*.test.ts): a tiny random checkpoint written in
// the exact hub layout (config.json as the hub has it, safetensors under HF tensor names listed by hand
// in each test), loaded by loadPretrained, compared with an independent float64 reference forward
// (test/reference/*.ts) on logits (float32 model, max |diff| < 5e-5), on a left-padded batch with an
// attentionMask (each row's real positions vs the reference on that row alone), on the gradient of a
// random linear functional of the logits w.r.t. hook_embed (float64 model vs central finite differences
// of the reference, < 2e-5), and through saveHF → loadPretrained.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { TestContext } from "node:test";
import * as cs from "../src/index.js";
import { loadPretrained, saveHF, saveSafetensors, loadSafetensors, type HFConfigJson } from "../src/io/index.js";
import type { Weights, W } from "./reference/common.js";

export type Spec = [name: string, shape: number[], kind?: "norm" | "bias" | "buffer" | "gemma-norm"];
export type RefFn = (config: HFConfigJson, w: Weights, ids: readonly number[], opts?: { embedDelta?: Float64Array }) => Float64Array;
export interface Family {
  name: string; config: HFConfigJson; specs: Spec[]; ref: RefFn;
  /** config.json overrides that switch the family's distinguishing feature off: the reference must then give other logits. */
  without?: HFConfigJson;
}

const tmpDirs: string[] = [];
export const tmp = (): string => { const d = fs.mkdtempSync(path.join(os.tmpdir(), "cs-arch-")); tmpDirs.push(d); return d; };
process.on("exit", () => { for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true }); });

/** N(0, 0.3²) weights, N(0, 0.1²) biases, 1 + N(0, 0.1²) norm weights, N(0, 0.1²) Gemma norm weights (used as 1 + w). */
function randomTensors(specs: Spec[], seed: number): Map<string, cs.Tensor> {
  const rng = new cs.Rng(seed), out = new Map<string, cs.Tensor>();
  for (const [name, shape, kind] of specs) {
    const n = shape.reduce((a, b) => a * b, 1), d = new Float32Array(n);
    for (let i = 0; i < n; i++) d[i] = kind === "norm" ? 1 + 0.1 * rng.normal() : kind === "bias" || kind === "gemma-norm" ? 0.1 * rng.normal() : kind === "buffer" ? 1 : 0.3 * rng.normal();
    out.set(name, new cs.Tensor(d, shape));
  }
  return out;
}

export function writeFamily(f: Family, seed = 1234): { dir: string; w: Weights } {
  const dir = tmp();
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(f.config, null, 2));
  saveSafetensors(path.join(dir, "model.safetensors"), randomTensors(f.specs, seed), { format: "pt" });
  const w = new Map<string, W>();
  for (const [k, t] of loadSafetensors(path.join(dir, "model.safetensors"), { dtype: "float64" })) w.set(k, { shape: t.shape.slice(), data: t.toArray() as Float64Array });
  return { dir, w };
}

const SEQS = [[3, 17, 42, 8, 0, 49, 23, 11], [5, 5, 12, 30, 1, 2, 44, 7]];
const RAGGED = [[9, 4, 33, 21, 0, 18, 40, 2], [6, 28, 13]];

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>, aOff = 0): number {
  let worst = 0;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[aOff + i]! - b[i]!);
    assert.ok(Number.isFinite(d), `non-finite value at ${i}`);
    worst = Math.max(worst, d);
  }
  return worst;
}

/** Run every check on one family; returns the measured differences. */
export function checkFamily(t: TestContext, f: Family, opts: { padded?: boolean } = {}): void {
  const { dir, w } = writeFamily(f);
  const V = f.config.vocab_size as number;
  const r0 = f.ref(f.config, w, SEQS[0]!);
  assert.ok(Math.max(...r0) - Math.min(...r0) > 0.5, "the random model's logits should vary");
  if (f.without) {
    // The test could not tell the feature from its absence unless the two give different logits.
    const off = maxDiff(f.ref({ ...f.config, ...f.without }, w, SEQS[0]!), r0);
    t.diagnostic(`${f.name}: switching off ${Object.keys(f.without).join(", ")} moves the reference logits by ${off.toExponential(2)}`);
    assert.ok(off > 1e-2, `the feature switched off by ${JSON.stringify(f.without)} barely changes the logits (${off})`);
  }

  // 1. Logits of an unpadded batch.
  const { model, hfConfig } = loadPretrained(dir);
  const logits = cs.noGrad(() => model.forward(SEQS)).toArray();
  let d32 = 0;
  SEQS.forEach((ids, b) => { d32 = Math.max(d32, maxDiff(logits, f.ref(f.config, w, ids), b * ids.length * V)); });
  t.diagnostic(`${f.name}: float32 max |logit diff| vs reference = ${d32.toExponential(2)}`);
  assert.ok(d32 < 5e-5, `float32 max |logit diff| ${d32} >= 5e-5`);

  // 2. A left-padded batch with an attention mask gives each row its unpadded logits.
  if (opts.padded !== false) checkPadded(t, f, model, w);

  // 3. d(sum(logits · R)) / d(hook_embed) in float64 vs central differences of the reference.
  const m64 = loadPretrained(dir, { dtype: "float64" }).model;
  const ids = SEQS[0]!, T = ids.length, D = m64.cfg.d_model, rng = new cs.Rng(7);
  const R = new Float64Array(T * V).map(() => rng.normal());
  let leaf: cs.Tensor | null = null;
  const out = m64.runWithHooks([ids], { fwd: [["hook_embed", (a) => (leaf = a.detach().requireGrad())]] });
  const [g] = cs.grad(out.mul(new cs.Tensor(R, [1, T, V])).sum(), [leaf!]);
  const ours = g!.toArray();
  const S = (delta: Float64Array) => f.ref(f.config, w, ids, { embedDelta: delta }).reduce((s, x, i) => s + x * R[i]!, 0);
  let dGrad = 0;
  for (let n = 0; n < 10; n++) {
    const at = Math.floor(rng.uniform() * T * D), h = 1e-5, plus = new Float64Array(T * D), minus = new Float64Array(T * D);
    plus[at] = h; minus[at] = -h;
    const fd = (S(plus) - S(minus)) / (2 * h);
    dGrad = Math.max(dGrad, Math.abs(fd - ours[at]!) / Math.max(1, Math.abs(fd)));
  }
  t.diagnostic(`${f.name}: max relative |grad diff| at hook_embed vs finite differences = ${dGrad.toExponential(2)}`);
  assert.ok(dGrad < 2e-5, `gradient diff ${dGrad} >= 2e-5`);

  // TransformerLens's weight processing (every step valid for the family) leaves the float64 log-probabilities unchanged.
  const logProbs = () => cs.noGrad(() => cs.logSoftmax(m64.forward(SEQS), -1)).toArray();
  const before = logProbs(), steps = cs.processWeights(m64), dProc = maxDiff(logProbs(), before);
  t.diagnostic(`${f.name}: processWeights (${steps.join(", ")}) moves float64 log-probabilities by ${dProc.toExponential(2)}`);
  assert.ok(dProc < 1e-9, `processWeights changed the log-probabilities by ${dProc}`);

  // 4. saveHF → loadPretrained: same tensors (up to Gemma's 1 + w rounding) and logits.
  const again = tmp();
  saveHF(model, again, { baseConfig: hfConfig });
  const saved = loadSafetensors(path.join(again, "model.safetensors"), { dtype: "float64" });
  const weightsOnly = [...w.keys()].filter((k) => !/\.attn\.(attention\.)?(bias|masked_bias)$/.test(k)).sort();
  assert.deepEqual([...saved.keys()].sort(), weightsOnly, "saved tensor names");
  let dW = 0;
  for (const k of weightsOnly) dW = Math.max(dW, maxDiff(saved.get(k)!.toArray(), w.get(k)!.data));
  assert.ok(dW <= 1e-7, `saved tensors differ by ${dW}`);
  const back = cs.noGrad(() => loadPretrained(again).model.forward(SEQS)).toArray();
  const dBack = maxDiff(back, logits);
  t.diagnostic(`${f.name}: saveHF round trip max |tensor diff| = ${dW.toExponential(2)}, |logit diff| = ${dBack.toExponential(2)}`);
  assert.ok(dBack < 1e-5, `round-trip logits differ by ${dBack}`);
}

function checkPadded(t: TestContext, f: Family, model: cs.HookedTransformer, w: Weights): void {
  const V = f.config.vocab_size as number;
  const Tp = RAGGED[0]!.length;
  const toks = new Int32Array(2 * Tp), mask = new Int32Array(2 * Tp);
  RAGGED.forEach((ids, b) => ids.forEach((id, j) => { const at = b * Tp + Tp - ids.length + j; toks[at] = id; mask[at] = 1; }));
  const padded = cs.noGrad(() => model.forward(new cs.Tensor(toks, [2, Tp]), { attentionMask: new cs.Tensor(mask, [2, Tp]) })).toArray();
  let dPad = 0;
  RAGGED.forEach((ids, b) => { dPad = Math.max(dPad, maxDiff(padded, f.ref(f.config, w, ids), (b * Tp + Tp - ids.length) * V)); });
  t.diagnostic(`${f.name}: left-padded batch max |logit diff| vs reference = ${dPad.toExponential(2)}`);
  assert.ok(dPad < 5e-5, `padded max |logit diff| ${dPad} >= 5e-5`);
}

/** HF names for model.layers[l] of a Llama-block model (listed from the modeling files, not from src/io). */
export function llamaBlockSpecs(c: HFConfigJson, extra: (h: string) => Spec[] = () => []): Spec[] {
  const D = c.hidden_size as number, M = c.intermediate_size as number, V = c.vocab_size as number, H = c.num_attention_heads as number;
  const Hkv = (c.num_key_value_heads as number | undefined) ?? H, dh = (c.head_dim as number | undefined) ?? D / H;
  const s: Spec[] = [["model.embed_tokens.weight", [V, D]]];
  for (let l = 0; l < (c.num_hidden_layers as number); l++) {
    const h = `model.layers.${l}.`;
    s.push([`${h}input_layernorm.weight`, [D], "norm"], [`${h}post_attention_layernorm.weight`, [D], "norm"],
      [`${h}self_attn.q_proj.weight`, [H * dh, D]], [`${h}self_attn.k_proj.weight`, [Hkv * dh, D]],
      [`${h}self_attn.v_proj.weight`, [Hkv * dh, D]], [`${h}self_attn.o_proj.weight`, [D, H * dh]],
      [`${h}mlp.gate_proj.weight`, [M, D]], [`${h}mlp.up_proj.weight`, [M, D]], [`${h}mlp.down_proj.weight`, [D, M]], ...extra(h));
  }
  s.push(["model.norm.weight", [D], "norm"]);
  if (c.tie_word_embeddings !== true) s.push(["lm_head.weight", [V, D]]);
  return s;
}

/** Greedy generation with and without the KV cache, on a left-padded batch: the same tokens. */
export function checkCachedGeneration(f: Family): void {
  const { dir } = writeFamily(f, 99);
  const { model } = loadPretrained(dir);
  const Tp = 6, toks = new Int32Array([0, 0, 0, 7, 19, 3, 4, 22, 9, 31, 5, 17]), mask = new Int32Array([0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
  const opts = { maxNewTokens: 10, temperature: 0, attentionMask: new cs.Tensor(mask, [2, Tp]) };
  const cached = cs.generate(model, new cs.Tensor(toks, [2, Tp]), opts);
  const uncached = cs.generate(model, new cs.Tensor(toks, [2, Tp]), { ...opts, useCache: false });
  assert.deepEqual(cached.tokens, uncached.tokens);
  assert.equal(cached.newTokens[0]!.length, 10);
}
