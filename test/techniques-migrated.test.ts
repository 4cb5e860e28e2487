// The circuits, qk-ov and neurons descriptors beyond the all-surfaces check of techniques.test.ts:
// the corpus path is refused unless it is a regular readable file (InputError naming "corpus", a
// usage error on the CLI), neurons reports progress to its total and stops when aborted, and weight
// processing runs on a copy, so the shared subject (the server's model) is left as it was.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { loadSubject } from "../src/techniques/subject.js";
import { circuits, neurons, qkOv, runTechnique, InputError, type Progress } from "../src/techniques/index.js";
import { processWeights } from "../src/model/weight-processing.js";
import { cli } from "./cli-helpers.js";
import { post, startServe, tinySnapshot } from "./server-helpers.js";

const { dir, folder } = tinySnapshot("circuitscope-migrated-");
const corpus = path.join(dir, "corpus.txt");
fs.writeFileSync(corpus, "the cat sat on the mat. the dog sat on the log! ".repeat(8));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const small = { layer: 0, top: 2, k: 2, ctx: 8, maxWindows: 6, batch: 2, bins: 4 };

test("neurons refuses a corpus that is not a regular readable file, naming the field", async () => {
  const s = loadSubject(folder);
  for (const [where, why] of [[dir, /is not a regular file/], [path.join(dir, "missing.txt"), /no file at/], ["/dev/null", /is not a regular file/]] as const) {
    await assert.rejects(runTechnique(neurons, s, { ...small, corpus: where }), (e: unknown) => e instanceof InputError && e.field === "corpus" && why.test(e.message), where);
  }
  const r = cli("neurons", folder, "--corpus", dir, "--layer", "0");
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--corpus: .* is not a regular file/);
  // A character outside the vocabulary names the corpus too.
  const odd = path.join(dir, "odd.txt");
  fs.writeFileSync(odd, "the cat\nsat");
  await assert.rejects(runTechnique(neurons, s, { ...small, corpus: odd }), (e: unknown) => e instanceof InputError && e.field === "corpus" && e.message.startsWith(odd));
});

test("neurons reports progress up to its total, and an abort stops it", async () => {
  const seen: Progress[] = [];
  await runTechnique(neurons, loadSubject(folder), { ...small, corpus }, { onProgress: (p) => seen.push(p) });
  // 6 windows in batches of 2: 3 batches × (2 histogram passes + examples + colouring).
  assert.equal(seen.at(-1)!.total, 12);
  assert.equal(seen.at(-1)!.done, 12);
  assert.deepEqual(seen.map((p) => p.done), Array.from({ length: 12 }, (_, i) => i + 1), "one report per batch, in order");
  const ac = new AbortController();
  let calls = 0;
  await assert.rejects(runTechnique(neurons, loadSubject(folder), { ...small, corpus }, { signal: ac.signal, onProgress: () => { if (++calls === 2) ac.abort(new Error("stop here")); } }), /stop here/);
  assert.equal(calls, 2, "no progress after the abort");
});

test("circuits and qk-ov process a copy: the subject's weights and config are unchanged, the scores are the processed model's", async () => {
  const s = loadSubject(folder);
  const before = new Map([...s.model.namedParameters()].map(([n, p]) => [n, Array.from(p.toArray())]));
  const cfg = JSON.stringify(s.model.cfg);
  const r = await runTechnique(circuits, s, { seqLen: 6, batch: 2 });
  const q = await runTechnique(qkOv, s, { heads: "1.1", first: 4 });
  for (const [n, p] of s.model.namedParameters()) assert.deepEqual(Array.from(p.toArray()), before.get(n), `${n} unchanged`);
  assert.equal(JSON.stringify(s.model.cfg), cfg, "config unchanged");
  // The same numbers as processing a fresh load in place.
  const fresh = loadSubject(folder);
  assert.deepEqual(r.processedWeights, processWeights(fresh.model));
  const ref = await runTechnique(circuits, { ...fresh, model: fresh.model }, { seqLen: 6, batch: 2, process: false });
  assert.deepEqual(r.heads, ref.heads);
  assert.deepEqual(r.composition, ref.composition);
  assert.deepEqual(q.copyingScores, (await runTechnique(qkOv, fresh, { heads: "1.1", first: 4, process: false })).copyingScores);
  // Unprocessed differs (the weights really were processed).
  assert.notDeepEqual((await runTechnique(circuits, s, { seqLen: 6, batch: 2, process: false })).composition, r.composition);
});

test("the API streams neurons' progress and refuses a corpus path that is a folder with a 400 naming the field", async () => {
  const server = await startServe(folder, "--data-dir", dir);
  try {
    const res = await fetch(`${server.url}api/neurons`, { method: "POST", headers: { "content-type": "application/json", accept: "text/event-stream" }, body: JSON.stringify({ ...small, corpus }) });
    const text = await res.text();
    const progress = [...text.matchAll(/event: progress\ndata: (.*)\n/g)].map((m) => JSON.parse(m[1]!) as Progress);
    assert.deepEqual(progress.map((p) => p.done), Array.from({ length: 12 }, (_, i) => i + 1), text.slice(0, 400));
    assert.ok(progress.every((p) => p.total === 12 && p.stage === "blocks.0.mlp.hook_post over 6 windows"));
    assert.match(text, /event: result\n/);
    const bad = await post<{ error: string }>(`${server.url}api/neurons`, { ...small, corpus: dir });
    assert.equal(bad.status, 400);
    assert.match(bad.doc.error, /"corpus".*is not a regular file/);
  } finally {
    await server.stop();
  }
});

test("a server reads no file a request names unless it was given --data-dir, and then only inside it", async () => {
  const closed = await startServe(folder);
  try {
    const r = await post<{ error: string }>(`${closed.url}api/neurons`, { ...small, corpus: "/etc/passwd" });
    assert.equal(r.status, 400);
    assert.match(r.doc.error, /"corpus": this server reads no files by path/);
  } finally { await closed.stop(); }
  const data = fs.mkdtempSync(path.join(dir, "data-"));
  fs.copyFileSync(corpus, path.join(data, "corpus.txt"));
  fs.symlinkSync("/etc/passwd", path.join(data, "escape.txt"));
  const open = await startServe(folder, "--data-dir", data);
  try {
    assert.equal((await post(`${open.url}api/neurons`, { ...small, corpus: path.join(data, "corpus.txt") })).status, 200);
    for (const outside of ["/etc/passwd", path.join(data, "escape.txt"), path.join(data, "..", "corpus.txt")]) {
      const r = await post<{ error: string }>(`${open.url}api/neurons`, { ...small, corpus: outside });
      assert.equal(r.status, 400, outside);
      assert.match(r.doc.error, /"corpus": .* is outside this server's data folder/, outside);
      assert.doesNotMatch(r.doc.error, /root:/, "no byte of the file is echoed");
    }
  } finally { await open.stop(); }
});
