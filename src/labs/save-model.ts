// A lab's trained model as a snapshot folder (saveHF: a Hugging Face layout where one fits, else
// circuitscope's), with a tokenizer.json for the lab's tokens, so loadPretrained, `circuitscope run`,
// `serve` and every technique open it. Symbol vocabularies (random tokens "t0" "t1" …, residues)
// get a WordLevel tokenizer whose words are separated by spaces; character vocabularies get the char
// tokenizer's own tokenizer.json.
import { saveHF, type SnapshotLayout } from "../io/snapshot.js";
import { writeTokenizerFolder } from "../io/tokenizer.js";
import { wordLevelTokenizerConfig, wordLevelTokenizerJson, type WordTokenizerOptions } from "../io/word-tokenizer.js";
import type { HookedTransformer } from "../model/transformer.js";
import { noGrad } from "../tensor/autodiff.js";
import type { CharTokenizer } from "../train/char-tokenizer.js";

export type LabTokens = { words: readonly string[]; bos?: string } | { chars: CharTokenizer };

/** Write model and its tokenizer to dir; returns the weight layout saveHF chose. */
export function saveLabModel(model: HookedTransformer, dir: string, tokens: LabTokens): SnapshotLayout {
  const V = model.cfg.d_vocab;
  const n = "words" in tokens ? tokens.words.length : tokens.chars.vocabSize;
  if (n !== V) throw new RangeError(`saveLabModel: the tokenizer has ${n} tokens, the model's d_vocab is ${V}`);
  const layout = noGrad(() => saveHF(model, dir));
  if ("words" in tokens) {
    const o: WordTokenizerOptions = tokens.bos === undefined ? {} : { bos: tokens.bos };
    writeTokenizerFolder(dir, wordLevelTokenizerJson(tokens.words, o), wordLevelTokenizerConfig(o));
  } else writeTokenizerFolder(dir, tokens.chars.toHFTokenizerJson());
  return layout;
}
