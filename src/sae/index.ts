// Sparse autoencoders and transcoders: models, training on a model's activations, metrics, SAELens-layout files, dashboards.
export { SAE_ACTIVATIONS, SaeConfigError, architectureOf, configFromJson, configToJson, isTranscoder, makeSaeConfig, type SaeActivation, type SaeConfig } from "./config.js";
export { SparseAutoencoder, geometricMedian, rowMean, type SaeInitOptions } from "./model.js";
export { saeLoss, type SaeLossOptions, type SaeLossParts } from "./loss.js";
export { collectActivations, modelBatchSource, rowsBatchSource, type ActivationRows, type ActivationSpec, type BatchSource } from "./activations.js";
export { trainSae, defaultSaeTrainConfig, lrAt, coefficientAt, type SaeTrainConfig, type SaeTrainOptions, type SaeTrainResult, type SaeStepLog } from "./train.js";
export { reconstructionMetrics, downstreamMetrics, splicedLogits, type ReconstructionMetrics, type ReconstructionOptions, type DownstreamMetrics } from "./metrics.js";
export { saveSae, loadSae, readSaeConfig, SaeLoadError, SAE_CFG_FILE, SAE_WEIGHTS_FILE } from "./io.js";
export { latentDashboards, latentLogitEffects, type LatentDashboard, type LatentLogits, type LogitEffect, type DashboardOptions } from "./dashboard.js";
export { syntheticFeatures, syntheticRows, maxCosines, type SyntheticSpec } from "./synthetic.js";
