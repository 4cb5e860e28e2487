// The emergence lab's public surface (Wei et al. 2022 vs Schaeffer et al. 2023): addition data and
// training over model sizes, per-metric transition analysis, the report.
export { trainEmergence, additionBatch, additionModel, batchOf, encodeProblem, decodeAnswer, answerMetrics, evaluate, layout, PLUS, EQUALS, VOCAB, ADDITION_CHARS, type EmergenceTrainOptions, type EmergenceTraining, type SizeRun, type AnswerMetrics, type AdditionBatch } from "./train.js";
export { analyseEmergence, analyseSize, crossing, frequencyBaseline, transition, BASELINE_BAND, METRICS, type EmergenceAnalysis, type FrequencyBaseline, type SizeAnalysis, type Transition, type MetricName } from "./analysis.js";
export { runEmergenceLab, type EmergenceLabResult } from "./lab.js";
export { renderReport, summary } from "./report.js";
