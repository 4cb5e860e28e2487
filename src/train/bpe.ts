// A byte-level BPE tokenizer (GPT-2's scheme) that circuitscope trains itself: text is split with
// GPT-2's pre-tokenization regex, each piece is taken as UTF-8 bytes, and merges of adjacent symbols
// learned from a corpus (most frequent pair first) build the vocabulary up to a target size.
// It writes a standard Hugging Face tokenizer.json (BPE model with vocab + merges, ByteLevel
// pre-tokenizer and decoder), which @huggingface/tokenizers, the Python `tokenizers` and
// transformers' PreTrainedTokenizerFast load, and reads one back (GPT-2's own file included).
//
// Byte-level means every text encodes and decodes back exactly (no unknown token): ids 0..255 of a
// trained vocabulary are the bytes themselves, and merge i makes id 256 + i (unless its string is
// already a token, as Hugging Face's trainer does, when the existing id is reused).
//
// Not handled: special/added tokens (none are learned or written), lone UTF-16 surrogates (they
// are not text; TextEncoder turns them into U+FFFD, so they do not round-trip).
import fs from "node:fs";
import path from "node:path";
import { writeTokenizerFolder } from "../io/tokenizer.js";

export class BPETokenizerError extends Error {
  override name = "BPETokenizerError";
}

/**
 * GPT-2's pre-tokenization split (openai/gpt-2 src/encoder.py), character for character the one
 * @huggingface/tokenizers' ByteLevel pre-tokenizer uses, so our ids equal the library's.
 */
export const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/**
 * GPT-2's bytes_to_unicode (openai/gpt-2 src/encoder.py): printable bytes map to themselves, the
 * other 68 to U+0100 onwards, so every byte is a visible character ("Ġ" for a space).
 */
export const BYTE_TO_UNICODE: readonly string[] = (() => {
  const out: string[] = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    out[b] = String.fromCodePoint(printable ? b : 256 + n++);
  }
  return out;
})();
const UNICODE_TO_BYTE = new Map(BYTE_TO_UNICODE.map((c, b) => [c, b]));

/** The pieces GPT-2 pre-tokenization cuts text into. */
export function preTokenize(text: string): string[] {
  return text.match(GPT2_SPLIT) ?? [];
}

const utf8 = new TextEncoder();
/** Pairs of ids as one number; ids stay below 2^24, so a * 2^24 + b is exact. */
const PAIR_BASE = 2 ** 24;
const pairKey = (a: number, b: number) => a * PAIR_BASE + b;

export interface BPETrainOptions {
  /** Target vocabulary size, the 256 bytes included (e.g. 512 or 1024). */
  vocabSize: number;
  /** Stop before merging a pair seen fewer times than this (default 1: merge until vocabSize). */
  minFrequency?: number;
}

export class BPETokenizer {
  private readonly ids = new Map<string, number>();
  /** pairKey(a, b) → rank of the merge and the id it makes. */
  private readonly ranks = new Map<number, { rank: number; id: number }>();
  /** The id of each byte value. */
  private readonly byteIds = new Int32Array(256);
  private readonly cache = new Map<string, number[]>();

  /**
   * vocab[id] is the token in byte-level spelling ("Ġthe"); merges in rank order, each a pair of
   * vocabulary entries whose concatenation is also one.
   */
  constructor(readonly vocab: readonly string[], readonly merges: readonly (readonly [string, string])[]) {
    vocab.forEach((t, i) => {
      if (this.ids.has(t)) throw new BPETokenizerError(`vocab[${i}] = ${JSON.stringify(t)} appears twice`);
      for (const c of t) if (!UNICODE_TO_BYTE.has(c)) throw new BPETokenizerError(`vocab[${i}] = ${JSON.stringify(t)} is not in byte-level spelling (${JSON.stringify(c)})`);
      this.ids.set(t, i);
    });
    if (vocab.length >= PAIR_BASE) throw new BPETokenizerError(`vocabulary of ${vocab.length} tokens is too large (limit ${PAIR_BASE})`);
    BYTE_TO_UNICODE.forEach((c, b) => {
      const id = this.ids.get(c);
      if (id === undefined) throw new BPETokenizerError(`the vocabulary lacks byte 0x${b.toString(16).padStart(2, "0")} (${JSON.stringify(c)}); a byte-level vocabulary needs all 256`);
      this.byteIds[b] = id;
    });
    merges.forEach(([a, b], rank) => {
      const ia = this.ids.get(a), ib = this.ids.get(b), id = this.ids.get(a + b);
      if (ia === undefined || ib === undefined || id === undefined)
        throw new BPETokenizerError(`merge ${rank} (${JSON.stringify(a)} ${JSON.stringify(b)}): ${ia === undefined ? a : ib === undefined ? b : a + b} is not in the vocabulary`);
      if (!this.ranks.has(pairKey(ia, ib))) this.ranks.set(pairKey(ia, ib), { rank, id });
    });
  }

  /**
   * Learn merges on text to reach opts.vocabSize. Word counts first (each GPT-2 piece once, with
   * its frequency), then every merge updates only the pair counts of the words that contain the
   * merged pair, and a lazy max-heap finds the next most frequent pair: the standard trick that
   * makes a megabyte corpus take seconds. Ties go to the pair with the smaller (left id, right id).
   */
  static train(text: string, opts: BPETrainOptions): BPETokenizer {
    const { vocabSize } = opts;
    const minFrequency = opts.minFrequency ?? 1;
    if (!Number.isInteger(vocabSize) || vocabSize < 256) throw new RangeError(`BPETokenizer.train: vocabSize must be an integer >= 256 (the bytes), got ${vocabSize}`);
    if (!(minFrequency >= 1)) throw new RangeError(`BPETokenizer.train: minFrequency must be >= 1, got ${minFrequency}`);
    const vocab = [...BYTE_TO_UNICODE];
    const ids = new Map(vocab.map((t, i) => [t, i]));
    const merges: [string, string][] = [];

    const counts = new Map<string, number>();
    for (const piece of preTokenize(text)) counts.set(piece, (counts.get(piece) ?? 0) + 1);
    const words: number[][] = [], freq: number[] = [];
    for (const [piece, c] of counts) { words.push([...utf8.encode(piece)]); freq.push(c); }

    const pairCount = new Map<number, number>(), where = new Map<number, Set<number>>();
    const add = (w: number, sign: 1 | -1, changed: Set<number>) => {
      const s = words[w]!;
      for (let i = 0; i + 1 < s.length; i++) {
        const k = pairKey(s[i]!, s[i + 1]!);
        pairCount.set(k, (pairCount.get(k) ?? 0) + sign * freq[w]!);
        if (sign > 0) { let set = where.get(k); if (!set) where.set(k, set = new Set()); set.add(w); }
        changed.add(k);
      }
    };
    const heap = new PairHeap();
    const initial = new Set<number>();
    words.forEach((_, w) => add(w, 1, initial));
    for (const k of initial) heap.push(pairCount.get(k)!, k);

    while (vocab.length < vocabSize) {
      // Pop until an entry's count is current: every change re-pushed its pair, so stale ones are skipped.
      let best = -1, bestCount = 0;
      while (heap.size > 0) {
        const [c, k] = heap.pop();
        if (pairCount.get(k) === c && c > 0) { best = k; bestCount = c; break; }
      }
      if (best < 0 || bestCount < minFrequency) break;
      const a = Math.floor(best / PAIR_BASE), b = best % PAIR_BASE;
      const str = vocab[a]! + vocab[b]!;
      let z = ids.get(str);
      if (z === undefined) { z = vocab.length; vocab.push(str); ids.set(str, z); }
      merges.push([vocab[a]!, vocab[b]!]);
      const changed = new Set<number>();
      for (const w of where.get(best)!) {
        const s = words[w]!;
        add(w, -1, changed);
        // Replace every (a, b) left to right, non-overlapping ("aaa" with (a, a) → [aa, a]).
        const next: number[] = [];
        for (let i = 0; i < s.length; i++) {
          if (i + 1 < s.length && s[i] === a && s[i + 1] === b) { next.push(z); i++; } else next.push(s[i]!);
        }
        words[w] = next;
        add(w, 1, changed);
      }
      where.delete(best);
      for (const k of changed) {
        const c = pairCount.get(k)!;
        if (c > 0) heap.push(c, k);
        else { pairCount.delete(k); where.delete(k); }
      }
    }
    return new BPETokenizer(vocab, merges);
  }

  /** From a parsed Hugging Face tokenizer.json with a byte-level BPE model (ours or GPT-2's). */
  static fromHFJson(json: unknown): BPETokenizer {
    const j = json as { model?: { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[] }; pre_tokenizer?: { type?: string } } | null;
    const m = j?.model;
    if (!m || m.type !== "BPE" || !m.vocab || typeof m.vocab !== "object" || !Array.isArray(m.merges))
      throw new BPETokenizerError(`not a BPE tokenizer.json (expected model.type "BPE" with vocab and merges)`);
    if (j!.pre_tokenizer?.type !== "ByteLevel") throw new BPETokenizerError(`pre_tokenizer is ${JSON.stringify(j!.pre_tokenizer?.type ?? null)}, not "ByteLevel"; only byte-level BPE is read`);
    const vocab: string[] = [];
    for (const [t, i] of Object.entries(m.vocab)) {
      if (!Number.isInteger(i) || i < 0 || vocab[i] !== undefined) throw new BPETokenizerError(`vocab entry ${JSON.stringify(t)} has a bad or repeated id ${i}`);
      vocab[i] = t;
    }
    for (let i = 0; i < vocab.length; i++) if (vocab[i] === undefined) throw new BPETokenizerError(`vocab has no token with id ${i}`);
    const merges = m.merges.map((x, r): [string, string] => {
      const p = typeof x === "string" ? x.split(" ") : x;
      if (!Array.isArray(p) || p.length !== 2 || typeof p[0] !== "string" || typeof p[1] !== "string") throw new BPETokenizerError(`merge ${r} is malformed: ${JSON.stringify(x)}`);
      return [p[0], p[1]];
    });
    return new BPETokenizer(vocab, merges);
  }

  /** From a tokenizer.json file, or a folder holding one. */
  static load(file: string): BPETokenizer {
    const f = fs.existsSync(file) && fs.statSync(file).isDirectory() ? path.join(file, "tokenizer.json") : file;
    let json: unknown;
    try { json = JSON.parse(fs.readFileSync(f, "utf8")); } catch (e) {
      throw new BPETokenizerError(`${f}: cannot read (${(e as Error).message})`);
    }
    try { return BPETokenizer.fromHFJson(json); } catch (e) {
      throw new BPETokenizerError(`${f}: ${(e as Error).message}`);
    }
  }

  get vocabSize(): number { return this.vocab.length; }

  /** tokenizer.json content: GPT-2's pipeline (ByteLevel pre-tokenizer and decoder) with this vocabulary. */
  toHFTokenizerJson(): Record<string, unknown> {
    return {
      version: "1.0", truncation: null, padding: null, added_tokens: [], normalizer: null,
      pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
      post_processor: null,
      decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: {
        type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
        fuse_unk: false, byte_fallback: false, ignore_merges: false,
        vocab: Object.fromEntries(this.vocab.map((t, i) => [t, i])),
        // "a b" strings: the format every version of `tokenizers` reads (byte-level tokens hold no space).
        merges: this.merges.map(([a, b]) => `${a} ${b}`),
      },
    };
  }

  /** Write folder/tokenizer.json and folder/tokenizer_config.json, atomically. */
  save(folder: string): void {
    writeTokenizerFolder(folder, this.toHFTokenizerJson());
  }

  /**
   * Ids of text. Within each GPT-2 piece the lowest-rank mergeable pair is merged first, the
   * leftmost among equals, one at a time: Hugging Face's BPE exactly (its heap pops (rank, position)).
   */
  encode(text: string): Int32Array {
    const out: number[] = [];
    for (const piece of preTokenize(text)) {
      let ids = this.cache.get(piece);
      if (!ids) {
        ids = this.mergePiece(piece);
        if (this.cache.size < 100_000) this.cache.set(piece, ids);
      }
      for (const id of ids) out.push(id);
    }
    return Int32Array.from(out);
  }

  // O(length² ) per piece; GPT-2 pieces are words, so short.
  private mergePiece(piece: string): number[] {
    const s = Array.from(utf8.encode(piece), (b) => this.byteIds[b]!);
    for (;;) {
      let bestRank = Infinity, at = -1, id = -1;
      for (let i = 0; i + 1 < s.length; i++) {
        const r = this.ranks.get(pairKey(s[i]!, s[i + 1]!));
        if (r && r.rank < bestRank) { bestRank = r.rank; at = i; id = r.id; }
      }
      if (at < 0) return s;
      s.splice(at, 2, id);
    }
  }

  /** The bytes of token id. */
  tokenBytes(id: number): Uint8Array {
    const t = this.vocab[id];
    if (t === undefined) throw new RangeError(`token id ${id} is outside the vocabulary [0, ${this.vocab.length})`);
    return Uint8Array.from(t, (c) => UNICODE_TO_BYTE.get(c)!);
  }

  /** The text of ids (bytes joined, then UTF-8 decoded; an incomplete character becomes U+FFFD). */
  decode(ids: ArrayLike<number>): string {
    const parts: Uint8Array[] = [];
    let n = 0;
    for (let i = 0; i < ids.length; i++) { const b = this.tokenBytes(ids[i]!); parts.push(b); n += b.length; }
    const all = new Uint8Array(n);
    let off = 0;
    for (const p of parts) { all.set(p, off); off += p.length; }
    return new TextDecoder().decode(all);
  }
}

/** A binary max-heap of (count, pair key): larger count first, then smaller key (smaller left id, then right). */
class PairHeap {
  private readonly c: number[] = [];
  private readonly k: number[] = [];
  get size(): number { return this.c.length; }
  private above(i: number, j: number): boolean {
    return this.c[i]! > this.c[j]! || (this.c[i] === this.c[j] && this.k[i]! < this.k[j]!);
  }
  private swap(i: number, j: number): void {
    [this.c[i], this.c[j]] = [this.c[j]!, this.c[i]!];
    [this.k[i], this.k[j]] = [this.k[j]!, this.k[i]!];
  }
  push(count: number, key: number): void {
    this.c.push(count); this.k.push(key);
    for (let i = this.c.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (!this.above(i, p)) break;
      this.swap(i, p); i = p;
    }
  }
  pop(): [number, number] {
    const top: [number, number] = [this.c[0]!, this.k[0]!];
    const lastC = this.c.pop()!, lastK = this.k.pop()!;
    if (this.c.length > 0) {
      this.c[0] = lastC; this.k[0] = lastK;
      for (let i = 0; ;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < this.c.length && this.above(l, m)) m = l;
        if (r < this.c.length && this.above(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m); i = m;
      }
    }
    return top;
  }
}
