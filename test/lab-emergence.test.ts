// The emergence lab (Wei et al. 2022 vs Schaeffer et al. 2023): the addition data are correct (answers
// are the sums, reversed digits), the answer-position metrics are right on hand-built logits, a tiny
// run's answer loss falls, and `circuitscope lab emergence --json --steps 20` prints one JSON document.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { useBackend } from "../src/backend/init.js";
import { Rng } from "../src/tensor/rng.js";
import { additionBatch, answerMetrics, crossing, decodeAnswer, encodeProblem, EQUALS, layout, PLUS, trainEmergence } from "../src/labs/emergence/index.js";
import { cli } from "./cli-helpers.js";

useBackend();

test("addition data: answers are the sums, least significant digit first; targets only on answer tokens", () => {
  assert.deepEqual(encodeProblem(57, 68, 2), [5, 7, PLUS, 6, 8, EQUALS, 5, 2, 1]);
  assert.deepEqual(encodeProblem(3, 4, 2), [0, 3, PLUS, 0, 4, EQUALS, 7, 0, 0]);
  const b = additionBatch(new Rng(3), 50, 2), { prompt, length } = layout(2), T = length - 1;
  const toks = b.tokens.toList(), tg = b.targets.toList();
  b.problems.forEach(([x, y], r) => {
    const row = [...toks.slice(r * T, r * T + T), tg[r * T + T - 1]!];
    assert.equal(decodeAnswer(row, 2), x + y);
    assert.equal(10 * row[0]! + row[1]!, x);
    assert.equal(10 * row[3]! + row[4]!, y);
    for (let p = 0; p < T; p++) assert.equal(tg[r * T + p], p >= prompt - 1 ? row[p + 1] : -1);
  });
});

test("answerMetrics on hand-built logits", () => {
  const z = (k: number, hi: number) => Array.from({ length: 4 }, (_, i) => (i === k ? hi : 0));
  // problem 0: both digits right; problem 1: first right, second wrong.
  const logits = [[z(1, 2), z(2, 3)], [z(0, 1), z(3, 5)]], targets = [[1, 2], [0, 1]];
  const nll = (zs: number[], t: number) => Math.log(zs.reduce((s, v) => s + Math.exp(v), 0)) - zs[t]!;
  const l = [[nll(z(1, 2), 1), nll(z(2, 3), 2)], [nll(z(0, 1), 0), nll(z(3, 5), 1)]];
  const m = answerMetrics(logits, targets);
  assert.ok(Math.abs(m.loss - (l[0]![0]! + l[0]![1]! + l[1]![0]! + l[1]![1]!) / 4) < 1e-12);
  assert.equal(m.digitAccuracy, 0.75);
  assert.equal(m.exactMatch, 0.5);
  assert.ok(Math.abs(m.pAnswer - (Math.exp(-l[0]![0]! - l[0]![1]!) + Math.exp(-l[1]![0]! - l[1]![1]!)) / 2) < 1e-12);
  assert.equal(crossing([0, 10, 20, 30], [2, 1.9, 1, 0], 0.1), 20);
});

test("a tiny run's held-out answer loss falls", () => {
  const t = trainEmergence({ steps: 120, sizes: [16], evalEvery: 60, evalSize: 128, seed: 0 });
  const e = t.runs[0]!.evals;
  assert.equal(e.length, 3);
  assert.ok(e[2]!.loss < e[0]!.loss - 0.5, `loss ${e[0]!.loss} → ${e[2]!.loss}`);
  assert.ok(t.runs[0]!.trainLoss.length === 120);
});

test("circuitscope lab emergence --json --steps 20 writes the report and one JSON document", () => {
  const out = mkdtempSync(join(tmpdir(), "emergence-lab-"));
  try {
    const res = cli("lab", "emergence", "--steps", "20", "--sizes", "8,16", "--seed", "1", "--out", out, "--json");
    assert.equal(res.code, 0, res.stderr);
    const doc = JSON.parse(res.stdout) as { options: { steps: number; seed: number; sizes: number[] }; sizes: { dModel: number }[]; evals: unknown[] };
    assert.equal(doc.options.steps, 20);
    assert.equal(doc.options.seed, 1);
    assert.deepEqual(doc.sizes.map((s) => s.dModel), [8, 16]);
    assert.equal(doc.evals.length, 2);
    for (const f of ["report.md", "loss.svg", "exact-match.svg", "progress.svg"]) assert.ok(existsSync(join(out, f)), f);
  } finally { rmSync(out, { recursive: true, force: true }); }
});
