// Reports state only what the run computed (issue #10): each report is fed a hand-built result, then
// the same result changed so that one check must fail, and the report must say the opposite. No
// training: the results are plain objects (run through the real analysis functions where cheap).
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { illConditioned, verdict } from "../src/labs/markdown.js";
import { analyseSize, renderReport as renderEmergence, type EmergenceLabResult, type SizeRun } from "../src/labs/emergence/index.js";
import { detectPhaseChange, renderReport as renderInduction, type InductionAnalysis, type InductionLabResult } from "../src/labs/induction/index.js";
import { inductionFindings } from "../src/labs/induction/report.js";
import { together } from "../src/labs/induction/text-report.js";
import type { TextInductionAnalysis } from "../src/labs/induction/text-analysis.js";
import { analyse, renderReport as renderSuperposition, type InstanceResult, type LabResult } from "../src/labs/superposition/index.js";
import { gram } from "../src/labs/superposition/analysis.js";
import { renderReport as renderGrokking, progressOrderSentence } from "../src/labs/grokking/report.js";
import { criteriaTable, grokkingCriteria, separation } from "../src/labs/grokking/criteria.js";
import type { GrokkingLabResult } from "../src/labs/grokking/lab.js";
import type { ModelAnalysis } from "../src/labs/grokking/analysis.js";
import { kaplanCaveat } from "../src/labs/scaling/lab.js";
import type { RunRow } from "../src/labs/scaling/sweep.js";
import { scrubLines } from "../src/cli/commands/scrub.js";
import { circuitLine } from "../src/cli/commands/discover.js";
import { ceRecoveredText } from "../src/cli/commands/sae.js";
import { spanConditioning } from "../src/analysis/conditioning.js";

describe("verdict and illConditioned", () => {
  test("verdict picks the sentence by the check and keeps the numbers beside it", () => {
    assert.equal(verdict(true, "Yes", "No", "3 > 2"), "Yes (3 > 2)");
    assert.equal(verdict(false, "Yes", "No", "1 > 2"), "No (1 > 2)");
    assert.equal(verdict(null, "Yes", "No", "never", "Not decidable"), "Not decidable (never)");
  });
  test("illConditioned flags a denominator ~0 next to its scale", () => {
    assert.equal(illConditioned(1e-7, 3), true);
    assert.equal(illConditioned(0.001, 3), false, "the one rule: 1e-6·max(1, scale)");
    assert.equal(illConditioned(0.5, 3), false);
    assert.equal(illConditioned(0, 0), true);
  });
});

describe("emergence", () => {
  const steps = [0, 10, 20, 30, 40, 50, 60, 70, 80];
  const baseline = { loss: 1.5, digitAccuracy: 0.4 };
  /** A run whose loss, exact match and p(answer) follow the given curves (per-digit accuracy tracks exact match). */
  const run = (loss: number[], exact: number[], pAnswer = exact): SizeRun => ({
    dModel: 16, params: 1000, trainLoss: [], steps, seconds: 0,
    evals: loss.map((l, i) => ({ loss: l, digitAccuracy: 0.3 + 0.7 * exact[i]!, pAnswer: pAnswer[i]!, exactMatch: exact[i]! })),
  });
  const result = (r: SizeRun): EmergenceLabResult => ({
    training: { options: { seed: 0, steps: 80, sizes: [16], digits: 2, nLayers: 2, batch: 8, lr: 1e-3, weightDecay: 0, evalEvery: 10, evalSize: 16 }, runs: [r], seconds: 0 },
    analysis: { answerDigits: 3, baseline, sizes: [analyseSize(r, 3, baseline)] }, seconds: 0,
  });
  // Loss moves first and sits at the baseline for a while; exact match jumps late and sharply.
  const smooth = run([2.3, 1.5, 1.5, 1.5, 1.2, 0.9, 0.6, 0.3, 0.1], [0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.02, 0.6, 0.99], [0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1]);
  // Exact match rises steadily from the start while the loss only falls at the end.
  const abrupt = run([2.3, 2.3, 2.3, 2.3, 2.3, 2.3, 2.2, 1.0, 0.1], [0.0, 0.12, 0.25, 0.37, 0.5, 0.62, 0.75, 0.87, 1.0]);

  test("the loss moved first, exact match sharper, a plateau at the baseline — and the opposite", () => {
    const a = renderEmergence(result(smooth))["report.md"]!, b = renderEmergence(result(abrupt))["report.md"]!;
    assert.match(a, /the loss starts to move before exact match \(10% points: loss 10, exact match 70/);
    assert.match(b, /the loss does not start to move before exact match \(10% points: loss 70, exact match 10/);
    assert.match(a, /exact match rises over a shorter span than the loss/);
    assert.match(a, /p\(full answer\) starts to move before exact match \(10% points: p\(full answer\) 10, exact match 70\)/);
    assert.match(b, /p\(full answer\) does not start to move before exact match \(10% points: p\(full answer\) 10, exact match 10\)/);
    assert.match(b, /exact match does not rise over a shorter span than the loss/);
    assert.match(a, /the loss sits at the digit-frequency baseline for 3 evals \(steps 10–30\)/);
    assert.match(b, /the loss never comes near the digit-frequency baseline/);
    assert.match(a, /baseline loss 1\.500, per-digit accuracy 40\.0%/);
    for (const md of [a, b]) assert.doesNotMatch(md, /≈1% here|≈ 1\.55|≈ 40%/);
  });
});

describe("induction", () => {
  const T = 200;
  const rep = Array.from({ length: T }, (_, i) => (i < 100 ? 3.7 : 0.5));
  const flat = new Array<number>(T).fill(3.7), falling = Array.from({ length: T }, (_, i) => (i < 100 ? 3.7 : 1.0));
  const analysis = (first: number[], over: Partial<InductionAnalysis> = {}): InductionAnalysis => ({
    lnVocab: Math.log(40), phaseChange: detectPhaseChange(rep, first, 40), inductionCrossStep: 100,
    initialInduction: 0.05, finalInduction: 0.9, induction: [[0.1, 0.1], [0.9, 0.1]], previousToken: [[0.8, 0.1], [0.1, 0.1]],
    inductionHead: { layer: 1, head: 0, score: 0.9 }, previousTokenHead: { layer: 0, head: 0, score: 0.8 },
    kComposition: [[0.4, 0.1], [0.1, 0.1]], kPair: 0.4, baseline: { mean: 0.1, std: 0.02 },
    early: { first: 3.7, repeated: 3.7 }, late: { first: first[T - 1]!, repeated: 0.5 }, ...over,
  });

  test("in-context learning only vs the first segment falling too", () => {
    const yes = inductionFindings(analysis(flat)).join("\n"), no = inductionFindings(analysis(falling)).join("\n");
    assert.match(yes, /stays put, so the improvement is in-context learning/);
    assert.doesNotMatch(no, /the improvement is in-context learning/);
    assert.match(no, /the first-segment loss moves too, so the drop is not in-context learning alone, unlike the paper's phase change \(first-segment loss 3\.70 → 1\.00/);
  });

  test("the induction head forms at the phase change, later, or never", () => {
    assert.match(inductionFindings(analysis(flat)).join("\n"), /It forms at the phase change, as the paper finds \(crosses 0\.5 at step 100/);
    assert.match(inductionFindings(analysis(flat, { inductionCrossStep: 190 })).join("\n"), /It does not form at the phase change, unlike the paper \(crosses 0\.5 at step 190/);
    assert.match(inductionFindings(analysis(flat, { inductionCrossStep: null })).join("\n"), /No induction head formed/);
  });

  test("K-composition above or at the random baseline", () => {
    assert.match(inductionFindings(analysis(flat)).join("\n"), /K-composes with the induction head \(K = 0\.400 vs random matrices 0\.100 ± 0\.020.*4\.00× the baseline/);
    assert.match(inductionFindings(analysis(flat, { kPair: 0.11 })).join("\n"), /does not K-compose with the induction head above chance \(K = 0\.110/);
    assert.match(inductionFindings(analysis(flat, { baseline: { mean: 0, std: 0 } })).join("\n"), /ill-conditioned/);
  });

  test("the report reads d_model and the layer count from the model", () => {
    const r = {
      training: {
        model: { cfg: { d_model: 48, n_layers: 2 } }, seconds: 0, loss: rep, firstLoss: flat, repeatedLoss: rep,
        options: { seed: 0, steps: T, half: 12, batch: 8, lr: 1e-3, weightDecay: 0, nHeads: 2, dHead: 24, dVocab: 40, bos: true, logEvery: 10 },
        detectors: { steps: [0, 100], induction: [[[0, 0], [0.05, 0]], [[0, 0], [0.9, 0]]], previousToken: [[[0, 0], [0, 0]], [[0.8, 0], [0, 0]]] },
      },
      analysis: analysis(flat), seconds: 0,
    } as unknown as InductionLabResult;
    const md = renderInduction(r)["report.md"]!;
    assert.match(md, /2-layer attention-only transformer, 2 heads × d_head 24 per layer, d_model 48,/);
    assert.doesNotMatch(md, /d_model 32/);
  });
});

describe("induction (text)", () => {
  const base = {
    icl: { step: 50, start: 40, end: 60, before: 0, after: -0.3, drop: 0.3 }, repeated: { step: 50, start: 40, end: 60, before: 3, after: 1, drop: 2 },
    threshold: 0.3, inductionCrossStep: 50, final: { icl: -0.3, repeated: 1.0, firstHalf: 3.0, induction: 0.6, early: 2, late: 1.7 }, coincide: true,
  };
  test("Yes / Not cleanly / No, and the repeated-text sentence follows its numbers", () => {
    const a = (o: object) => ({ ...base, ...o }) as unknown as TextInductionAnalysis;
    assert.match(together(a({}), 100), /^Yes: .*\(ICL drop steps 40–60 \(centre 50\), repeated-text drop 40–60, induction score ≥ 0\.3 from step 50\)/);
    assert.match(together(a({ coincide: false }), 100), /^Not cleanly:/);
    const noHead = together(a({ coincide: false, inductionCrossStep: null }), 100);
    assert.match(noHead, /^No induction head formed in 100 steps/);
    assert.match(noHead, /Even so, the loss on repeated random text falls below the first half's \(second half 1\.00, first half 3\.00 nats\)/);
    const noCopy = together(a({ coincide: false, inductionCrossStep: null, final: { ...base.final, repeated: 3.1 } }), 100);
    assert.match(noCopy, /The loss on repeated random text does not fall below the first half's \(second half 3\.10, first half 3\.00 nats\)/);
  });
});

describe("superposition", () => {
  // n = 3 features, m = 2 dims: two orthogonal features (no superposition) or a triangle (all three superposed).
  const c = Math.cos((2 * Math.PI) / 3), s = Math.sin((2 * Math.PI) / 3);
  const orthogonal = [[1, 0, 0], [0, 1, 0]], triangle = [[1, c, c], [0, s, -s]];
  const inst = (variant: InstanceResult["variant"], sparsity: number, W: number[][]): InstanceResult => ({ variant, sparsity, loss: 0.01, gram: gram(W), bias: [0, 0, 0], ...analyse(W) });
  const result = (linearW: number[][], sparseW: number[][]): LabResult => ({
    options: { nFeatures: 3, nHidden: 2, sparsities: [0, 0.9], decay: 0.7, steps: 10, batchSize: 8, lr: 1e-3, seed: 0 },
    instances: [inst("relu", 0, orthogonal), inst("relu", 0.9, sparseW), inst("linear", 0, linearW), inst("linear", 0.9, linearW), inst("relu-uniform", 0, orthogonal), inst("relu-uniform", 0.9, sparseW)],
    lossCurves: { relu: [], linear: [] }, seconds: 0,
  });

  test("the linear model never superposes and sparse ReLU does — and the opposite", () => {
    const paper = renderSuperposition(result(orthogonal, triangle))["report.md"]!;
    const flipped = renderSuperposition(result(triangle, orthogonal))["report.md"]!;
    assert.match(paper, /It never superposes \(max represented 2 vs m=2, max in superposition 0\) — as the paper finds/);
    assert.match(flipped, /It superposes or represents more than m features \(max represented 3 vs m=2, max in superposition 3\) — unlike the paper/);
    assert.match(paper, /More features than dimensions, packed into superposition \(represented 3 vs m=2, in superposition 3\) — as the paper finds/);
    assert.match(paper, /Every feature is represented\./);
    assert.match(flipped, /No more features than dimensions in superposition \(represented 2 vs m=2, in superposition 0\) — unlike the paper/);
    assert.match(flipped, /1 features stay out/);
    assert.match(paper, /At most m features, none superposed \(represented 2 vs m=2, in superposition 0\) — as the paper finds/);
  });
});

describe("grokking", () => {
  const analysis: ModelAnalysis = {
    p: 5, accuracy: { all: 1, train: 1, test: 1 }, loss: { train: 1e-6, test: 2e-6 }, embedNorms: [0, 1, 0.01], keyFrequencies: [1],
    embedKeyFraction: 0.99, logitVarianceExplained: 0.96, logitOutputBiasShare: 0.01, alpha: [[1, 2]], logitVarianceByFrequency: [0, 0.96, 0],
    progress: { restrictedLoss: 1e-6, excludedLoss: 3, excludedTestLoss: 3 } as ModelAnalysis["progress"],
  };
  const result = (stored: number): GrokkingLabResult => ({
    checkpoint: { dir: "ck", meta: "", analysis, curves: { epochsPerPoint: 10, train: [2, stored], test: [2, 2 * stored] }, separation: null, criteria: [] }, seconds: 0,
  } as unknown as GrokkingLabResult);

  test("the loaded model reproduces its stored losses, or not", () => {
    assert.match(renderGrokking(result(1.1e-6))["report.md"]!, /The model's own losses reproduce the stored curves' final values \(train 1\.000e-6 vs stored 1\.100e-6/);
    assert.match(renderGrokking(result(1e-3))["report.md"]!, /The model's own losses do not reproduce the stored curves' final values \(train 1\.000e-6 vs stored 1\.000e-3/);
  });

  test("separation passes on a real ratio, not on one whose train epoch is 0", () => {
    const ok = criteriaTable(grokkingCriteria(analysis, separation("acc", [0, 100, 600], [0, 1, 1], [0, 0, 1], (v) => v >= 0.99))).join("\n");
    assert.match(ok, /\| train\/test separation \| 6\.0× \| ≥ 5× \| pass \|/);
    const bad = criteriaTable(grokkingCriteria(analysis, separation("acc", [0, 100, 600], [1, 1, 1], [0, 0, 1], (v) => v >= 0.99))).join("\n");
    assert.match(bad, /\| train\/test separation \| 600\.0× \| ≥ 5× \| FAIL \| first epoch at acc: train 0, test 600; ratio ill-conditioned/);
  });

  test("§5.2: progress measures before the test loss falls, after it, or never", () => {
    assert.match(progressOrderSentence(100, 200, 300), /^Both progress measures move before the test loss falls, as §5\.2 expects \(restricted loss < 0\.01 at snapshot epoch 100, excluded \(train\) loss > ln p at 200, test loss < 0\.01 at 300\)/);
    assert.match(progressOrderSentence(400, 200, 300), /^The progress measures do not both move before the test loss falls, unlike §5\.2/);
    assert.match(progressOrderSentence(null, 200, 300), /^Inconclusive against §5\.2 .*snapshot epoch never/);
  });
});

describe("scaling", () => {
  const rows = (losses: number[]) => losses.map((val_loss) => ({ val_loss }) as RunRow);
  test("losses far above E, or close to it", () => {
    assert.match(kaplanCaveat(rows([2.5, 2.2, 2.0]), 1.0), /^Kaplan's laws have no irreducible term, and this grid's losses are far above the fitted E.*\(lowest validation loss 2\.0000, fitted E 1, reducible share \(L − E\)\/L = 0\.500/);
    assert.match(kaplanCaveat(rows([2.5, 2.2, 2.0]), 1.95), /^This grid's best losses come close to the fitted E.*reducible share \(L − E\)\/L = 0\.025/);
  });
});

describe("cli ratios", () => {
  const scrub = { hypothesis: "h", samples: 10, modelLoss: 2, scrubbedLoss: 2.5, scrubbedStderr: 0.1, randomLoss: 3, recovered: 0.5, recoveredStderr: 0.05 };
  test("scrub: the fraction recovered, or ill-conditioned when the random loss ~ the model loss", () => {
    assert.match(scrubLines(scrub).join("\n"), /loss recovered 50\.0% ± 5\.0%/);
    const bad = scrubLines({ ...scrub, randomLoss: 2.0000001, recovered: -5e6 }).join("\n");
    assert.match(bad, /loss recovered ill-conditioned: random − model loss is 1\.00e-7/);
    assert.doesNotMatch(bad, /%/);
  });
  test("discover: faithfulness, or ill-conditioned when clean ~ corrupted", () => {
    assert.match(circuitLine({ edges: 5, normalized: 0.8 }, 50, 3, 1), /faithfulness 0\.8000 \(logit diff clean 3\.0000, corrupted 1\.0000, circuit 2\.6000\)/);
    assert.match(circuitLine({ edges: 5, normalized: 0.8 }, 50, 3, 2.9999999), /faithfulness ill-conditioned: clean − corrupted logit diff is 1\.00e-7/);
  });
  test("sae: CE recovered, or ill-conditioned when zero-ablation barely changes CE", () => {
    const ce = (ceClean: number, ceZero: number) => ({ ceClean, ceSae: 2.2, ceZero, ceRecovered: (ceZero - 2.2) / (ceZero - ceClean), ceRecoveredConditioning: spanConditioning(ceZero, ceClean) });
    assert.match(ceRecoveredText(ce(2, 4)), /: 90\.0% recovered$/);
    assert.match(ceRecoveredText(ce(2, 2.0000001)), /CE recovered not meaningful \(ill-conditioned: CE_zero − CE_clean = 1\.00e-7/);
  });
});

test("lab reports carry no result written as a literal (no '≈ 1%' or '~0.4' in their text)", async () => {
  const fs = await import("node:fs"), path = await import("node:path");
  const labs = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../src/labs");
  const files = fs.readdirSync(labs, { recursive: true }).map(String).filter((f) => /report\.ts$/.test(f));
  assert.ok(files.length >= 6, `found the reports: ${files.join(", ")}`);
  for (const f of files) {
    fs.readFileSync(path.join(labs, f), "utf8").split("\n").forEach((line, i) => {
      const code = line.replace(/\/\/.*$/, ""); // comments may cite the paper's numbers
      // "~0" names ill-conditioning, not a result.
      assert.doesNotMatch(code, /[≈~]\s*(?!0(?![.\d]))\d/, `${f}:${i + 1}: an approximate number written as a literal: ${line.trim()}`);
    });
  }
});
