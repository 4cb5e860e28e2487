// A character-level tokenizer: the vocabulary is the sorted set of Unicode code points of a corpus
// (as nanoGPT's shakespeare_char prepare.py builds it), one id per character. Saved as a small JSON
// file ({ type: "char", version: 1, vocab: [...] }) next to the token files and the trained model.
//
// Not a general tokenizer: no special tokens, no unknown token (encoding an unseen character throws).
import fs from "node:fs";
import { writeFileAtomic } from "../io/safetensors.js";

export class CharTokenizerError extends Error {
  override name = "CharTokenizerError";
}

export interface CharTokenizerJson {
  type: "char";
  version: 1;
  /** vocab[id] is the character (one code point) with that id, sorted by code point. */
  vocab: string[];
}

export class CharTokenizer {
  private readonly ids = new Map<string, number>();

  constructor(readonly vocab: readonly string[]) {
    vocab.forEach((c, i) => {
      if ([...c].length !== 1) throw new CharTokenizerError(`vocab[${i}] = ${JSON.stringify(c)} is not a single character`);
      if (this.ids.has(c)) throw new CharTokenizerError(`vocab[${i}] = ${JSON.stringify(c)} appears twice`);
      this.ids.set(c, i);
    });
  }

  /** The vocabulary of every distinct character in text, by code point. */
  static fromText(text: string): CharTokenizer {
    const set = new Set<string>();
    for (const c of text) set.add(c);
    return new CharTokenizer([...set].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!));
  }

  static fromJson(json: unknown): CharTokenizer {
    const j = json as Partial<CharTokenizerJson> | null;
    if (!j || typeof j !== "object" || j.type !== "char" || j.version !== 1 || !Array.isArray(j.vocab) || j.vocab.some((c) => typeof c !== "string"))
      throw new CharTokenizerError(`not a char tokenizer file (expected { "type": "char", "version": 1, "vocab": [strings] })`);
    return new CharTokenizer(j.vocab);
  }

  static load(file: string): CharTokenizer {
    let json: unknown;
    try { json = JSON.parse(fs.readFileSync(file, "utf8")); } catch (e) {
      throw new CharTokenizerError(`${file}: cannot read (${(e as Error).message})`);
    }
    try { return CharTokenizer.fromJson(json); } catch (e) {
      throw new CharTokenizerError(`${file}: ${(e as Error).message}`);
    }
  }

  get vocabSize(): number { return this.vocab.length; }

  toJson(): CharTokenizerJson { return { type: "char", version: 1, vocab: [...this.vocab] }; }

  /**
   * The same tokenizer as a Hugging Face tokenizer.json (a WordLevel model over the characters, a
   * pre-tokenizer that isolates every character, a Fuse decoder that joins them back), so a trained
   * char model's snapshot folder opens with loadPretrained and `circuitscope run` like any other.
   * No unk_token: an unknown character is an error there too.
   */
  toHFTokenizerJson(): Record<string, unknown> {
    return {
      version: "1.0", truncation: null, padding: null, added_tokens: [], normalizer: null,
      pre_tokenizer: { type: "Split", pattern: { Regex: "[\\s\\S]" }, behavior: "Isolated", invert: false },
      post_processor: null,
      decoder: { type: "Fuse" },
      model: { type: "WordLevel", vocab: Object.fromEntries(this.vocab.map((c, i) => [c, i])) },
    };
  }

  save(file: string): void {
    writeFileAtomic(file, (fd) => fs.writeFileSync(fd, JSON.stringify(this.toJson()) + "\n"));
  }

  encode(text: string): Int32Array {
    const out = new Int32Array(text.length); // code units ≥ code points, trimmed below
    let n = 0;
    for (const c of text) {
      const id = this.ids.get(c);
      if (id === undefined) throw new CharTokenizerError(`encode: character ${JSON.stringify(c)} (U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}) is not in the vocabulary`);
      out[n++] = id;
    }
    return out.slice(0, n);
  }

  decode(ids: ArrayLike<number>): string {
    let s = "";
    for (let i = 0; i < ids.length; i++) {
      const c = this.vocab[ids[i]!];
      if (c === undefined) throw new RangeError(`decode: token id ${ids[i]} is outside the vocabulary [0, ${this.vocab.length})`);
      s += c;
    }
    return s;
  }
}
