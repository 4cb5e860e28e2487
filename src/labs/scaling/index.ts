// Scaling-law fitting: the Chinchilla parametric law (Hoffmann et al. 2022, Approach 3) with L-BFGS
// and bootstrap intervals, Kaplan et al. 2020 single-variable power laws, CSV input and a report.
export { lbfgs, type Objective, type LbfgsOptions, type LbfgsResult, type LbfgsStatus } from "./lbfgs.js";
export {
  fitParametric, bootstrapParametric, makeObjective, hoffmannGrid, coarseGrid, allocation, predictLoss, huber,
  excludeHighestLoss, lawFromTheta, thetaFromLaw, quantile, HUBER_DELTA,
  type ScalingData, type ScalingLaw, type Theta, type FitOptions, type ParametricFit, type Allocation,
  type BootstrapOptions, type BootstrapResult, type Interval,
} from "./parametric.js";
export { fitPowerLaw, evalPowerLaw, computeBuckets, frontierFits, type PowerLaw, type Bucket, type FrontierFits } from "./powerlaw.js";
export { parseCsv, numericColumn, runsFromCsv, CsvError, type CsvTable, type RunColumns } from "./csv.js";
export { analyzeScaling, analysisJson, scalingFigures, scalingMarkdown, PUBLISHED, type Runs, type AnalysisOptions, type ScalingAnalysis } from "./report.js";
export { runSweep, planSweep, countParams, runsCsv, readRunsCsv, RUN_COLUMNS, type SweepOptions, type SweepSize, type SweepRun, type RunRow, type SweepResult } from "./sweep.js";
export { runScalingLab, renderScalingReport, scalingLabFigures, scalingLabSummary, kaplanFits, toRuns, KAPLAN_2020, type ScalingLabOptions, type ScalingLabResult, type KaplanFits } from "./lab.js";
