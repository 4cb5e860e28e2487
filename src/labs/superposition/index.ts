// The superposition lab's public surface: the toy model, its training, the analysis and the report.
export { ToyModel, importanceRows, sampleBatch, type ToyModelConfig, type Activation } from "./model.js";
export { trainToyModels, evalInstanceLoss, type TrainOptions, type TrainTarget } from "./train.js";
export {
  featureNorms, gram, superpositionMeasure, featureDimensionality, dimensionsPerFeature, representedFeatures,
  nearestFraction, polytopes, analyse, STICKY_FRACTIONS, type Polytope, type InstanceAnalysis,
} from "./analysis.js";
export { runSuperpositionLab, type LabOptions, type LabResult, type InstanceResult, type Variant } from "./lab.js";
export { renderReport } from "./report.js";
