// The labs' trained models as snapshot folders: `--save <dir>` writes one that loadPretrained opens with
// the trained model's logits (bitwise: the same float32 weights), with a tokenizer.json for the lab's
// tokens so text prompts reach the ids the lab trained on; the grokking checkpoint of Nanda et al.
// opens through loadPretrained with the lab loader's logits; and the CLI tools open what was saved.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as cs from "../src/index.js";
import { runInductionLab, runInductionTextLab, detectorTokens, inductionBatch } from "../src/labs/induction/index.js";
import { runEmergenceLab, ADDITION_CHARS, encodeProblem } from "../src/labs/emergence/index.js";
import { allPairTokens, loadGrokkingCheckpoint } from "../src/labs/grokking/index.js";
import { saveLabModel } from "../src/labs/save-model.js";
import { CharTokenizer } from "../src/train/char-tokenizer.js";
import { assertBitwiseEqual } from "./model-fixtures.js";
import { cli, repo } from "./cli-helpers.js";

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "cs-labsnap-"));
process.on("exit", () => fs.rmSync(scratch, { recursive: true, force: true }));
const grokDir = path.resolve(repo, "../shared/models/grokking-mod113");
const noGrok = fs.existsSync(grokDir) ? false : `no checkpoint at ${grokDir}`;
const logits = (m: cs.HookedTransformer, t: cs.Tensor | number[][]) => cs.noGrad(() => m.forward(t));

describe("induction lab --save", () => {
  const lab = runInductionLab({ steps: 30, seed: 1 });
  const o = lab.training.options;
  const dir = path.join(scratch, "induction");
  const layout = saveLabModel(lab.training.model, dir, { words: cs.randomTokenWords(o.dVocab, o.bos), bos: "<bos>" });

  test("loadPretrained opens the folder with the trained model's logits, bitwise", () => {
    assert.equal(layout, "circuitscope", "attention-only: no Hugging Face class expresses it");
    const { model, tokenizer } = cs.loadPretrained(dir);
    assert.deepEqual({ ...model.cfg, bos_token_id: null }, { ...lab.training.model.cfg, bos_token_id: null });
    const toks = inductionBatch(new cs.Rng(5), 4, o.half, o.dVocab, o.bos).tokens;
    assertBitwiseEqual(logits(model, toks), logits(lab.training.model, toks), "logits");
    // Techniques given token ids see the same model: the head detectors agree exactly.
    const det = detectorTokens(o.dVocab, o.seed, o.bos);
    assert.deepEqual(cs.noGrad(() => cs.headDetectorScores(model, det)), cs.noGrad(() => cs.headDetectorScores(lab.training.model, det)));
    assert.equal(tokenizer!.bosTokenId, o.dVocab);
    assert.equal(model.cfg.bos_token_id, o.dVocab, "the BOS id comes from the tokenizer");
  });

  test("its tokenizer.json maps the words t0 … t39 to ids 0 … 39, with <bos> first by default", () => {
    const { model } = cs.loadPretrained(dir);
    assertBitwiseEqual(model.toTokens("t5 t9 t3 t5 t9"), new cs.Tensor(Int32Array.from([o.dVocab, 5, 9, 3, 5, 9]), [1, 6]), "toTokens");
    assert.deepEqual(model.toStrTokens("t5 t39", { prependBos: false }), ["t5", "t39"]);
    assert.throws(() => model.toTokens("t5 t40"), /no id for "t40"/);
  });

  test("the CLI: `lab induction --save` writes it, and run, attention and circuits open it", () => {
    const out = path.join(scratch, "cli-induction"), save = path.join(scratch, "cli-induction-model");
    const r = cli("lab", "induction", "--steps", "20", "--out", out, "--save", save, "--json");
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).saved, { dir: save, layout: "circuitscope" });
    for (const args of [["run", save, "t1 t2 t3 t1 t2", "--top", "3", "--json"], ["attention", save, "t1 t2 t3 t1 t2", "--json", "--out", path.join(out, "att")], ["circuits", save, "--json", "--out", path.join(out, "circ")]]) {
      const c = cli(...args);
      assert.equal(c.code, 0, `${args.join(" ")}: ${c.stderr.slice(-1500)}`);
    }
  });
});

const corpus = path.resolve(repo, "../shared/data/tinyshakespeare.txt");
test("induction lab on text: saved with the corpus's character tokenizer, the trained logits bitwise", { skip: fs.existsSync(corpus) ? false : `no ${corpus}` }, () => {
  const lab = runInductionTextLab({ corpus, tokensDir: path.join(scratch, "tokens"), steps: 4, nCtx: 16, dModel: 16, nHeads: 2, logEvery: 2, evalWindows: 2 });
  const dir = path.join(scratch, "induction-text");
  assert.equal(saveLabModel(lab.training.model, dir, { chars: lab.training.tokenizer }), "circuitscope");
  const { model } = cs.loadPretrained(dir);
  const ids = Array.from(lab.training.tokenizer.encode("ROMEO: I will"));
  assert.deepEqual(model.toTokens("ROMEO: I will").toNested(), [ids], "the same ids as the lab's tokenizer");
  assertBitwiseEqual(logits(model, [ids]), logits(lab.training.model, [ids]), "logits");
});

test("emergence lab: each size saved in Hugging Face layout with a character tokenizer", () => {
  const lab = runEmergenceLab({ steps: 5, sizes: [16], evalEvery: 5, evalSize: 16 });
  const run = lab.training.runs[0]!, dir = path.join(scratch, "emergence");
  assert.equal(saveLabModel(run.model, dir, { chars: new CharTokenizer(ADDITION_CHARS) }), "huggingface");
  const { model } = cs.loadPretrained(dir);
  const toks = [encodeProblem(12, 34, 2), encodeProblem(99, 1, 2)];
  assertBitwiseEqual(logits(model, toks), logits(run.model, toks), "logits");
  assert.deepEqual(model.toTokens("12+34=").toNested(), [[1, 2, 10, 3, 4, 11]], "\"12+34=\" is the lab's prompt for 12 + 34");
});

describe("the grokking checkpoint through loadPretrained", { skip: noGrok }, () => {
  test("gives the lab loader's logits on all 12,769 pairs, bitwise, and reads \"a b =\" prompts", () => {
    const lab = loadGrokkingCheckpoint(grokDir), { model, tokenizer } = cs.loadPretrained(grokDir);
    const toks = allPairTokens(lab.p);
    assertBitwiseEqual(logits(model, toks), logits(lab.model, toks), "logits");
    assert.deepEqual(tokenizer!.encode("5 7 ="), [5, 7, 113]);
    const f64 = cs.loadPretrained(grokDir, { dtype: "float64" }).model;
    assert.equal(f64.cfg.dtype, "float64");
    assert.equal(f64.embed.W_E.dtype, "float64");
  });

  test("`run` and `lab grokking --train --save` open as ordinary snapshots", () => {
    // The model is 100% accurate (README), so its top prediction for 5 + 7 is 12.
    const r = cli("run", grokDir, "5 7 =", "--top", "1", "--json");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).top[0].str, "12");
    const out = path.join(scratch, "grok"), save = path.join(scratch, "grok-model");
    const t = cli("lab", "grokking", "--train", "--p", "23", "--d-model", "32", "--d-mlp", "64", "--epochs", "20", "--checkpoint-every", "10", "--out", out, "--save", save, "--json");
    assert.equal(t.code, 0, t.stderr.slice(-2000));
    const saved = cs.loadPretrained(save).model, trained = cs.loadPretrained(path.join(out, "trained")).model;
    const toks = allPairTokens(23);
    assertBitwiseEqual(logits(saved, toks), logits(trained, toks), "--save and <out>/trained hold the same model");
  });
});
