// The model layer's public surface: configs, the hooked transformer, hooks, cache, weight
// processing, generation and tokenizer helpers.
export { makeConfig, validateConfig, gpt2SmallConfig, ConfigError, type ModelConfig, type ActFn } from "./config.js";
export { HookedTransformer, checkTokenIds, type Tokens, type ForwardOptions, type Hooks } from "./transformer.js";
export { NonFiniteError, allFinite, firstNonFinite, nonFiniteAt } from "./finite.js";
export {
  blockHook, attnHook, residHook, mlpHook, getActName, HookNameError,
  type HookName, type BlockHookName, type AttnAct, type ForwardHook, type BackwardHook, type HookContext, type NamesFilter,
} from "./hooks.js";
export { ActivationCache, CacheError, type ResidStack, type LogitTarget } from "./cache.js";
export { processWeights, foldLayerNorm, centerWritingWeights, centerUnembed, foldValueBiases, WeightProcessingError, type WeightProcessingStep } from "./weight-processing.js";
export type { KVCache } from "./components.js";
export { setFusedAttention } from "./components.js";
export { generate, sampleToken, samplingDistribution, type GenerateOptions, type GenerateResult, type SamplingOptions } from "./generate.js";
export {
  toTokens, toString, toStrTokens, toSingleToken, getTokenPosition, testPrompt, formatPromptTest, TokenError,
  type Tokenizer as TokenizerLike, type TokenBatch, type PromptTest,
} from "./tokens.js";
