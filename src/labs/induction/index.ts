// The induction-heads lab's public surface (Olsson et al. 2022, "In-context Learning and Induction
// Heads"): training on repeated random tokens or on text, phase-change analysis, the reports.
export { trainInduction, inductionBatch, inductionModel, attnOnlyModel, type AttnOnlyOptions, detectorTokens, type InductionTrainOptions, type InductionTraining, type InductionBatch, type DetectorLog } from "./train.js";
export { analyseInduction, detectPhaseChange, inductionCrossing, smooth, type InductionAnalysis, type PhaseChange } from "./analysis.js";
export { runInductionLab, runInductionTextLab, type InductionLabResult, type TextInductionLab } from "./lab.js";
export { iclScore, iclWindows, perPositionLoss, type IclWindows } from "./icl.js";
export { trainInductionText, repeatedCorpusText, type TextTrainOptions, type TextOptions, type TextTraining, type TextCheckpoint } from "./text-train.js";
export { analyseInductionText, steepestDrop, snippetAttention, type TextInductionAnalysis, type SteepestDrop } from "./text-analysis.js";
export { renderTextReport, textSummary } from "./text-report.js";
export { renderReport, summary } from "./report.js";
