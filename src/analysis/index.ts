// The analysis layer's public surface: interpretability techniques built on the model and engine.
// Circuits of attention heads (factored QK/OV circuits, composition scores) and head detectors.
export { FactoredMatrix, jacobiSvd, qr, eigenvaluesGeneral, type Mat, type SVD } from "./factored-matrix.js";
export {
  qkCircuit, ovCircuit, fullQKCircuit, fullOVCircuit, compositionScore, compositionScores, compositionScoresBetween,
  allCompositionScores, compositionBaseline, COMPOSITION_KINDS, type CompositionKind, type CircuitInput, type CircuitModel,
} from "./circuits.js";
export {
  detectHead, headDetectorScores, detectionPattern, scorePattern, repeatedRandomTokens, topHead, HEAD_KINDS,
  type HeadKind, type HeadScores, type Detection, type DetectOptions, type ErrorMeasure,
} from "./head-detectors.js";
export { logitDiffMetric, tokenProbMetric, lossMetric, normalizedMetric, type Metric, type AnswerPairs } from "./patching-metrics.js";
export { positionLossMetric } from "./patching-metrics.js";
export { ratio, conditioning, spanConditioning, conditioningThreshold, describeIllConditioned, ILL_CONDITIONED_RTOL, type Conditioning, type Ratio } from "./conditioning.js";
export {
  patchByPos, patchByHead, patchByLayer, attributionPatch, attributionAgreement, pearson,
  type PatchResult, type PatchOptions, type LabelledAxis, type ResidSite, type HeadSite, type Direction,
} from "./patching.js";
export {
  integratedGradients, saliency, inputXGradient, layerIntegratedGradients, tokenAttribution, activationAt,
  gaussLegendre, integrationPoints, completeness, logitOf, logitDiffOf, INTEGRATION_METHODS,
  type IntegrationMethod, type Completeness, type Attribution, type ScoreFn, type Baseline, type IGOptions,
  type LogitScore, type LayerBaseline, type LayerIGOptions, type LayerAttribution, type GradientMethod,
} from "./attribution.js";
export { lrp, transformerLRP, lrpEpsilon, lrpIdentity, lrpUniform, type Conservation, type TransformerLRP, type TransformerLRPOptions } from "./lrp.js";
export {
  logitLens, headLogitAttribution, mlpLogitAttribution, neuronLogitAttribution, fullLogitAttribution,
  type LogitLensOptions, type LogitLensResult, type DlaTarget,
} from "./residual.js";
export { ablate, ablationHook, ablationSweep, type AblationKind, type AblationTarget, type AblationOptions, type AblationSweep } from "./ablation.js";
export {
  pathPatch, pathPatchSweep,
  type HeadRef, type ReceiverRef, type PathPatchOptions, type PathPatchResult, type PathPatchSweep,
} from "./path-patching.js";
export {
  maxActivatingExamples, activationHistogram, polysemanticity, ranksBefore,
  neuronActivations,
  type NeuronTokenBatch, type Corpus, type NeuronScanOptions, type MaxActOptions, type ActivatingExample, type NeuronExamples,
  type HistogramOptions, type NeuronHistogram, type TokenCluster, type Polysemanticity, type PolysemanticityOptions,
} from "./neurons.js";
export { SWEEP_OVER, type SweepOver, type SweepOptions, type SweepCell } from "./ablation.js";
export { probePair, biasProbe, type MinimalPair, type ProbeOptions, type PairProbe, type BiasProbeResult, type Divergence } from "./bias-probes.js";
export {
  causalScrub, causalScrubMany, checkHypothesis, identityHypothesis, componentName, featureName, HypothesisError,
  type Feature, type ScrubComponent, type HypothesisNode, type Hypothesis, type ScrubData, type ScrubOptions, type TraceEntry, type ScrubResult,
} from "./causal-scrubbing.js";
export { parseHypothesis } from "./hypothesis-json.js";
export {
  discoverCircuit, DISCOVERY_METHODS, CircuitRunner, withSplitInputs, buildGraph, edgeIndex, fullCircuit, emptyCircuit, countEdges,
  topNEdges, thresholdEdges, rankEdges, pruneDangling, eapScores, eapIgScores, acdc, faithfulness, faithfulnessCurve, curveCounts,
  type DiscoveryMethod, type DiscoverOptions, type DiscoveryResult, type CircuitEdge, type CircuitTask, type EdgeGraph, type EdgeMask,
  type Edge, type Sender, type Receiver, type AcdcOptions, type AcdcResult, type AcdcCriterion, type Faithfulness, type CurvePoint,
} from "./circuit-discovery/index.js";
export { tokenCircuit, positionalQK, copyingScore, copyingScores } from "./full-circuits.js";
