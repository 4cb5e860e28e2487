// `circuitscope serve` as a real process on a tiny model saved in Hugging Face layout: every API
// route's numbers equal the same analysis run here in the library on the same snapshot (attention
// patterns = cache.get(hook_pattern), activations = cache.get(hook), lens = logitLens, patching =
// patchByPos), bad input is a 4xx JSON error naming the problem (unknown hook with near matches,
// bad JSON, missing fields, unknown route, wrong method), the server survives all of it, and
// SIGTERM / SIGINT stop it with exit code 0.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { useBackend } from "../src/backend/init.js";
import { loadPretrained } from "../src/io/snapshot.js";
import { noGrad } from "../src/tensor/autodiff.js";
import { encodeText, toSingleToken } from "../src/model/tokens.js";
import { logitLens } from "../src/analysis/residual.js";
import { detectionPattern, scorePattern } from "../src/analysis/head-detectors.js";
import { patchByHead, patchByPos } from "../src/analysis/patching.js";
import { logitDiffMetric, normalizedMetric } from "../src/analysis/patching-metrics.js";
import type { HookName } from "../src/model/hooks.js";
import type { InfoResponse, RunResponse, TechniqueResult } from "../src/server/api-types.js";

/** The patch technique's result by pos or head: [layer][pos or head]. */
type PatchResponse = Omit<TechniqueResult<"patch">, "values"> & { values: number[][] };
import { post, startServe, tinySnapshot, type Served } from "./server-helpers.js";
import { cli, errorOf } from "./cli-helpers.js";

const { dir, folder } = tinySnapshot("circuitscope-server-");
useBackend(); // the kernels the server picks, so the numbers can agree exactly
const lib = loadPretrained(folder);
const tok = lib.tokenizer!;
const PROMPT = "Mary and John. John gave it to";
const CORRUPT = "Mary and John. Mohn gave it to"; // one character differs
const TOL = 0; // same kernels, same computation: equal to the last bit (JSON round-trips doubles exactly)
let s: Served;

before(async () => { s = await startServe(folder); });
after(async () => { await s?.stop("SIGKILL"); fs.rmSync(dir, { recursive: true, force: true }); });

/** One activation as the server computes it: a run caching only that hook (other hooks off lets fused kernels run, which round differently in the last bits). */
const cached = (ids: number[], hook: string) => noGrad(() => lib.model.runWithCache([ids], { names: [hook as HookName] }).cache.get(hook as HookName));

const close = (a: number, b: number, what: string, tol = TOL) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

test("--json prints {url, model, port, config} once listening; /api/info lists the model's hook names", async () => {
  assert.match(s.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  assert.equal(s.doc.model, folder);
  assert.equal((s.doc.config as { n_layers: number }).n_layers, 2);
  const res = await fetch(s.url + "api/info");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type")!, /application\/json/);
  const info = (await res.json()) as InfoResponse;
  assert.deepEqual(info.hookNames, [...lib.model.hookNames()]);
  assert.equal(info.maxTokens, 64);
  const page = await fetch(s.url);
  assert.match(await page.text(), /<script type="module" src="\/app.js">/);
  const js = await fetch(s.url + "app.js");
  assert.equal(js.status, 200);
  assert.match(js.headers.get("content-type")!, /javascript/);
  assert.ok((await js.text()).length > 1000);
});

test("/api/run: tokens and top next-token predictions equal the library's forward pass", async () => {
  const { status, doc } = await post<RunResponse>(s.url + "api/run", { prompt: PROMPT, top: 3 });
  assert.equal(status, 200);
  const ids = encodeText(tok, PROMPT);
  assert.deepEqual(doc.tokens.map((t) => t.id), ids);
  assert.equal(doc.tokens.map((t) => t.str).join(""), PROMPT);
  const probs = noGrad(() => lib.model.forward([ids]).softmax(-1));
  const V = probs.shape[2]!;
  doc.predictions.forEach((top, p) => {
    assert.equal(top.length, 3);
    const row = Array.from({ length: V }, (_, v) => probs.get(0, p, v));
    const best = row.indexOf(Math.max(...row));
    assert.equal(top[0]!.id, best, `position ${p}`);
    for (const t of top) close(t.prob, row[t.id]!, `p(${t.str}) at ${p}`);
  });
});

test("/api/attention: every head's pattern of the layer equals cache.get(blocks.L.attn.hook_pattern), with its detector scores", async () => {
  const ids = encodeText(tok, PROMPT);
  for (const layer of [0, 1]) {
    const { status, doc } = await post<TechniqueResult<"attention">>(s.url + "api/attention", { prompt: PROMPT, layer });
    assert.equal(status, 200);
    assert.equal(doc.layer, layer);
    assert.deepEqual(doc.heads.map((h) => [h.layer, h.head]), [[layer, 0], [layer, 1]]);
    const want = cached(ids, `blocks.${layer}.attn.hook_pattern`); // [batch, head_index, query_pos, key_pos]
    assert.deepEqual([1, doc.heads.length, doc.heads[0]!.pattern.length, doc.heads[0]!.pattern[0]!.length], want.shape);
    doc.heads.forEach((h, hi) => h.pattern.forEach((row, q) => row.forEach((v, k) => close(v, want.get(0, hi, q, k), `L${layer}H${hi}[${q},${k}]`))));
    // Head-detector scores of each head on this prompt, as scorePattern gives them ("Mary and John. John …" repeats tokens).
    doc.heads.map((h) => h.scores).forEach((sc, hi) => {
      const flat = Array.from({ length: ids.length ** 2 }, (_, i) => want.get(0, hi, Math.floor(i / ids.length), i % ids.length));
      for (const kind of ["previous_token_head", "duplicate_token_head", "induction_head"] as const) {
        const r = scorePattern(flat, detectionPattern(kind, ids), ids.length);
        assert.ok(r.rows > 0);
        close(sc[kind]!, r.sum / r.rows, `L${layer}H${hi} ${kind}`);
      }
    });
  }
  const bad = await post(s.url + "api/attention", { prompt: PROMPT, layer: 2 });
  assert.equal(bad.status, 400);
  assert.match((bad.doc as { error: string }).error, /"layer": must be between 0 and 1, got 2/);
});

test("/api/activations: values per position equal cache.get(hook); patterns come per query position", async () => {
  const ids = encodeText(tok, PROMPT);
  const { status, doc } = await post<TechniqueResult<"activations">>(s.url + "api/activations", { prompt: PROMPT, hook: "blocks.1.mlp.hook_post" });
  assert.equal(status, 200);
  const want = cached(ids, "blocks.1.mlp.hook_post"); // [batch, pos, d_mlp]
  assert.deepEqual(doc.shape, [ids.length, 32]);
  doc.values.forEach((row, p) => row.forEach((v, d) => close(v, want.get(0, p, d), `pos ${p} dim ${d}`)));
  const z = await post<TechniqueResult<"activations">>(s.url + "api/activations", { prompt: PROMPT, hook: "blocks.0.attn.hook_z" });
  assert.deepEqual(z.doc.shape, [ids.length, 2, 8]);
  assert.deepEqual(z.doc.axes, ["pos", "head_index", "dim"]);
  close(z.doc.values[3]![8 + 5]!, cached(ids, "blocks.0.attn.hook_z").get(0, 3, 1, 5), "z[3, head 1, 5]");
  const pat = await post<TechniqueResult<"activations">>(s.url + "api/activations", { prompt: PROMPT, hook: "blocks.0.attn.hook_pattern" });
  const T = ids.length;
  assert.deepEqual(pat.doc.axes, ["head_index", "query_pos", "key_pos"]);
  close(pat.doc.values[5]![T + 2]!, cached(ids, "blocks.0.attn.hook_pattern").get(0, 1, 5, 2), "pattern head 1, q 5, k 2");
});

test("an unknown hook name is a 400 naming it and its near matches", async () => {
  const { status, doc } = await post<{ error: string }>(s.url + "api/activations", { prompt: PROMPT, hook: "blocks.1.mlp.hook_pots" });
  assert.equal(status, 400);
  assert.match(doc.error, /unknown hook point "blocks\.1\.mlp\.hook_pots"; did you mean "blocks\.1\.mlp\.hook_post"/);
});

test("/api/lens: top tokens per layer × position equal logitLens", async () => {
  const ids = encodeText(tok, PROMPT);
  const want = noGrad(() => logitLens(lib.model, lib.model.runWithCache([ids]).cache, { topK: 2 }));
  const { status, doc } = await post<TechniqueResult<"lens">>(s.url + "api/lens", { prompt: PROMPT, top: 2 });
  assert.equal(status, 200);
  assert.deepEqual(doc.axes[0]!.labels, want.axes[0]!.labels);
  assert.deepEqual(doc.axes[0]!.labels, ["0_pre", "1_pre", "final_post"]);
  doc.topTokens.forEach((row, l) => row.forEach((top, p) => top.forEach((t, r) => {
    const w = want.topK[l]![0]![p]![r]!;
    assert.equal(t.id, w.token, `layer ${l} pos ${p} rank ${r}`);
    close(t.prob, w.prob, `prob layer ${l} pos ${p} rank ${r}`);
  })));
});

test("/api/lens with a target: its probability and rank per cell equal logitLens's; a multi-token target is a 400", async () => {
  const ids = encodeText(tok, PROMPT), o = toSingleToken(tok, "o");
  const want = noGrad(() => logitLens(lib.model, lib.model.runWithCache([ids]).cache, { topK: 1, target: o }));
  const { status, doc } = await post<TechniqueResult<"lens">>(s.url + "api/lens", { prompt: PROMPT, top: 1, target: "o" });
  assert.equal(status, 200);
  assert.deepEqual({ id: doc.target!.id, str: doc.target!.str }, { id: o, str: "o" });
  doc.target!.prob.forEach((row, l) => row.forEach((v, p) => {
    close(v, want.targetProb!.get(l, 0, p), `p(o) layer ${l} pos ${p}`);
    assert.equal(doc.target!.rank[l]![p], want.targetRank!.get(l, 0, p));
  }));
  assert.equal((await post<TechniqueResult<"lens">>(s.url + "api/lens", { prompt: PROMPT })).doc.target, null);
  const bad = await post<{ error: string }>(s.url + "api/lens", { prompt: PROMPT, target: "oh" });
  assert.equal(bad.status, 400);
  assert.match(bad.doc.error, /"target": "oh" is 2 tokens/);
});

test("/api/patch: layer × position normalised logit difference equals patchByPos; bad pairs are 400s", async () => {
  const { status, doc } = await post<PatchResponse>(s.url + "api/patch", { clean: PROMPT, corrupted: CORRUPT, answer: "M", wrong: "J" });
  assert.equal(status, 200);
  const clean = encodeText(tok, PROMPT), corrupted = encodeText(tok, CORRUPT);
  const base = logitDiffMetric([toSingleToken(tok, "M"), toSingleToken(tok, "J")]);
  const cleanLd = noGrad(() => base.compute(lib.model.forward([clean])).item());
  const corruptedLd = noGrad(() => base.compute(lib.model.forward([corrupted])).item());
  close(doc.metric.cleanLogitDiff, cleanLd, "clean logit diff");
  close(doc.metric.corruptedLogitDiff, corruptedLd, "corrupted logit diff");
  const want = patchByPos(lib.model, { clean: [clean], corrupted: [corrupted], metric: normalizedMetric(base, cleanLd, corruptedLd) });
  assert.deepEqual([doc.values.length, doc.values[0]!.length], want.values.shape);
  doc.values.forEach((row, l) => row.forEach((v, p) => close(v, want.values.get(l, p), `layer ${l} pos ${p}`, 1e-4)));
  // Layer 0, resid_pre: only the position where the prompts differ carries the difference, and restores it fully.
  const diff = doc.axes[1]!.labels.findIndex((p) => p === "J/M");
  assert.equal(diff, 15);
  doc.values[0]!.forEach((v, p) => close(v, p === diff ? 1 : 0, `layer 0 pos ${p}`, 1e-4));

  assert.equal(doc.by, "pos"); assert.equal(doc.site, "resid_pre");

  // by head: layer × head at z (every position) equals patchByHead; noising too.
  const byHead = await post<PatchResponse>(s.url + "api/patch", { clean: PROMPT, corrupted: CORRUPT, answer: "M", wrong: "J", by: "head", direction: "noising" });
  assert.equal(byHead.status, 200);
  assert.equal(byHead.doc.site, "z");
  assert.deepEqual(byHead.doc.axes[1]!.labels, ["0", "1"]);
  const wantHead = patchByHead(lib.model, { clean: [clean], corrupted: [corrupted], metric: normalizedMetric(base, cleanLd, corruptedLd), site: "z", direction: "noising" });
  byHead.doc.values.forEach((row, l) => row.forEach((v, h) => close(v, wantHead.values.get(l, h), `head layer ${l} head ${h}`)));
  const wrongSite = await post<{ error: string }>(s.url + "api/patch", { clean: PROMPT, corrupted: CORRUPT, answer: "M", wrong: "J", by: "head", site: "resid_pre" });
  assert.equal(wrongSite.status, 400);
  assert.match(wrongSite.doc.error, /"site": for by head must be one of z, q, k, v, pattern, got "resid_pre"/);

  const unequal = await post<{ error: string }>(s.url + "api/patch", { clean: "abc", corrupted: "ab", answer: "M", wrong: "J" });
  assert.equal(unequal.status, 400);
  assert.match(unequal.doc.error, /same number of tokens: clean has 3/);
  const multi = await post<{ error: string }>(s.url + "api/patch", { clean: PROMPT, corrupted: CORRUPT, answer: "Ma", wrong: "J" });
  assert.equal(multi.status, 400);
  assert.match(multi.doc.error, /"answer": "Ma" is 2 tokens/);
  const site = await post<{ error: string }>(s.url + "api/patch", { clean: PROMPT, corrupted: CORRUPT, answer: "M", wrong: "J", site: "hook_z" });
  assert.equal(site.status, 400);
  assert.match(site.doc.error, /"site": must be one of resid_pre, resid_mid, resid_post, attn_out, mlp_out \(by pos or layer\) or z, q, k, v, pattern \(by head\), got "hook_z"/);
  const get = await fetch(s.url + "api/patch");
  assert.equal(get.status, 405);
  assert.equal(get.headers.get("allow"), "POST");
});

test("bad requests are JSON errors with the right status, and the server keeps serving", async () => {
  const cases: [string, RequestInit, number, RegExp][] = [
    ["api/run", { method: "POST", body: "{not json" }, 400, /not valid JSON/],
    ["api/run", { method: "POST", body: "[1, 2]" }, 400, /must be a JSON object/],
    ["api/run", { method: "POST", body: "{}" }, 400, /missing field "prompt"/],
    ["api/run", { method: "POST", body: JSON.stringify({ prompt: 5 }) }, 400, /"prompt" must be a string, got 5/],
    ["api/run", { method: "POST", body: JSON.stringify({ prompt: "" }) }, 400, /prompt has no tokens/],
    ["api/run", { method: "POST", body: JSON.stringify({ prompt: "a".repeat(65) }) }, 400, /65 tokens; this server takes at most 64/],
    ["api/run", { method: "POST", body: JSON.stringify({ prompt: "é" }) }, 400, /no id for "é"/],
    ["api/run", { method: "POST", body: JSON.stringify({ prompt: "ab", top: 0 }) }, 400, /"top" must be between 1 and 50/],
    ["api/nothing", {}, 404, /no route GET \/api\/nothing; the API has \/api\/info/],
    ["api/info", { method: "POST", body: "{}" }, 405, /use GET/],
    ["api/run", { method: "POST", body: "x".repeat(2 << 20) }, 413, /bytes; the limit is 1048576/],
  ];
  for (const [route, init, status, message] of cases) {
    const res = await fetch(s.url + route, init);
    assert.equal(res.status, status, `${route} ${String(init.body).slice(0, 20)}`);
    assert.match(res.headers.get("content-type")!, /application\/json/);
    assert.match(((await res.json()) as { error: string }).error, message);
  }
  assert.equal((await fetch(s.url + "api/info")).status, 200);
  assert.equal(s.child.exitCode, null);
});

test("SIGTERM and SIGINT stop the server cleanly (exit code 0)", async () => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    const t = await startServe(folder, "--quiet");
    assert.equal((await fetch(t.url + "api/info")).status, 200);
    assert.equal(await t.stop(signal), 0, t.stderr());
    assert.match(t.stderr(), new RegExp(`${signal}: stopping`));
    assert.doesNotMatch(t.stderr(), /GET \/api\/info/); // --quiet
  }
});

test("serve's own errors: usage (exit 2), a port in use (exit 2), a snapshot without a tokenizer (exit 1)", () => {
  assert.match(errorOf(cli("serve", "--json")), /serve needs a snapshot folder/);
  assert.match(errorOf(cli("serve", folder, "--port", "70000", "--json")), /--port must be an integer in 0\.\.65535, got 70000/);
  assert.match(errorOf(cli("serve", folder, "--port", String(s.doc.port), "--json")), new RegExp(`--port ${s.doc.port}: 127\\.0\\.0\\.1:${s.doc.port} is already in use`));
  const bare = path.join(dir, "no-tokenizer");
  fs.mkdirSync(bare);
  for (const f of ["config.json", "model.safetensors"]) fs.copyFileSync(path.join(folder, f), path.join(bare, f));
  const r = cli("serve", bare, "--json");
  assert.equal(r.code, 1);
  assert.match((JSON.parse(r.stdout) as { error: { message: string } }).error.message, /has no tokenizer\.json, so a text prompt cannot be tokenized/);
});
