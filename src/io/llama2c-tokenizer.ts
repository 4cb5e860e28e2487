// llama2.c's tokenizer file (tokenizer.py's export, read by run.c's build_tokenizer): int32 max token
// length, then per token a float32 score, an int32 byte length and the UTF-8 bytes. Ids 0, 1, 2 are
// <unk>, BOS ("\n<s>\n") and EOS ("\n</s>\n"); ids 3..258 are the byte tokens <0x00>..<0xFF>; the rest
// are sentencepiece pieces with "▁" written as " ".
//
// llama2c's encode is a sentencepiece-style BPE: a dummy " " first, one token per character (its
// UTF-8 bytes + 3 when the character is not a token), then repeatedly the adjacent pair whose
// concatenation is the highest-scoring token is merged. A Hugging Face BPE model does the same when
// its merges are every (a, b) with a + b a token, ranked by that token's score: llama2cTokenizerJson
// writes that tokenizer.json, in Hugging Face's Llama layout ("▁" for spaces, byte fallback).
import fs from "node:fs";

export class Llama2cTokenizerError extends Error {
  override name = "Llama2cTokenizerError";
}

export interface Llama2cVocab {
  maxTokenLength: number;
  /** Token strings as llama2.c stores them (spaces as " ", BOS as "\n<s>\n"). */
  tokens: string[];
  scores: Float32Array;
}

const SPECIALS = ["<unk>", "<s>", "</s>"] as const;
const BYTE0 = 3;
const byteToken = (b: number) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;

/** Parse a llama2.c tokenizer file; vocabSize (the checkpoint's) says how many tokens to read, as run.c does. */
export function readLlama2cTokenizer(file: string, vocabSize?: number): Llama2cVocab {
  let buf: Buffer;
  try { buf = fs.readFileSync(file); } catch (e) {
    throw new Llama2cTokenizerError(`${file}: cannot read the llama2.c tokenizer (${(e as Error).message})`);
  }
  if (buf.length < 4) throw new Llama2cTokenizerError(`${file}: truncated: ${buf.length} bytes, expected at least 4 for the max token length`);
  const maxTokenLength = buf.readInt32LE(0);
  if (maxTokenLength <= 0 || maxTokenLength > 1 << 16) throw new Llama2cTokenizerError(`${file}: max token length ${maxTokenLength} is not a plausible value (expected 1..65536)`);
  const tokens: string[] = [], scores: number[] = [];
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  let o = 4;
  while (o < buf.length && (vocabSize === undefined || tokens.length < vocabSize)) {
    const id = tokens.length;
    if (o + 8 > buf.length) throw new Llama2cTokenizerError(`${file}: truncated in token ${id}: ${buf.length - o} bytes left, expected 8 for its score and length`);
    const score = buf.readFloatLE(o), len = buf.readInt32LE(o + 4);
    if (len < 0 || len > maxTokenLength) throw new Llama2cTokenizerError(`${file}: token ${id} has length ${len}, outside [0, max token length ${maxTokenLength}]`);
    if (o + 8 + len > buf.length) throw new Llama2cTokenizerError(`${file}: truncated in token ${id}: expected ${len} bytes of text, got ${buf.length - o - 8}`);
    let text: string;
    try { text = utf8.decode(buf.subarray(o + 8, o + 8 + len)); } catch {
      throw new Llama2cTokenizerError(`${file}: token ${id} is not valid UTF-8`);
    }
    tokens.push(text); scores.push(score);
    o += 8 + len;
  }
  if (vocabSize !== undefined && tokens.length < vocabSize)
    throw new Llama2cTokenizerError(`${file}: has ${tokens.length} tokens, the checkpoint's vocab_size is ${vocabSize}`);
  return { maxTokenLength, tokens, scores: Float32Array.from(scores) };
}

/** The token strings in Hugging Face's Llama spelling: specials renamed, spaces as "▁". */
function hfTokens(v: Llama2cVocab): string[] {
  const n = v.tokens.length;
  if (n < BYTE0 + 256) throw new Llama2cTokenizerError(`llama2.c tokenizer: ${n} tokens, expected at least ${BYTE0 + 256} (<unk>, BOS, EOS and 256 byte tokens)`);
  const special = [v.tokens[0]!, v.tokens[1]!.trim(), v.tokens[2]!.trim()];
  SPECIALS.forEach((s, i) => {
    if (special[i] !== s) throw new Llama2cTokenizerError(`llama2.c tokenizer: token ${i} is ${JSON.stringify(v.tokens[i])}, expected ${s} (run.c hard-codes ids 0, 1, 2)`);
  });
  for (let b = 0; b < 256; b++)
    if (v.tokens[BYTE0 + b] !== byteToken(b)) throw new Llama2cTokenizerError(`llama2.c tokenizer: token ${BYTE0 + b} is ${JSON.stringify(v.tokens[BYTE0 + b])}, expected ${byteToken(b)} (run.c's byte fallback is id = byte + 3)`);
  const out: string[] = [...SPECIALS];
  const seen = new Map<string, number>();
  for (let i = BYTE0; i < n; i++) {
    const t = v.tokens[i]!;
    if (t.includes("▁")) throw new Llama2cTokenizerError(`llama2.c tokenizer: token ${i} ${JSON.stringify(t)} contains "▁", which Hugging Face's Llama layout uses for spaces`);
    const hf = t.replaceAll(" ", "▁");
    if (seen.has(hf)) throw new Llama2cTokenizerError(`llama2.c tokenizer: tokens ${seen.get(hf)} and ${i} are both ${JSON.stringify(t)}`);
    seen.set(hf, i);
    out.push(hf);
  }
  return out;
}

/**
 * BPE merges equivalent to run.c's merge loop: (a, b) for every token t = a + b with a and b tokens,
 * ranked by t's score, highest first (ties: lower id, then shorter a). Specials never merge.
 */
export function llama2cMerges(v: Llama2cVocab): [string, string][] {
  const toks = hfTokens(v);
  const ids = new Map(toks.map((t, i) => [t, i]));
  const found: { a: string; b: string; id: number; cut: number }[] = [];
  for (let id = BYTE0; id < toks.length; id++) {
    const chars = Array.from(toks[id]!);
    for (let cut = 1; cut < chars.length; cut++) {
      const a = chars.slice(0, cut).join(""), b = chars.slice(cut).join("");
      const ia = ids.get(a), ib = ids.get(b);
      if (ia !== undefined && ib !== undefined && ia >= BYTE0 && ib >= BYTE0) found.push({ a, b, id, cut });
    }
  }
  found.sort((x, y) => v.scores[y.id]! - v.scores[x.id]! || x.id - y.id || x.cut - y.cut);
  return found.map(({ a, b }) => [a, b]);
}

/**
 * tokenizer.json and tokenizer_config.json for a llama2.c vocabulary, in the layout of Hugging Face's
 * Llama tokenizers (transformers' LlamaConverter): Prepend("▁") and Replace(" ", "▁") normalizers, a
 * byte-fallback BPE, BOS added by the post-processor. Its decoder turns "▁" back into " " and byte
 * tokens into bytes but keeps a leading space (no Strip), so one token decodes to its llama2.c piece.
 */
export function llama2cTokenizerJson(v: Llama2cVocab, modelMaxLength?: number): { tokenizerJson: Record<string, unknown>; tokenizerConfig: Record<string, unknown> } {
  const toks = hfTokens(v);
  const vocab: Record<string, number> = {};
  toks.forEach((t, i) => { vocab[t] = i; });
  const added = SPECIALS.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  const bos = { SpecialToken: { id: "<s>", type_id: 0 } };
  const tokenizerJson = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: { type: "Sequence", normalizers: [{ type: "Prepend", prepend: "▁" }, { type: "Replace", pattern: { String: " " }, content: "▁" }] },
    pre_tokenizer: null,
    post_processor: {
      type: "TemplateProcessing",
      single: [bos, { Sequence: { id: "A", type_id: 0 } }],
      pair: [bos, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "<s>", type_id: 1 } }, { Sequence: { id: "B", type_id: 1 } }],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
    },
    decoder: { type: "Sequence", decoders: [{ type: "Replace", pattern: { String: "▁" }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" }] },
    model: {
      type: "BPE", dropout: null, unk_token: "<unk>", continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges: llama2cMerges(v),
    },
  };
  const tokenizerConfig: Record<string, unknown> = {
    tokenizer_class: "PreTrainedTokenizerFast", bos_token: "<s>", eos_token: "</s>", unk_token: "<unk>",
    add_bos_token: true, add_eos_token: false, clean_up_tokenization_spaces: false,
  };
  if (modelMaxLength !== undefined) tokenizerConfig.model_max_length = modelMaxLength;
  return { tokenizerJson, tokenizerConfig };
}
