// The emergence lab end to end (Wei et al. 2022, "Emergent Abilities of Large Language Models" vs
// Schaeffer et al. 2023, "Are Emergent Abilities of Large Language Models a Mirage?"): train addition
// models of several sizes (train.ts), then find when each metric moves (analysis.ts). The CLI
// (`circuitscope lab emergence`) renders the result with report.ts.
import { analyseEmergence, type EmergenceAnalysis } from "./analysis.js";
import { trainEmergence, type EmergenceTrainOptions, type EmergenceTraining } from "./train.js";

export interface EmergenceLabResult {
  training: EmergenceTraining;
  analysis: EmergenceAnalysis;
  seconds: number;
}

export function runEmergenceLab(opts: EmergenceTrainOptions = {}): EmergenceLabResult {
  const t0 = performance.now();
  const training = trainEmergence(opts);
  return { training, analysis: analyseEmergence(training), seconds: (performance.now() - t0) / 1000 };
}
