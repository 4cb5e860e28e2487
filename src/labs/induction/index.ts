// The induction-heads lab's public surface (Olsson et al. 2022, "In-context Learning and Induction
// Heads"): training on repeated random tokens, phase-change analysis, the report.
export { trainInduction, inductionBatch, inductionModel, detectorTokens, type InductionTrainOptions, type InductionTraining, type InductionBatch, type DetectorLog } from "./train.js";
export { analyseInduction, detectPhaseChange, inductionCrossing, smooth, type InductionAnalysis, type PhaseChange } from "./analysis.js";
export { runInductionLab, type InductionLabResult } from "./lab.js";
export { renderReport, summary } from "./report.js";
