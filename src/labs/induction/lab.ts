// The induction-heads lab end to end (Olsson et al. 2022, "In-context Learning and Induction Heads"):
// train the 2-layer attention-only model (train.ts), then analyse the log and the final model
// (analysis.ts). The CLI (`circuitscope lab induction`) renders the result with report.ts; the text
// variant (`--data text`) uses text-train.ts, text-analysis.ts and text-report.ts.
import { analyseInduction, type InductionAnalysis } from "./analysis.js";
import { trainInduction, type InductionTrainOptions, type InductionTraining } from "./train.js";
import { analyseInductionText, type TextInductionAnalysis } from "./text-analysis.js";
import { trainInductionText, type TextTrainOptions, type TextTraining } from "./text-train.js";

export interface InductionLabResult {
  training: InductionTraining;
  analysis: InductionAnalysis;
  seconds: number;
}

export function runInductionLab(opts: InductionTrainOptions & { window?: number } = {}): InductionLabResult {
  const t0 = performance.now();
  const { window, ...train } = opts;
  const training = trainInduction(train);
  const analysis = analyseInduction(training, { window });
  return { training, analysis, seconds: (performance.now() - t0) / 1000 };
}

export interface TextInductionLab {
  training: TextTraining;
  analysis: TextInductionAnalysis;
  seconds: number;
}

/** The text variant: train on a character-level corpus, then analyse the checkpoints and the final model. */
export function runInductionTextLab(opts: TextTrainOptions & { window?: number; threshold?: number }): TextInductionLab {
  const t0 = performance.now();
  const { window, threshold, ...train } = opts;
  const training = trainInductionText(train);
  const analysis = analyseInductionText(training, { window, threshold });
  return { training, analysis, seconds: (performance.now() - t0) / 1000 };
}
