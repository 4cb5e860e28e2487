// Ill-conditioned normalisations are flagged, never shown as if meaningful. The helper's rule
// (|den| < 1e-6·max(1, scale)) at and around its threshold; then the README's IOI pair on the shared
// tiny-gpt2 snapshot, whose clean and corrupted logit differences agree to ~2.6e-8: the library's
// patching results carry illConditioned, and patch / path-patch (text, --json, SVG title) and the
// workbench's /api/patch say so and show the raw logit difference (equal to patching with the raw
// metric). A well-conditioned pair (a random model with large weights) reports false and is normalised.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { useBackend } from "../src/backend/init.js";
import { loadPretrained } from "../src/io/snapshot.js";
import { encodeText } from "../src/model/tokens.js";
import { noGrad } from "../src/tensor/autodiff.js";
import { conditioning, conditioningThreshold, describeIllConditioned, ratio, spanConditioning, ILL_CONDITIONED_RTOL } from "../src/analysis/conditioning.js";
import { logitDiffMetric, normalizedMetric } from "../src/analysis/patching-metrics.js";
import { attributionPatch, patchByPos } from "../src/analysis/patching.js";
import { pathPatchSweep } from "../src/analysis/path-patching.js";
import { CircuitRunner, discoverCircuit } from "../src/analysis/circuit-discovery/index.js";
import { completeness } from "../src/analysis/attribution.js";
import { downstreamMetrics } from "../src/sae/metrics.js";
import { SparseAutoencoder } from "../src/sae/model.js";
import type { TechniqueResult } from "../src/server/api-types.js";

/** The patch technique's result by pos or head: [layer][pos or head]. */
type PatchResponse = Omit<TechniqueResult<"patch">, "values"> & { values: number[][] };
import { assertSvg, cli, noTinyGpt2, tinyGpt2 } from "./cli-helpers.js";
import { post, startServe, tinySnapshot } from "./server-helpers.js";
import { randomModel, randomTokens } from "./model-fixtures.js";

// The README's IOI pair (README "Quick start" prompt, the names swapped in the corrupted one).
const CLEAN = "When Mary and John went to the store, John gave a drink to";
const CORRUPTED = "When Mary and John went to the store, Mary gave a drink to";
const PAIR = ["--clean", CLEAN, "--corrupted", CORRUPTED, "--answer", " Mary", "--wrong", " John"];
const skip = noTinyGpt2;
useBackend(); // the CLI's kernels, so in-process numbers match its output
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "circuitscope-illcond-"));
const dirs: string[] = [];
after(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });

test("conditioning: |den| < 1e-6·max(1, scale) is ill-conditioned, at and around the threshold", () => {
  assert.equal(ILL_CONDITIONED_RTOL, 1e-6);
  assert.equal(conditioningThreshold(0.0366), 1e-6);           // the floor of 1
  assert.equal(conditioningThreshold(-250), 2.5e-4);           // relative to |scale|
  assert.equal(conditioning(-2.6e-8, 0.0366).illConditioned, true);
  assert.equal(conditioning(1.3e-4, 0.0366).illConditioned, false);
  assert.equal(conditioning(1e-6, 0.5).illConditioned, false);  // exactly the threshold is usable
  assert.equal(conditioning(0.99e-6, 0.5).illConditioned, true);
  assert.equal(conditioning(1e-4, 250).illConditioned, true);   // small relative to a large metric
  assert.equal(conditioning(3e-4, 250).illConditioned, false);
  assert.equal(conditioning(0, 0).illConditioned, true);
  assert.equal(conditioning(NaN, 1).illConditioned, true);
  assert.equal(conditioning(1e-9, 1, 1e-10).illConditioned, false); // a tighter rtol for float64 work
  assert.throws(() => conditioning(1, 1, 0), /rtol must be > 0/);
  assert.throws(() => conditioning(1, NaN), /scale is NaN/);
  const r = ratio(3, 4, 10);
  assert.deepEqual(r, { value: 0.75, illConditioned: false, denominator: 4, threshold: 1e-6 * 10, scale: 10 });
  assert.equal(ratio(1, 0, 1).value, Infinity);
  const s = spanConditioning(0.03663069, 0.03663072);
  assert.equal(s.illConditioned, true);
  assert.ok(Math.abs(s.denominator + 3e-8) < 1e-15 && s.scale === 0.03663072);
  assert.equal(describeIllConditioned(s), "ill-conditioned: clean − corrupted = -3.00e-8 (|·| < 1.0e-6 = 1e-6·max(1, 0.0366))");
});

test("normalizedMetric carries its conditioning and names the raw metric when the baselines are equal", () => {
  const base = logitDiffMetric([0, 1]);
  assert.equal(normalizedMetric(base, 2, 1).conditioning.illConditioned, false);
  const ill = normalizedMetric(base, 1 + 1e-9, 1);
  assert.equal(ill.conditioning.illConditioned, true);
  assert.throws(() => normalizedMetric(base, 1, 1), /baselines are equal \(1\).*use the raw logit difference/);
});

test("library: patching and path patching of the IOI pair on tiny-gpt2 report illConditioned", { skip }, () => {
  const { model, tokenizer } = loadPretrained(tinyGpt2);
  const clean = encodeText(tokenizer!, CLEAN), corrupted = encodeText(tokenizer!, CORRUPTED);
  const base = logitDiffMetric([tokenizer!.encode(" Mary")[0]!, tokenizer!.encode(" John")[0]!]);
  const cleanLd = noGrad(() => base.compute(model.forward([clean])).item());
  const corruptedLd = noGrad(() => base.compute(model.forward([corrupted])).item());
  // The gap that makes this pair ill-conditioned: a few float32 ulps of a 0.037 logit difference.
  assert.ok(cleanLd !== corruptedLd && Math.abs(cleanLd - corruptedLd) < 1e-7, `gap ${cleanLd - corruptedLd}`);
  const metric = normalizedMetric(base, cleanLd, corruptedLd);
  const o = { clean: [clean], corrupted: [corrupted], metric };
  const r = patchByPos(model, { ...o, site: "resid_pre" });
  assert.equal(r.conditioning?.illConditioned, true);
  assert.equal(r.conditioning?.denominator, cleanLd - corruptedLd);
  assert.equal(r.conditioning?.threshold, 1e-6);
  assert.equal(attributionPatch(model, { ...o, site: "resid_pre", by: "pos" }).conditioning?.illConditioned, true);
  // Raw metric: no conditioning to report. Path patching judges its own clean/corrupted, and keeps an
  // ill-conditioned normalised metric flagged (whose own baselines are ~1 and ~0).
  assert.equal(patchByPos(model, { ...o, metric: base, site: "resid_pre" }).conditioning, undefined);
  const pp = pathPatchSweep(model, { clean: [clean], corrupted: [corrupted], metric: base, receivers: "logits" });
  assert.equal(pp.conditioning.illConditioned, true);
  assert.equal(pp.conditioning.denominator, pp.cleanMetric - pp.corruptedMetric);
  assert.equal(pathPatchSweep(model, { clean: [clean], corrupted: [corrupted], metric, receivers: "logits" }).conditioning.illConditioned, true);
});

interface PatchDoc {
  values: number[][];
  metric: { name: string; cleanLogitDiff: number; corruptedLogitDiff: number; target: number; source: number; normalized: boolean; illConditioned: boolean; denominator: number; threshold: number; note?: string };
  files: string[];
}

test("patch CLI on tiny-gpt2's IOI pair: text, --json and SVG say ill-conditioned and show the raw logit difference", { skip }, () => {
  const text = cli("patch", tinyGpt2, ...PAIR);
  assert.equal(text.code, 0, text.stderr);
  const first = text.stdout.split("\n")[0]!;
  assert.match(first, /^ill-conditioned: clean − corrupted = -2\.6\de-8 \(\|·\| < 1\.0e-6 = 1e-6·max\(1, 0\.0366\)\): .*showing the raw logit difference$/);
  assert.match(text.stdout, /\(raw logit diff; clean 0\.0366, corrupted 0\.0366\)/);
  assert.doesNotMatch(text.stdout, /1\.000/);

  const dir = tmp(); dirs.push(dir);
  const r = cli("patch", tinyGpt2, ...PAIR, "--out", dir, "--json");
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as PatchDoc;
  assert.equal(doc.metric.illConditioned, true);
  assert.equal(doc.metric.normalized, false);
  assert.equal(doc.metric.name, "logit difference");
  assert.equal(doc.metric.denominator, doc.metric.cleanLogitDiff - doc.metric.corruptedLogitDiff);
  assert.equal(doc.metric.threshold, 1e-6);
  assert.match(doc.metric.note!, /^ill-conditioned: clean − corrupted = /);
  // The raw values are patchByPos with the raw metric: the target (corrupted) run's logit diff, the clean one's.
  const { model, tokenizer } = loadPretrained(tinyGpt2);
  const base = logitDiffMetric([tokenizer!.encode(" Mary")[0]!, tokenizer!.encode(" John")[0]!]);
  const ref = patchByPos(model, { clean: [encodeText(tokenizer!, CLEAN)], corrupted: [encodeText(tokenizer!, CORRUPTED)], metric: base, site: "resid_pre" });
  assert.equal(doc.metric.target, doc.metric.corruptedLogitDiff);
  assert.equal(doc.metric.source, doc.metric.cleanLogitDiff);
  doc.values.forEach((row, l) => row.forEach((v, p) => assert.ok(Math.abs(v - ref.values.get(l, p)) <= 1e-7, `L${l} pos ${p}: ${v} vs ${ref.values.get(l, p)}`)));
  assertSvg(doc.files[0]!, ["ill-conditioned: clean − corrupted = -2.6e-8; showing the raw metric", "raw logit diff"]);
  assert.doesNotMatch(fs.readFileSync(doc.files[0]!, "utf8"), /normalised/);
});

test("path-patch CLI on tiny-gpt2's IOI pair: flagged, normalized null, Δ is the raw change of the logit difference", { skip }, () => {
  const dir = tmp(); dirs.push(dir);
  const r = cli("path-patch", tinyGpt2, ...PAIR, "--out", dir, "--json");
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { values: number[][]; normalized: (number | null)[][]; delta: number[][]; metric: PatchDoc["metric"] & { delta: string }; files: string[] };
  assert.equal(doc.metric.illConditioned, true);
  assert.equal(doc.metric.delta, "value − target");
  assert.ok(doc.normalized.flat().every((v) => v === null));
  doc.delta.forEach((row, l) => row.forEach((d, h) => assert.equal(d, doc.values[l]![h]! - doc.metric.target)));
  assertSvg(doc.files[0]!, ["ill-conditioned: clean − corrupted = -2.6e-8; showing the raw metric", "Δ raw logit diff"]);
  const text = cli("path-patch", tinyGpt2, ...PAIR);
  assert.match(text.stdout.split("\n")[0]!, /^ill-conditioned: clean − corrupted = -2\.6\de-8/);
});

test("a well-conditioned pair (random model, large weights): illConditioned false, normalised 0 … 1, no warning", () => {
  const { dir, folder } = tinySnapshot("circuitscope-illcond-ok-");
  dirs.push(dir);
  const args = ["--clean", "Mary and John. John gave it to", "--corrupted", "Mary and John. Mohn gave it to", "--answer", "M", "--wrong", "J", "--no-bos"];
  const r = cli("patch", folder, ...args, "--json");
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as PatchDoc;
  assert.equal(doc.metric.illConditioned, false);
  assert.equal(doc.metric.normalized, true);
  assert.equal(doc.metric.note, undefined);
  assert.ok(Math.abs(doc.metric.denominator) > 100 * doc.metric.threshold, `gap ${doc.metric.denominator}`);
  assert.ok(Math.abs(doc.metric.target) < 1e-5 && Math.abs(doc.metric.source - 1) < 1e-5, JSON.stringify(doc.metric));
  const text = cli("patch", folder, ...args);
  assert.doesNotMatch(text.stdout, /ill-conditioned/);
  assert.match(text.stdout, /normalised logit diff/);
});

test("the workbench's /api/patch flags tiny-gpt2's IOI pair and returns the raw logit difference; a well-conditioned pair is normalised", { skip, timeout: 120_000 }, async () => {
  const s = await startServe(tinyGpt2, "--quiet");
  try {
    const { status, doc } = await post<PatchResponse>(s.url + "api/patch", { clean: CLEAN, corrupted: CORRUPTED, answer: " Mary", wrong: " John" });
    assert.equal(status, 200, JSON.stringify(doc));
    assert.equal(doc.metric.illConditioned, true);
    assert.equal(doc.metric.normalized, false);
    assert.equal(doc.metric.denominator, doc.metric.cleanLogitDiff - doc.metric.corruptedLogitDiff);
    assert.ok(Math.abs(doc.metric.denominator) < doc.metric.threshold);
    const { model, tokenizer } = loadPretrained(tinyGpt2);
    const base = logitDiffMetric([tokenizer!.encode(" Mary")[0]!, tokenizer!.encode(" John")[0]!]);
    const ref = patchByPos(model, { clean: [encodeText(tokenizer!, CLEAN)], corrupted: [encodeText(tokenizer!, CORRUPTED)], metric: base, site: "resid_pre" });
    assert.deepEqual(doc.values, Array.from({ length: 2 }, (_, l) => Array.from({ length: doc.axes[1]!.labels.length }, (_, p) => ref.values.get(l, p))));
  } finally { await s.stop(); }
  const { dir, folder } = tinySnapshot("circuitscope-illcond-srv-");
  dirs.push(dir);
  const ok = await startServe(folder, "--quiet");
  try {
    const { doc } = await post<PatchResponse>(ok.url + "api/patch", { clean: "Mary and John. John gave it to", corrupted: "Mary and John. Mohn gave it to", answer: "M", wrong: "J" });
    assert.equal(doc.metric.illConditioned, false);
    assert.equal(doc.metric.normalized, true);
  } finally { await ok.stop(); }
});

test("circuit discovery: tiny-gpt2's IOI pair flags faithfulness (library, discover --json and text); a well-conditioned runner does not", { skip, timeout: 120_000 }, () => {
  const { model, tokenizer } = loadPretrained(tinyGpt2);
  const clean = encodeText(tokenizer!, CLEAN), corrupted = encodeText(tokenizer!, CORRUPTED);
  const base = logitDiffMetric([tokenizer!.encode(" Mary")[0]!, tokenizer!.encode(" John")[0]!]);
  const r = discoverCircuit(model, { clean: [clean], corrupted: [corrupted], metric: base, method: "eap", topN: 3, curvePoints: 3 });
  assert.equal(r.conditioning.illConditioned, true);
  assert.equal(r.conditioning.denominator, r.cleanMetric - r.corruptedMetric);
  assert.equal(r.faithfulness.illConditioned, true);
  assert.ok(r.curve.every((p) => p.illConditioned));
  // An already normalised metric of the same pair stays flagged (its own baselines are ~1 and ~0).
  const cleanLd = noGrad(() => base.compute(model.forward([clean])).item()), corruptedLd = noGrad(() => base.compute(model.forward([corrupted])).item());
  assert.equal(new CircuitRunner(model, { clean: [clean], corrupted: [corrupted], metric: normalizedMetric(base, cleanLd, corruptedLd) }).conditioning.illConditioned, true);

  const out = cli("discover", tinyGpt2, ...PAIR, "--method", "eap", "--top-n", "3", "--json");
  assert.equal(out.code, 0, out.stderr);
  const doc = JSON.parse(out.stdout) as { metric: PatchDoc["metric"]; faithfulness: { illConditioned: boolean }; scores: string };
  assert.equal(doc.metric.illConditioned, true);
  assert.equal(doc.metric.name, "logit difference");
  assert.equal(doc.faithfulness.illConditioned, true);
  assert.match(doc.scores, /Δ raw logit diff/);
  const text = cli("discover", tinyGpt2, ...PAIR, "--method", "eap", "--top-n", "3");
  assert.match(text.stdout, /^ill-conditioned: clean − corrupted = -2\.6\de-8.*faithfulness below is not meaningful$/m);
  assert.match(text.stdout, /faithfulness ill-conditioned: clean − corrupted logit diff is -2\.61e-8/);

  const { dir, folder } = tinySnapshot("circuitscope-illcond-cd-");
  dirs.push(dir);
  const p = loadPretrained(folder), tok = p.tokenizer!;
  const ok = new CircuitRunner(p.model, { clean: [encodeText(tok, "Mary and John. John gave it to")], corrupted: [encodeText(tok, "Mary and John. Mohn gave it to")], metric: logitDiffMetric([tok.encode("M")[0]!, tok.encode("J")[0]!]) });
  assert.equal(ok.conditioning.illConditioned, false, JSON.stringify(ok.conditioning));
});

test("SAE CE recovered: flagged when zero-ablating the hook costs ~nothing (CE_zero − CE_clean ~0), not for an SAE on a hook that matters", () => {
  const model = randomModel("gpt2", { seed: 2 });
  const tokens = randomTokens(model.cfg.d_vocab, 3, 9, 4);
  const d = model.cfg.d_model;
  // An SAE whose decoder is 0: it outputs b_dec = 0, the zero ablation itself (CE recovered 0 when meaningful).
  const zeroSae = (hook: string) => { const s = new SparseAutoencoder({ d_in: d, d_sae: 4, hook_name: hook }); noGrad(() => { s.W_dec.data.fill(0); s.W_dec.version++; }); return s; };
  const ok = downstreamMetrics(model, zeroSae("blocks.1.hook_resid_pre"), [tokens], { skipPositions: 1 });
  assert.equal(ok.ceRecoveredConditioning.illConditioned, false, JSON.stringify(ok));
  assert.equal(ok.ceRecoveredConditioning.denominator, ok.ceZero - ok.ceClean);
  assert.ok(Math.abs(ok.ceRecovered) < 1e-4);
  // Layer 1's MLP scaled by 1e-9: its output, and so its zero ablation, changes the logits by float32 rounding at most.
  noGrad(() => { for (const [name, p] of model.namedParameters()) if (name === "blocks.1.mlp.W_out" || name === "blocks.1.mlp.b_out") { for (let i = 0; i < p.size; i++) p.data[i]! *= 1e-9; p.version++; } });
  const ill = downstreamMetrics(model, zeroSae("blocks.1.hook_mlp_out"), [tokens], { skipPositions: 1 });
  const c = ill.ceRecoveredConditioning;
  assert.equal(c.illConditioned, true, JSON.stringify(ill));
  assert.equal(c.denominator, ill.ceZero - ill.ceClean);
  assert.equal(c.threshold, 1e-6 * Math.max(1, Math.abs(ill.ceZero), Math.abs(ill.ceClean)));
  assert.ok(Math.abs(c.denominator) < c.threshold);
});

test("attribution completeness: the relative gap is flagged when f(x) − f(baseline) is ~0; tiny-gpt2's attribute JSON carries the flag", () => {
  const ok = completeness(0.999, 2, 1);
  assert.equal(ok.relativeGapConditioning.illConditioned, false);
  assert.ok(Math.abs(ok.relativeGap - 0.001) < 1e-12);
  const ill = completeness(1e-9, 0.5 + 4e-8, 0.5);
  assert.equal(ill.relativeGapConditioning.illConditioned, true);
  assert.equal(ill.relativeGapConditioning.denominator, ill.fInput - ill.fBaseline);
  assert.equal(ill.relativeGapConditioning.threshold, 1e-6);
  assert.equal(completeness(0, 3, 3).relativeGapConditioning.illConditioned, true);
  if (skip) return;
  const r = cli("attribute", tinyGpt2, "The capital of France is", "--target", " Paris", "--steps", "8", "--json");
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { completeness: { fInput: number; fBaseline: number; relativeGapConditioning: { illConditioned: boolean; denominator: number } } };
  const c = doc.completeness;
  // f(x) − f(0) = 3.6e-5 here: small, but 36× the threshold, so the percentage stands.
  assert.equal(c.relativeGapConditioning.illConditioned, Math.abs(c.fInput - c.fBaseline) < 1e-6 * Math.max(1, Math.abs(c.fInput), Math.abs(c.fBaseline)));
  assert.equal(c.relativeGapConditioning.illConditioned, false);
});
