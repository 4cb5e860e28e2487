// Tokenizers from Hugging Face snapshot files: tokenizer.json (the `tokenizers` library's full
// pipeline: normalizer, pre-tokenizer, BPE/WordPiece/Unigram model, post-processor, decoder), plus
// tokenizer_config.json / special_tokens_map.json for the bos/eos/pad tokens. The work is done by
// @huggingface/tokenizers (Hugging Face's pure-JS port, the one transformers.js uses); this class
// only gives it circuitscope's names and resolves the special tokens.
//
// It does not read the legacy vocab.json + merges.txt pair alone, nor sentencepiece .model files.
import fs from "node:fs";
import path from "node:path";
import { Tokenizer as HFTokenizer } from "@huggingface/tokenizers";
import { writeFileAtomic } from "./safetensors.js";

export class TokenizerError extends Error {
  override name = "TokenizerError";
}

export interface EncodeOptions {
  /** Add the post-processor's special tokens (e.g. Llama's BOS). Default true, as Hugging Face's tokenizer(text). GPT-2 adds none. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (<|endoftext|>, <s>, …) from the text. Default false. */
  skipSpecialTokens?: boolean;
}

type Json = Record<string, unknown>;

function readJson(file: string): Json {
  let v: unknown;
  try { v = JSON.parse(fs.readFileSync(file, "utf8")); } catch (e) {
    throw new TokenizerError(`${file}: cannot read tokenizer JSON (${(e as Error).message})`);
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new TokenizerError(`${file}: expected a JSON object`);
  return v as Json;
}

/** A special token in tokenizer_config.json / special_tokens_map.json: a string or { content: string }. */
function tokenText(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as { content?: unknown }).content === "string") return (v as { content: string }).content;
  return null;
}

export class Tokenizer {
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
  readonly padTokenId: number | null;
  /** Number of ids, added tokens included (len(tokenizer) in transformers). */
  readonly vocabSize: number;

  private constructor(private readonly tok: HFTokenizer, config: Json, specialMap: Json) {
    const id = (key: string): number | null => {
      const text = tokenText(config[key]) ?? tokenText(specialMap[key]);
      if (text === null) return null;
      const i = tok.token_to_id(text);
      if (i === undefined) throw new TokenizerError(`${key} "${text}" is not in the vocabulary`);
      return i;
    };
    this.bosTokenId = id("bos_token");
    this.eosTokenId = id("eos_token");
    this.padTokenId = id("pad_token");
    this.vocabSize = tok.get_vocab(true).size;
  }

  /**
   * The tokenizer of a snapshot folder, or null if it has no tokenizer.json. tokenizer_config.json
   * and special_tokens_map.json are read when present.
   */
  static fromFolder(folder: string): Tokenizer | null {
    const file = path.join(folder, "tokenizer.json");
    if (!fs.existsSync(file)) return null;
    const opt = (name: string): Json => (fs.existsSync(path.join(folder, name)) ? readJson(path.join(folder, name)) : {});
    return Tokenizer.fromJson(readJson(file), opt("tokenizer_config.json"), opt("special_tokens_map.json"));
  }

  /** From already-parsed tokenizer.json (and optionally tokenizer_config.json, special_tokens_map.json). */
  static fromJson(tokenizerJson: Json, tokenizerConfig: Json = {}, specialTokensMap: Json = {}): Tokenizer {
    let tok: HFTokenizer;
    // Without the key, decode would "clean up" spaces (" ," → ","), so texts would not round-trip;
    // transformers has defaulted it to false since v4.45, and so do we.
    const config = { ...tokenizerConfig, clean_up_tokenization_spaces: tokenizerConfig.clean_up_tokenization_spaces ?? false };
    try { tok = new HFTokenizer(tokenizerJson, config); } catch (e) {
      throw new TokenizerError(`cannot build the tokenizer from tokenizer.json: ${(e as Error).message}`);
    }
    return new Tokenizer(tok, tokenizerConfig, specialTokensMap);
  }

  /** Token ids of text ("The Eiffel Tower is in" → [464, 412, 733, 417, 8765, 318, 287] with GPT-2's). */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    const { ids, tokens }: { ids: number[]; tokens: string[] } = this.tok.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true });
    // A model without an unk_token yields no id for an unknown piece; say which instead of returning undefined.
    const bad = ids.findIndex((i: number) => !Number.isInteger(i));
    if (bad >= 0) throw new TokenizerError(`encode: no id for "${tokens[bad]}" (not in the vocabulary, and the tokenizer has no unk_token)`);
    return ids;
  }

  /** The token strings text splits into, in the vocabulary's spelling (GPT-2: "ĠTower"). */
  tokenize(text: string, opts: EncodeOptions = {}): string[] {
    return this.tok.tokenize(text, { add_special_tokens: opts.addSpecialTokens ?? true });
  }

  decode(ids: readonly number[] | Int32Array, opts: DecodeOptions = {}): string {
    for (const i of ids) if (!Number.isInteger(i) || i < 0 || i >= this.vocabSize) throw new RangeError(`decode: token id ${i} is outside the vocabulary [0, ${this.vocabSize})`);
    if (ids.length === 0) return ""; // the library throws on an empty list
    return this.tok.decode(Array.from(ids), { skip_special_tokens: opts.skipSpecialTokens ?? false });
  }

  /** The vocabulary entry of an id ("ĠTower"), or undefined outside the vocabulary. */
  idToToken(id: number): string | undefined {
    return this.tok.id_to_token(id);
  }

  /** The id of a vocabulary entry, or undefined if it is not one. */
  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }
}

/** tokenizer_config.json for a tokenizer.json with no special tokens: a plain fast tokenizer that decodes text as it was. */
export const PLAIN_TOKENIZER_CONFIG = { tokenizer_class: "PreTrainedTokenizerFast", clean_up_tokenization_spaces: false } as const;

/** Write folder/tokenizer.json and folder/tokenizer_config.json (atomically each), the files transformers and loadPretrained read. */
export function writeTokenizerFolder(folder: string, tokenizerJson: Record<string, unknown>, tokenizerConfig: Record<string, unknown> = PLAIN_TOKENIZER_CONFIG): void {
  fs.mkdirSync(folder, { recursive: true });
  const write = (name: string, v: unknown) => writeFileAtomic(path.join(folder, name), (fd) => fs.writeFileSync(fd, JSON.stringify(v) + "\n"));
  write("tokenizer.json", tokenizerJson);
  write("tokenizer_config.json", tokenizerConfig);
}
