// The grokking lab's public surface (Nanda et al. 2023): checkpoint loading, evaluation on all pairs,
// the Fourier analysis and progress measures, training from scratch, the experiment and its report.
export { loadGrokkingCheckpoint, saveGrokkingCheckpoint, modelFromOriginal, toOriginal, grokkingConfig, GrokkingCheckpointError, type GrokkingCheckpoint, type LossCurves } from "./checkpoint.js";
export { evaluateAllPairs, allPairTokens, accuracyOn, type AllPairs } from "./evaluate.js";
export {
  omega, fourierBasis, fourierTransform, frequencyNorms, keyFrequencies, normFraction, centreRows, fitLogits, outputBiasShare, sumDirectionComponents,
  crossEntropyOn, progressMeasures, fourier2d, logitFourierNorms, neuronFrequencies,
  type FourierBasis, type LogitFit, type ProgressMeasures, type NeuronClusters,
} from "./fourier.js";
export { analyseModel, analyseAllPairs, NEURON_CLUSTER_THRESHOLD, type ModelAnalysis, type AnalyseOptions } from "./analysis.js";
export { trainGrokking, splitPairs, lastPositionLogits, GROK_CHECKPOINT_FILE, grokCheckpointEpoch, type GrokTrainOptions, type GrokTrainResult } from "./train.js";
export { runGrokkingLab, type GrokkingLabOptions, type GrokkingLabResult, type TrainingRecord, type TrainingMeasure } from "./lab.js";
export { renderReport, PAPER } from "./report.js";
export { CRITERIA, grokkingCriteria, criteriaTable, separation, accuracySeparation, lossSeparation, firstReached, type Criterion, type Separation } from "./criteria.js";
