// The training layer's public surface: token data (char tokenizer, token files, batch sampler) and
// the trainer (AdamW + schedule + clipping, evaluation, metrics, atomic checkpoints, exact resume).
export { CharTokenizer, CharTokenizerError, type CharTokenizerJson } from "./char-tokenizer.js";
export {
  writeTokenFile, TokenFile, TokenDataError, prepareCorpus, BatchSampler,
  TOKEN_MAGIC, TOKEN_VERSION, TOKEN_HEADER_BYTES, READ_WHOLE_BYTES,
  type TokenDType, type TokenDataErrorCode, type CorpusTokenizer, type PreparedData, type PrepareOptions, type SamplerState,
} from "./data.js";
export {
  train, lmObjective, defaultTrainConfig, readCheckpointState, readMetrics, writeCurve, CheckpointError, CHECKPOINT_FILE,
  type Trainable, type TrainConfig, type TrainOptions, type TrainResult, type Progress, type MetricsRecord,
} from "./trainer.js";
export { BPETokenizer, BPETokenizerError, preTokenize, GPT2_SPLIT, BYTE_TO_UNICODE, type BPETrainOptions } from "./bpe.js";
