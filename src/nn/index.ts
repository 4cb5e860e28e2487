// The nn layer's public surface: modules with named parameters, standard layers, optimizers,
// gradient clipping and learning-rate schedules, all built on the tensor engine.
export { Parameter, init, fansOf, type InitOptions, type RandomInitOptions } from "./parameter.js";
export { Module, ModuleList, Sequential, StateDictError, type Layer, type LoadResult, type StateDictIssue } from "./module.js";
export { Linear, Embedding, LayerNorm, RMSNorm, MLP, Activation, activate, type ActivationKind, type LinearOptions, type MLPOptions } from "./layers.js";
export {
  Optimizer, SGD, AdamW, clipGradNorm,
  type Hyper, type ParamGroup, type ParamGroupInput, type ParamState, type OptimizerStateDict, type SGDHyper, type AdamWHyper,
} from "./optim.js";
export { constantSchedule, linearWarmupSchedule, cosineSchedule, stepDecaySchedule, type Schedule } from "./schedule.js";
