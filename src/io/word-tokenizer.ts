// Tokenizers for models whose tokens are symbols rather than text (random-token labs, modular
// arithmetic): a Hugging Face WordLevel tokenizer.json whose words are split on whitespace, so the
// prompt "t5 t9 t3" is ids [5, 9, 3] and every text-prompt tool (run, serve, the techniques) works
// on such a model. A word outside the vocabulary is an error (the tokenizer has no unknown token).
import { Tokenizer } from "./tokenizer.js";

export interface WordTokenizerOptions {
  /** The BOS token's word, which must be one of `words` (e.g. "<bos>"); encodeText then puts it first by default. */
  bos?: string;
}

/** tokenizer.json for a vocabulary where words[i] is id i. */
export function wordLevelTokenizerJson(words: readonly string[], opts: WordTokenizerOptions = {}): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  words.forEach((w, i) => {
    if (w === "" || /\s/.test(w)) throw new RangeError(`wordLevelTokenizerJson: word ${i} ${JSON.stringify(w)} is empty or holds whitespace`);
    if (Object.hasOwn(vocab, w)) throw new RangeError(`wordLevelTokenizerJson: word ${JSON.stringify(w)} appears twice (ids ${vocab[w]} and ${i})`);
    vocab[w] = i;
  });
  if (opts.bos !== undefined && !Object.hasOwn(vocab, opts.bos)) throw new RangeError(`wordLevelTokenizerJson: bos ${JSON.stringify(opts.bos)} is not one of the words`);
  const special = opts.bos === undefined ? [] : [{ id: vocab[opts.bos], content: opts.bos, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }];
  return {
    version: "1.0", truncation: null, padding: null, added_tokens: special, normalizer: null,
    pre_tokenizer: { type: "WhitespaceSplit" }, post_processor: null, decoder: null,
    // No "<unk>" in the vocabulary: an unknown word yields no id, which Tokenizer.encode reports by name.
    model: { type: "WordLevel", vocab, unk_token: "<unk>" },
  };
}

/** tokenizer_config.json naming the BOS token (when there is one), as loadPretrained reads it. */
export function wordLevelTokenizerConfig(opts: WordTokenizerOptions = {}): Record<string, unknown> {
  return { tokenizer_class: "PreTrainedTokenizerFast", clean_up_tokenization_spaces: false, ...(opts.bos !== undefined ? { bos_token: opts.bos } : {}) };
}

/** The same tokenizer in memory. */
export function wordLevelTokenizer(words: readonly string[], opts: WordTokenizerOptions = {}): Tokenizer {
  return Tokenizer.fromJson(wordLevelTokenizerJson(words, opts), wordLevelTokenizerConfig(opts));
}

/** Words "t0", "t1", … for n random-token ids, plus a BOS word last when bos (the induction lab's layout). */
export function randomTokenWords(n: number, bos: boolean): string[] {
  return [...Array.from({ length: n }, (_, i) => `t${i}`), ...(bos ? ["<bos>"] : [])];
}
