// Training foundation: the char tokenizer, token files (round trip, malformed files), the batch
// sampler's determinism, that a tiny model learns, and that checkpoints are atomic and a killed and
// resumed run ends exactly where an uninterrupted one does. Tiny sizes, seeded, a few seconds.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { HookedTransformer, makeConfig } from "../src/model/index.js";
import { loadPretrained } from "../src/io/index.js";
import {
  BatchSampler, CharTokenizer, CharTokenizerError, CHECKPOINT_FILE, lmObjective, prepareCorpus, readCheckpointState, readMetrics,
  TokenDataError, TokenFile, train, writeTokenFile, type TrainConfig,
} from "../src/train/index.js";

const tmp = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `cs-train-${name}-`));

/** A small deterministic corpus with structure a model can pick up quickly. */
function corpus(): string {
  const lines = ["the cat sat on the mat.", "a dog ate the cat's food!", "to be, or not to be?", "so it goes; so it went."];
  let s = "";
  for (let i = 0; i < 120; i++) s += lines[(i * 7) % lines.length] + "\n";
  return s;
}

test("char tokenizer: sorted vocabulary, round trip, save/load, unknown characters throw", () => {
  const tok = CharTokenizer.fromText("hello, wörld 🙂");
  assert.deepEqual(tok.vocab, [" ", ",", "d", "e", "h", "l", "o", "r", "w", "ö", "🙂"]);
  const ids = tok.encode("world 🙂");
  assert.equal(ids.length, 7); // the emoji is one code point, one id
  assert.equal(tok.decode(ids), "world 🙂");
  const dir = tmp("tok");
  tok.save(path.join(dir, "t.json"));
  assert.deepEqual(CharTokenizer.load(path.join(dir, "t.json")).vocab, tok.vocab);
  assert.throws(() => tok.encode("hex"), (e: Error) => e instanceof CharTokenizerError && /"x"/.test(e.message));
  assert.throws(() => tok.decode([11]), RangeError);
  fs.writeFileSync(path.join(dir, "bad.json"), JSON.stringify({ type: "bpe" }));
  assert.throws(() => CharTokenizer.load(path.join(dir, "bad.json")), CharTokenizerError);
});

test("token files: round trip as uint16 and int32, in memory and read at offsets", () => {
  const dir = tmp("tokfile");
  const small = Int32Array.from({ length: 1000 }, (_, i) => (i * 37) % 65);
  const big = Int32Array.from({ length: 300 }, (_, i) => (i * 7919) % 70000);
  writeTokenFile(path.join(dir, "a.bin"), small, 65);
  writeTokenFile(path.join(dir, "b.bin"), big, 70000);
  assert.equal(fs.statSync(path.join(dir, "a.bin")).size, 24 + 2 * 1000);
  assert.equal(fs.statSync(path.join(dir, "b.bin")).size, 24 + 4 * 300);
  for (const readWholeBytes of [Infinity, 0]) {
    const a = TokenFile.open(path.join(dir, "a.bin"), { readWholeBytes }), b = TokenFile.open(path.join(dir, "b.bin"), { readWholeBytes });
    assert.equal(a.inMemory, readWholeBytes > 0);
    assert.deepEqual([a.dtype, a.length, a.vocabSize], ["uint16", 1000, 65]);
    assert.deepEqual([b.dtype, b.length, b.vocabSize], ["int32", 300, 70000]);
    assert.deepEqual(a.read(0, 1000), small);
    assert.deepEqual(a.read(123, 45), small.slice(123, 168));
    assert.deepEqual(b.read(250, 50), big.slice(250));
    assert.throws(() => a.read(990, 11), RangeError);
    a.close(); b.close();
  }
  assert.deepEqual(fs.readdirSync(dir).sort(), ["a.bin", "b.bin"]); // no temporary files left
  assert.throws(() => writeTokenFile(path.join(dir, "c.bin"), [1, 65], 65), RangeError);
  assert.ok(!fs.existsSync(path.join(dir, "c.bin")));
});

test("token files: malformed files fail with a named code", () => {
  const dir = tmp("bad");
  const good = path.join(dir, "good.bin");
  writeTokenFile(good, [1, 2, 3, 4], 10);
  const bytes = fs.readFileSync(good);
  const variant = (name: string, edit: (b: Buffer) => Buffer) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, edit(Buffer.from(bytes)));
    return f;
  };
  const code = (f: string, c: string) =>
    assert.throws(() => TokenFile.open(f).read(0, 4), (e: Error) => e instanceof TokenDataError && e.code === c && e.message.startsWith(f), c);
  code(variant("magic.bin", (b) => { b.write("GPT2", 0, "latin1"); return b; }), "bad_magic");
  code(variant("version.bin", (b) => { b.writeUInt32LE(9, 4); return b; }), "bad_version");
  code(variant("dtype.bin", (b) => { b.writeUInt32LE(7, 8); return b; }), "bad_dtype");
  code(variant("short.bin", (b) => b.subarray(0, 10)), "truncated");
  code(variant("cut.bin", (b) => b.subarray(0, b.length - 1)), "truncated");
  code(variant("long.bin", (b) => Buffer.concat([b, Buffer.alloc(2)])), "size_mismatch");
  code(variant("vocab.bin", (b) => { b.writeUInt32LE(3, 12); return b; }), "id_out_of_range");
});

test("batch sampler: windows of the data, the same for the same seed, replayable from state()", () => {
  const dir = tmp("sampler");
  const V = 50;
  writeTokenFile(path.join(dir, "d.bin"), Int32Array.from({ length: 500 }, (_, i) => i % V), V);
  const data = TokenFile.open(path.join(dir, "d.bin"));
  const a = new BatchSampler(data, 3, 8, 42), b = new BatchSampler(data, 3, 8, 42), c = new BatchSampler(data, 3, 8, 43);
  const batches = Array.from({ length: 5 }, () => a.nextWindows());
  for (const w of batches) {
    assert.deepEqual(w, b.nextWindows());
    assert.equal(w.length, 3 * 9);
    // Each row is a contiguous slice: consecutive ids (mod V) of the data.
    for (let r = 0; r < 3; r++) for (let j = 1; j < 9; j++) assert.equal(w[r * 9 + j], (w[r * 9 + j - 1]! + 1) % V);
  }
  assert.notDeepEqual(c.nextWindows(), batches[0]);
  const st = new BatchSampler(data, 3, 8, 42);
  st.setState({ seed: 42, draws: 9 }); // after three batches of three windows
  assert.deepEqual(st.nextWindows(), batches[3]);
  assert.deepEqual(a.state(), { seed: 42, draws: 15 });
  const t = new BatchSampler(data, 3, 8, 42).next();
  assert.deepEqual([t.dtype, ...t.shape], ["int32", 3, 9]);
  assert.throws(() => new BatchSampler(data, 1, 500, 0), (e: Error) => e instanceof TokenDataError && e.code === "too_short");
});

/** Token files for the test corpus, and a tiny model over its vocabulary. */
function setup(name: string) {
  const dir = tmp(name);
  fs.writeFileSync(path.join(dir, "corpus.txt"), corpus());
  const data = prepareCorpus(path.join(dir, "corpus.txt"), path.join(dir, "data"), { valFraction: 0.1 });
  const makeModel = (seed: number) =>
    new HookedTransformer(makeConfig({ n_layers: 1, n_heads: 2, d_model: 16, d_vocab: data.vocabSize, n_ctx: 8 })).initWeights(seed);
  return { dir, data, trainFile: TokenFile.open(data.trainFile), valFile: TokenFile.open(data.valFile), makeModel };
}

const tinyCfg = (over: Partial<TrainConfig> = {}): Partial<TrainConfig> =>
  ({ batch: 4, ctx: 8, lr: 1e-2, minLr: 1e-3, warmupIters: 2, evalEvery: 5, evalIters: 2, checkpointEvery: 4, seed: 3, ...over });

test("prepareCorpus: 90/10 split of the char ids, tokenizer saved, files reused", () => {
  const { dir, data, trainFile, valFile } = setup("prep");
  const text = corpus();
  const tok = CharTokenizer.load(path.join(dir, "data", "char_tokenizer.json"));
  assert.equal(data.trainTokens + data.valTokens, text.length);
  assert.equal(data.trainTokens, Math.floor(text.length * 0.9));
  assert.equal(tok.decode(trainFile.read(0, trainFile.length)) + tok.decode(valFile.read(0, valFile.length)), text);
  const mtime = fs.statSync(data.trainFile).mtimeMs;
  prepareCorpus(path.join(dir, "corpus.txt"), path.join(dir, "data"));
  assert.equal(fs.statSync(data.trainFile).mtimeMs, mtime); // reused
  assert.equal(prepareCorpus(path.join(dir, "corpus.txt"), path.join(dir, "data"), { valFraction: 0.2 }).valTokens, text.length - Math.floor(text.length * 0.8));
  fs.appendFileSync(path.join(dir, "corpus.txt"), "zq\n");
  const again = prepareCorpus(path.join(dir, "corpus.txt"), path.join(dir, "data"));
  assert.equal(again.trainTokens + again.valTokens, text.length + 3); // a changed corpus is re-tokenised
  assert.equal(again.vocabSize, data.vocabSize + 2); // z and q are new
});

const tinyGpt2 = fileURLToPath(new URL("../../../shared/models/tiny-gpt2", import.meta.url));
test("prepareCorpus with a Hugging Face BPE tokenizer", { skip: !fs.existsSync(path.join(tinyGpt2, "tokenizer.json")) && `no ${tinyGpt2}` }, async () => {
  const { Tokenizer } = await import("../src/io/index.js");
  const dir = tmp("bpe");
  fs.writeFileSync(path.join(dir, "corpus.txt"), corpus());
  const data = prepareCorpus(path.join(dir, "corpus.txt"), path.join(dir, "data"), { hfTokenizerFolder: tinyGpt2 });
  const tok = Tokenizer.fromFolder(tinyGpt2)!;
  const ids = tok.encode(corpus(), { addSpecialTokens: false });
  assert.equal(data.tokenizer.kind, "hf");
  assert.equal(data.vocabSize, tok.vocabSize);
  assert.equal(data.trainTokens + data.valTokens, ids.length);
  const tf = TokenFile.open(data.trainFile), vf = TokenFile.open(data.valFile);
  assert.deepEqual([...tf.read(0, tf.length), ...vf.read(0, vf.length)], ids);
  assert.deepEqual([tf.dtype, tf.vocabSize], ["uint16", 50257]); // GPT-2's 50257 ids fit in two bytes
  assert.ok(!fs.existsSync(path.join(dir, "data", "char_tokenizer.json")));
});

test("a tiny model's loss decreases", () => {
  const { trainFile, valFile, makeModel } = setup("learn");
  const model = makeModel(0);
  const losses: number[] = [];
  const r = train({ model: lmObjective(model), train: trainFile, val: valFile, config: tinyCfg({ iters: 60, evalEvery: 60 }), onProgress: (p) => losses.push(p.loss) });
  assert.equal(losses.length, 60);
  const first = losses[0]!, lastMean = losses.slice(-10).reduce((a, b) => a + b) / 10;
  assert.ok(first > Math.log(model.cfg.d_vocab) - 0.3, `initial loss ${first} should be near ln(d_vocab)`);
  assert.ok(lastMean < first - 1, `loss went from ${first} to ${lastMean}`);
  assert.ok(r.finalValLoss! < first - 0.8, `val loss ${r.finalValLoss} vs initial ${first}`);
});

const tempFiles = (dir: string) => fs.readdirSync(dir).filter((f) => f.endsWith(".tmp"));
const maxDiff = (a: HookedTransformer, b: HookedTransformer) => {
  let m = 0;
  const pb = b.parameters();
  a.parameters().forEach((p, i) => {
    const x = p.toArray(), y = pb[i]!.toArray();
    for (let j = 0; j < x.length; j++) m = Math.max(m, Math.abs(x[j]! - y[j]!));
  });
  return m;
};

test("checkpoint/resume: stopping after 6 steps (last checkpoint at 4) and resuming to 12 equals 12 straight steps", () => {
  const { dir, trainFile, valFile, makeModel } = setup("resume");
  const straightDir = path.join(dir, "straight"), resumedDir = path.join(dir, "resumed");
  const straight = makeModel(0);
  const a = train({ model: lmObjective(straight), train: trainFile, val: valFile, config: tinyCfg({ iters: 12 }), outDir: straightDir });
  assert.equal(a.steps, 12);

  const killed = makeModel(0);
  const b1 = train({ model: lmObjective(killed), train: trainFile, val: valFile, config: tinyCfg({ iters: 12 }), outDir: resumedDir, stopAfter: 6 });
  assert.ok(b1.stopped);
  assert.equal(readCheckpointState(path.join(resumedDir, CHECKPOINT_FILE)).step, 4); // steps 5–6 are lost, as in a kill
  // A fresh process would build the model anew; a different init proves the weights come from the checkpoint.
  const resumed = makeModel(99);
  const b2 = train({ model: lmObjective(resumed), train: trainFile, val: valFile, config: tinyCfg({ iters: 12 }), outDir: resumedDir, resume: true });
  assert.equal(b2.resumedFrom, 4);
  assert.equal(b2.steps, 12);
  assert.ok(Math.abs(a.finalLoss - b2.finalLoss) <= 1e-6, `final loss ${a.finalLoss} vs ${b2.finalLoss}`);
  assert.ok(Math.abs(a.finalValLoss! - b2.finalValLoss!) <= 1e-6);
  assert.ok(maxDiff(straight, resumed) <= 1e-6, `weights differ by ${maxDiff(straight, resumed)}`);

  // The resumed run's log has every step once, and the same losses as the straight run's.
  const la = readMetrics(path.join(straightDir, "metrics.jsonl")), lb = readMetrics(path.join(resumedDir, "metrics.jsonl"));
  assert.deepEqual(lb.map((r) => r.step), la.map((r) => r.step));
  assert.deepEqual(la.map((r) => r.step), [0, ...Array.from({ length: 12 }, (_, i) => i + 1)]);
  la.forEach((r, i) => { assert.equal(lb[i]!.loss, r.loss); assert.equal(lb[i]!.val_loss, r.val_loss); });
  for (const line of fs.readFileSync(path.join(resumedDir, "metrics.jsonl"), "utf8").trimEnd().split("\n")) {
    const r = JSON.parse(line) as Record<string, unknown>;
    assert.equal(typeof r.step, "number");
    assert.equal(typeof r.elapsed_s, "number");
  }
  assert.match(fs.readFileSync(path.join(resumedDir, "curve.svg"), "utf8"), /^<svg[\s\S]*val loss[\s\S]*<\/svg>\n$/);
  assert.deepEqual(tempFiles(straightDir), []);
  assert.deepEqual(tempFiles(resumedDir), []);
  // Resuming a finished run does nothing and reports the checkpoint's losses.
  const done = train({ model: lmObjective(makeModel(5)), train: trainFile, val: valFile, config: tinyCfg({ iters: 12 }), outDir: resumedDir, resume: true });
  assert.deepEqual([done.steps, done.resumedFrom, done.finalLoss, done.finalValLoss], [12, 12, a.finalLoss, a.finalValLoss]);

  // Resuming with different settings is refused rather than silently diverging.
  assert.throws(() => train({ model: lmObjective(makeModel(0)), train: trainFile, config: tinyCfg({ iters: 12, lr: 5e-3 }), outDir: resumedDir, resume: true }), /lr = 0.01/);
});

test("checkpoints are atomic: a failing step leaves the last good checkpoint; SIGKILL mid-run never leaves a torn one", async () => {
  const { dir, data, trainFile, valFile, makeModel } = setup("atomic");
  // A loss that throws at step 7 (after the checkpoint at step 4).
  const out = path.join(dir, "fail");
  const model = makeModel(0), obj = lmObjective(model);
  let calls = 0;
  const failing = { ...obj, loss: (b: Parameters<typeof obj.loss>[0]) => { if (++calls === 7) throw new Error("boom"); return obj.loss(b); } };
  assert.throws(() => train({ model: failing, train: trainFile, config: tinyCfg({ iters: 12, evalEvery: 0 }), outDir: out }), /boom/);
  assert.equal(readCheckpointState(path.join(out, CHECKPOINT_FILE)).step, 4);
  assert.deepEqual(tempFiles(out), []);

  // A child process checkpointing every step, killed at an arbitrary moment, then resumed here.
  const cfg = tinyCfg({ iters: 150, checkpointEvery: 1, evalEvery: 50 });
  const killedDir = path.join(dir, "killed");
  const src = (rel: string) => new URL(`../src/${rel}`, import.meta.url).href;
  const child = `
    import { HookedTransformer, makeConfig } from ${JSON.stringify(src("model/index.js"))};
    import { TokenFile, train, lmObjective } from ${JSON.stringify(src("train/index.js"))};
    const m = new HookedTransformer(makeConfig({ n_layers: 1, n_heads: 2, d_model: 16, d_vocab: ${data.vocabSize}, n_ctx: 8 })).initWeights(0);
    train({ model: lmObjective(m), train: TokenFile.open(${JSON.stringify(data.trainFile)}), val: TokenFile.open(${JSON.stringify(data.valFile)}),
            config: ${JSON.stringify(cfg)}, outDir: ${JSON.stringify(killedDir)} });`;
  const proc = spawn(process.execPath, ["--input-type=module", "-e", child], { stdio: "ignore" });
  const ckpt = path.join(killedDir, CHECKPOINT_FILE);
  const t0 = Date.now();
  while (!fs.existsSync(ckpt) && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setTimeout(r, 40)); // let it write a few more checkpoints, then kill it mid-stride
  proc.kill("SIGKILL");
  await new Promise((r) => proc.once("exit", r));
  const at = readCheckpointState(ckpt).step; // parses: the checkpoint is whole
  assert.ok(at >= 1 && at < 150, `killed at step ${at}`);

  const resumed = makeModel(7);
  const r = train({ model: lmObjective(resumed), train: trainFile, val: valFile, config: cfg, outDir: killedDir, resume: true });
  const straight = makeModel(0);
  const s = train({ model: lmObjective(straight), train: trainFile, val: valFile, config: { ...cfg, checkpointEvery: 0 } });
  assert.equal(r.resumedFrom, at);
  assert.ok(Math.abs(r.finalLoss - s.finalLoss) <= 1e-6, `final loss ${r.finalLoss} vs ${s.finalLoss}`);
  assert.ok(maxDiff(straight, resumed) <= 1e-6);
  assert.deepEqual(tempFiles(killedDir), []); // a temp file the kill left behind is cleaned on resume
  assert.deepEqual(readMetrics(path.join(killedDir, "metrics.jsonl")).map((m) => m.step), Array.from({ length: 151 }, (_, i) => i));
});

test("train-char CLI: trains, writes every artefact and a model loadPretrained opens", async () => {
  const dir = tmp("cli");
  fs.writeFileSync(path.join(dir, "corpus.txt"), corpus());
  const main = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
  const out = path.join(dir, "out");
  const args = [main, "train-char", path.join(dir, "corpus.txt"), "--out", out, "--layers", "1", "--heads", "2", "--d-model", "16", "--ctx", "8",
    "--batch", "4", "--iters", "20", "--eval-every", "10", "--eval-iters", "2", "--checkpoint-every", "10", "--json"];
  const cli = (argv: string[]) => new Promise<{ code: number | null; stdout: string }>((resolve) => {
    const p = spawn(process.execPath, argv, { stdio: ["ignore", "pipe", "ignore"] });
    let s = "";
    p.stdout.on("data", (d: Buffer) => { s += d.toString(); });
    p.on("exit", (c) => resolve({ code: c, stdout: s }));
  });
  const { code, stdout } = await cli(args);
  assert.equal(code, 0);
  const doc = JSON.parse(stdout) as { steps: number; valLoss: number; stepsPerSec: number; modelDir: string };
  assert.equal(doc.steps, 20);
  assert.ok(Number.isFinite(doc.valLoss) && doc.stepsPerSec > 0);
  for (const f of ["train.bin", "val.bin", "char_tokenizer.json", CHECKPOINT_FILE, "ckpt.json", "metrics.jsonl", "curve.svg", "model/config.json", "model/model.safetensors", "model/char_tokenizer.json", "model/tokenizer.json", "model/tokenizer_config.json"])
    assert.ok(fs.existsSync(path.join(out, f)), f);
  const { model, config, tokenizer } = loadPretrained(doc.modelDir);
  const chars = CharTokenizer.load(path.join(doc.modelDir, "char_tokenizer.json"));
  const sample = "to be, or not to be?\nthe cat";
  assert.deepEqual(tokenizer!.encode(sample), [...chars.encode(sample)]); // tokenizer.json agrees with the char vocabulary
  assert.equal(tokenizer!.decode(tokenizer!.encode(sample)), sample);
  assert.equal(tokenizer!.decode(tokenizer!.encode("to be , or not .")), "to be , or not ."); // no "clean up" of spaces before punctuation
  assert.throws(() => tokenizer!.encode("zq"), /no id/);
  assert.deepEqual([config.n_layers, config.n_heads, config.d_model, config.n_ctx], [1, 2, 16, 8]);
  assert.equal(model.cfg.d_vocab, chars.vocabSize);
  // Running again into the same folder without --resume would overwrite the checkpoint: refused.
  const again = await cli(args);
  assert.equal(again.code, 2);
  assert.match(again.stdout, /--resume/);
});
