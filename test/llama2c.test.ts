// llama2.c checkpoints and tokenizers. The references here are written from llama2.c's run.c and share
// no code with src/: a float64 forward pass (RMSNorm eps 1e-5, RoPE on adjacent pairs (2i, 2i+1),
// grouped-query attention, SwiGLU) reading the raw file, and run.c's encode (dummy " " prefix, one
// token per character with byte fallback, highest-score pair merged first) and decode. Checked: header
// parsing and its errors on small fake files; loaded logits = the reference's on a random GQA model
// with a separate classifier and on the real stories260K; greedy generation on stories260K = the text
// llama2.c's test_all.py publishes; the tokenizer.json = run.c's encode/decode on a corpus; and
// `circuitscope convert` writes a snapshot that reloads with the direct load's logits and tokenizer.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Rng } from "../src/tensor/rng.js";
import { noGrad } from "../src/tensor/autodiff.js";
import { generate } from "../src/model/generate.js";
import type { HookedTransformer } from "../src/model/transformer.js";
import { loadPretrained, Tokenizer } from "../src/io/index.js";
import { Llama2cError, loadLlama2c, parseLlama2cHeader, llama2cFileBytes, findLlama2c } from "../src/io/llama2c.js";
import { Llama2cTokenizerError, readLlama2cTokenizer } from "../src/io/llama2c-tokenizer.js";
import { cli } from "./cli-helpers.js";

const SHARED = fileURLToPath(new URL("../../../shared/", import.meta.url));
const STORIES = path.join(SHARED, "models/stories260K");
const BIN = path.join(STORIES, "stories260K.bin"), TOK = path.join(STORIES, "tok512.bin");
const noStories: string | false = fs.existsSync(BIN) && fs.existsSync(TOK) ? false : `no stories260K at ${STORIES}`;
const tmpDirs: string[] = [];
const tmp = (): string => { const d = fs.mkdtempSync(path.join(os.tmpdir(), "cs-llama2c-")); tmpDirs.push(d); return d; };
after(() => { for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true }); });

// llama2.c's test_all.py, expected_stdout: `./run stories260K.bin -z tok512.bin -t 0.0 -n 200` (no prompt,
// so 200 greedy steps from BOS), with run.c's final "\n" stripped.
const EXPECTED = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\nLily\'s mom said, "Lily, let\'s go to the park." Lily was sad and didn\'t know what to do. She said, "I want to play with your ball, but I can\'t find it."\nLily was sad and didn\'t know what to do. She said, "I\'m sorry, Lily. I didn\'t know what to do."\nLily didn\'t want to help her mom, so she';

// ---------------------------------------------------------------- reference: run.c's checkpoint and forward

interface RawModel {
  dim: number; hidden: number; layers: number; heads: number; kvHeads: number; vocab: number; seqLen: number; shared: boolean;
  w: Record<string, Float32Array>;
}

/** run.c's memory_map_weights, on a copy of the file. */
function readRaw(file: string): RawModel {
  const buf = fs.readFileSync(file);
  const hdr = new Int32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + 28));
  const [dim, hidden, layers, heads, kvHeads, v, seqLen] = Array.from(hdr) as [number, number, number, number, number, number, number];
  const f = new Float32Array(buf.buffer.slice(buf.byteOffset + 28, buf.byteOffset + buf.length));
  const hs = dim / heads, kv = kvHeads * hs, vocab = Math.abs(v);
  const w: Record<string, Float32Array> = {};
  let o = 0;
  const take = (name: string, n: number) => { w[name] = f.subarray(o, o + n); o += n; };
  take("emb", vocab * dim); take("rms_att", layers * dim); take("wq", layers * dim * dim); take("wk", layers * dim * kv); take("wv", layers * dim * kv);
  take("wo", layers * dim * dim); take("rms_ffn", layers * dim); take("w1", layers * dim * hidden); take("w2", layers * hidden * dim); take("w3", layers * hidden * dim);
  take("rms_final", dim); o += seqLen * hs; // freq_cis_real, freq_cis_imag
  w.wcls = v > 0 ? w.emb! : f.subarray(o, o + vocab * dim);
  return { dim, hidden, layers, heads, kvHeads, vocab, seqLen, shared: v > 0, w };
}

/** xout[i] = Σ_j W[off + i·n + j] x[j] (run.c's matmul with W [d, n]). */
function matmul(x: Float64Array, W: Float32Array, off: number, n: number, d: number): Float64Array {
  const out = new Float64Array(d);
  for (let i = 0; i < d; i++) { let s = 0; for (let j = 0; j < n; j++) s += W[off + i * n + j]! * x[j]!; out[i] = s; }
  return out;
}
function rmsnorm(x: Float64Array, w: Float32Array, off: number): Float64Array {
  let ss = 0; for (const v of x) ss += v * v;
  const r = 1 / Math.sqrt(ss / x.length + 1e-5);
  return x.map((v, i) => v * r * w[off + i]!);
}

/** Logits [T][vocab] for ids, run.c's forward token by token with its KV cache, in float64. */
function referenceLogits(m: RawModel, ids: readonly number[]): Float64Array[] {
  const { dim: D, hidden: F, layers: L, heads: H, kvHeads: Hkv, vocab: V } = m, hs = D / H, kvDim = Hkv * hs, kvMul = H / Hkv;
  const kc: Float64Array[][] = Array.from({ length: L }, () => []), vc: Float64Array[][] = Array.from({ length: L }, () => []);
  const out: Float64Array[] = [];
  ids.forEach((token, pos) => {
    let x = Float64Array.from(m.w.emb!.subarray(token * D, (token + 1) * D));
    for (let l = 0; l < L; l++) {
      const xb = rmsnorm(x, m.w.rms_att!, l * D);
      const q = matmul(xb, m.w.wq!, l * D * D, D, D), k = matmul(xb, m.w.wk!, l * D * kvDim, D, kvDim), v = matmul(xb, m.w.wv!, l * D * kvDim, D, kvDim);
      // RoPE: rotate (i, i+1) by pos · 10000^(-(i mod hs)/hs), for q everywhere and k within kv_dim.
      for (let i = 0; i < D; i += 2) {
        const freq = 1 / Math.pow(10000, (i % hs) / hs), c = Math.cos(pos * freq), s = Math.sin(pos * freq);
        for (const vec of i < kvDim ? [q, k] : [q]) { const a = vec[i]!, b = vec[i + 1]!; vec[i] = a * c - b * s; vec[i + 1] = a * s + b * c; }
      }
      kc[l]!.push(k); vc[l]!.push(v);
      const att = new Float64Array(D);
      for (let h = 0; h < H; h++) {
        const kvh = Math.floor(h / kvMul), scores = new Float64Array(pos + 1);
        for (let t = 0; t <= pos; t++) { let s = 0; for (let i = 0; i < hs; i++) s += q[h * hs + i]! * kc[l]![t]![kvh * hs + i]!; scores[t] = s / Math.sqrt(hs); }
        const mx = Math.max(...scores); let sum = 0;
        for (let t = 0; t <= pos; t++) { scores[t] = Math.exp(scores[t]! - mx); sum += scores[t]!; }
        for (let t = 0; t <= pos; t++) for (let i = 0; i < hs; i++) att[h * hs + i]! += (scores[t]! / sum) * vc[l]![t]![kvh * hs + i]!;
      }
      const o = matmul(att, m.w.wo!, l * D * D, D, D);
      x = x.map((v, i) => v + o[i]!);
      const xb2 = rmsnorm(x, m.w.rms_ffn!, l * D);
      const h1 = matmul(xb2, m.w.w1!, l * F * D, D, F), h3 = matmul(xb2, m.w.w3!, l * F * D, D, F);
      const g = h1.map((a, i) => (a / (1 + Math.exp(-a))) * h3[i]!);
      const d2 = matmul(g, m.w.w2!, l * D * F, F, D);
      x = x.map((v, i) => v + d2[i]!);
    }
    out.push(matmul(rmsnorm(x, m.w.rms_final!, 0), m.w.wcls!, 0, D, V));
  });
  return out;
}

function modelLogits(model: HookedTransformer, ids: number[]): number[][] {
  return noGrad(() => model.forward([ids]).toNested() as number[][][])[0]!;
}
function maxDiff(a: readonly ArrayLike<number>[], b: readonly ArrayLike<number>[]): number {
  let m = 0;
  a.forEach((row, t) => { for (let i = 0; i < row.length; i++) m = Math.max(m, Math.abs(row[i]! - b[t]![i]!)); });
  return m;
}

// ---------------------------------------------------------------- fake checkpoints

interface FakeHeader { dim: number; hidden: number; layers: number; heads: number; kvHeads: number; vocab: number; seqLen: number }

/** A llama2.c file with these header values and seeded normal weights (RMSNorm weights near 1). */
function writeFake(file: string, h: FakeHeader, opts: { shared: boolean; extraFloats?: number; dropFloats?: number; seed?: number }): number {
  const hs = h.dim / h.heads, kv = h.kvHeads * hs;
  const arrays: [number, boolean][] = [
    [h.vocab * h.dim, false], [h.layers * h.dim, true], [h.layers * h.dim * h.dim, false], [h.layers * h.dim * kv, false], [h.layers * h.dim * kv, false],
    [h.layers * h.dim * h.dim, false], [h.layers * h.dim, true], [h.layers * h.dim * h.hidden, false], [h.layers * h.hidden * h.dim, false], [h.layers * h.hidden * h.dim, false],
    [h.dim, true], [h.seqLen * hs, false], ...(opts.shared ? [] : [[h.vocab * h.dim, false] as [number, boolean]]),
  ];
  const rng = new Rng(opts.seed ?? 1);
  const vals: number[] = [];
  for (const [n, norm] of arrays) for (let i = 0; i < n; i++) vals.push(norm ? 1 + 0.1 * rng.normal() : 0.3 * rng.normal());
  for (let i = 0; i < (opts.extraFloats ?? 0); i++) vals.push(0);
  vals.length -= opts.dropFloats ?? 0;
  const header = new Int32Array([h.dim, h.hidden, h.layers, h.heads, h.kvHeads, opts.shared ? h.vocab : -h.vocab, h.seqLen]);
  const bytes = Buffer.concat([Buffer.from(header.buffer), Buffer.from(new Float32Array(vals).buffer)]);
  fs.writeFileSync(file, bytes);
  return bytes.length;
}

const SMALL: FakeHeader = { dim: 16, hidden: 24, layers: 2, heads: 4, kvHeads: 2, vocab: 11, seqLen: 8 };

describe("llama2.c checkpoint files", () => {
  test("header: shapes, the classifier's sign, and the size they imply", () => {
    const d = tmp();
    for (const shared of [true, false]) {
      const f = path.join(d, `m-${shared}.bin`);
      const bytes = writeFake(f, SMALL, { shared });
      const h = parseLlama2cHeader(fs.readFileSync(f), f);
      assert.deepEqual(h, { dim: 16, hidden_dim: 24, n_layers: 2, n_heads: 4, n_kv_heads: 2, vocab_size: 11, seq_len: 8, sharedClassifier: shared });
      assert.equal(llama2cFileBytes(h), bytes);
    }
  });

  test("errors name the problem: truncated, trailing bytes, bad header values, v1 magic", () => {
    const d = tmp(), f = path.join(d, "m.bin");
    const full = writeFake(f, SMALL, { shared: true });
    writeFake(f, SMALL, { shared: true, dropFloats: 3 });
    assert.throws(() => loadLlama2c(f), (e: Error) => e instanceof Llama2cError && e.message.includes(`truncated: expected ${full} bytes`) && e.message.includes(`got ${full - 12}`) && e.message.includes("dim 16"));
    writeFake(f, SMALL, { shared: true, extraFloats: 2 });
    assert.throws(() => loadLlama2c(f), /8 bytes more than the \d+ the header's shapes imply/);
    fs.writeFileSync(f, Buffer.alloc(20));
    assert.throws(() => loadLlama2c(f), /truncated: 20 bytes, expected at least 28/);
    const header = (v: number[]) => { fs.writeFileSync(f, Buffer.from(new Int32Array(v).buffer)); return () => loadLlama2c(f); };
    assert.throws(header([16, 24, 2, 0, 2, 11, 8]), /not a llama2.c checkpoint: header n_heads = 0/);
    assert.throws(header([16, 24, 2, 4, -2, 11, 8]), /n_kv_heads = -2/);
    assert.throws(header([18, 24, 2, 4, 2, 11, 8]), /dim 18 is not a multiple of n_heads 4/);
    assert.throws(header([16, 24, 2, 4, 3, 11, 8]), /n_heads 4 is not a multiple of n_kv_heads 3/);
    assert.throws(header([12, 24, 2, 4, 2, 11, 8]), /head size 3 .* is odd/);
    assert.throws(header([0x616b3432, 1, 64, 172, 5, 8, 4]), /version 1\/2 export \(magic "ak42"\)/);
    assert.throws(() => loadLlama2c(path.join(d, "absent.bin")), /cannot read the llama2.c checkpoint/);
  });

  for (const shared of [false, true]) {
    test(`a random GQA model (${shared ? "shared" : "separate"} classifier) gives run.c's logits: float64 to 1e-9, float32 to 1e-4`, () => {
      const f = path.join(tmp(), "m.bin");
      writeFake(f, SMALL, { shared, seed: shared ? 2 : 3 });
      const ids = [1, 4, 9, 0, 7, 7, 10, 2];
      const ref = referenceLogits(readRaw(f), ids);
      const d64 = maxDiff(modelLogits(loadLlama2c(f, { dtype: "float64" }).model, ids), ref);
      const d32 = maxDiff(modelLogits(loadLlama2c(f).model, ids), ref);
      assert.ok(d64 < 1e-9, `float64 max |diff| ${d64}`);
      assert.ok(d32 < 1e-4, `float32 max |diff| ${d32}`);
      const unpermuted = loadLlama2c(f, { dtype: "float64" });
      assert.equal(unpermuted.config.tie_word_embeddings, shared);
    });
  }
});

// ---------------------------------------------------------------- reference: run.c's tokenizer

interface RawVocab { pieces: Uint8Array[]; scores: number[]; lookup: Map<string, number> }

function readRawVocab(file: string, n: number): RawVocab {
  const b = fs.readFileSync(file), pieces: Uint8Array[] = [], scores: number[] = [], lookup = new Map<string, number>();
  let o = 4;
  for (let i = 0; i < n; i++) {
    const len = b.readInt32LE(o + 4);
    scores.push(b.readFloatLE(o)); pieces.push(new Uint8Array(b.subarray(o + 8, o + 8 + len)));
    lookup.set(Buffer.from(pieces[i]!).toString("latin1"), i);
    o += 8 + len;
  }
  return { pieces, scores, lookup };
}

/** run.c's encode: BOS, dummy " ", per-codepoint lookup with byte fallback (byte + 3), then best-score merges. */
function refEncode(v: RawVocab, text: string, bos: boolean): number[] {
  const key = (u: Uint8Array) => Buffer.from(u).toString("latin1");
  const tokens: number[] = bos ? [1] : [];
  const bytes = new TextEncoder().encode(text);
  if (bytes.length > 0) tokens.push(v.lookup.get(" ")!);
  for (let i = 0; i < bytes.length;) {
    let j = i + 1;
    while (j < bytes.length && (bytes[j]! & 0xc0) === 0x80 && j - i < 4) j++;
    const id = v.lookup.get(key(bytes.subarray(i, j)));
    if (id !== undefined) tokens.push(id); else for (let k = i; k < j; k++) tokens.push(bytes[k]! + 3);
    i = j;
  }
  for (;;) {
    let best = -1e10, bestId = -1, bestIdx = -1;
    for (let i = 0; i < tokens.length - 1; i++) {
      const id = v.lookup.get(key(v.pieces[tokens[i]!]!) + key(v.pieces[tokens[i + 1]!]!));
      if (id !== undefined && v.scores[id]! > best) { best = v.scores[id]!; bestId = id; bestIdx = i; }
    }
    if (bestIdx < 0) return tokens;
    tokens.splice(bestIdx, 2, bestId);
  }
}

/** run.c's decode of each token after its predecessor (prev = ids[i-1], or first = the token before ids[0]), bytes joined. */
function refDecode(v: RawVocab, ids: readonly number[], first: number): string {
  const out: number[] = [];
  ids.forEach((id, i) => {
    let piece = v.pieces[id]!;
    if ((i === 0 ? first : ids[i - 1]) === 1 && piece[0] === 0x20) piece = piece.subarray(1);
    const m = /^<0x([0-9A-F]{2})>$/.exec(Buffer.from(piece).toString("latin1"));
    out.push(...(m ? [parseInt(m[1]!, 16)] : piece));
  });
  return new TextDecoder().decode(new Uint8Array(out));
}

const STRINGS = [
  "Once upon a time", "", " ", "  two  spaces  and a tab\there", "Lily's mom said, \"Let's go!\"\nThe end.",
  "café naïve façade", "日本語のテキスト", "emoji 🙂🦙 and ∑ math", "Ünïcödé ÅÄÖ ß", "trailing space ", "\n\nnewlines\r\n",
  "1234567890 +-*/=", "ab a ba aba abab",
];

describe("llama2.c tokenizer", { skip: noStories }, () => {
  test("tok512.bin: 512 tokens, specials and byte tokens where run.c expects them", () => {
    const v = readLlama2cTokenizer(TOK, 512);
    assert.equal(v.tokens.length, 512);
    assert.deepEqual(v.tokens.slice(0, 4), ["<unk>", "\n<s>\n", "\n</s>\n", "<0x00>"]);
  });

  test("tokenizer.json encodes as run.c's encode on a corpus and on non-ASCII text (byte fallback)", () => {
    const { tokenizer } = loadLlama2c(BIN, { tokenizerPath: TOK });
    const v = readRawVocab(TOK, 512);
    const corpus = fs.readFileSync(path.join(SHARED, "data/tinyshakespeare.txt"), "utf8").slice(0, 60_000).split("\n");
    const texts = [...STRINGS, ...corpus, ...Array.from({ length: 40 }, (_, i) => corpus.slice(i * 30, i * 30 + 30).join("\n"))];
    let fallback = 0, compared = 0;
    for (const t of texts) {
      const want = refEncode(v, t, true);
      assert.deepEqual(tokenizer!.encode(t), want, `encode(${JSON.stringify(t)})`);
      assert.deepEqual(tokenizer!.encode(t, { addSpecialTokens: false }), want.slice(1), `encode(${JSON.stringify(t)}) without BOS`);
      fallback += want.filter((id) => id >= 3 && id < 259).length;
      compared += want.length;
    }
    assert.ok(fallback > 10, `the texts exercise byte fallback (${fallback} byte tokens of ${compared})`);
  });

  test("decode gives run.c's pieces; run.c also strips the space right after BOS", () => {
    const { tokenizer } = loadLlama2c(BIN, { tokenizerPath: TOK });
    const v = readRawVocab(TOK, 512);
    for (const t of STRINGS) {
      const ids = refEncode(v, t, false);
      if (ids.length === 0) continue;
      assert.equal(tokenizer!.decode(ids), refDecode(v, ids, 0), `decode of ${JSON.stringify(t)}`);
      assert.equal(tokenizer!.decode(ids), t === "" ? "" : " " + t, `round trip of ${JSON.stringify(t)}`);
      assert.equal(tokenizer!.decode([1, ...ids], { skipSpecialTokens: true }).replace(/^ /, ""), refDecode(v, ids, 1));
    }
    for (let id = 3; id < 512; id++) if (id >= 259) assert.equal(tokenizer!.decode([id]), refDecode(v, [id], 0), `token ${id}`);
  });

  test("one documented difference: text spelling a special token (<s>) encodes as it, as Hugging Face's Llama tokenizers do", () => {
    const { tokenizer } = loadLlama2c(BIN, { tokenizerPath: TOK });
    const v = readRawVocab(TOK, 512);
    const t = "a <s> b";
    assert.ok(tokenizer!.encode(t, { addSpecialTokens: false }).includes(1));
    assert.ok(!refEncode(v, t, false).includes(1), "run.c spells <s> out");
  });

  test("tokenizer file errors: truncated, wrong byte tokens, fewer tokens than the vocabulary", () => {
    const d = tmp(), f = path.join(d, "tok.bin"), raw = fs.readFileSync(TOK);
    fs.writeFileSync(f, raw.subarray(0, 1000));
    assert.throws(() => readLlama2cTokenizer(f, 512), (e: Error) => e instanceof Llama2cTokenizerError && /truncated in token \d+|has \d+ tokens, the checkpoint's vocab_size is 512/.test(e.message));
    fs.writeFileSync(f, raw);
    assert.throws(() => readLlama2cTokenizer(f, 600), /has 512 tokens, the checkpoint's vocab_size is 600/);
    let o = 4;
    for (let i = 0; i < 4; i++) o += 8 + raw.readInt32LE(o + 4);
    const bad = Buffer.from(raw); bad.write("<0x0G>", o + 8, "latin1"); // token 4's text, "<0x01>"
    fs.writeFileSync(f, bad);
    const bin = path.join(d, "m.bin");
    writeFake(bin, { ...SMALL, vocab: 512 }, { shared: true });
    assert.throws(() => loadLlama2c(bin, { tokenizerPath: f }), /token 4 is "<0x0G>", expected <0x01>/);
  });
});

// ---------------------------------------------------------------- the real stories260K

describe("stories260K", { skip: noStories }, () => {
  test("loaded logits equal run.c's forward (float64 reference) to 1e-4", () => {
    const { model, config } = loadLlama2c(BIN, { tokenizerPath: TOK });
    assert.equal(config.architecture, "llama");
    assert.deepEqual([config.d_model, config.d_mlp, config.n_layers, config.n_heads, config.n_key_value_heads, config.d_vocab, config.n_ctx], [64, 172, 5, 8, 4, 512, 512]);
    const ids = [1, 403, 407, 261, 378, 432, 383];
    const d = maxDiff(modelLogits(model, ids), referenceLogits(readRaw(BIN), ids));
    assert.ok(d < 1e-4, `max |diff| ${d}`);
  });

  test("greedy generation equals the text llama2.c's test_all.py publishes (200 steps, from BOS and from the prompt)", () => {
    const { model, tokenizer } = loadPretrained(BIN);
    const v = readRawVocab(TOK, 512);
    const steps = 200;
    // run.c: no prompt → 200 argmax steps from BOS, each token printed after its predecessor.
    const fromBos = generate(model, [[1]], { maxNewTokens: steps, temperature: 0 }).newTokens[0]!;
    assert.ok(!fromBos.includes(1), "run.c would stop at a BOS");
    assert.equal(refDecode(v, fromBos, 1), EXPECTED);
    assert.equal(tokenizer!.decode(fromBos), " " + EXPECTED, "tokenizer.json keeps the space run.c strips after BOS");
    // With the prompt, run.c forces the prompt's tokens, then samples up to position 200.
    const prompt = tokenizer!.encode("Once upon a time");
    assert.deepEqual(prompt, refEncode(v, "Once upon a time", true));
    const cont = generate(model, [prompt], { maxNewTokens: steps + 1 - prompt.length, temperature: 0 }).newTokens[0]!;
    assert.equal(refDecode(v, [...prompt.slice(1), ...cont], 1), EXPECTED);
  });

  test("loadPretrained opens the .bin, and the folder holding it with its tok512.bin", () => {
    assert.deepEqual(findLlama2c(STORIES), { binPath: BIN, tokenizerPath: TOK });
    assert.equal(findLlama2c(path.join(SHARED, "models/tiny-gpt2")), null, "a Hugging Face folder is not a llama2.c one");
    const d = tmp();
    for (const f of ["a.bin", "b.bin", "tok512.bin"]) fs.copyFileSync(f === "tok512.bin" ? TOK : BIN, path.join(d, f));
    assert.throws(() => loadPretrained(d), /holds 2 llama2.c checkpoints \(a.bin, b.bin\); name one .bin file/);
    fs.writeFileSync(path.join(d, "pytorch_model.bin"), "x");
    assert.equal(findLlama2c(path.join(d, "pytorch_model.bin")), null);
    const a = loadPretrained(BIN), b = loadPretrained(STORIES);
    assert.ok(a.tokenizer && b.tokenizer);
    const ids = [1, 403, 407];
    assert.equal(maxDiff(modelLogits(a.model, ids), modelLogits(b.model, ids)), 0);
  });

  test("circuitscope convert writes a Llama snapshot with the direct load's logits (1e-5) and tokenizer", () => {
    const out = path.join(tmp(), "stories260K-hf");
    const r = cli("convert", BIN, "--tokenizer", TOK, "--out", out, "--json");
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as { files: string[]; check: { maxAbsLogitDiff: number; tokenizerAgrees: boolean; positions: number } };
    assert.deepEqual(doc.files, ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]);
    assert.equal(doc.check.tokenizerAgrees, true);
    assert.ok(doc.check.maxAbsLogitDiff <= 1e-5, `convert's own check: ${doc.check.maxAbsLogitDiff}`);
    const config = JSON.parse(fs.readFileSync(path.join(out, "config.json"), "utf8")) as Record<string, unknown>;
    assert.deepEqual(config.architectures, ["LlamaForCausalLM"]);
    assert.equal(config.tie_word_embeddings, true);

    const direct = loadLlama2c(BIN, { tokenizerPath: TOK }), hf = loadPretrained(out);
    const ids = [1, 403, 407, 261, 378, 432, 383, 260, 9, 300];
    const d = maxDiff(modelLogits(hf.model, ids), modelLogits(direct.model, ids));
    assert.ok(d <= 1e-5, `max |diff| ${d}`);
    const tok = Tokenizer.fromFolder(out)!;
    const v = readRawVocab(TOK, 512);
    for (const t of STRINGS) {
      assert.deepEqual(tok.encode(t), refEncode(v, t, true), `encode(${JSON.stringify(t)})`);
      const ids2 = refEncode(v, t, false);
      if (ids2.length) assert.equal(tok.decode(ids2), refDecode(v, ids2, 0));
    }
    assert.equal(tok.bosTokenId, 1);
    assert.equal(tok.eosTokenId, 2);
  });

  test("convert: usage errors name the missing piece", () => {
    const r = cli("convert", BIN);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /convert needs --out <folder>/);
    const r2 = cli("convert", path.join(STORIES, "nope.bin"), "--out", path.join(tmp(), "x"));
    assert.equal(r2.code, 2);
    assert.match(r2.stderr, /no such file/);
  });
});
