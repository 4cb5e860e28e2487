// The patching-family descriptors (patch, path-patch, discover, scrub) beyond what
// test/techniques.test.ts checks for every technique: patch's per-layer progress equals the one-call
// sweep bit for bit, a cancelled run stops between layers, and a server's cap on patched runs is a
// 400 naming the field; on the tiny char-level GPT-2 snapshot of test/server-helpers.ts.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { useBackend } from "../src/backend/init.js";
import { loadSubject } from "../src/techniques/subject.js";
import { loadPretrained } from "../src/io/snapshot.js";
import { InputError, runTechnique, patch, pathPatch, discover, scrub, type Progress } from "../src/techniques/index.js";
import { causalScrub, parseHypothesis } from "../src/analysis/index.js";
import path from "node:path";
import { cli } from "./cli-helpers.js";
import { buildGraph } from "../src/analysis/circuit-discovery/graph.js";
import { circuitGraphSvg } from "../src/plot/graph.js";
import { pathPatchSweep } from "../src/analysis/path-patching.js";
import { patchByHead, patchByPos } from "../src/analysis/patching.js";
import { logitDiffMetric, normalizedMetric } from "../src/analysis/patching-metrics.js";
import { encodeText, toSingleToken } from "../src/model/tokens.js";
import { noGrad } from "../src/tensor/autodiff.js";
import { Workbench } from "../src/server/workbench.js";
import { runForRequest } from "../src/server/technique-routes.js";
import { ApiError } from "../src/server/workbench.js";
import { post, startServe, tinySnapshot } from "./server-helpers.js";

useBackend();
const { dir, folder } = tinySnapshot("circuitscope-patching-techniques-");
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const subject = loadSubject(folder);
const PAIR = { clean: "Mary and John. John gave it to", corrupted: "Mary and John. Mohn gave it to", answer: "M", wrong: "J" };

test("patch: progress once per layer; the values equal patchByPos / patchByHead bit for bit", async () => {
  const tok = subject.tokenizer!, m = subject.model;
  const clean = encodeText(tok, PAIR.clean), corrupted = encodeText(tok, PAIR.corrupted);
  const base = logitDiffMetric([toSingleToken(tok, "M"), toSingleToken(tok, "J")]);
  const cleanLd = noGrad(() => base.compute(m.forward([clean])).item()), corruptedLd = noGrad(() => base.compute(m.forward([corrupted])).item());
  const metric = normalizedMetric(base, cleanLd, corruptedLd);
  const seen: Progress[] = [];
  const r = await runTechnique(patch, subject, PAIR, { onProgress: (p) => seen.push(p) });
  assert.deepEqual(seen.map((p) => [p.done, p.total]), [[1, 2], [2, 2]]);
  assert.equal(seen[0]!.stage, "patching resid_pre by pos");
  const want = patchByPos(m, { clean: [clean], corrupted: [corrupted], metric });
  assert.deepEqual(r.values, Array.from({ length: 2 }, (_, l) => Array.from({ length: clean.length }, (_, p) => want.values.get(l, p))));
  assert.equal(r.metric.illConditioned, false);
  assert.equal(r.attribution, null);
  const byHead = await runTechnique(patch, subject, { ...PAIR, by: "head", site: "v", direction: "noising" });
  const wantHead = patchByHead(m, { clean: [clean], corrupted: [corrupted], metric, site: "v", direction: "noising" });
  assert.deepEqual(byHead.values, Array.from({ length: 2 }, (_, l) => Array.from({ length: 2 }, (_, h) => wantHead.values.get(l, h))));
});

test("patch: aborting after the first layer stops the run with the signal's reason", async () => {
  const ac = new AbortController();
  const layers: number[] = [];
  await assert.rejects(runTechnique(patch, subject, PAIR, { signal: ac.signal, onProgress: (p) => { layers.push(p.done); ac.abort(new Error("stop here")); } }), /stop here/);
  assert.deepEqual(layers, [1]);
});

test("patch: a server's cap on patched runs is a 400 naming the field; attribution alone is not capped; a bad site names the site", async () => {
  const { model, tokenizer, config } = loadPretrained(folder);
  const wb = new Workbench(model, tokenizer!, config, "tiny", { maxPatchCells: 40 });
  // 2 layers × 30 positions (one per character) = 60 runs > 40; by head 2 × 2 = 4 runs is fine.
  await assert.rejects(runForRequest(patch, wb.subject(), PAIR, { render: false }),
    (e: Error) => e instanceof ApiError && e.status === 400 && e.message === `"by": patching 2 layers × 30 positions = 60 runs; this server does at most 40`);
  assert.equal(((await runForRequest(patch, wb.subject(), { ...PAIR, by: "head" }, { render: false })).result as { by: string }).by, "head");
  assert.equal(((await runForRequest(patch, wb.subject(), { ...PAIR, method: "attribution" }, { render: false })).result as { method: string }).method, "attribution");
  await assert.rejects(runTechnique(patch, subject, { ...PAIR, by: "head", site: "resid_pre" }),
    (e: Error) => e instanceof InputError && e.field === "site" && /for by head must be one of z, q, k, v, pattern, got "resid_pre"/.test(e.message));
});

test("patch: method both draws the agreement scatter from the result's points; by layer is one bar per layer", async () => {
  const r = await runTechnique(patch, subject, { ...PAIR, by: "head", method: "both" });
  const pics = patch.pictures!(r, patch.input.parse({ ...PAIR, by: "head", method: "both" }));
  assert.deepEqual(pics.map((p) => p.name), ["patch.svg", "patch-agreement.svg"]);
  assert.equal(r.attribution!.points.length, 4);
  assert.match(pics[1]!.content, /attribution vs activation patching \(z\)/);
  assert.equal((pics[1]!.content.match(/<circle/g) ?? []).length, 4);
  assert.match(patch.text(r, patch.input.parse(PAIR)), /Pearson r = -?\d\.\d{4}$/);
  const byLayer = await runTechnique(patch, subject, { ...PAIR, by: "layer", site: "attn_out" });
  assert.equal((byLayer.values as number[]).length, 2);
  assert.match(patch.pictures!(byLayer, patch.input.parse(PAIR))[0]!.content, /layer 1/);
});

test("path-patch: progress once per sender layer; values equal pathPatchSweep; a receiver in layer 1 has one sender layer; the cap names the receiver", async () => {
  const tok = subject.tokenizer!, m = subject.model;
  const clean = encodeText(tok, PAIR.clean), corrupted = encodeText(tok, PAIR.corrupted);
  const metric = logitDiffMetric([toSingleToken(tok, "M"), toSingleToken(tok, "J")]);
  for (const [receiver, layers] of [["logits", 2], ["1.0:q", 1]] as const) {
    const seen: number[] = [];
    const r = await runTechnique(pathPatch, subject, { ...PAIR, receiver }, { onProgress: (p) => seen.push(p.total) });
    assert.deepEqual(seen, Array(layers).fill(layers));
    const want = pathPatchSweep(m, { clean: [clean], corrupted: [corrupted], metric, receivers: receiver === "logits" ? "logits" : [{ layer: 1, head: 0, input: "q" }] });
    assert.deepEqual(r.values, Array.from({ length: 2 }, (_, l) => Array.from({ length: 2 }, (_, h) => { const v = want.values.get(l, h); return Number.isNaN(v) ? null : v; })));
  }
  const { model, tokenizer, config } = loadPretrained(folder);
  const wb = new Workbench(model, tokenizer!, config, "tiny", { maxPatchCells: 3 });
  await assert.rejects(runForRequest(pathPatch, wb.subject(), PAIR, { render: false }),
    (e: Error) => e instanceof ApiError && e.status === 400 && e.message === `"receiver": path patching 2 layers × 2 sender heads = 4 runs; this server does at most 3`);
  await assert.rejects(runTechnique(pathPatch, subject, { ...PAIR, receiver: "5.0:q" }), (e: Error) => e instanceof InputError && e.field === "receiver" && /5\.0:q does not exist/.test(e.message));
});

test("discover: progress after the pair and after the circuit, a stop in between; the circuit picture is the analysis graph's", async () => {
  const inp = { ...PAIR, method: "eap" as const, topN: 5 };
  const seen: Progress[] = [];
  const r = await runTechnique(discover, subject, inp, { onProgress: (p) => seen.push(p) });
  assert.deepEqual(seen.filter((p) => p.stage === "discover").map((p) => p.done), [1, 2]);
  assert.ok(seen.some((p) => p.stage !== "discover" && /edges/.test(p.stage ?? "")), "the analysis's own messages arrive as stages");
  const ac = new AbortController();
  await assert.rejects(runTechnique(discover, subject, inp, { signal: ac.signal, onProgress: () => ac.abort(new Error("stopped")) }), /stopped/);
  const g = buildGraph(subject.model.cfg);
  const pics = discover.pictures!(r, discover.input.parse(inp));
  const title = `eap circuit: ${r.faithfulness.edges} of ${g.edges.length} edges, faithfulness ${r.faithfulness.normalized.toFixed(3)}`;
  assert.equal(pics[1]!.content, circuitGraphSvg(g, r.allEdges.map((e) => e.score), r.allEdges.map((e) => (e.inCircuit ? 1 : 0)), { title }));
  await assert.rejects(runTechnique(discover, subject, { ...inp, threshold: 0.1 }), (e: Error) => e instanceof InputError && e.field === "threshold" && /not both/.test(e.message));
  await assert.rejects(runTechnique(discover, subject, { ...inp, topN: 10_000 }), (e: Error) => e instanceof InputError && e.field === "topN" && new RegExp(`has ${g.edges.length} edges, fewer than 10000`).test(e.message));
});

test("scrub: text data is cut into seq-len sequences (library = CLI reading a text file); bad data and positions name the field", async () => {
  const text = "the cat sat on the mat. the dog sat on the log. a cat and a dog sat on a mat.";
  const hypothesis = { name: "embed only", output: [{ node: "embed", feature: "token" }] };
  const inp = { hypothesis, data: text, seqLen: 8, samples: 16, seed: 2 };
  const r = await runTechnique(scrub, subject, inp);
  const ids = encodeText(subject.tokenizer!, text, { prependBos: false });
  const sequences = Array.from({ length: Math.floor(ids.length / 8) }, (_, i) => ids.slice(8 * i, 8 * i + 8));
  const want = causalScrub(subject.model, parseHypothesis(hypothesis), { sequences }, { samples: 16, seed: 2 });
  assert.equal(r.sequences, sequences.length); assert.equal(r.seqLen, 8);
  assert.equal(r.recovered, want.recovered); assert.equal(r.scrubbedLoss, want.scrubbedLoss);
  const file = path.join(dir, "corpus.txt");
  fs.writeFileSync(file, text);
  const c = cli("scrub", folder, "--hypothesis", JSON.stringify(hypothesis), "--data", file, "--seq-len", "8", "--samples", "16", "--seed", "2", "--json");
  assert.equal(c.code, 0, c.stderr);
  const { model: _m, files: _f, ...doc } = JSON.parse(c.stdout) as Record<string, unknown>;
  assert.deepEqual(doc, JSON.parse(JSON.stringify(r)));
  await assert.rejects(runTechnique(scrub, subject, { ...inp, data: [[1, 2, 3], [1, 2]] }), (e: Error) => e instanceof InputError && e.field === "data.1" && /has 2 tokens; the first sequence has 3/.test(e.message));
  await assert.rejects(runTechnique(scrub, subject, { ...inp, positions: "7" }), (e: Error) => e instanceof InputError && e.field === "positions" && /position 7 has no next token in sequences of 8/.test(e.message));
  await assert.rejects(runTechnique(scrub, subject, { ...inp, hypothesis: { output: [{ node: "mlp", layer: 9 }] } }), (e: Error) => e instanceof InputError && e.field === "hypothesis");
});

test("POST /api/patch as server-sent events: one progress event per layer, then the result the plain request answers", async () => {
  const served = await startServe(folder, "--quiet");
  try {
    const res = await fetch(`${served.url}api/patch`, { method: "POST", headers: { "content-type": "application/json", accept: "text/event-stream" }, body: JSON.stringify(PAIR) });
    const text = await res.text();
    const progress = [...text.matchAll(/event: progress\ndata: (.*)\n/g)].map((m) => JSON.parse(m[1]!) as Progress);
    assert.deepEqual(progress.map((p) => [p.done, p.total]), [[1, 2], [2, 2]]);
    const result = /event: result\ndata: (.*)\n/.exec(text);
    assert.ok(result, text);
    assert.deepEqual((JSON.parse(result[1]!) as { result: unknown }).result, (await post(`${served.url}api/patch`, PAIR)).doc);
  } finally { await served.stop(); }
});
