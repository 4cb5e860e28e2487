// The induction-heads lab (Olsson et al. 2022, "In-context Learning and Induction Heads"): a seeded
// 2-layer attention-only model must pass through the phase change — the repeated-token loss falls by
// more than 2 nats within a window of steps while the unpredictable first segment stays near
// ln(vocab) — with the best layer-1 induction score < 0.2 at initialisation and > 0.5 after; and
// `circuitscope lab induction --json` must print one parseable JSON document.
import { test, describe, before } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { useBackend } from "../src/backend/init.js";
import { Rng } from "../src/tensor/rng.js";
import { detectPhaseChange, inductionBatch, runInductionLab, smooth, type InductionLabResult } from "../src/labs/induction/index.js";
import { cli } from "./cli-helpers.js";

useBackend();

describe("induction lab: data and phase-change detection", () => {
  test("inductionBatch: BOS, a segment repeated, targets split into first segment and copies", () => {
    const half = 6, b = inductionBatch(new Rng(1), 4, half, 10);
    const toks = b.tokens.toList(), rep = b.targets.toList(), first = b.first.toList(), all = b.all.toList();
    const T = 2 * half + 1;
    for (let r = 0; r < 4; r++) {
      const row = toks.slice(r * T, r * T + T);
      assert.equal(row[0], 10);
      const L = rep.slice(r * (T - 1), r * (T - 1) + T - 1).findIndex((v) => v !== -1) - 1; // first predictable position p = L + 1 (after BOS): its token is the first copy
      assert.ok(L >= 4 && L <= half, `segment length ${L}`);
      for (let i = L + 1; i < T; i++) assert.equal(row[i], row[i - L]);
      for (let p = 0; p < T - 1; p++) {
        const k = r * (T - 1) + p;
        assert.equal(all[k], row[p + 1]);
        assert.ok((rep[k] === -1) !== (first[k] === -1), "each target is in exactly one part");
      }
    }
  });

  test("detectPhaseChange finds the steepest window of a step function", () => {
    const rep = Array.from({ length: 300 }, (_, i) => (i < 150 ? 3.7 : 0.5)), first = rep.map(() => 3.7);
    const pc = detectPhaseChange(rep, first, 40);
    assert.ok(pc.start <= 150 && pc.end >= 150, JSON.stringify(pc));
    assert.ok(Math.abs(pc.drop - 3.2) < 1e-9 && Math.abs(pc.firstDuring - 3.7) < 1e-9);
    assert.deepEqual(smooth([1, 2, 3], 3), [1.5, 2, 2.5]);
  });
});

describe("induction lab: training through the phase change (seed 0)", () => {
  let r: InductionLabResult;
  before(() => { r = runInductionLab({ steps: 400, seed: 0 }); });

  test("the repeated-token loss drops > 2 nats within 100 steps while the first segment stays near ln(vocab)", () => {
    const a = r.analysis, pc = a.phaseChange;
    assert.equal(pc.window, 100);
    assert.ok(pc.drop > 2, `drop ${pc.drop} over steps ${pc.start}–${pc.end}`);
    assert.ok(Math.abs(pc.firstDuring - a.lnVocab) < 0.5, `first-segment loss ${pc.firstDuring} vs ln V ${a.lnVocab}`);
    assert.ok(Math.abs(a.early.repeated - a.lnVocab) < 0.1 && a.late.repeated < 1, `repeats ${a.early.repeated} → ${a.late.repeated}`);
    assert.ok(Math.abs(a.late.first - a.lnVocab) < 0.5, `first segment after training ${a.late.first}`);
  });

  test("an induction head forms in layer 1 at the phase change, K-composing with a layer-0 previous-token head", () => {
    const a = r.analysis;
    assert.ok(a.initialInduction < 0.2, `at initialisation ${a.initialInduction}`);
    assert.ok(a.finalInduction > 0.5, `after training ${a.finalInduction}`);
    assert.equal(a.inductionHead.layer, 1);
    for (const x of a.induction[0]!) assert.ok(x < 0.2, "layer 0 cannot do induction");
    assert.ok(a.inductionCrossStep !== null && Math.abs(a.inductionCrossStep - a.phaseChange.step) <= a.phaseChange.window, `crossing ${a.inductionCrossStep} vs phase change ${a.phaseChange.step}`);
    assert.ok(a.previousTokenHead.score > 0.35, `previous-token head ${JSON.stringify(a.previousTokenHead)}`);
    assert.ok(a.kPair > a.baseline.mean + 5 * a.baseline.std, `K ${a.kPair} vs baseline ${JSON.stringify(a.baseline)}`);
    assert.equal(r.training.detectors.steps.length, r.training.detectors.induction.length);
  });
});

test("circuitscope lab induction --json writes the report and one JSON document", () => {
  const out = mkdtempSync(join(tmpdir(), "induction-lab-"));
  try {
    const res = cli("lab", "induction", "--steps", "30", "--seed", "1", "--out", out, "--json");
    assert.equal(res.code, 0, res.stderr);
    const doc = JSON.parse(res.stdout) as { options: { steps: number; seed: number }; phaseChange: { step: number }; induction: number[][]; kComposition: number[][] };
    assert.equal(doc.options.steps, 30);
    assert.equal(doc.options.seed, 1);
    assert.equal(doc.induction.length, 2);
    assert.equal(doc.kComposition.length, 2);
    for (const f of ["report.md", "loss-curves.svg", "detector-scores.svg", "detectors-final.svg", "k-composition.svg"]) assert.ok(existsSync(join(out, f)), f);
  } finally { rmSync(out, { recursive: true, force: true }); }
});
