// `circuitscope qk-ov`, `attribute --layer` and `patch --by layer` end to end on the shared tiny-gpt2
// snapshot (skipped when ../shared is absent): each --json document is checked against the library
// function run here in-process on the same weights and tokens, the pictures are well-formed and
// labelled, and bad input exits 2 with a message naming the problem.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { useBackend } from "../src/backend/init.js";
import { loadPretrained } from "../src/io/snapshot.js";
import { encodeText } from "../src/model/tokens.js";
import { processWeights } from "../src/model/weight-processing.js";
import { noGrad } from "../src/tensor/autodiff.js";
import { copyingScores, positionalQK, tokenCircuit } from "../src/analysis/full-circuits.js";
import { ovCircuit, qkCircuit } from "../src/analysis/circuits.js";
import { layerIntegratedGradients, logitOf } from "../src/analysis/attribution.js";
import { logitDiffMetric, normalizedMetric } from "../src/analysis/patching-metrics.js";
import { patchByLayer } from "../src/analysis/patching.js";
import type { HookName } from "../src/model/hooks.js";
import { assertSvg, cli, errorOf, noTinyGpt2 as skip, tinyGpt2 as snapshot } from "./cli-helpers.js";

// The same default backend as the CLI, so in-process results match its numbers.
if (!skip) useBackend();
const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), "circuitscope-views-"));
const load = () => { const p = loadPretrained(snapshot); return { model: p.model, tokenizer: p.tokenizer! }; };
/** |a − b| within tol of the scale (the largest |value| of the reference), element by element. */
function closeAll(a: readonly (number | null)[], b: readonly number[], tol: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  const scale = Math.max(1e-30, ...b.map(Math.abs));
  a.forEach((x, i) => assert.ok(x !== null && Math.abs(x - b[i]!) <= tol * scale, `${what}[${i}]: ${x} vs ${b[i]} (scale ${scale})`));
}

interface QkOvDoc {
  processedWeights: string[]; tokens: { id: number; str: string; label: string }[]; positions: number;
  copyingScores: number[][];
  heads: { layer: number; head: number; label: string; copyingScore: number; ov: number[][]; qk: number[][]; qkPos: (number | null)[][]; singularValues: { ov: number[]; qk: number[] } }[];
  files: string[];
}

test("qk-ov --json --out: restricted full OV/QK, positional QK, copying scores and spectra equal the library's; five pictures", { skip }, () => {
  const dir = tmp();
  const r = cli("qk-ov", snapshot, "--heads", "1.0,0.1", "--tokens", " Mary, John, the,.", "--positions", "6", "--out", dir, "--json");
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as QkOvDoc;
  const { model, tokenizer } = load();
  assert.deepEqual(doc.processedWeights, processWeights(model));
  const ids = [" Mary", " John", " the", "."].map((t) => tokenizer.encode(t)[0]!);
  assert.deepEqual(doc.tokens.map((t) => t.id), ids);
  assert.deepEqual(doc.tokens.map((t) => t.label), ["·Mary", "·John", "·the", "."]);
  const scores = copyingScores(model);
  closeAll(doc.copyingScores.flat(), scores.flat(), 1e-9, "copying scores");
  assert.deepEqual(doc.heads.map((h) => h.label), ["L1H0", "L0H1"]);
  for (const h of doc.heads) {
    assert.equal(h.copyingScore, doc.copyingScores[h.layer]![h.head]);
    const ov = noGrad(() => tokenCircuit(model, h.layer, "ov", ids).AB), qk = noGrad(() => tokenCircuit(model, h.layer, "qk", ids).AB);
    const pos = noGrad(() => positionalQK(model, h.layer, 6).AB);
    const at = (t: typeof ov, n: number) => Array.from({ length: n * n }, (_, k) => t.get(h.head, Math.floor(k / n), k % n));
    closeAll(h.ov.flat(), at(ov, 4), 1e-5, `${h.label} ov`);
    closeAll(h.qk.flat(), at(qk, 4), 1e-5, `${h.label} qk`);
    // Causal: a query sees keys at or before it; later keys are null.
    h.qkPos.forEach((row, q) => row.forEach((v, k) => { if (k > q) assert.equal(v, null, `${h.label} pos [${q}, ${k}]`); }));
    const full = at(pos, 6);
    closeAll(h.qkPos.flat().filter((_, i) => i % 6 <= Math.floor(i / 6)), full.filter((_, i) => i % 6 <= Math.floor(i / 6)), 1e-5, `${h.label} qkPos`);
    const sv = (t: ReturnType<typeof ovCircuit>) => Array.from(t.singularValues().toArray().slice(h.head * model.cfg.d_head, (h.head + 1) * model.cfg.d_head));
    closeAll(h.singularValues.ov, sv(ovCircuit(model, h.layer)), 1e-6, `${h.label} σ OV`);
    closeAll(h.singularValues.qk, sv(qkCircuit(model, h.layer)), 1e-6, `${h.label} σ QK`);
  }
  const names = ["ov.svg", "qk.svg", "qk-pos.svg", "copying.svg", "spectrum.svg", "qk-ov.json"];
  assert.deepEqual(doc.files, names.map((n) => path.join(dir, n)));
  assert.deepEqual(fs.readdirSync(dir).sort(), [...names].sort());
  assertSvg(doc.files[0]!, ["full OV circuit", "L1H0", "L0H1", "·Mary", "·John", "attended token", "logit token"]);
  assertSvg(doc.files[1]!, ["full QK circuit", "·the", "query token", "key token"]);
  assertSvg(doc.files[2]!, ["positional QK circuit", "key position", "NaN"]);
  assertSvg(doc.files[3]!, ["copying score", "L0", "L1", "H0", "H1"]);
  assertSvg(doc.files[4]!, ["singular values", "L1H0 OV", "L0H1 QK"]);
  assert.deepEqual(JSON.parse(fs.readFileSync(doc.files[5]!, "utf8")), doc);

  // Default token subset: the first printable tokens of the vocabulary.
  const d2 = JSON.parse(cli("qk-ov", snapshot, "--heads", "0.0", "--first", "3", "--json").stdout) as QkOvDoc;
  assert.deepEqual(d2.tokens.map((t) => t.str), ["!", "\"", "#"]);

  assert.match(errorOf(cli("qk-ov", snapshot, "--heads", "2.0", "--json")), /2\.0 does not exist/);
  assert.match(errorOf(cli("qk-ov", snapshot, "--tokens", " Mary, Johnathanson", "--json")), /--tokens: " Johnathanson" is 3 tokens/);
});

test("attribute --layer <hook>: equals layerIntegratedGradients on that hook; unknown or position-less hooks exit 2", { skip }, () => {
  const dir = tmp(), prompt = "The capital of France is", hook = "blocks.0.hook_resid_post";
  const r = cli("attribute", snapshot, prompt, "--target", " Paris", "--layer", hook, "--steps", "16", "--out", dir, "--json");
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { hook: string; tokens: { id: number; attribution: number }[]; completeness: { sum: number; gap: number; fInput: number; fBaseline: number }; files: string[] };
  assert.equal(doc.hook, hook);
  const { model, tokenizer } = load();
  const ids = encodeText(tokenizer, prompt);
  assert.deepEqual(doc.tokens.map((t) => t.id), ids);
  const ref = layerIntegratedGradients(model, ids, hook as HookName, logitOf(tokenizer.encode(" Paris")[0]!), { steps: 16, method: "gausslegendre" });
  closeAll(doc.tokens.map((t) => t.attribution), ref.perPosition, 1e-5, "per position");
  closeAll([doc.completeness.sum, doc.completeness.fInput, doc.completeness.fBaseline], [ref.completeness.sum, ref.completeness.fInput, ref.completeness.fBaseline], 1e-5, "completeness");
  // The flag is not ignored: hook_embed's attributions are different numbers.
  const embed = layerIntegratedGradients(model, ids, "hook_embed" as HookName, logitOf(tokenizer.encode(" Paris")[0]!), { steps: 16, method: "gausslegendre" });
  assert.ok(embed.perPosition.some((v, i) => Math.abs(v - ref.perPosition[i]!) > 1e-3 * Math.max(...ref.perPosition.map(Math.abs))), "hook_embed and resid_post attributions differ");
  const svg = assertSvg(doc.files[0]!, ["ig at blocks.0.hook_resid_post", "·France", "completeness: Σ"]);
  assert.ok(svg.includes(`gap ${doc.completeness.gap.toExponential(2)}`), "the gap in the picture is the JSON's");
  assert.equal(svg.match(/<rect class="tok"/g)?.length, ids.length);

  assert.match(errorOf(cli("attribute", snapshot, prompt, "--layer", "blocks.0.hook_resdi_post", "--json")), /unknown hook point "blocks\.0\.hook_resdi_post"; did you mean "blocks\.0\.hook_resid_post"/);
  assert.match(errorOf(cli("attribute", snapshot, prompt, "--layer", "blocks.0.attn.hook_pattern", "--json")), /no single position axis/);
  assert.match(errorOf(cli("attribute", snapshot, prompt, "--layer", hook, "--method", "lrp", "--json")), /--layer: takes method ig/);
});

test("patch --by layer: one value per layer equal to patchByLayer; bar chart; bad site exits 2", { skip }, () => {
  const CLEAN = "When Mary and John went to the store, John gave a drink to";
  const CORRUPTED = "When Mary and John went to the store, Mary gave a drink to";
  const dir = tmp();
  const r = cli("patch", snapshot, "--clean", CLEAN, "--corrupted", CORRUPTED, "--answer", " Mary", "--wrong", " John", "--by", "layer", "--site", "attn_out", "--out", dir, "--json");
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { by: string; site: string; shape: number[]; values: number[]; axes: { name: string; labels: string[] }[]; metric: { cleanLogitDiff: number; corruptedLogitDiff: number; illConditioned: boolean }; files: string[] };
  assert.equal(doc.by, "layer"); assert.equal(doc.site, "attn_out");
  assert.deepEqual(doc.shape, [2]);
  assert.deepEqual(doc.axes, [{ name: "layer", labels: ["0", "1"] }]);
  const { model, tokenizer } = load();
  const base = logitDiffMetric([tokenizer.encode(" Mary")[0]!, tokenizer.encode(" John")[0]!]);
  const ref = patchByLayer(model, {
    clean: [encodeText(tokenizer, CLEAN)], corrupted: [encodeText(tokenizer, CORRUPTED)], site: "attn_out",
    // tiny-gpt2's clean and corrupted logit diffs differ by ~2.6e-8: the CLI shows the raw metric (test/ill-conditioned.test.ts).
    metric: doc.metric.illConditioned ? base : normalizedMetric(base, doc.metric.cleanLogitDiff, doc.metric.corruptedLogitDiff),
  });
  assert.equal(doc.metric.illConditioned, true);
  closeAll(doc.values, Array.from(ref.values.toArray()), 1e-4, "per layer");
  assertSvg(doc.files[0]!, ["layer 0", "layer 1", "attn_out", "whole attn_out patched"]);
  assert.deepEqual(JSON.parse(fs.readFileSync(doc.files[1]!, "utf8")), doc);
  assert.match(errorOf(cli("patch", snapshot, "--clean", CLEAN, "--corrupted", CORRUPTED, "--answer", " Mary", "--wrong", " John", "--by", "layer", "--site", "z", "--json")), /--site: for by layer must be one of resid_pre, resid_mid, resid_post, attn_out, mlp_out, got "z"/);
});
