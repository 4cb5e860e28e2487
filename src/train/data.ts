// Token data for training: a corpus is tokenised once into compact token files, which training then
// reads in windows. Like nanoGPT's train.bin/val.bin, but with a header so a wrong or truncated file
// is an error rather than garbage:
//
//   offset 0   4 bytes  magic "CSTK"
//          4   u32 LE   version (1)
//          8   u32 LE   dtype: 1 = uint16, 2 = int32
//         12   u32 LE   vocabulary size (every id is below it)
//         16   u64 LE   token count n
//         24   n ids    little-endian, 2 or 4 bytes each
//
// Files are written atomically (temporary file, then rename). Small files are read whole; larger
// ones stay on disk and each window is read with fs.readSync at its offset.
// The batch sampler draws random windows with a seeded Rng whose whole state is (seed, draws), so a
// checkpoint can record it and a resumed run draws the same batches an uninterrupted one would.
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { writeFileAtomic } from "../io/safetensors.js";
import { Tokenizer } from "../io/tokenizer.js";
import { Rng } from "../tensor/rng.js";
import { Tensor } from "../tensor/tensor.js";
import { CharTokenizer } from "./char-tokenizer.js";

export const TOKEN_MAGIC = "CSTK";
export const TOKEN_VERSION = 1;
export const TOKEN_HEADER_BYTES = 24;
export type TokenDType = "uint16" | "int32";
const DTYPE_CODE: Record<TokenDType, number> = { uint16: 1, int32: 2 };
const DTYPE_BYTES: Record<TokenDType, number> = { uint16: 2, int32: 4 };
/** Files up to this size are read into memory whole; larger ones are read window by window. */
export const READ_WHOLE_BYTES = 64 * 1024 * 1024;

export type TokenDataErrorCode = "bad_magic" | "bad_version" | "bad_dtype" | "truncated" | "size_mismatch" | "id_out_of_range" | "too_short";

export class TokenDataError extends Error {
  override name = "TokenDataError";
  constructor(readonly code: TokenDataErrorCode, readonly file: string, detail: string) {
    super(`${file}: ${detail}`);
  }
}

/** Write ids as a token file (uint16 when vocabSize ≤ 65536, else int32), atomically. */
export function writeTokenFile(file: string, ids: ArrayLike<number>, vocabSize: number): void {
  if (!Number.isInteger(vocabSize) || vocabSize < 1) throw new RangeError(`writeTokenFile: vocabSize must be a positive integer, got ${vocabSize}`);
  const dtype: TokenDType = vocabSize <= 65536 ? "uint16" : "int32";
  const n = ids.length;
  const body = dtype === "uint16" ? new Uint16Array(n) : new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = ids[i]!;
    if (!Number.isInteger(v) || v < 0 || v >= vocabSize) throw new RangeError(`writeTokenFile: id ${v} at ${i} is outside the vocabulary [0, ${vocabSize})`);
    body[i] = v;
  }
  const header = Buffer.alloc(TOKEN_HEADER_BYTES);
  header.write(TOKEN_MAGIC, 0, "latin1");
  header.writeUInt32LE(TOKEN_VERSION, 4);
  header.writeUInt32LE(DTYPE_CODE[dtype], 8);
  header.writeUInt32LE(vocabSize, 12);
  header.writeBigUInt64LE(BigInt(n), 16);
  // Typed arrays are host-endian; every platform Node supports for this (x64, arm64) is little-endian.
  const bytes = new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  writeFileAtomic(file, (fd) => { fs.writeSync(fd, header); writeAll(fd, bytes); });
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let off = 0; off < bytes.length;) off += fs.writeSync(fd, bytes, off, bytes.length - off);
}

/** A token file opened for reading: its header checked, its ids read whole or on demand. */
export class TokenFile {
  private fd: number | null = null;
  private whole: Uint16Array | Int32Array | null = null;

  private constructor(readonly file: string, readonly dtype: TokenDType, readonly vocabSize: number, readonly length: number, opts: { readWholeBytes: number }) {
    const bytes = length * DTYPE_BYTES[dtype];
    if (bytes <= opts.readWholeBytes) {
      const buf = fs.readFileSync(file);
      const copy = new Uint8Array(bytes);
      copy.set(buf.subarray(TOKEN_HEADER_BYTES, TOKEN_HEADER_BYTES + bytes));
      this.whole = dtype === "uint16" ? new Uint16Array(copy.buffer) : new Int32Array(copy.buffer);
    } else this.fd = fs.openSync(file, "r");
  }

  /** Open and validate a token file. readWholeBytes (default 64 MiB) decides when to keep it on disk. */
  static open(file: string, opts: { readWholeBytes?: number } = {}): TokenFile {
    const fd = fs.openSync(file, "r");
    let dtype: TokenDType, vocab: number, count: number;
    try {
      const size = fs.fstatSync(fd).size;
      if (size < TOKEN_HEADER_BYTES) throw new TokenDataError("truncated", file, `${size} bytes, shorter than the ${TOKEN_HEADER_BYTES}-byte token-file header`);
      const h = Buffer.alloc(TOKEN_HEADER_BYTES);
      fs.readSync(fd, h, 0, TOKEN_HEADER_BYTES, 0);
      const magic = h.toString("latin1", 0, 4);
      if (magic !== TOKEN_MAGIC) throw new TokenDataError("bad_magic", file, `not a circuitscope token file (magic ${JSON.stringify(magic)}, expected "${TOKEN_MAGIC}")`);
      const version = h.readUInt32LE(4);
      if (version !== TOKEN_VERSION) throw new TokenDataError("bad_version", file, `token-file version ${version}; this build reads version ${TOKEN_VERSION}`);
      const code = h.readUInt32LE(8);
      const found = (Object.keys(DTYPE_CODE) as TokenDType[]).find((d) => DTYPE_CODE[d] === code);
      if (!found) throw new TokenDataError("bad_dtype", file, `unknown dtype code ${code} (1 = uint16, 2 = int32)`);
      dtype = found;
      vocab = h.readUInt32LE(12);
      const n = h.readBigUInt64LE(16);
      const expected = BigInt(TOKEN_HEADER_BYTES) + n * BigInt(DTYPE_BYTES[dtype]);
      if (BigInt(size) !== expected)
        throw new TokenDataError(BigInt(size) < expected ? "truncated" : "size_mismatch", file, `header says ${n} ${dtype} tokens (${expected} bytes) but the file has ${size} bytes`);
      count = Number(n);
    } finally {
      fs.closeSync(fd);
    }
    return new TokenFile(file, dtype, vocab, count, { readWholeBytes: opts.readWholeBytes ?? READ_WHOLE_BYTES });
  }

  /** True when the ids are held in memory (small file). */
  get inMemory(): boolean { return this.whole !== null; }

  /** ids[start, start + len) into out (or a new Int32Array). Ids are checked against the vocabulary. */
  read(start: number, len: number, out: Int32Array = new Int32Array(len), outOffset = 0): Int32Array {
    if (!Number.isInteger(start) || !Number.isInteger(len) || start < 0 || len < 0 || start + len > this.length)
      throw new RangeError(`TokenFile.read: window [${start}, ${start + len}) is outside [0, ${this.length}) of ${this.file}`);
    let src: Uint16Array | Int32Array;
    if (this.whole) src = this.whole.subarray(start, start + len);
    else {
      if (this.fd === null) throw new Error(`TokenFile.read: ${this.file} is closed`);
      const b = DTYPE_BYTES[this.dtype];
      const bytes = new Uint8Array(len * b);
      let got = 0;
      while (got < bytes.length) {
        const r = fs.readSync(this.fd, bytes, got, bytes.length - got, TOKEN_HEADER_BYTES + start * b + got);
        if (r === 0) throw new TokenDataError("truncated", this.file, `ended while reading tokens [${start}, ${start + len})`);
        got += r;
      }
      src = this.dtype === "uint16" ? new Uint16Array(bytes.buffer) : new Int32Array(bytes.buffer);
    }
    for (let i = 0; i < len; i++) {
      const v = src[i]!;
      if (v < 0 || v >= this.vocabSize) throw new TokenDataError("id_out_of_range", this.file, `token ${start + i} is ${v}, outside the vocabulary [0, ${this.vocabSize})`);
      out[outOffset + i] = v;
    }
    return out;
  }

  close(): void {
    if (this.fd !== null) { fs.closeSync(this.fd); this.fd = null; }
    this.whole = null;
  }
}

/** A tokenizer the corpus step can use: the char tokenizer, or a Hugging Face one (BPE etc.). */
export type CorpusTokenizer = { kind: "char"; tokenizer: CharTokenizer } | { kind: "hf"; tokenizer: Tokenizer; folder: string };

export interface PreparedData {
  trainFile: string;
  valFile: string;
  trainTokens: number;
  valTokens: number;
  /** Characters (code points) of the text the validation tokens decode to: loss/char = loss/token × valTokens / valChars. */
  valChars: number;
  vocabSize: number;
  tokenizer: CorpusTokenizer;
}

export interface PrepareOptions {
  /** Fraction of the tokens, from the end, held out for validation (nanoGPT: 0.1). */
  valFraction?: number;
  /** A Hugging Face snapshot folder whose tokenizer.json to use instead of a char vocabulary. */
  hfTokenizerFolder?: string;
}

/** What a set of token files was made from; prepareCorpus reuses the files only when this matches. */
interface TokensManifest {
  version: 1;
  corpus: string; // absolute path
  corpusBytes: number;
  corpusMtimeMs: number;
  valFraction: number;
  tokenizer: "char" | { hf: string; sha256: string }; // the hash: a retrained tokenizer in the same folder is a new one
  vocabSize: number;
  trainTokens: number;
  valTokens: number;
  valChars: number;
}

/**
 * Tokenise corpusFile once into outDir/train.bin and outDir/val.bin (the last valFraction of the
 * tokens, as nanoGPT), saving outDir/char_tokenizer.json for a char vocabulary and outDir/tokens.json
 * describing what was tokenised. When tokens.json matches this corpus (path, size, mtime), split and
 * tokenizer, and both token files are valid, they are reused (a resumed run does not re-tokenise).
 * The whole corpus is read into memory once here; training then reads only the token files.
 */
export function prepareCorpus(corpusFile: string, outDir: string, opts: PrepareOptions = {}): PreparedData {
  const valFraction = opts.valFraction ?? 0.1;
  if (!(valFraction > 0 && valFraction < 1)) throw new RangeError(`prepareCorpus: valFraction must be in (0, 1), got ${valFraction}`);
  fs.mkdirSync(outDir, { recursive: true });
  const trainFile = path.join(outDir, "train.bin"), valFile = path.join(outDir, "val.bin");
  const charFile = path.join(outDir, "char_tokenizer.json"), manifestFile = path.join(outDir, "tokens.json");
  const stat = fs.statSync(corpusFile);
  if (opts.hfTokenizerFolder && !fs.existsSync(path.join(opts.hfTokenizerFolder, "tokenizer.json")))
    throw new Error(`${opts.hfTokenizerFolder}: no tokenizer.json (needed to tokenise with a Hugging Face tokenizer)`);
  const want = {
    version: 1 as const, corpus: path.resolve(corpusFile), corpusBytes: stat.size, corpusMtimeMs: stat.mtimeMs, valFraction,
    tokenizer: opts.hfTokenizerFolder
      ? { hf: path.resolve(opts.hfTokenizerFolder), sha256: createHash("sha256").update(fs.readFileSync(path.join(opts.hfTokenizerFolder, "tokenizer.json"))).digest("hex") }
      : ("char" as const),
  };
  const hf = opts.hfTokenizerFolder ? Tokenizer.fromFolder(opts.hfTokenizerFolder) : null;
  const old = readManifest(manifestFile);
  if (old && JSON.stringify({ ...old, vocabSize: 0, trainTokens: 0, valTokens: 0, valChars: 0 }) === JSON.stringify({ ...want, vocabSize: 0, trainTokens: 0, valTokens: 0, valChars: 0 })
    && (hf || fs.existsSync(charFile)) && validFiles(trainFile, valFile, old)) {
    const tokenizer: CorpusTokenizer = hf ? { kind: "hf", tokenizer: hf, folder: opts.hfTokenizerFolder! } : { kind: "char", tokenizer: CharTokenizer.load(charFile) };
    return { trainFile, valFile, trainTokens: old.trainTokens, valTokens: old.valTokens, valChars: old.valChars, vocabSize: old.vocabSize, tokenizer };
  }
  // Invalidate first, so a crash part-way never leaves a manifest describing half-new files.
  fs.rmSync(manifestFile, { force: true });
  const text = fs.readFileSync(corpusFile, "utf8");
  const tokenizer: CorpusTokenizer = hf ? { kind: "hf", tokenizer: hf, folder: opts.hfTokenizerFolder! } : { kind: "char", tokenizer: CharTokenizer.fromText(text) };
  const vocabSize = tokenizer.tokenizer.vocabSize;
  const ids = tokenizer.kind === "char" ? tokenizer.tokenizer.encode(text) : Int32Array.from(tokenizer.tokenizer.encode(text, { addSpecialTokens: false }));
  const nTrain = Math.floor(ids.length * (1 - valFraction));
  if (nTrain < 1 || ids.length - nTrain < 1) throw new TokenDataError("too_short", corpusFile, `${ids.length} tokens cannot be split into train and validation (valFraction ${valFraction})`);
  writeTokenFile(trainFile, ids.subarray(0, nTrain), vocabSize);
  writeTokenFile(valFile, ids.subarray(nTrain), vocabSize);
  if (tokenizer.kind === "char") tokenizer.tokenizer.save(charFile);
  const valChars = tokenizer.kind === "char" ? ids.length - nTrain : [...tokenizer.tokenizer.decode(ids.subarray(nTrain))].length;
  const manifest: TokensManifest = { ...want, vocabSize, trainTokens: nTrain, valTokens: ids.length - nTrain, valChars };
  // Written last: its presence marks the token files as complete.
  writeFileAtomic(manifestFile, (fd) => fs.writeFileSync(fd, JSON.stringify(manifest, null, 2) + "\n"));
  return { trainFile, valFile, trainTokens: nTrain, valTokens: ids.length - nTrain, valChars, vocabSize, tokenizer };
}

function readManifest(file: string): TokensManifest | null {
  try { return JSON.parse(fs.readFileSync(file, "utf8")) as TokensManifest; } catch { return null; }
}

function validFiles(trainFile: string, valFile: string, m: TokensManifest): boolean {
  try {
    const a = TokenFile.open(trainFile, { readWholeBytes: 0 }), b = TokenFile.open(valFile, { readWholeBytes: 0 });
    a.close(); b.close();
    return a.vocabSize === m.vocabSize && b.vocabSize === m.vocabSize && a.length === m.trainTokens && b.length === m.valTokens;
  } catch {
    return false; // a malformed leftover is simply rewritten
  }
}

/** The sampler's whole state: the seed and how many windows it has drawn. */
export interface SamplerState { seed: number; draws: number }

/**
 * Random [batch, ctx + 1] windows of a token file (inputs are columns 0..ctx-1, targets 1..ctx),
 * each starting uniformly in [0, length − ctx − 1], as nanoGPT's get_batch.
 */
export class BatchSampler {
  private rng: Rng;
  private draws = 0;

  constructor(readonly data: TokenFile, readonly batch: number, readonly ctx: number, private readonly seed: number) {
    if (!Number.isInteger(batch) || batch < 1 || !Number.isInteger(ctx) || ctx < 1) throw new RangeError(`BatchSampler: batch and ctx must be positive integers, got ${batch}, ${ctx}`);
    if (data.length < ctx + 1) throw new TokenDataError("too_short", data.file, `${data.length} tokens, fewer than ctx + 1 = ${ctx + 1}`);
    this.rng = new Rng(seed);
  }

  state(): SamplerState { return { seed: this.seed, draws: this.draws }; }

  /** Return to a state from state(): reseed and replay the draws (cheap: one Rng call per window). */
  setState(s: SamplerState): void {
    if (s.seed !== this.seed) throw new Error(`BatchSampler.setState: state has seed ${s.seed}, this sampler ${this.seed}`);
    if (!Number.isInteger(s.draws) || s.draws < 0) throw new RangeError(`BatchSampler.setState: draws must be a non-negative integer, got ${s.draws}`);
    this.rng = new Rng(this.seed);
    const hi = this.data.length - this.ctx;
    for (let i = 0; i < s.draws; i++) this.rng.int(0, hi);
    this.draws = s.draws;
  }

  /** The next batch's windows, row-major [batch, ctx + 1]. */
  nextWindows(): Int32Array {
    const w = this.ctx + 1, out = new Int32Array(this.batch * w);
    const hi = this.data.length - this.ctx; // starts in [0, length − ctx − 1]
    for (let b = 0; b < this.batch; b++) {
      this.data.read(this.rng.int(0, hi), w, out, b * w);
      this.draws++;
    }
    return out;
  }

  /** The next batch as an int32 tensor [batch, ctx + 1]. */
  next(): Tensor {
    return new Tensor(this.nextWindows(), [this.batch, this.ctx + 1]);
  }
}
