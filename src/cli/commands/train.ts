// `circuitscope train-char <corpus.txt> --out <dir>`: train a character-level GPT on a text file with
// nanoGPT's Shakespeare-char CPU recipe as defaults, writing the tokenizer, token files, checkpoints,
// metrics.jsonl, curve.svg and finally the model as a Hugging Face snapshot folder (<dir>/model, with
// the char vocabulary as char_tokenizer.json and as an equivalent tokenizer.json).
// Progress goes to stderr; the summary to stdout (one JSON document with --json).
import fs from "node:fs";
import path from "node:path";
import { saveHF } from "../../io/snapshot.js";
import { writeFileAtomic } from "../../io/safetensors.js";
import { CharTokenizer } from "../../train/char-tokenizer.js";
import { HookedTransformer } from "../../model/transformer.js";
import { makeConfig } from "../../model/config.js";
import { prepareCorpus, TokenFile } from "../../train/data.js";
import { defaultTrainConfig, lmObjective, train, CHECKPOINT_FILE } from "../../train/trainer.js";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";
import { progress } from "../io.js";

const USAGE = `circuitscope train-char <corpus.txt> --out <dir> [options] [--json]
  model:     --layers 4 --heads 4 --d-model 128 --ctx 64
  training:  --batch 12 --iters 2000 --lr 1e-3 --min-lr 1e-4 --warmup 100 --weight-decay 0.1
             --grad-clip 1 --seed 0 --val-fraction 0.1
  eval/save: --eval-every 200 --eval-iters 20 --checkpoint-every 200
  --resume          continue from <dir>/${CHECKPOINT_FILE} (same settings required)
  --stop-after N    stop after N steps in all, keeping the checkpoint (continue later with --resume)
Defaults are nanoGPT's config/train_shakespeare_char.py scaled for CPU (its "baby GPT" on a laptop).`;

const int = (name: string, v: number, min: number) => {
  if (!Number.isInteger(v) || v < min) throw new UsageError(`--${name} must be an integer >= ${min}, got ${v}`);
  return v;
};
const positive = (name: string, v: number) => {
  if (!(v > 0)) throw new UsageError(`--${name} must be > 0, got ${v}`);
  return v;
};

export const trainChar: Command = {
  name: "train-char",
  summary: "train a character-level GPT on a text file (nanoGPT's Shakespeare-char recipe)",
  usage: USAGE,
  run(pos, flags, out) {
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
    if (corpus === undefined) throw new UsageError("train-char needs a corpus text file");
    if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(" ")}`);
    if (!outDir) throw new UsageError("train-char needs --out <dir>");
    if (dModel % heads !== 0) throw new UsageError(`--d-model (${dModel}) must be a multiple of --heads (${heads})`);
    if (!fs.existsSync(corpus)) throw new UsageError(`${corpus}: no such file`);
    // Starting afresh would overwrite the checkpoint of a run that may have taken hours.
    if (!resume && fs.existsSync(path.join(outDir, CHECKPOINT_FILE)))
      throw new UsageError(`${outDir} already has a training checkpoint; pass --resume to continue it, or choose another --out`);

    const data = prepareCorpus(corpus, outDir, { valFraction });
    out.info(`data: ${data.trainTokens} train + ${data.valTokens} val tokens, vocabulary ${data.vocabSize} (${outDir})`);
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
      fs.copyFileSync(path.join(outDir, "char_tokenizer.json"), path.join(modelDir, "char_tokenizer.json"));
      const hfTok = JSON.stringify(CharTokenizer.load(path.join(outDir, "char_tokenizer.json")).toHFTokenizerJson()) + "\n";
      writeFileAtomic(path.join(modelDir, "tokenizer.json"), (fd) => fs.writeFileSync(fd, hfTok));
    }
    const doc = {
      steps: result.steps, iters: cfg.iters, resumedFrom: result.resumedFrom, stopped: result.stopped,
      finalTrainLoss: result.finalLoss, valLoss: result.finalValLoss ?? null,
      wallSeconds: result.elapsedMs / 1000, stepsPerSec: result.stepsPerSec,
      outDir, modelDir, checkpoint: path.join(outDir, CHECKPOINT_FILE), metrics: path.join(outDir, "metrics.jsonl"), curve: path.join(outDir, "curve.svg"),
      config: cfg, model: modelCfg,
    };
    out.result(doc, () => [
      result.stopped ? `stopped at step ${result.steps}/${cfg.iters} (continue with --resume)` : `trained ${result.steps} steps${result.resumedFrom ? ` (resumed from ${result.resumedFrom})` : ""}`,
      `val loss ${doc.valLoss === null ? "n/a" : doc.valLoss.toFixed(4)}, last train loss ${result.finalLoss.toFixed(4)}`,
      `${doc.wallSeconds.toFixed(1)} s, ${result.stepsPerSec.toFixed(2)} steps/s`,
      modelDir ? `model (Hugging Face layout): ${modelDir}` : `checkpoint: ${doc.checkpoint}`,
      `metrics: ${doc.metrics}, curve: ${doc.curve}`,
    ].join("\n"));
  },
};
