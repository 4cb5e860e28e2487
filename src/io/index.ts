// circuitscope's file layer: safetensors reading and writing, Hugging Face configs, weight layouts
// and snapshot folders, and tokenizers. Nothing here runs a model or prints.
export {
  SafetensorsFile, ShardedSafetensors, SafetensorsError, loadSafetensors, saveSafetensors, engineDTypeOf, floatToHalfBits, floatToBf16Bits,
  type SafetensorsDType, type SafetensorsErrorCode, type TensorInfo, type TensorSource, type LoadOptions, type SaveOptions,
} from "./safetensors.js";
export { configFromHF, configToHF, hfArchitecture, HFConfigError, SUPPORTED_ARCHITECTURES, type HFArchitecture, type HFConfigJson } from "./hf-config.js";
export { loadHFWeights, hfStateDict, HFWeightsError } from "./hf-weights.js";
export { Tokenizer, TokenizerError, type EncodeOptions, type DecodeOptions } from "./tokenizer.js";
export { loadPretrained, saveHF, openWeights, readHFConfig, SnapshotError, type Pretrained, type LoadPretrainedOptions, type SaveHFOptions, type SnapshotLayout } from "./snapshot.js";
export { saveCache, loadCache } from "./cache-file.js";
export { fromPretrained, type FromPretrainedOptions, type ProcessedPretrained } from "./from-pretrained.js";
export { wordLevelTokenizer, wordLevelTokenizerJson, wordLevelTokenizerConfig, randomTokenWords, type WordTokenizerOptions } from "./word-tokenizer.js";
export { isCircuitscopeLayout, CIRCUITSCOPE_MODEL_TYPE } from "./circuitscope-layout.js";
