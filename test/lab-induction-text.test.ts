// The text variant of the induction-heads lab: the ICL score (late minus early per-position loss)
// against a hand computation, the per-position loss against the trainer's own objective, the
// repeated corpus text, the steepest-drop finder, and `circuitscope lab induction --data text --json`
// end to end at tiny settings (one JSON document with the fields, the report files written).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { useBackend } from "../src/backend/init.js";
import { Rng } from "../src/tensor/rng.js";
import { Tensor } from "../src/tensor/tensor.js";
import { lmObjective } from "../src/train/index.js";
import { attnOnlyModel, iclScore, iclWindows, perPositionLoss, repeatedCorpusText, steepestDrop } from "../src/labs/induction/index.js";

useBackend();

test("iclScore: late-window mean minus early-window mean, by hand", () => {
  // n_ctx 16: early = positions [1, 3), late = [12, 16).
  assert.deepEqual(iclWindows(16), { early: [1, 3], late: [12, 16] });
  assert.deepEqual(iclWindows(128), { early: [8, 24], late: [96, 128] });
  const losses = [4.0, 3.0, 2.5, 2.4, 2.3, 2.2, 2.1, 2.0, 2.0, 1.9, 1.9, 1.8, 1.6, 1.5, 1.4, 1.3];
  const r = iclScore(losses);
  // early = (3.0 + 2.5) / 2 = 2.75; late = (1.6 + 1.5 + 1.4 + 1.3) / 4 = 1.45; score = -1.3.
  assert.ok(Math.abs(r.early - 2.75) < 1e-12 && Math.abs(r.late - 1.45) < 1e-12 && Math.abs(r.score + 1.3) < 1e-12, JSON.stringify(r));
  const custom = iclScore([1, 2, 3, 4], { early: [0, 1], late: [3, 4] });
  assert.equal(custom.score, 3);
  assert.throws(() => iclScore([1, 2, 3], { early: [0, 1], late: [2, 5] }), /outside the 3 positions/);
  assert.throws(() => iclWindows(8), /n_ctx must be an integer ≥ 16/);
});

test("perPositionLoss averages to the trainer's next-token loss on the same windows", () => {
  const model = attnOnlyModel({ seed: 3, nCtx: 16, dVocab: 11, dModel: 16, nHeads: 2, dHead: 8, posInit: "sinusoidal", qkStd: 0.15 });
  const rng = new Rng(5), mk = () => new Tensor(Int32Array.from({ length: 3 * 17 }, () => rng.int(0, 11)), [3, 17]);
  const windows = [mk(), mk()];
  const pos = perPositionLoss(model, windows);
  assert.equal(pos.length, 16);
  const ref = windows.map((w) => lmObjective(model).loss(w).item()).reduce((a, b) => a + b, 0) / 2;
  const mean = pos.reduce((a, b) => a + b, 0) / pos.length;
  assert.ok(Math.abs(mean - ref) < 1e-5, `${mean} vs ${ref}`);
});

test("repeatedCorpusText: each row a segment and its copy, only characters the corpus has", () => {
  const counts = [0, 5, 0, 1, 3];
  const t = repeatedCorpusText(counts, { nCtx: 12, batch: 3, seed: 1 }), d = t.toArray();
  assert.deepEqual(t.shape, [3, 12]);
  for (let b = 0; b < 3; b++) for (let i = 0; i < 6; i++) {
    assert.equal(d[b * 12 + i], d[b * 12 + 6 + i]);
    assert.ok(counts[d[b * 12 + i]!]! > 0, `token ${d[b * 12 + i]} has count 0`);
  }
});

test("steepestDrop finds the window of a step in a checkpoint series, in steps", () => {
  const steps = Array.from({ length: 20 }, (_, i) => 50 * i), ys = steps.map((s) => (s < 500 ? 0 : -0.4));
  const d = steepestDrop(steps, ys, 4);
  assert.ok(d.start <= 500 && d.end >= 450, JSON.stringify(d));
  assert.ok(d.drop > 0.3 && d.before > d.after, JSON.stringify(d));
});

test("circuitscope lab induction --data text --json: tiny run end to end", () => {
  const main = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), "induction-text-"));
  try {
    const lines = ["First Citizen:", "Before we proceed any further, hear me speak.", "All:", "Speak, speak.", "You are all resolved rather to die than to famish?"];
    const rng = new Rng(0), corpus = join(dir, "corpus.txt"), out = join(dir, "report");
    writeFileSync(corpus, Array.from({ length: 200 }, () => lines[rng.int(0, lines.length)]).join("\n"));
    const args = [main, "lab", "induction", "--data", "text", "--corpus", corpus, "--steps", "12", "--n-ctx", "32", "--d-model", "16", "--heads", "2", "--d-head", "8",
      "--batch", "4", "--log-every", "4", "--eval-windows", "8", "--seed", "2", "--out", out, "--json"];
    const res = spawnSync(process.execPath, args, { encoding: "utf8", timeout: 60_000 });
    assert.equal(res.status, 0, res.stderr);
    const doc = JSON.parse(res.stdout) as {
      data: string; options: { steps: number; nCtx: number }; windows: { early: number[]; late: number[] };
      checkpoints: { step: number; icl: number; early: number; late: number; induction: number[][] }[];
      icl: { start: number; end: number }; final: { icl: number }; inductionHead: { layer: number }; previousTokenHead: { layer: number };
      induction: number[][]; previousToken: number[][]; kComposition: number[][]; baseline: { mean: number };
    };
    assert.equal(doc.data, "text");
    assert.equal(doc.options.steps, 12);
    assert.deepEqual(doc.windows, { early: [2, 6], late: [24, 32] });
    assert.deepEqual(doc.checkpoints.map((c) => c.step), [0, 4, 8, 12]);
    for (const c of doc.checkpoints) assert.ok(Math.abs(c.icl - (c.late - c.early)) < 1e-12);
    assert.equal(doc.final.icl, doc.checkpoints[3]!.icl);
    assert.equal(doc.inductionHead.layer, 1);
    assert.equal(doc.previousTokenHead.layer, 0);
    assert.equal(doc.induction.length, 2);
    assert.equal(doc.kComposition.length, 2);
    assert.ok(doc.baseline.mean > 0);
    for (const f of ["report.md", "phase-change.svg", "per-position-loss.svg", "detectors-final.svg", "k-composition.svg", "induction-attention.svg"]) assert.ok(existsSync(join(out, f)), f);
    assert.match(readFileSync(join(out, "report.md"), "utf8"), /ICL score/);
    assert.ok(existsSync(join(out, "tokens", "train.bin")));
    // Bad flags are usage errors naming the problem.
    const bad = spawnSync(process.execPath, [main, "lab", "induction", "--data", "text", "--corpus", corpus, "--n-ctx", "9", "--out", out], { encoding: "utf8", timeout: 30_000 });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /--n-ctx must be even/);
    const badData = spawnSync(process.execPath, [main, "lab", "induction", "--data", "poems"], { encoding: "utf8", timeout: 30_000 });
    assert.match(badData.stderr, /--data must be "random" or "text"/);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
