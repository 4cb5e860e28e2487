// fromPretrained: a snapshot folder loaded as TransformerLens's HookedTransformer.from_pretrained loads
// a model by default, with its weights processed (fold_ln, center_writing_weights, center_unembed,
// fold_value_biases), so numbers read off the weights (direct logit attribution, OV/QK circuits,
// per-component norms) match the TransformerLens notebooks. loadPretrained keeps the raw Hugging Face
// weights (TransformerLens's from_pretrained_no_processing, and TransformerLens 4's default).
//
// Processing leaves log-probs unchanged; logits change only by one constant per position, from
// centring the unembedding (centerUnembed: false keeps them equal). Steps the architecture does not
// allow are skipped, as TransformerLens skips them (no norms: nothing to fold; RMSNorm: writing
// weights are not centred); asking for one explicitly throws.
import type { ProcessWeightsOptions, WeightProcessingStep } from "../model/weight-processing.js";
import { processWeights } from "../model/weight-processing.js";
import { loadPretrained, type LoadPretrainedOptions, type Pretrained } from "./snapshot.js";

export interface FromPretrainedOptions extends LoadPretrainedOptions, ProcessWeightsOptions {}

export interface ProcessedPretrained extends Pretrained {
  /** The processing steps applied, in order (e.g. ["foldLn", "centerWritingWeights", "centerUnembed", "foldValueBiases"] for GPT-2). */
  processing: WeightProcessingStep[];
}

export function fromPretrained(folder: string, opts: FromPretrainedOptions = {}): ProcessedPretrained {
  const { foldLn, centerWritingWeights, centerUnembed, foldValueBiases, ...load } = opts;
  const loaded = loadPretrained(folder, load);
  const processing = processWeights(loaded.model, { foldLn, centerWritingWeights, centerUnembed, foldValueBiases });
  // Processed weights are repacked here, once, rather than on the first forward.
  loaded.model.packWeights();
  return { ...loaded, config: loaded.model.cfg, processing };
}
