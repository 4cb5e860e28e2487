// `circuitscope path-patch`, `neurons`, `dla`, `attention` and `attribute`'s picture, end to end on the
// shared tiny-gpt2 snapshot (skipped when ../shared is absent): each --json document is checked
// against the library function run here in-process on the same tokens (not just that it runs), the
// pictures are checked to be well-formed (balanced tags) and labelled, and bad input gives a clear
// message with exit code 2.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { useBackend } from "../src/backend/init.js";
import { loadPretrained } from "../src/io/snapshot.js";
import { encodeText } from "../src/model/tokens.js";
import { noGrad } from "../src/tensor/autodiff.js";
import { logitDiffMetric } from "../src/analysis/patching-metrics.js";
import { attributionAgreement, attributionPatch, patchByHead } from "../src/analysis/patching.js";
import { pathPatchSweep } from "../src/analysis/path-patching.js";
import { activationHistogram, maxActivatingExamples, polysemanticity } from "../src/analysis/neurons.js";
import { fullLogitAttribution, neuronLogitAttribution } from "../src/analysis/residual.js";
import { detectHead, HEAD_KINDS } from "../src/analysis/head-detectors.js";
import { corpusWindows } from "../src/techniques/corpus.js";
import { parseReceivers } from "../src/techniques/path-patch.js";
import { InputError } from "../src/techniques/technique.js";
import type { HookName } from "../src/model/hooks.js";
import { assertBalanced, assertSvg, cli, errorOf, repo, tinyGpt2 as snapshot } from "./cli-helpers.js";

const corpusSource = path.resolve(repo, "../shared/data/tinyshakespeare.txt");
const skip = fs.existsSync(snapshot) && fs.existsSync(corpusSource) ? false : `no snapshot at ${snapshot}`;
// The same default backend as the CLI, so in-process results match its numbers.
if (!skip) useBackend();

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), "circuitscope-pictures-"));
const load = () => { const p = loadPretrained(snapshot); return { model: p.model, tokenizer: p.tokenizer! }; };
const close = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

const CLEAN = "When Mary and John went to the store, John gave a drink to";
const CORRUPTED = "When Mary and John went to the store, Mary gave a drink to";
const PAIR = ["--clean", CLEAN, "--corrupted", CORRUPTED, "--answer", " Mary", "--wrong", " John"];

interface PathDoc {
  direction: string; receiver: string; shape: number[];
  values: (number | null)[][]; normalized: (number | null)[][]; delta: (number | null)[][];
  metric: { cleanLogitDiff: number; corruptedLogitDiff: number; target: number; illConditioned: boolean }; files: string[];
}

test("path-patch --json --out: every sender → logits and → 1.0:q equals pathPatchSweep; heatmap SVG", { skip }, () => {
  const { model, tokenizer } = load();
  const clean = encodeText(tokenizer, CLEAN), corrupted = encodeText(tokenizer, CORRUPTED);
  const metric = logitDiffMetric([tokenizer.encode(" Mary")[0]!, tokenizer.encode(" John")[0]!]);
  for (const receiver of ["logits", "1.0:q"] as const) {
    const dir = tmp();
    const r = cli("path-patch", snapshot, ...PAIR, "--receiver", receiver, "--out", dir, "--json");
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as PathDoc;
    assert.equal(doc.direction, "noising"); assert.equal(doc.receiver, receiver); assert.deepEqual(doc.shape, [2, 2]);
    const ref = pathPatchSweep(model, { clean: [clean], corrupted: [corrupted], metric, receivers: receiver === "logits" ? "logits" : [{ layer: 1, head: 0, input: "q" }] });
    close(doc.metric.target, ref.targetMetric, 1e-6, "target metric");
    for (let l = 0; l < 2; l++) for (let h = 0; h < 2; h++) {
      const v = ref.values.get(l, h), n = ref.normalized.get(l, h);
      if (Number.isNaN(v)) { assert.equal(receiver, "1.0:q"); assert.equal(l, 1); assert.equal(doc.values[l]![h], null); assert.equal(doc.delta[l]![h], null); continue; }
      close(doc.values[l]![h]!, v, 1e-6, `${receiver} L${l}H${h} value`);
      // tiny-gpt2's clean and corrupted logit diffs differ by ~2.6e-8: no normalised values, Δ raw (test/ill-conditioned.test.ts).
      assert.equal(doc.metric.illConditioned, true); assert.ok(Number.isFinite(n));
      assert.equal(doc.normalized[l]![h], null);
      close(doc.delta[l]![h]!, v - ref.targetMetric, 1e-6, `${receiver} L${l}H${h} Δ = value − target (raw, ill-conditioned)`);
    }
    assert.deepEqual(doc.files, [path.join(dir, "path-patch.svg"), path.join(dir, "path-patch.json")]);
    assertSvg(doc.files[0]!, ["L0", "L1", "H0", "H1", "sender layer", `heads → ${receiver}`]);
    assert.deepEqual(JSON.parse(fs.readFileSync(doc.files[1]!, "utf8")), doc);
  }
});

test("path-patch: a receiver that does not exist and an unknown flag exit 2; receivers in layer 0 or malformed are usage errors", { skip }, () => {
  assert.match(errorOf(cli("path-patch", snapshot, ...PAIR, "--receiver", "5.0:q", "--json")), /5\.0:q does not exist; the model has 2 layers × 2 heads/);
  assert.match(errorOf(cli("path-patch", snapshot, ...PAIR, "--recever", "logits", "--json")), /unknown option '--recever' \(Did you mean --receiver\?\)/);
  assert.deepEqual(parseReceivers("2.3:k, 1.0:v", 4, 4), [{ layer: 2, head: 3, input: "k" }, { layer: 1, head: 0, input: "v" }]);
  assert.throws(() => parseReceivers("0.1:k", 2, 2), (e: Error) => e instanceof InputError && e.field === "receiver" && /layer 0, so no head is before it/.test(e.message));
  assert.throws(() => parseReceivers("1.0:z", 2, 2), (e: Error) => e instanceof InputError && e.field === "receiver" && /not "logits" or a head input L\.H:q\|k\|v/.test(e.message));
  assert.throws(() => parseReceivers("1.2:q", 2, 2), /1\.2:q does not exist/);
});

test("patch --method both --by head: the attribution estimate and Pearson r equal attributionPatch / attributionAgreement; scatter SVG", { skip }, () => {
  const { model, tokenizer } = load();
  const dir = tmp();
  const r = cli("patch", snapshot, ...PAIR, "--by", "head", "--method", "both", "--out", dir, "--json");
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { method: string; values: number[][]; metric: { cleanLogitDiff: number; corruptedLogitDiff: number; illConditioned: boolean }; attribution: { values: number[][]; pearson: number }; files: string[] };
  assert.equal(doc.method, "both");
  const base = logitDiffMetric([tokenizer.encode(" Mary")[0]!, tokenizer.encode(" John")[0]!]);
  // tiny-gpt2's clean and corrupted logit diffs differ by ~2.6e-8: the CLI shows the raw metric (test/ill-conditioned.test.ts).
  assert.equal(doc.metric.illConditioned, true);
  const o = { clean: [encodeText(tokenizer, CLEAN)], corrupted: [encodeText(tokenizer, CORRUPTED)], metric: base };
  const real = patchByHead(model, o), est = attributionPatch(model, { ...o, site: "z", by: "head" });
  doc.values.forEach((row, l) => row.forEach((v, h) => close(v, real.values.get(l, h), 1e-4, `activation L${l}H${h}`)));
  doc.attribution.values.forEach((row, l) => row.forEach((v, h) => close(v, est.values.get(l, h) + est.targetMetric, 1e-4, `attribution L${l}H${h}`)));
  close(doc.attribution.pearson, attributionAgreement(real, est).pearson, 1e-3, "Pearson r");
  assert.deepEqual(doc.files, ["patch.svg", "patch-agreement.svg", "patch.json"].map((f) => path.join(dir, f)));
  assertSvg(doc.files[1]!, ["attribution vs activation patching (z)", "activation patching: Δ metric"]);
  assert.match(errorOf(cli("patch", snapshot, ...PAIR, "--method", "gradient", "--json")), /option '--method <value>' argument 'gradient' is invalid\. Allowed choices are activation, attribution, both/);
});

interface NeuronsDoc {
  layer: number; corpus: { windows: number; ctx: number; skippedPositions: number }; selection: { mode: string };
  neurons: {
    neuron: number;
    histogram: { counts: number[]; min: number; max: number; mean: number; std: number; count: number };
    polysemanticity: { clusters: number; effectiveClusters: number; groups: { tokens: { id: number; str: string }[] }[] };
    examples: { value: number; sequence: number; position: number; token: { id: number }; offset: number; tokens: { id: number; str: string; act: number }[] }[];
  }[];
  files: string[];
}

test("neurons --json --out: examples, histograms and polysemanticity equal the library's on the same windows; HTML + SVG", { skip }, () => {
  const { model, tokenizer } = load();
  const dir = tmp(), corpus = path.join(dir, "corpus.txt");
  const text = fs.readFileSync(corpusSource, "utf8").slice(0, 3000);
  fs.writeFileSync(corpus, text);
  const out = path.join(dir, "out");
  const r = cli("neurons", snapshot, "--corpus", corpus, "--layer", "1", "--neurons", "0,3", "--k", "3", "--ctx", "16", "--max-windows", "6", "--bins", "10", "--out", out, "--json");
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as NeuronsDoc;
  // The windows are the corpus's text, in order: their decoded tokens are a prefix of the file.
  const windows = corpusWindows(tokenizer, text, 16, 6, tokenizer.bosTokenId!);
  assert.equal(windows.length, 6);
  assert.ok(text.startsWith(windows.map((w) => tokenizer.decode(w.slice(1))).join("")), "windows read the corpus in order");
  assert.deepEqual(doc.corpus, { ...doc.corpus, windows: 6, ctx: 16, skippedPositions: 1 });
  const batches = [windows];
  const scan = { layer: 1, neurons: [0, 3], skipPositions: 1 };
  const ex = maxActivatingExamples(model, batches, { ...scan, k: 3, contextBefore: 10, contextAfter: 4 });
  const hi = activationHistogram(model, batches, { ...scan, bins: 10 });
  assert.deepEqual(doc.neurons.map((n) => n.neuron), [0, 3]);
  doc.neurons.forEach((n, j) => {
    assert.equal(n.examples.length, 3);
    n.examples.forEach((e, i) => {
      const want = ex[j]!.examples[i]!;
      close(e.value, want.value, 1e-5, `N${n.neuron} example ${i}`);
      assert.deepEqual([e.sequence, e.position, e.token.id], [want.sequence, want.position, want.token]);
      assert.deepEqual(e.tokens.map((t) => t.id), want.tokens);
      assert.ok(e.position >= 1, "the BOS column is skipped");
      close(e.tokens[e.offset]!.act, e.value, 1e-5, "the colour at the max token is the example's value");
    });
    assert.deepEqual(n.histogram.counts, hi[j]!.counts);
    assert.equal(n.histogram.count, 6 * 16);
    close(n.histogram.mean, hi[j]!.mean, 1e-6, "mean"); close(n.histogram.max, hi[j]!.max, 1e-6, "max");
    const poly = polysemanticity(ex[j]!.examples, model);
    assert.equal(n.polysemanticity.clusters, poly.clusters);
    close(n.polysemanticity.effectiveClusters, poly.effectiveClusters, 1e-9, "effective clusters");
    assert.deepEqual(n.polysemanticity.groups.map((g) => g.tokens.map((t) => t.id)), poly.groups.map((g) => g.tokens));
  });
  assert.deepEqual(doc.files, ["neurons.html", "neurons-histograms.svg", "neurons.json"].map((f) => path.join(out, f)));
  const html = fs.readFileSync(doc.files[0]!, "utf8");
  assert.ok(html.startsWith("<!doctype html>"));
  assertBalanced(html, "neurons.html");
  assert.ok(html.includes("<h2>L1 N0</h2>") && html.includes("<h2>L1 N3</h2>") && html.includes("polysemanticity (heuristic)"));
  assert.equal(html.match(/outline:2px solid/g)?.length, 6, "one outlined max token per example");
  assertSvg(doc.files[1]!, ["L1N0", "L1N3", "activation"]);

  // --top 2 --rank std: the two neurons with the largest standard deviation over the same corpus.
  const t = cli("neurons", snapshot, "--corpus", corpus, "--layer", "1", "--top", "2", "--rank", "std", "--k", "2", "--ctx", "16", "--max-windows", "6", "--json");
  assert.equal(t.code, 0, t.stderr);
  const all = activationHistogram(model, batches, { layer: 1, skipPositions: 1 });
  const byStd = [...all].sort((a, b) => b.std - a.std).slice(0, 2).map((h) => h.neuron);
  assert.deepEqual((JSON.parse(t.stdout) as NeuronsDoc).neurons.map((n) => n.neuron), byStd);

  assert.match(errorOf(cli("neurons", snapshot, "--corpus", corpus, "--layer", "7", "--json")), /--layer: 7 is out of range: the model has layers 0\.\.1/);
  assert.match(errorOf(cli("neurons", snapshot, "--corpus", corpus, "--layer", "0", "--neurons", "0,99", "--json")), /neuron 99 is out of range: layer 0 has neurons 0\.\.7/);
});

test("maxActivatingExamples / activationHistogram skipPositions: the same as filtering the skipped positions out", { skip }, () => {
  const { model, tokenizer } = load();
  const windows = corpusWindows(tokenizer, fs.readFileSync(corpusSource, "utf8").slice(0, 2000), 8, 3, tokenizer.bosTokenId!);
  const all = maxActivatingExamples(model, [windows], { layer: 0, neurons: [2], k: 27 })[0]!.examples;
  const skipped = maxActivatingExamples(model, [windows], { layer: 0, neurons: [2], k: 24, skipPositions: 1 })[0]!.examples;
  assert.equal(all.length, 27); assert.equal(skipped.length, 24);
  assert.deepEqual(skipped.map((e) => [e.sequence, e.position, e.value]), all.filter((e) => e.position >= 1).map((e) => [e.sequence, e.position, e.value]));
  const h = activationHistogram(model, [windows], { layer: 0, neurons: [2], skipPositions: 1 })[0]!;
  assert.equal(h.count, 24);
  close(h.max, Math.max(...skipped.map((e) => e.value)), 0, "max over the kept positions");
});

interface DlaDoc {
  position: number; check: { logitDiff: number; sum: number; constant: number; gap: number };
  heads: number[][]; neurons: { layer: number; bias: number; values: number[] }; components: { label: string; value: number }[]; accumulated: { label: string; value: number }[]; files: string[];
}

test("dla --json --out: every component equals fullLogitAttribution and they sum to the model's logit difference", { skip }, () => {
  const { model, tokenizer } = load();
  const prompt = "The Eiffel Tower is in";
  const dir = tmp();
  const r = cli("dla", snapshot, prompt, "--answer", " Paris", "--wrong", " London", "--neuron-layer", "1", "--out", dir, "--json");
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as DlaDoc;
  const ids = encodeText(tokenizer, prompt), last = ids.length - 1;
  const paris = tokenizer.encode(" Paris")[0]!, london = tokenizer.encode(" London")[0]!;
  const { nla, ref, ld } = noGrad(() => {
    const { logits, cache } = model.runWithCache([ids]);
    const nla = neuronLogitAttribution(model, cache, 1, { token: paris, incorrect: london });
    return { nla, ref: fullLogitAttribution(model, cache, { token: paris, incorrect: london }), ld: logits.get(0, last, paris) - logits.get(0, last, london) };
  });
  assert.equal(doc.position, last);
  assert.deepEqual(doc.components.map((c) => c.label), ref.labels);
  assert.deepEqual(ref.labels.slice(0, 4), ["embed", "pos_embed", "L0H0", "L0H1"]);
  doc.components.forEach((c, i) => close(c.value, ref.components.get(i, 0, last), 1e-6, c.label));
  assert.deepEqual(doc.heads.map((row, l) => row.map((_, h) => doc.components.find((c) => c.label === `L${l}H${h}`)!.value)), doc.heads);
  // Independent check: the direct effects plus the constant add up to the model's own logit difference.
  close(doc.check.logitDiff, ld, 1e-6, "logit diff");
  close(doc.components.reduce((s, c) => s + c.value, 0) + doc.check.constant, ld, 1e-5, "Σ components + constant");
  assert.deepEqual(doc.accumulated.map((a) => a.label), ["0_pre", "0_mid", "1_pre", "1_mid", "final_post"]);
  close(doc.accumulated.at(-1)!.value, ld, 1e-5, "the final residual read through the cached scale is the logit difference");
  // Per-neuron DLA of layer 1: the library's values, and with b_out's share they make up 1_mlp_out.
  assert.equal(doc.neurons.layer, 1); assert.equal(doc.neurons.values.length, 8);
  doc.neurons.values.forEach((v, n) => close(v, nla.components.get(n, 0, last), 1e-6, `L1N${n}`));
  close(doc.neurons.values.reduce((a, b) => a + b, 0) + doc.neurons.bias, doc.components.find((c) => c.label === "1_mlp_out")!.value, 1e-5, "Σ neurons + b_out = 1_mlp_out");
  const names = ["dla-heads.svg", "dla-components.svg", "dla-accumulated.svg", "dla-neurons.svg", "dla.svg", "dla.json"];
  assert.deepEqual(doc.files, names.map((n) => path.join(dir, n)));
  assertSvg(doc.files[0]!, ["L0", "L1", "H0", "H1", "DLA per head"]);
  assertSvg(doc.files[1]!, ["embed", "pos_embed", "0_heads", "1_mlp_out", "total = logit (diff)"]);
  assertSvg(doc.files[2]!, ["accumulated residual"]);
  assertSvg(doc.files[3]!, ["DLA of layer 1's top 8 neurons", "L1N0", "L1N7"]);
  assertSvg(doc.files[4]!, ["direct logit attribution: The Eiffel Tower is in"]);

  assert.match(errorOf(cli("dla", snapshot, prompt, "--answer", " Parisian hello", "--json")), /--answer: .*not a single token/);
});

interface AttentionDoc { tokens: { id: number; str: string }[]; heads: { layer: number; head: number; pattern: number[][]; scores: Record<string, number | null> }[]; files: string[] }

test("attention --json --out: patterns equal hook_pattern, scores equal detectHead; token-labelled grid SVG", { skip }, () => {
  const { model, tokenizer } = load();
  const prompt = " A B C D A B C D";
  const dir = tmp();
  const r = cli("attention", snapshot, prompt, "--heads", "1.0,0.1", "--out", dir, "--json");
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as AttentionDoc;
  const ids = encodeText(tokenizer, prompt), T = ids.length;
  assert.deepEqual(doc.tokens.map((t) => t.id), ids);
  assert.deepEqual(doc.heads.map((h) => [h.layer, h.head]), [[1, 0], [0, 1]]);
  const { cache } = noGrad(() => model.runWithCache([ids]));
  const scores = Object.fromEntries(HEAD_KINDS.map((k) => [k, detectHead(model, [ids], k, { excludeBos: true })]));
  for (const h of doc.heads) {
    const p = cache.get(`blocks.${h.layer}.attn.hook_pattern` as HookName);
    h.pattern.forEach((row, q) => {
      close(row.reduce((a, b) => a + b, 0), 1, 1e-5, "row sums to 1");
      row.forEach((v, k) => { close(v, p.get(0, h.head, q, k), 1e-6, `L${h.layer}H${h.head} [${q}, ${k}]`); if (k > q) assert.equal(v, 0); });
    });
    for (const k of HEAD_KINDS) close(h.scores[k]!, scores[k]![h.layer]![h.head]!, 1e-5, `${k} L${h.layer}H${h.head}`);
  }
  assert.equal(doc.heads[0]!.pattern.length, T);
  assert.deepEqual(doc.files, [path.join(dir, "attention.svg"), path.join(dir, "attention.json")]);
  const svg = assertSvg(doc.files[0]!, ["L1H0", "L0H1", "1 ·A", "8 ·D", "key (source) token", "query (destination) token"]);
  assert.equal(svg.match(/<svg /g)?.length, 3, "one nested heatmap per head inside the grid");

  assert.match(errorOf(cli("attention", snapshot, prompt, "--heads", "2.0", "--json")), /--heads: 2\.0 does not exist/);
});

test("attribute --out: the token picture shows the completeness line and one box per token", { skip }, () => {
  const dir = tmp();
  const r = cli("attribute", snapshot, "The capital of France is", "--target", " Paris", "--steps", "16", "--out", dir, "--json");
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { tokens: unknown[]; completeness: { gap: number }; files: string[] };
  const svg = assertSvg(doc.files[0]!, ["·capital", "·France", "attribution", "completeness: Σ"]);
  assert.ok(svg.includes(`gap ${doc.completeness.gap.toExponential(2)}`), "the gap in the picture is the JSON's");
  assert.equal(svg.match(/<rect class="tok"/g)?.length, doc.tokens.length);
  const html = fs.readFileSync(doc.files[1]!, "utf8");
  assertBalanced(html, "attribution.html");
  assert.ok(html.includes("completeness: Σ"));
});
