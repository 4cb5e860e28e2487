// `circuitscope train-lm <corpus.txt> --out <dir> --tokenizer char|bpe:<vocab>|<tokenizer.json>`: train
// a GPT on a text file with nanoGPT's Shakespeare-char CPU recipe as defaults, writing the tokenizer,
// token files, checkpoints, metrics.jsonl, curve.svg and finally the model as a Hugging Face snapshot
// folder (<dir>/model: config.json, model.safetensors, tokenizer.json, tokenizer_config.json).
// `train-char` is train-lm with the char tokenizer (its vocabulary also saved as char_tokenizer.json).
// Progress goes to stderr; the summary to stdout (one JSON document with --json).
import fs from "node:fs";
import path from "node:path";
import { saveHF } from "../../io/snapshot.js";
import { PLAIN_TOKENIZER_CONFIG, writeTokenizerFolder } from "../../io/tokenizer.js";
import { BPETokenizer } from "../../train/bpe.js";
import { writeFileAtomic } from "../../io/safetensors.js";
import { HookedTransformer } from "../../model/transformer.js";
import { makeConfig } from "../../model/config.js";
import { prepareCorpus, TokenFile } from "../../train/data.js";
import { defaultTrainConfig, lmObjective, train, CHECKPOINT_FILE } from "../../train/trainer.js";
import { intAtLeast as int, positive, UsageError } from "../args.js";
import type { Flags } from "../args.js";
import type { Command } from "../command.js";
import { progress, type Output } from "../io.js";

const OPTIONS = `
  model:     --layers 4 --heads 4 --d-model 128 --ctx 64
  training:  --batch 12 --iters 2000 --lr 1e-3 --min-lr 1e-4 --warmup 100 --weight-decay 0.1
             --grad-clip 1 --seed 0 --val-fraction 0.1
  eval/save: --eval-every 200 --eval-iters 20 --checkpoint-every 200
  --resume          continue from <dir>/${CHECKPOINT_FILE} (same settings required)
  --stop-after N    stop after N steps in all, keeping the checkpoint (continue later with --resume)
Defaults are nanoGPT's config/train_shakespeare_char.py scaled for CPU (its "baby GPT" on a laptop).`;
const USAGE_CHAR = `circuitscope train-char <corpus.txt> --out <dir> [options] [--json]${OPTIONS}`;
const USAGE_LM = `circuitscope train-lm <corpus.txt> --out <dir> [--tokenizer char|bpe:<vocab>|<tokenizer.json or folder>] [options] [--json]
  --tokenizer char          one token per character (the default; as train-char)
  --tokenizer bpe:1024      learn a byte-level BPE of that vocabulary on the training part of the corpus (<dir>/tokenizer)
  --tokenizer <path>        a Hugging Face tokenizer.json (or its folder), e.g. GPT-2's${OPTIONS}`;

/** Which tokenizer to train with, from --tokenizer. */
type TokenizerSpec = { kind: "char" } | { kind: "bpe"; vocabSize: number } | { kind: "file"; folder: string };

function parseTokenizer(v: string): TokenizerSpec {
  if (v === "char") return { kind: "char" };
  const m = /^bpe:(\d+)$/.exec(v);
  if (m) {
    const vocabSize = Number(m[1]);
    if (vocabSize < 257 || vocabSize > 65536) throw new UsageError(`--tokenizer bpe:<vocab> needs 257 <= vocab <= 65536 (256 bytes + merges), got ${vocabSize}`);
    return { kind: "bpe", vocabSize };
  }
  if (/^bpe(:|$)/.test(v)) throw new UsageError(`--tokenizer ${v}: write bpe:<vocab>, e.g. bpe:1024`);
  if (!fs.existsSync(v)) throw new UsageError(`--tokenizer ${v}: not char, bpe:<vocab>, or an existing tokenizer.json / folder`);
  const folder = fs.statSync(v).isDirectory() ? v : path.dirname(v);
  if (!fs.statSync(v).isDirectory() && path.basename(v) !== "tokenizer.json") throw new UsageError(`--tokenizer ${v}: a Hugging Face tokenizer file must be named tokenizer.json`);
  if (!fs.existsSync(path.join(folder, "tokenizer.json"))) throw new UsageError(`--tokenizer ${v}: the folder has no tokenizer.json`);
  return { kind: "file", folder };
}


export const trainChar: Command = {
  name: "train-char",
  summary: "train a character-level GPT on a text file (nanoGPT's Shakespeare-char recipe)",
  usage: USAGE_CHAR,
  run: (pos, flags, out) => trainLanguageModel("train-char", { kind: "char" }, pos, flags, out),
};

export const trainLm: Command = {
  name: "train-lm",
  summary: "train a GPT on a text file with a char, byte-level BPE or Hugging Face tokenizer",
  usage: USAGE_LM,
  run: (pos, flags, out) => trainLanguageModel("train-lm", parseTokenizer(flags.str("tokenizer", "char")), pos, flags, out),
};

function trainLanguageModel(name: string, spec: TokenizerSpec, pos: string[], flags: Flags, out: Output): void {
  const layers = int("layers", flags.num("layers", 4), 1), heads = int("heads", flags.num("heads", 4), 1);
  const dModel = int("d-model", flags.num("d-model", 128), 1), ctx = int("ctx", flags.num("ctx", 64), 1);
  const iters = int("iters", flags.num("iters", 2000), 1);
  const base = defaultTrainConfig({ iters });
  const cfg = defaultTrainConfig({
    iters, ctx,
    batch: int("batch", flags.num("batch", base.batch), 1),
    lr: positive("lr", flags.num("lr", base.lr)),
    minLr: flags.num("min-lr", base.minLr),
    warmupIters: int("warmup", flags.num("warmup", base.warmupIters), 0),
    weightDecay: flags.num("weight-decay", base.weightDecay),
    gradClip: flags.num("grad-clip", base.gradClip),
    evalEvery: int("eval-every", flags.num("eval-every", base.evalEvery), 0),
    evalIters: int("eval-iters", flags.num("eval-iters", base.evalIters), 1),
    checkpointEvery: int("checkpoint-every", flags.num("checkpoint-every", base.checkpointEvery), 0),
    seed: int("seed", flags.num("seed", base.seed), 0),
  });
  const valFraction = flags.num("val-fraction", 0.1);
  const resume = flags.bool("resume");
  const stopFlag = flags.str("stop-after");
  const stopAfter = stopFlag === undefined ? undefined : int("stop-after", Number(stopFlag), 1);
  const outDir = flags.str("out");
  flags.checkUnknown();
  const [corpus, ...extra] = pos;
  if (corpus === undefined) throw new UsageError(`${name} needs a corpus text file`);
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(" ")}`);
  if (!outDir) throw new UsageError(`${name} needs --out <dir>`);
  if (dModel % heads !== 0) throw new UsageError(`--d-model (${dModel}) must be a multiple of --heads (${heads})`);
  if (!fs.existsSync(corpus)) throw new UsageError(`${corpus}: no such file`);
  // Starting afresh would overwrite the checkpoint of a run that may have taken hours.
  if (!resume && fs.existsSync(path.join(outDir, CHECKPOINT_FILE)))
    throw new UsageError(`${outDir} already has a training checkpoint; pass --resume to continue it, or choose another --out`);

  let hfTokenizerFolder: string | undefined;
  if (spec.kind === "bpe") {
    // Learned on the text before the validation split only (by characters; the split itself is by tokens),
    // and deterministic, so a resumed run relearns the same tokenizer and reuses its token files.
    const text = fs.readFileSync(corpus, "utf8");
    const t0 = performance.now();
    const bpe = BPETokenizer.train(text.slice(0, Math.floor(text.length * (1 - valFraction))), { vocabSize: spec.vocabSize });
    hfTokenizerFolder = path.join(outDir, "tokenizer");
    bpe.save(hfTokenizerFolder);
    out.info(`tokenizer: byte-level BPE, ${bpe.vocabSize} tokens (${bpe.merges.length} merges) learned in ${((performance.now() - t0) / 1000).toFixed(1)} s (${hfTokenizerFolder})`);
  } else if (spec.kind === "file") hfTokenizerFolder = spec.folder;
  const data = prepareCorpus(corpus, outDir, { valFraction, hfTokenizerFolder });
  out.info(`data: ${data.trainTokens} train + ${data.valTokens} val tokens (${(data.valChars / data.valTokens).toFixed(3)} characters/token on val), vocabulary ${data.vocabSize} (${outDir})`);
  const trainFile = TokenFile.open(data.trainFile), valFile = TokenFile.open(data.valFile);
  const modelCfg = makeConfig({ architecture: "gpt2", n_layers: layers, n_heads: heads, d_model: dModel, d_vocab: data.vocabSize, n_ctx: ctx });
  const model = new HookedTransformer(modelCfg).initWeights(cfg.seed);
  out.info(`model: ${layers} layers, ${heads} heads, d_model ${dModel}, ${(model.parameters().reduce((n, p) => n + p.size, 0) / 1e6).toFixed(2)}M parameters`);
  const bar = progress("train", cfg.iters);
  let first = true;
  const result = train({
    model: lmObjective(model), train: trainFile, val: valFile, config: cfg, outDir, resume, stopAfter,
    meta: { model: modelCfg },
    onProgress: (p) => {
      if (first) { first = false; if (p.step > 1) bar.tick(p.step - 1); }
      bar.tick(1, `loss ${p.loss.toFixed(4)}${p.valLoss !== undefined ? ` val ${p.valLoss.toFixed(4)}` : ""}`);
    },
  });
  bar.done();
  trainFile.close(); valFile.close();
  let modelDir: string | null = null;
  if (!result.stopped) {
    modelDir = path.join(outDir, "model");
    saveHF(model, modelDir);
    if (data.tokenizer.kind === "char") {
      fs.copyFileSync(path.join(outDir, "char_tokenizer.json"), path.join(modelDir, "char_tokenizer.json"));
      writeTokenizerFolder(modelDir, data.tokenizer.tokenizer.toHFTokenizerJson());
    } else {
      const from = data.tokenizer.folder;
      for (const f of ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"])
        if (fs.existsSync(path.join(from, f))) fs.copyFileSync(path.join(from, f), path.join(modelDir, f));
      if (!fs.existsSync(path.join(from, "tokenizer_config.json")))
        writeFileAtomic(path.join(modelDir, "tokenizer_config.json"), (fd) => fs.writeFileSync(fd, JSON.stringify(PLAIN_TOKENIZER_CONFIG) + "\n"));
    }
  }
  // Per character, so models with different tokenizers compare: nats/token × tokens/character.
  const valLoss = result.finalValLoss ?? null;
  const valLossPerChar = valLoss === null ? null : valLoss * data.valTokens / data.valChars;
  const doc = {
    steps: result.steps, iters: cfg.iters, resumedFrom: result.resumedFrom, stopped: result.stopped,
    finalTrainLoss: result.finalLoss, valLoss, valLossPerChar, valBitsPerChar: valLossPerChar === null ? null : valLossPerChar / Math.LN2,
    tokenizer: spec.kind === "bpe" ? `bpe:${spec.vocabSize}` : spec.kind === "char" ? "char" : path.join(spec.folder, "tokenizer.json"),
    vocabSize: data.vocabSize, trainTokens: data.trainTokens, valTokens: data.valTokens, valChars: data.valChars,
    wallSeconds: result.elapsedMs / 1000, stepsPerSec: result.stepsPerSec,
    outDir, modelDir, checkpoint: path.join(outDir, CHECKPOINT_FILE), metrics: path.join(outDir, "metrics.jsonl"), curve: path.join(outDir, "curve.svg"),
    config: cfg, model: modelCfg,
  };
  out.result(doc, () => [
    result.stopped ? `stopped at step ${result.steps}/${cfg.iters} (continue with --resume)` : `trained ${result.steps} steps${result.resumedFrom ? ` (resumed from ${result.resumedFrom})` : ""}`,
    `val loss ${valLoss === null ? "n/a" : `${valLoss.toFixed(4)} nats/token = ${valLossPerChar!.toFixed(4)} nats/char (${doc.valBitsPerChar!.toFixed(3)} bits/char)`}, last train loss ${result.finalLoss.toFixed(4)}`,
    `${doc.wallSeconds.toFixed(1)} s, ${result.stepsPerSec.toFixed(2)} steps/s`,
    modelDir ? `model (Hugging Face layout): ${modelDir}` : `checkpoint: ${doc.checkpoint}`,
    `metrics: ${doc.metrics}, curve: ${doc.curve}`,
  ].join("\n"));
}
