// circuitscope's file layer: safetensors reading and writing, Hugging Face configs, weight layouts
// and snapshot folders, and tokenizers. Nothing here runs a model or prints.
export {
  SafetensorsFile, ShardedSafetensors, SafetensorsError, loadSafetensors, saveSafetensors, engineDTypeOf, floatToHalfBits, floatToBf16Bits,
  type SafetensorsDType, type SafetensorsErrorCode, type TensorInfo, type TensorSource, type LoadOptions, type SaveOptions,
} from "./safetensors.js";
export { configFromHF, configToHF, hfArchitecture, HFConfigError, SUPPORTED_ARCHITECTURES, type HFArchitecture, type HFConfigJson } from "./hf-config.js";
export { loadHFWeights, hfStateDict, HFWeightsError } from "./hf-weights.js";
export { Tokenizer, TokenizerError, type EncodeOptions, type DecodeOptions } from "./tokenizer.js";
export { loadPretrained, loadPretrainedAsync, saveHF, openWeights, readHFConfig, SnapshotError, type Pretrained, type LoadPretrainedOptions, type SaveHFOptions } from "./snapshot.js";
export {
  hubCacheDir, parseHubId, findCached, listCachedModels, localModelFolder, HubError,
  type HubId, type CacheLookup, type CachedModel, type CachedRevision, type CachedFile,
} from "./hub-cache.js";
export { resolveModel, downloadSnapshot, HubUnreachable, type HubOptions, type SnapshotReport, type DownloadedFile, type DownloadProgress } from "./hub-download.js";
export { saveCache, loadCache } from "./cache-file.js";
export { loadLlama2c, readLlama2c, parseLlama2cHeader, llama2cFileBytes, llama2cHFConfig, findLlama2c, Llama2cError, type Llama2cHeader, type Llama2cPretrained, type LoadLlama2cOptions } from "./llama2c.js";
export { readLlama2cTokenizer, llama2cTokenizerJson, llama2cMerges, Llama2cTokenizerError, type Llama2cVocab } from "./llama2c-tokenizer.js";
