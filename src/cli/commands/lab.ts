// `circuitscope lab <name>`: the labs that reproduce a paper's result end to end. One `lab` command
// with a subcommand per lab, so grokking, induction, scaling and emergence each add one entry to
// `labs` below (and the command list stays short). Today: `lab superposition`, `lab grokking`, `lab induction`, `lab emergence`.
import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { UsageError, type Flags } from "../args.js";
import type { Command } from "../command.js";
import { progress, type Output } from "../io.js";
import { renderReport, runSuperpositionLab } from "../../labs/superposition/index.js";
import { renderReport as renderInductionReport, runInductionLab, summary as inductionSummary, renderTextReport as renderInductionTextReport, runInductionTextLab, textSummary as inductionTextSummary } from "../../labs/induction/index.js";
import { renderReport as renderEmergenceReport, runEmergenceLab, summary as emergenceSummary } from "../../labs/emergence/index.js";
import { planSweep, renderScalingReport, runScalingLab, scalingLabSummary, type SweepRun } from "../../labs/scaling/index.js";
import { saveLabModel, type LabTokens } from "../../labs/save-model.js";
import { randomTokenWords } from "../../io/word-tokenizer.js";
import { grokkingWords } from "../../io/grokking-layout.js";
import { ADDITION_CHARS } from "../../labs/emergence/index.js";
import { CharTokenizer } from "../../train/char-tokenizer.js";
import type { HookedTransformer } from "../../model/transformer.js";
import { renderReport as renderGrokkingReport, runGrokkingLab, saveGrokkingCheckpoint, GROK_CHECKPOINT_FILE, grokCheckpointEpoch, type GrokTrainOptions } from "../../labs/grokking/index.js";

interface Lab { summary: string; usage: string; run(flags: Flags, out: Output): void | Promise<void> }

const superposition: Lab = {
  summary: "toy models of superposition (Elhage et al. 2022): sparsity sweep, geometry, report",
  usage: "circuitscope lab superposition [--n 20] [--m 5] [--sparsities 0,0.7,0.9,0.97,0.99,0.997] [--decay 0.7] [--steps 5000] [--batch 1024] [--lr 0.003] [--seed 0] [--out superposition-report] [--json]",
  run(flags, out) {
    const sparsities = flags.str("sparsities", "0,0.7,0.9,0.97,0.99,0.997").split(",").map((s) => {
      const v = Number(s);
      if (!(v >= 0 && v < 1)) throw new UsageError(`--sparsities: each value must be in [0, 1), got "${s}"`);
      return v;
    });
    const int = (name: string, def: number) => {
      const v = flags.num(name, def);
      if (!(Number.isInteger(v) && v > 0)) throw new UsageError(`--${name} must be a positive integer, got ${v}`);
      return v;
    };
    const opts = {
      nFeatures: int("n", 20), nHidden: int("m", 5), sparsities, decay: flags.num("decay", 0.7),
      steps: int("steps", 5000), batchSize: int("batch", 1024), lr: flags.num("lr", 3e-3), seed: flags.num("seed", 0),
    };
    const dir = flags.str("out", "superposition-report");
    flags.checkUnknown();
    if (opts.nHidden >= opts.nFeatures) throw new UsageError(`--m (${opts.nHidden}) must be smaller than --n (${opts.nFeatures})`);
    const bar = progress("training", opts.steps);
    const result = runSuperpositionLab({ ...opts, onStep: (_s, loss) => bar.tick(1, `loss ${loss.toFixed(4)}`) });
    bar.done();
    writeReport(dir, renderReport(result), out);
    const summary = result.instances.map(({ gram: _g, bias: _b, ...rest }) => rest);
    out.result({ out: dir, seconds: result.seconds, options: result.options, instances: summary }, () => {
      const rows = result.instances.map((x) => `${x.variant.padEnd(13)} S=${String(x.sparsity).padEnd(6)} represented ${String(x.represented).padStart(2)}/${opts.nFeatures}  in superposition ${String(x.inSuperposition).padStart(2)}  m/‖W‖²=${x.dimsPerFeature.toFixed(3)}`);
      return [`superposition lab: ${result.seconds.toFixed(1)} s, report in ${join(dir, "report.md")}`, ...rows].join("\n");
    });
  },
};

const grokking: Lab = {
  summary: "grokking modular addition (Nanda et al. 2023): the real checkpoint's Fourier circuit, progress measures, training",
  usage: "circuitscope lab grokking [--checkpoint ../shared/models/grokking-mod113] [--train] [--paper] [--p 113] [--d-model 128] [--heads 4] [--d-mlp 512] [--frac 0.3] [--epochs 1600] [--lr 0.003] [--wd 2] [--seed 0] [--log-every 10] [--eval-every <epochs/50>] [--checkpoint-every 500] [--resume] [--out grokking-report] [--save <model dir>] [--json]",
  run(flags, out) {
    const int = (name: string, def: number) => {
      const v = flags.num(name, def);
      if (!(Number.isInteger(v) && v > 0)) throw new UsageError(`--${name} must be a positive integer, got ${v}`);
      return v;
    };
    const checkpoint = flags.str("checkpoint");
    // The default is the paper's model and split (p = 113, d_model 128, 30% train) with lr 3e-3 and weight
    // decay 2, which groks and cleans up in 1,600 epochs (~4 min) instead of ~10k; --paper keeps the paper's
    // lr 1e-3, weight decay 1 and 40k epochs (where its test loss has fallen; hours here).
    const paper = flags.bool("paper"), doTrain = flags.bool("train") || paper;
    const dModel = int("d-model", 128), epochs = int("epochs", paper ? 40000 : 1600);
    const train: GrokTrainOptions = {
      p: int("p", 113), dModel, nHeads: int("heads", 4), dMlp: int("d-mlp", 4 * dModel), fracTrain: flags.num("frac", 0.3),
      epochs, lr: flags.num("lr", paper ? 1e-3 : 3e-3), weightDecay: flags.num("wd", paper ? 1 : 2), seed: flags.num("seed", 0),
      logEvery: int("log-every", 10), evalEvery: int("eval-every", Math.max(10, Math.round(epochs / 50))),
    };
    const dir = flags.str("out", "grokking-report");
    const resume = flags.bool("resume"), checkpointEvery = int("checkpoint-every", 500), save = flags.str("save");
    flags.checkUnknown();
    // Training checkpoints go to <out>/checkpoint; starting afresh would overwrite a run that may have taken long.
    const ckptDir = join(dir, "checkpoint");
    if (doTrain && !resume && existsSync(join(ckptDir, GROK_CHECKPOINT_FILE)))
      throw new UsageError(`${ckptDir} already has a training checkpoint; pass --resume to continue it, or choose another --out`);
    if (resume && !doTrain) throw new UsageError("--resume continues a training run: give it with --train");
    if (save !== undefined && !doTrain) throw new UsageError("--save writes the model trained by --train; a --checkpoint folder opens with loadPretrained as it is");
    if (!checkpoint && !doTrain) throw new UsageError("lab grokking: give --checkpoint <folder> (e.g. ../shared/models/grokking-mod113), --train, or both");
    if (train.p % 2 === 0 || train.p < 3) throw new UsageError(`--p must be an odd number ≥ 3 (a prime for a field), got ${train.p}`);
    if (!(train.fracTrain > 0 && train.fracTrain < 1)) throw new UsageError(`--frac must be in (0, 1), got ${train.fracTrain}`);
    if (dModel % train.nHeads !== 0) throw new UsageError(`--d-model (${dModel}) must be a multiple of --heads (${train.nHeads})`);
    const bar = doTrain ? progress("training", train.epochs) : null;
    const from = resume ? grokCheckpointEpoch(ckptDir) : null;
    if (from) { bar!.tick(from, `resuming at epoch ${from}`); out.info(`resuming from ${ckptDir} at epoch ${from}`); }
    const result = runGrokkingLab({
      checkpoint,
      train: doTrain ? {
        ...train, outDir: ckptDir, resume, checkpointEvery,
        onEpoch: (_e, tr, te) => bar!.tick(train.logEvery, `train ${tr.toExponential(2)} test ${te.toExponential(2)}`),
      } : undefined,
    });
    bar?.done();
    const files = renderGrokkingReport(result);
    mkdirSync(dir, { recursive: true });
    for (const [name, text] of Object.entries(files)) { const p = join(dir, name); writeFileSync(p + ".tmp", text); renameSync(p + ".tmp", p); }
    out.info(`wrote ${Object.keys(files).length} files to ${dir}/`);
    const t = result.training;
    if (t) {
      // The trained model as a checkpoint folder, so `lab grokking --checkpoint <out>/trained` re-analyses it.
      const { epochs, ...cfg } = t.options;
      saveGrokkingCheckpoint(join(dir, "trained"), t.model, t.options.p, t.trainSet, { epochsPerPoint: t.options.logEvery, train: t.trainLoss, test: t.testLoss }, { ...cfg, num_epochs: epochs });
      out.info(`wrote the trained model to ${join(dir, "trained")}/`);
    }
    // Tokens are the residues "0" … "p−1" and "=", so "5 7 =" is a prompt.
    const saved = save !== undefined && t ? saveModel(t.model, save, { words: grokkingWords(t.options.p) }, out) : null;
    const brief = (a: NonNullable<typeof result.checkpoint>["analysis"]) => {
      const { logitSpectrum: _s, embedNorms: _n, logitVarianceByFrequency: _v, ...rest } = a;
      return rest;
    };
    out.result({
      out: dir, seconds: result.seconds, saved,
      checkpoint: result.checkpoint ? { dir: result.checkpoint.dir, ...brief(result.checkpoint.analysis), separation: result.checkpoint.separation, criteria: result.checkpoint.criteria } : null,
      training: t ? {
        options: t.options, seconds: t.seconds, final: brief(t.final), separation: t.separation, criteria: t.criteria, measures: t.measures,
        epochs: t.epochs, trainLoss: t.trainLoss, testLoss: t.testLoss, trainAcc: t.trainAcc, testAcc: t.testAcc,
      } : null,
    }, () => {
      const lines = [`grokking lab: ${result.seconds.toFixed(1)} s, report in ${join(dir, "report.md")}`];
      const say = (name: string, a: NonNullable<typeof result.checkpoint>["analysis"]) => lines.push(
        `${name}: accuracy ${(100 * a.accuracy.all).toFixed(2)}% (test ${(100 * a.accuracy.test).toFixed(2)}%), key frequencies ${a.keyFrequencies.join(", ")}, ` +
        `‖W_E‖² share ${(100 * a.embedKeyFraction).toFixed(1)}%, logit variance ${(100 * a.logitVarianceExplained).toFixed(1)}%, ` +
        `restricted loss ${a.progress.restrictedLoss.toExponential(2)}, excluded loss ${a.progress.excludedLoss.toFixed(3)}`);
      const verdict = (cs: readonly { name: string; pass: boolean }[]) => lines.push(`  criteria: ${cs.map((c) => `${c.name} ${c.pass ? "pass" : "FAIL"}`).join("; ")}`);
      if (result.checkpoint) { say("checkpoint", result.checkpoint.analysis); verdict(result.checkpoint.criteria); }
      if (t) {
        say(`trained p=${t.options.p}`, t.final);
        const s = t.separation.accuracy;
        lines.push(`  accuracy ≥ 99% first at epoch ${s.trainEpoch ?? "never"} (train), ${s.testEpoch ?? "never"} (test): separation ${s.ratio === null ? "undefined" : s.ratio.toFixed(1) + "×"}`);
        verdict(t.criteria);
      }
      return lines.join("\n");
    });
  },
};

const induction: Lab = {
  summary: "induction heads (Olsson et al. 2022): the in-context-learning phase change in a 2-layer attention-only model, on repeated random tokens or on text (--data text), detectors, K-composition",
  usage: "circuitscope lab induction [--data random|text] [--steps 600 (text: 1500)] [--seed 0] [--out induction-report] [--save <model dir>] [--json]\n" +
    "      text only: [--corpus ../shared/data/tinyshakespeare.txt] [--tokens-dir <out>/tokens] [--n-ctx 128] [--d-model 64] [--heads 4] [--d-head 16] [--batch 16] [--lr 0.01] [--log-every 50] [--eval-windows 64]",
  run(flags, out) {
    const data = flags.str("data", "random");
    if (data !== "random" && data !== "text") throw new UsageError(`--data must be "random" or "text", got "${data}"`);
    if (data === "text") return inductionText(flags, out);
    const steps = flags.num("steps", 600), seed = flags.num("seed", 0), dir = flags.str("out", "induction-report"), save = flags.str("save");
    flags.checkUnknown();
    if (!(Number.isInteger(steps) && steps > 0)) throw new UsageError(`--steps must be a positive integer, got ${steps}`);
    const bar = progress("training", steps);
    const result = runInductionLab({ steps, seed, onStep: (_s, l, r) => bar.tick(1, `loss ${l.toFixed(3)} repeats ${r.toFixed(3)}`) });
    bar.done();
    const files = renderInductionReport(result);
    writeReport(dir, files, out);
    const o = result.training.options;
    // Random tokens are the words "t0" … "t{V-1}" (and "<bos>"), so a prompt "t5 t9 t3 t5 t9" works in run, serve and every technique.
    const saved = save === undefined ? null : saveModel(result.training.model, save, { words: randomTokenWords(o.dVocab, o.bos), ...(o.bos ? { bos: "<bos>" } : {}) }, out);
    const a = result.analysis, pc = a.phaseChange;
    out.result({ out: dir, data, saved, ...inductionSummary(result) }, () => [
      `induction lab: ${result.seconds.toFixed(1)} s, report in ${join(dir, "report.md")}`,
      `phase change at step ${pc.step}: repeated-token loss ${pc.repeatedBefore.toFixed(2)} → ${pc.repeatedAfter.toFixed(2)} over ${pc.window} steps (first segment ${pc.firstDuring.toFixed(2)}, ln V ${a.lnVocab.toFixed(2)})`,
      `induction score (best layer-1 head) ${a.initialInduction.toFixed(3)} → ${a.finalInduction.toFixed(3)}, crosses 0.5 at step ${a.inductionCrossStep ?? "never"}; K(prev, induction) ${a.kPair.toFixed(3)} vs baseline ${a.baseline.mean.toFixed(3)}`,
    ].join("\n"));
  },
};

/** --save: the trained model as a snapshot folder with its tokenizer; returns the folder and layout for the JSON. */
function saveModel(model: HookedTransformer, dir: string, tokens: LabTokens, out: Output): { dir: string; layout: string } {
  const layout = saveLabModel(model, dir, tokens);
  out.info(`wrote the trained model to ${dir}/ (${layout === "huggingface" ? "Hugging Face" : "circuitscope"} layout, with tokenizer.json)`);
  return { dir, layout };
}

/** Temp file then rename, so a report is never half-written. */
function writeReport(dir: string, files: Record<string, string>, out: Output): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) { const p = join(dir, name); writeFileSync(p + ".tmp", text); renameSync(p + ".tmp", p); }
  out.info(`wrote ${Object.keys(files).length} files to ${dir}/`);
}

/** `lab induction --data text`: the same model on a character-level corpus, with the ICL score. */
function inductionText(flags: Flags, out: Output): void {
  const int = (name: string, def: number) => {
    const v = flags.num(name, def);
    if (!(Number.isInteger(v) && v > 0)) throw new UsageError(`--${name} must be a positive integer, got ${v}`);
    return v;
  };
  const dir = flags.str("out", "induction-report"), corpus = flags.str("corpus", "../shared/data/tinyshakespeare.txt");
  const opts = {
    corpus, tokensDir: flags.str("tokens-dir", join(dir, "tokens")), seed: flags.num("seed", 0), steps: int("steps", 1500), nCtx: int("n-ctx", 128),
    dModel: int("d-model", 64), nHeads: int("heads", 4), dHead: int("d-head", 16), batch: int("batch", 16), lr: flags.num("lr", 1e-2),
    logEvery: int("log-every", 50), evalWindows: int("eval-windows", 64),
  };
  const save = flags.str("save");
  flags.checkUnknown();
  if (!existsSync(corpus)) throw new UsageError(`--corpus: no such file ${corpus}`);
  if (opts.nCtx < 16 || opts.nCtx % 2 !== 0) throw new UsageError(`--n-ctx must be even and ≥ 16 (the ICL windows are ⅛ and ¾ of it), got ${opts.nCtx}`);
  if (!(opts.lr > 0)) throw new UsageError(`--lr must be positive, got ${opts.lr}`);
  const bar = progress("training", opts.steps);
  const result = runInductionTextLab({ ...opts, onStep: (_s, l) => bar.tick(1, `loss ${l.toFixed(3)}`) });
  bar.done();
  writeReport(dir, renderInductionTextReport(result), out);
  const saved = save === undefined ? null : saveModel(result.training.model, save, { chars: result.training.tokenizer }, out);
  const a = result.analysis;
  out.result({ out: dir, saved, ...inductionTextSummary(result) }, () => [
    `induction lab (text): ${result.seconds.toFixed(1)} s, report in ${join(dir, "report.md")}`,
    `ICL score ${a.initial.icl.toFixed(3)} → ${a.final.icl.toFixed(3)} nats, falling fastest over steps ${a.icl.start}–${a.icl.end} (${a.icl.before.toFixed(3)} → ${a.icl.after.toFixed(3)}); repeated random text ${a.initial.repeated.toFixed(2)} → ${a.final.repeated.toFixed(2)}`,
    `induction head L${a.inductionHead.layer}H${a.inductionHead.head} ${a.inductionHead.score.toFixed(3)} (≥ ${a.threshold} at step ${a.inductionCrossStep ?? "never"}), previous-token head L0H${a.previousTokenHead.head} ${a.previousTokenHead.score.toFixed(3)}, K ${a.kPair.toFixed(3)} vs baseline ${a.baseline.mean.toFixed(3)}`,
  ].join("\n"));
}

const emergence: Lab = {
  summary: "emergence (Wei et al. 2022 vs Schaeffer et al. 2023): addition over model sizes, abrupt exact match vs smooth answer loss",
  usage: "circuitscope lab emergence [--steps 2000] [--sizes 16,32,64] [--seed 0] [--out emergence-report] [--save <dir>: one model folder per size, <dir>/d<d_model>] [--json]",
  run(flags, out) {
    const steps = flags.num("steps", 2000), seed = flags.num("seed", 0), dir = flags.str("out", "emergence-report"), save = flags.str("save");
    const sizes = flags.str("sizes", "16,32,64").split(",").map((s) => {
      const v = Number(s);
      if (!(Number.isInteger(v) && v > 0 && v % 4 === 0)) throw new UsageError(`--sizes: each d_model must be a positive multiple of 4, got "${s}"`);
      return v;
    });
    flags.checkUnknown();
    if (!(Number.isInteger(steps) && steps > 0)) throw new UsageError(`--steps must be a positive integer, got ${steps}`);
    const bar = progress("training", steps * sizes.length);
    const result = runEmergenceLab({ steps, seed, sizes, evalEvery: Math.max(1, Math.min(25, Math.floor(steps / 10))), onStep: (d, _s, l) => bar.tick(1, `d_model ${d} loss ${l.toFixed(3)}`) });
    bar.done();
    writeReport(dir, renderEmergenceReport(result), out);
    // One folder per size; the tokens are characters, so "12+34=" is a prompt (the sum comes back least significant digit first).
    const chars = new CharTokenizer(ADDITION_CHARS);
    const saved = save === undefined ? null : result.training.runs.map((r) => saveModel(r.model, join(save, `d${r.dModel}`), { chars }, out));
    out.result({ out: dir, saved, ...emergenceSummary(result) }, () => [
      `emergence lab: ${result.seconds.toFixed(1)} s, report in ${join(dir, "report.md")}`,
      ...result.analysis.sizes.map((s) => `d_model ${s.dModel} (${s.params} params): loss moves at step ${s.transitions.loss.start ?? "—"}, exact match at ${s.transitions.exactMatch.start ?? "—"} (≥50% at ${s.exactHalfStep ?? "never"}); final loss ${s.final.loss.toFixed(3)}, exact match ${(100 * s.final.exactMatch).toFixed(1)}%`),
    ].join("\n"));
  },
};

const scaling: Lab = {
  summary: "scaling laws (Hoffmann et al. 2022, Kaplan et al. 2020): N × D sweep of char GPTs, resumable runs.csv, L(N, D) fit with bootstrap intervals, compute-optimal allocation",
  usage: "circuitscope lab scaling [--corpus ../shared/data/tinyshakespeare.txt] [--sizes 1x16,1x32,2x32,3x48,4x64] [--tokens 65536,131072,262144,524288,1048576] [--batch 16] [--ctx 64] [--lr 0.002] [--seed 0] [--eval-iters 40] [--bootstrap 200] [--stop-after STEPS] [--out scaling-report] [--json]",
  run(flags, out) {
    const int = (name: string, def: number, min = 1) => {
      const v = flags.num(name, def);
      if (!(Number.isInteger(v) && v >= min)) throw new UsageError(`--${name} must be an integer >= ${min}, got ${v}`);
      return v;
    };
    const sizes = flags.str("sizes", "1x16,1x32,2x32,3x48,4x64").split(",").map((s) => {
      const m = /^(\d+)x(\d+)$/.exec(s.trim());
      if (!m) throw new UsageError(`--sizes: each size is LAYERSxD_MODEL (e.g. 2x32), got "${s}"`);
      return { layers: Number(m[1]), dModel: Number(m[2]) };
    });
    const tokens = flags.str("tokens", "65536,131072,262144,524288,1048576").split(",").map((s) => {
      const v = Number(s);
      if (!(Number.isFinite(v) && v > 0)) throw new UsageError(`--tokens: each budget must be a positive number of tokens, got "${s}"`);
      return v;
    });
    const corpus = flags.str("corpus", "../shared/data/tinyshakespeare.txt"), dir = flags.str("out", "scaling-report");
    const opts = {
      corpus, outDir: dir, sizes, tokens, batch: int("batch", 16), ctx: int("ctx", 64), lr: flags.num("lr", 2e-3), seed: int("seed", 0, 0),
      evalIters: int("eval-iters", 40), resamples: int("bootstrap", 200, 0),
    };
    const stop = flags.str("stop-after");
    const stopAfter = stop === undefined ? undefined : Number(stop);
    flags.checkUnknown();
    if (stopAfter !== undefined && !(Number.isInteger(stopAfter) && stopAfter > 0)) throw new UsageError(`--stop-after must be a positive integer, got ${stop}`);
    if (!(opts.lr > 0)) throw new UsageError(`--lr must be > 0, got ${opts.lr}`);
    if (!existsSync(corpus)) throw new UsageError(`${corpus}: no such file (give --corpus)`);
    let runs: SweepRun[];
    try { runs = planSweep({ ...opts, dHead: 16 }); } catch (e) { throw new UsageError((e as Error).message); }
    // The bar counts work so its ETA weighs big models right: a step's 6 × parameters × tokens FLOP (vocabulary
    // ~100) plus a fixed overhead worth ~0.25 GFLOP, which dominates the smallest models (measured on 2 cores).
    const cost = (r: SweepRun) => 0.25 + 6 * opts.batch * opts.ctx * (r.layers * r.dModel * (12 * r.dModel + 2 * opts.ctx) + 200 * r.dModel) / 1e9;
    const bar = progress(`sweep of ${runs.length} runs (GFLOP-equivalent work)`, Math.round(runs.reduce((t, r) => t + cost(r) * r.steps, 0)));
    let owed = 0;
    const ticked = new Map<string, number>();
    const advance = (x: number, extra = "") => { owed += x; const n = Math.floor(owed); if (n > 0) { owed -= n; bar.tick(n, extra); } };
    const result = runScalingLab({
      ...opts, stopAfter,
      onStep: (r, step, loss) => { advance(cost(r) * (step - (ticked.get(r.name) ?? step - 1)), `${r.name} loss ${loss.toFixed(3)}`); ticked.set(r.name, step); },
      onRun: (row, skipped) => {
        const r = runs.find((x) => x.layers === row.layers && x.dModel === row.d_model && x.steps === row.steps);
        if (skipped && r) advance(cost(r) * r.steps, `${r.name} (done before)`);
        else out.info(`  N=${row.N} D=${row.D}: val loss ${row.val_loss.toFixed(4)} (${row.seconds.toFixed(1)} s)`);
      },
    });
    bar.done();
    if (result.analysis) out.info(`fit: L-BFGS from the Hoffmann grid and ${opts.resamples} bootstrap resamples in ${(result.analysis.seconds.fit + result.analysis.seconds.bootstrap).toFixed(1)} s`);
    const settings = `circuitscope lab scaling --sizes ${sizes.map((s) => `${s.layers}x${s.dModel}`).join(",")} --tokens ${tokens.join(",")} --batch ${opts.batch} --ctx ${opts.ctx} --lr ${opts.lr} --seed ${opts.seed}`;
    writeReport(dir, renderScalingReport(result, settings), out); // runs.csv is beside them, written run by run
    const sum = scalingLabSummary(result), f = sum.fit;
    out.result({ out: dir, ...sum }, () => {
      if (!f) return `scaling lab: ${result.sweep.stopped ? "stopped early; rerun the same command to continue" : "too few runs to fit"} (${result.sweep.rows.length} runs in ${result.sweep.csv})`;
      const iv = f.intervals, ci = (k: "E" | "A" | "B" | "alpha" | "beta" | "a" | "b") => (iv ? ` [${iv[k].lo.toPrecision(3)}, ${iv[k].hi.toPrecision(3)}]` : "");
      return [
        `scaling lab: ${result.sweep.rows.length} runs, ${result.seconds.toFixed(1)} s, report in ${join(dir, "report.md")}`,
        `L(N, D) = ${f.law.E.toPrecision(4)}${ci("E")} + ${f.law.A.toPrecision(4)}/N^${f.law.alpha.toPrecision(3)}${ci("alpha")} + ${f.law.B.toPrecision(4)}/D^${f.law.beta.toPrecision(3)}${ci("beta")}`,
        `compute-optimal: N* ∝ C^${f.allocation.a.toFixed(3)}${ci("a")}, D* ∝ C^${f.allocation.b.toFixed(3)}${ci("b")} (Hoffmann et al. 2022: 0.46, 0.54)`,
        `Kaplan: α_N ${sum.kaplanGrid!.LN.alpha.toFixed(3)}, α_D ${sum.kaplanGrid!.LD.alpha.toFixed(3)}, α_C ${sum.kaplanGrid!.LC.alpha.toFixed(3)} (Kaplan et al. 2020: 0.076, 0.095, 0.050)`,
      ].join("\n");
    });
  },
};

const labs: Record<string, Lab> = { superposition, grokking, induction, emergence, scaling };

export const lab: Command = {
  name: "lab",
  summary: "reproduce a paper's result end to end: " + Object.keys(labs).join(", "),
  usage: ["circuitscope lab <name> [options]", ...Object.entries(labs).map(([k, l]) => `  ${k.padEnd(14)} ${l.summary}\n    ${l.usage}`)].join("\n"),
  run(pos, flags, out) {
    const name = pos[0];
    const l = name !== undefined ? labs[name] : undefined;
    if (!l) throw new UsageError(name ? `unknown lab "${name}" (labs: ${Object.keys(labs).join(", ")})` : `which lab? (${Object.keys(labs).join(", ")})`);
    return l.run(flags, out);
  },
};
