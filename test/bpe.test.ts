// Byte-level BPE: merges on a hand-worked toy corpus, exact round trips (Shakespeare and odd Unicode),
// ids equal to @huggingface/tokenizers' on the tokenizer.json we write (and on GPT-2's own file),
// token files of a BPE vocabulary, and `train-lm --tokenizer bpe:300` writing a snapshot the
// analysis commands open. Tiny sizes; a few seconds.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadPretrained, Tokenizer } from "../src/io/index.js";
import { BPETokenizer, BPETokenizerError, BYTE_TO_UNICODE, CharTokenizer, prepareCorpus, preTokenize, TokenFile } from "../src/train/index.js";
import { cli, repo, tinyGpt2 } from "./cli-helpers.js";

const tmp = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `cs-bpe-${name}-`));
const shakespeare = path.resolve(repo, "../shared/data/tinyshakespeare.txt");
const noShakespeare = !fs.existsSync(shakespeare) && `no ${shakespeare}`;

test("bytes_to_unicode: GPT-2's map (space → Ġ, newline → Ċ, printable bytes unchanged), a bijection", () => {
  assert.equal(BYTE_TO_UNICODE[0x20], "Ġ");
  assert.equal(BYTE_TO_UNICODE[0x0a], "Ċ");
  assert.equal(BYTE_TO_UNICODE[0x41], "A");
  assert.equal(BYTE_TO_UNICODE[0xad], "Ń"); // the soft hyphen is the last of the 68 remapped bytes: U+0100 + 67
  assert.equal(new Set(BYTE_TO_UNICODE).size, 256);
  assert.deepEqual(preTokenize("Hello world's  end!\n"), ["Hello", " world", "'s", " ", " end", "!", "\n"]);
});

test("train: the merges of the hand-worked 'aaabdaaabac' example", () => {
  // Pair counts aa 4, ab 2, bd/da/ba/ac 1 → merge a+a. Then [aa a b d aa a b a c]: aa+a 2 and a+b 2 tie,
  // the smaller (left id, right id) wins: a+b (97, 98) before aa+a (256, 97). Then aa+ab 2 (Wikipedia's
  // Z = aa, Y = ab, X = ZY). Then all pairs count 1 and ties go by id: a+c (97, 99), d+aaab (100, 258),
  // aaab+daaab (258, 260), and the last merge makes the whole word.
  const full = BPETokenizer.train("aaabdaaabac", { vocabSize: 263 });
  assert.deepEqual(full.merges, [["a", "a"], ["a", "b"], ["aa", "ab"], ["a", "c"], ["d", "aaab"], ["aaab", "daaab"], ["aaabdaaab", "ac"]]);
  assert.deepEqual(full.vocab.slice(256), ["aa", "ab", "aaab", "ac", "daaab", "aaabdaaab", "aaabdaaabac"]);
  const three = BPETokenizer.train("aaabdaaabac", { vocabSize: 259 });
  assert.deepEqual(three.merges, [["a", "a"], ["a", "b"], ["aa", "ab"]]);
  assert.deepEqual([...three.encode("aaabdaaabac")], [258, 100, 258, 97, 99]);
  assert.deepEqual([...three.encode("aaa")], [256, 97]); // leftmost first: (aa)(a)
  // The corpus runs out of pairs: the vocabulary stops short of the target. minFrequency stops earlier.
  assert.equal(BPETokenizer.train("aaabdaaabac", { vocabSize: 1000 }).vocabSize, 263);
  assert.deepEqual(BPETokenizer.train("aaabdaaabac", { vocabSize: 1000, minFrequency: 2 }).merges, [["a", "a"], ["a", "b"], ["aa", "ab"]]);
  // Pieces never merge across GPT-2's split: "a", " b", " a", " b", " a", " b"; " b" (3) before " a" (2).
  assert.deepEqual(BPETokenizer.train("a b a b a b", { vocabSize: 1000 }).merges, [["Ġ", "b"], ["Ġ", "a"]]);
  assert.throws(() => BPETokenizer.train("x", { vocabSize: 100 }), RangeError);
});

/** Texts that stress byte-level pre-tokenization and UTF-8. */
const ODD = [
  "", " ", "   ", "\n\n\n", "\r\n\tx\t\r\n", "naïve café — déjà vu", "e\u0301 (combining acute)", "日本語のテキスト、です。",
  "🙂👩‍👩‍👧 family; 🏳️‍🌈", "עברית و العربية ٣٤٥", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math 𝑥²", "\u00a0nbsp\u2003em\u200bzwsp\ufeffbom", "I'll've they're we'd 'S 'LL",
  "ROMEO:\nO, she doth teach the torches to burn bright!", "x".repeat(500), "1234567890 3.14159 -0.5e-10", "\u0000\u0001\u007f\u0080 controls",
];

test("round trip and Hugging Face ids: Shakespeare slices and odd Unicode, through the written tokenizer.json", { skip: noShakespeare }, () => {
  const text = fs.readFileSync(shakespeare, "utf8");
  const bpe = BPETokenizer.train(text.slice(0, 40_000), { vocabSize: 400 });
  assert.equal(bpe.vocabSize, 400);
  assert.deepEqual(bpe.merges[0], ["Ġ", "t"]); // " t" is the commonest pair in Shakespeare
  const dir = tmp("rt");
  bpe.save(dir);
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8")).clean_up_tokenization_spaces, false);
  const hf = Tokenizer.fromFolder(dir)!;
  assert.equal(hf.vocabSize, 400);
  const reread = BPETokenizer.load(dir);
  assert.deepEqual(reread.vocab, bpe.vocab);
  const samples = [...ODD, text.slice(100_000, 103_000), text.slice(900_000, 905_000), text.slice(-2000)];
  for (const s of samples) {
    const ids = bpe.encode(s);
    assert.equal(bpe.decode(ids), s, JSON.stringify(s.slice(0, 40)));
    assert.deepEqual(hf.encode(s, { addSpecialTokens: false }), [...ids], `HF ids for ${JSON.stringify(s.slice(0, 40))}`);
    assert.equal(hf.decode([...ids]), s);
    assert.deepEqual([...reread.encode(s)], [...ids]);
  }
  // Byte-level: characters never seen in training still encode, as their bytes.
  assert.deepEqual([...bpe.encode("🙂")], [0xf0, 0x9f, 0x99, 0x82]);
});

test("our encoder on GPT-2's own tokenizer.json gives GPT-2's ids", { skip: !fs.existsSync(path.join(tinyGpt2, "tokenizer.json")) && "no tiny-gpt2" }, () => {
  const ours = BPETokenizer.load(path.join(tinyGpt2, "tokenizer.json")), hf = Tokenizer.fromFolder(tinyGpt2)!;
  assert.equal(ours.vocabSize, 50257);
  assert.deepEqual([...ours.encode("The Eiffel Tower is in")], [464, 412, 733, 417, 8765, 318, 287]);
  for (const s of ODD) {
    assert.deepEqual([...ours.encode(s)], hf.encode(s, { addSpecialTokens: false }), JSON.stringify(s.slice(0, 40)));
    assert.equal(ours.decode(ours.encode(s)), s);
  }
});

test("fromHFJson: a non-BPE or malformed tokenizer.json is refused by name", () => {
  assert.throws(() => BPETokenizer.fromHFJson(CharTokenizer.fromText("ab").toHFTokenizerJson()), (e: Error) => e instanceof BPETokenizerError && /BPE/.test(e.message));
  const good = BPETokenizer.train("aaabdaaabac", { vocabSize: 259 }).toHFTokenizerJson() as { model: { merges: string[]; vocab: Record<string, number> } };
  const badMerge = structuredClone(good);
  badMerge.model.merges.push("a zz");
  assert.throws(() => BPETokenizer.fromHFJson(badMerge), /merge 3 .*zz/);
  const noByte = structuredClone(good);
  delete noByte.model.vocab["Ġ"];
  assert.throws(() => BPETokenizer.fromHFJson(noByte), /id 32|byte 0x20/);
});

test("token files of a BPE vocabulary: uint16, ids decode back to the corpus; a retrained tokenizer re-tokenises", () => {
  const dir = tmp("data");
  const text = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak. — ünïcödé 🙂\n".repeat(30);
  fs.writeFileSync(path.join(dir, "corpus.txt"), text);
  BPETokenizer.train(text, { vocabSize: 300 }).save(path.join(dir, "tok"));
  const data = prepareCorpus(path.join(dir, "corpus.txt"), path.join(dir, "data"), { hfTokenizerFolder: path.join(dir, "tok") });
  const tok = BPETokenizer.load(path.join(dir, "tok"));
  const tf = TokenFile.open(data.trainFile), vf = TokenFile.open(data.valFile);
  assert.deepEqual([tf.dtype, tf.vocabSize, data.vocabSize], ["uint16", 300, 300]);
  const train = tf.read(0, tf.length), val = vf.read(0, vf.length);
  assert.deepEqual([...train, ...val], [...tok.encode(text)]);
  assert.equal(tok.decode(train) + tok.decode(val), text);
  assert.equal(data.valChars, [...tok.decode(val)].length);
  assert.ok(data.valChars > data.valTokens);
  BPETokenizer.train(text, { vocabSize: 280 }).save(path.join(dir, "tok")); // same folder, another tokenizer
  const again = prepareCorpus(path.join(dir, "corpus.txt"), path.join(dir, "data"), { hfTokenizerFolder: path.join(dir, "tok") });
  assert.equal(again.vocabSize, 280);
  assert.ok(again.trainTokens > data.trainTokens);
});

test("train-lm --tokenizer bpe:300: a snapshot that run, lens and patch open", () => {
  const dir = tmp("cli");
  const lines = ["ROMEO: what light through yonder window breaks?", "JULIET: o romeo, romeo, wherefore art thou romeo?", "MERCUTIO: a plague on both your houses!"];
  fs.writeFileSync(path.join(dir, "corpus.txt"), Array.from({ length: 60 }, (_, i) => lines[(i * 5) % 3]).join("\n") + "\n");
  const out = path.join(dir, "out");
  const r = cli("train-lm", path.join(dir, "corpus.txt"), "--out", out, "--tokenizer", "bpe:300", "--layers", "1", "--heads", "2", "--d-model", "16",
    "--ctx", "16", "--batch", "4", "--iters", "10", "--eval-every", "5", "--eval-iters", "2", "--json");
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { modelDir: string; tokenizer: string; vocabSize: number; valLoss: number; valLossPerChar: number; valTokens: number; valChars: number; valBitsPerChar: number };
  assert.equal(doc.tokenizer, "bpe:300");
  assert.equal(doc.vocabSize, 300);
  assert.ok(Math.abs(doc.valLossPerChar - doc.valLoss * doc.valTokens / doc.valChars) < 1e-12);
  assert.ok(Math.abs(doc.valBitsPerChar - doc.valLossPerChar / Math.LN2) < 1e-12);
  for (const f of ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]) assert.ok(fs.existsSync(path.join(doc.modelDir, f)), f);
  const { model, tokenizer } = loadPretrained(doc.modelDir);
  assert.equal(model.cfg.d_vocab, 300);
  const mine = BPETokenizer.load(path.join(out, "tokenizer"));
  assert.deepEqual(tokenizer!.encode("ROMEO: a plague , romeo ."), [...mine.encode("ROMEO: a plague , romeo .")]);
  assert.equal(tokenizer!.decode(tokenizer!.encode("ROMEO: a plague , romeo .")), "ROMEO: a plague , romeo .");

  const run = cli("run", doc.modelDir, "ROMEO:", "--top", "3", "--generate", "4", "--json");
  assert.equal(run.code, 0, run.stderr);
  const rd = JSON.parse(run.stdout) as { promptTokens: { id: number }[]; top: { id: number }[]; generation: { tokens: unknown[]; text: string } };
  assert.deepEqual(rd.promptTokens.map((t) => t.id), [...mine.encode("ROMEO:")]);
  assert.equal(rd.top.length, 3);
  assert.equal(rd.generation.tokens.length, 4);
  const lens = cli("lens", doc.modelDir, "ROMEO: what", "--out", path.join(dir, "lens"), "--json");
  assert.equal(lens.code, 0, lens.stderr);
  assert.ok(fs.existsSync(path.join(dir, "lens", "lens.svg")));
  const patch = cli("patch", doc.modelDir, "--clean", "ROMEO: what", "--corrupted", "JULIET: what", "--answer", "l", "--wrong", "w", "--json"); // bytes: always one token
  assert.equal(patch.code, 0, patch.stderr);
  // Bad specs are usage errors.
  assert.equal(cli("train-lm", path.join(dir, "corpus.txt"), "--out", path.join(dir, "x"), "--tokenizer", "bpe:12").code, 2);
  assert.equal(cli("train-lm", path.join(dir, "corpus.txt"), "--out", path.join(dir, "x"), "--tokenizer", "nope.json").code, 2);
});
