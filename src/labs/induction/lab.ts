// The induction-heads lab end to end (Olsson et al. 2022, "In-context Learning and Induction Heads"):
// train the 2-layer attention-only model (train.ts), then analyse the log and the final model
// (analysis.ts). The CLI (`circuitscope lab induction`) renders the result with report.ts.
import { analyseInduction, type InductionAnalysis } from "./analysis.js";
import { trainInduction, type InductionTrainOptions, type InductionTraining } from "./train.js";

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
