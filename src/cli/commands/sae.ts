// `circuitscope sae train|eval|dashboard`: sparse autoencoders and transcoders on a model snapshot.
//  - train: collect activations at --hook (and --hook-out, for a transcoder) over windows of a text
//    corpus, train, and write the SAE in SAELens's layout (cfg.json, sae_weights.safetensors) into
//    --out with a resumable checkpoint, the loss curve and an evaluation on held-out windows.
//  - eval: reconstruction metrics (MSE, explained variance, L0, L1, dead/dense latents, density
//    histogram) and downstream ones (CE with the SAE spliced in vs clean vs zero-ablated, CE
//    recovered, KL) on corpus windows.
//  - dashboard: feature dashboards of chosen latents (examples, histogram, density, logit effects).
// Progress goes to stderr; --json prints one JSON document on stdout; --out files are atomic.
import fs from "node:fs";
import path from "node:path";
import { checkHookName, type HookName } from "../../model/hooks.js";
import type { HookedTransformer } from "../../model/transformer.js";
import { barChart, histogramChart } from "../../plot/bars.js";
import { svgGrid } from "../../plot/grid.js";
import { lineChart, esc, fmtTick } from "../../plot/svg.js";
import { htmlPage, legendSvg, tokenSpans } from "../../plot/tokens.js";
import { collectActivations, modelBatchSource } from "../../sae/activations.js";
import { architectureOf, SaeConfigError, SAE_ACTIVATIONS, type SaeActivation } from "../../sae/config.js";
import { latentDashboards, type LatentDashboard } from "../../sae/dashboard.js";
import { loadSae, saveSae, SaeLoadError } from "../../sae/io.js";
import { downstreamMetrics, reconstructionMetrics, type DownstreamMetrics, type ReconstructionMetrics } from "../../sae/metrics.js";
import { describeIllConditioned } from "../../analysis/conditioning.js";
import { SparseAutoencoder } from "../../sae/model.js";
import { trainSae, type SaeStepLog, type SaeTrainConfig } from "../../sae/train.js";
import { CheckpointError } from "../../train/checkpoint.js";
import { intAtLeast as int, positive, UsageError, type Flags } from "../args.js";
import type { Command } from "../command.js";
import type { Output } from "../io.js";
import { intList, writeOutputFiles } from "../outputs.js";
import { corpusWindows } from "../../techniques/corpus.js";
import { loadWithTokenizer } from "../legacy-inputs.js";
import { shownToken } from "../../techniques/inputs.js";
import { isLocalPath } from "../../io/hub-cache.js";

/** "93.1% recovered", or why the fraction is not meaningful (CE_zero − CE_clean ~0). */

const CORPUS_FLAGS = `  --corpus F          a text file, read line by line and cut into windows of --ctx tokens
  --ctx T             tokens per window (default 32; a BOS token goes first unless --no-bos, and its position is left out)
  --batch-windows B   windows per forward pass (default 8)
  --no-bos            no BOS token before each window
  --skip-positions S  leave the first S positions of every window out of training, metrics and dashboards
                      (default 1 with a BOS token, else 0; e.g. 1 for a char model whose first position is an outlier)`;

const USAGE = `circuitscope sae train <snapshot> --corpus file.txt --hook <hook> --out <dir> [options] [--json]
circuitscope sae eval <snapshot> <sae-folder> --corpus file.txt [--max-windows 32] [--skip-windows 0] [--out dir] [--json]
circuitscope sae dashboard <snapshot> <sae-folder> --corpus file.txt [--latents 0,5 | --top 4] [--out dir] [--json]
common:
${CORPUS_FLAGS}
train:
  --hook H            hook point read, e.g. blocks.0.hook_resid_post
  --hook-out H        a different hook point to reconstruct: a transcoder (e.g. --hook blocks.0.ln2.hook_normalized --hook-out blocks.0.hook_mlp_out)
  --skip              transcoders: add a linear skip path W_skip
  --activation A      relu (L1 penalty weighted by decoder norms; default), topk or jumprelu (L0 penalty)
  --d-sae N           number of latents (default 8 × d_in)
  --k K               topk: latents kept per token (default 8)
  --steps N           optimizer steps (default 1000)
  --batch N           tokens per step (default 256)
  --lr X              Adam's learning rate (default 1e-3); --lr-warmup N steps (default 0); --lr-decay N final steps decayed linearly to 0 (default steps/5)
  --sparsity X        λ of the L1 (relu) or L0 (jumprelu) penalty (default 5 for relu, 1 for jumprelu)
  --sparsity-warmup N steps over which λ grows from 0 (default steps/20)
  --bandwidth X       jumprelu: ε of the pseudo-derivative (default 0.001); --threshold X its initial θ (default 0.001)
  --aux-k N           topk: AuxK's k (default d_in/2); --aux-coef X its coefficient (default 1/32)
  --dead-tokens N     a latent silent for N tokens counts as dead (default 10000)
  --resample-every N  relu/jumprelu: re-initialise dead latents toward badly reconstructed inputs every N steps (default 0: never)
  --b-dec-init I      geometric_median (default), mean or zeros
  --normalize N       expected_average_only_in (default: train on activations scaled to mean norm √d, folded back into the saved weights) or none
  --max-windows W     corpus windows used for training (default 256); the next --eval-windows (default 16) are held out for evaluation
  --chunk-windows W   windows per shuffle buffer (default 64)
  --seed S            initialisation and shuffling seed (default 0)
  --checkpoint-every N  steps between checkpoints in <dir>/checkpoint.safetensors (default 100)
  --resume            continue from the checkpoint (same settings required); --stop-after N stops after N steps in all
  --out dir           writes cfg.json and sae_weights.safetensors (SAELens layout), checkpoint.safetensors, sae-train.svg, sae-train.json
eval:
  --max-windows W     windows evaluated (default 32), after skipping --skip-windows (default 0)
  --bins N            density histogram bins (default 30)
  --out dir           writes sae-density.svg and sae-eval.json
dashboard:
  --latents LIST      comma-separated latent indices; or
  --top N             the N latents that fire on the most tokens of the corpus (default 4)
  --k K               examples per latent (default 8); --before/--after tokens of context (default 10 / 4)
  --max-windows W     windows scanned (default 64); --bins N histogram bins (default 40); --logits N tokens per side (default 10)
  --out dir           writes sae-dashboard.html, sae-dashboard.svg and sae-dashboard.json`;

const SUBS = ["train", "eval", "dashboard"] as const;


/** The model, tokenizer and corpus windows every subcommand starts from. */
function corpusSetup(folder: string | undefined, flags: Flags) {
  const corpusFile = flags.str("corpus");
  const ctx = int("ctx", flags.num("ctx", 32), 1), batchWindows = int("batch-windows", flags.num("batch-windows", 8), 1);
  const noBos = flags.bool("no-bos");
  const skipFlag = flags.num("skip-positions", -1);
  if (skipFlag !== -1 && !(Number.isInteger(skipFlag) && skipFlag >= 0)) throw new UsageError(`--skip-positions must be a non-negative integer, got ${skipFlag}`);
  return {
    ctx, batchWindows,
    open(maxWindows: number) {
      if (folder === undefined) throw new UsageError("sae needs a snapshot folder");
      if (corpusFile === undefined) throw new UsageError("sae needs --corpus file.txt");
      if (!fs.existsSync(corpusFile)) throw new UsageError(`--corpus: no file at ${corpusFile}`);
      if (isLocalPath(folder) && !fs.existsSync(folder)) throw new UsageError(`no snapshot folder at ${folder}`);
      const { model, tokenizer, config } = loadWithTokenizer(folder);
      const bos = noBos ? undefined : tokenizer.bosTokenId ?? undefined;
      const lead = bos === undefined ? 0 : 1, skip = skipFlag === -1 ? lead : skipFlag;
      if (ctx + lead > config.n_ctx) throw new UsageError(`--ctx ${ctx}${lead ? " (plus BOS)" : ""} exceeds n_ctx = ${config.n_ctx}`);
      if (skip >= ctx + lead) throw new UsageError(`--skip-positions ${skip} leaves no position of a ${ctx + lead}-token window`);
      const windows = corpusWindows(tokenizer, fs.readFileSync(corpusFile, "utf8"), ctx, maxWindows, bos);
      if (windows.length === 0) throw new UsageError(`--corpus: ${corpusFile} has fewer than --ctx = ${ctx} tokens`);
      return { model, tokenizer, windows, skip, corpusFile, bos: bos ?? null };
    },
  };
}

/** A hook name the model has, as a UsageError with near matches otherwise. */
function checkHook(model: HookedTransformer, flag: string, name: string): HookName {
  try { checkHookName(name, new Set<string>(model.hookNames())); } catch (e) { throw new UsageError(`--${flag}: ${(e as Error).message}`); }
  return name as HookName;
}

/** The width of a hook's activation (one window through the model), checking it is [batch, pos, d]. */
function hookWidth(model: HookedTransformer, hook: HookName, window: readonly number[], skip: number): number {
  try {
    return collectActivations(model, [window], { hookIn: hook, hookOut: hook, skipPositions: skip, batchWindows: 1 }).dIn;
  } catch (e) {
    throw new UsageError(`${hook}: ${(e as Error).message}`);
  }
}

function openSae(folder: string | undefined): SparseAutoencoder {
  if (folder === undefined) throw new UsageError("sae eval and sae dashboard need an SAE folder (cfg.json, sae_weights.safetensors) after the snapshot");
  try { return loadSae(folder); } catch (e) {
    if (e instanceof SaeLoadError || e instanceof SaeConfigError) throw new UsageError(e.message);
    throw e;
  }
}

/** The SAE's hooks exist in the model and have its widths. */
function checkSaeFits(model: HookedTransformer, sae: SparseAutoencoder, window: readonly number[], skip: number): void {
  const hin = checkHook(model, "sae's hook_name", sae.cfg.hook_name), hout = checkHook(model, "sae's hook_name_out", sae.cfg.hook_name_out);
  const dIn = hookWidth(model, hin, window, skip), dOut = hout === hin ? dIn : hookWidth(model, hout, window, skip);
  if (dIn !== sae.cfg.d_in) throw new UsageError(`the SAE has d_in ${sae.cfg.d_in} but ${hin} has width ${dIn} in this model`);
  if (dOut !== sae.cfg.d_out) throw new UsageError(`the SAE has d_out ${sae.cfg.d_out} but ${hout} has width ${dOut} in this model`);
}

const batchesOf = <T>(xs: readonly T[], n: number): T[][] => Array.from({ length: Math.ceil(xs.length / n) }, (_, i) => xs.slice(i * n, (i + 1) * n));

function evaluate(model: HookedTransformer, sae: SparseAutoencoder, windows: number[][], skip: number, batchWindows: number, bins: number) {
  const spec = { hookIn: sae.cfg.hook_name as HookName, hookOut: sae.cfg.hook_name_out as HookName, skipPositions: skip, batchWindows };
  const reconstruction = reconstructionMetrics(sae, collectActivations(model, windows, spec), { bins });
  const downstream = downstreamMetrics(model, sae, batchesOf(windows, batchWindows), { skipPositions: skip });
  return { reconstruction, downstream };
}

const summary = (r: ReconstructionMetrics) =>
  `MSE ${r.mse.toExponential(3)}, explained variance ${r.explainedVariance.toFixed(4)}, L0 ${r.l0.toFixed(2)}, L1 ${r.l1.toFixed(3)}, dead ${(100 * r.deadFraction).toFixed(1)}%, dense ${(100 * r.denseFraction).toFixed(1)}% over ${r.tokens} tokens`;

const densitySvg = (r: ReconstructionMetrics, title: string) =>
  histogramChart(r.density.edges, r.density.counts, { title: `${title} (${r.density.dead} dead latents not shown)`, xLabel: "log10 firing frequency", yLabel: "latents", width: 480, height: 260 });

function trainCmd(pos: string[], flags: Flags, out: Output): void {
  const hookText = flags.str("hook"), hookOutText = flags.str("hook-out"), outDir = flags.str("out");
  const activation = flags.str("activation", "relu") as SaeActivation;
  const dSaeText = flags.str("d-sae"), k = int("k", flags.num("k", 8), 1), skipPath = flags.bool("skip");
  const steps = int("steps", flags.num("steps", 1000), 1), batch = int("batch", flags.num("batch", 256), 1);
  const lr = positive("lr", flags.num("lr", 1e-3)), lrWarmup = int("lr-warmup", flags.num("lr-warmup", 0), 0), lrDecay = int("lr-decay", flags.num("lr-decay", Math.floor(steps / 5)), 0);
  const sparsity = flags.num("sparsity", activation === "jumprelu" ? 1 : 5), sparsityWarmup = int("sparsity-warmup", flags.num("sparsity-warmup", Math.floor(steps / 20)), 0);
  const bandwidth = positive("bandwidth", flags.num("bandwidth", 0.001)), threshold = flags.num("threshold", 0.001);
  const auxKText = flags.str("aux-k"), auxCoef = flags.num("aux-coef", 1 / 32), deadTokens = int("dead-tokens", flags.num("dead-tokens", 10_000), 1);
  const resampleEvery = int("resample-every", flags.num("resample-every", 0), 0);
  const bDecInit = flags.str("b-dec-init", "geometric_median") as SaeTrainConfig["bDecInit"];
  const normalize = flags.str("normalize", "expected_average_only_in") as SaeTrainConfig["normalizeActivations"];
  const maxWindows = int("max-windows", flags.num("max-windows", 256), 1), evalWindows = int("eval-windows", flags.num("eval-windows", 16), 0);
  const chunkWindows = int("chunk-windows", flags.num("chunk-windows", 64), 1), seed = int("seed", flags.num("seed", 0), 0);
  const checkpointEvery = int("checkpoint-every", flags.num("checkpoint-every", 100), 0), resume = flags.bool("resume");
  const stopAfterText = flags.str("stop-after");
  const setup = corpusSetup(pos[0], flags);
  flags.checkUnknown();
  if (pos.length > 1) throw new UsageError(`unexpected arguments: ${pos.slice(1).join(" ")}`);
  if (hookText === undefined) throw new UsageError("sae train needs --hook <hook point>, e.g. blocks.0.hook_resid_post");
  if (outDir === undefined) throw new UsageError("sae train needs --out <dir>");
  if (!SAE_ACTIVATIONS.includes(activation)) throw new UsageError(`--activation must be ${SAE_ACTIVATIONS.join(", ")}, got ${activation}`);
  if (!["geometric_median", "mean", "zeros"].includes(bDecInit)) throw new UsageError(`--b-dec-init must be geometric_median, mean or zeros, got ${bDecInit}`);
  if (normalize !== "none" && normalize !== "expected_average_only_in") throw new UsageError(`--normalize must be expected_average_only_in or none, got ${normalize}`);
  if (!(sparsity >= 0)) throw new UsageError(`--sparsity must be >= 0, got ${sparsity}`);
  if (skipPath && hookOutText === undefined) throw new UsageError("--skip is for transcoders: give --hook-out too");
  const stopAfter = stopAfterText === undefined ? undefined : int("stop-after", Number(stopAfterText), 1);
  const ckpt = path.join(outDir, "checkpoint.safetensors");
  if (!resume && fs.existsSync(ckpt)) throw new UsageError(`${ckpt} exists: pass --resume to continue that run, or choose another --out`);

  const { model, windows: all, skip, corpusFile, bos } = setup.open(maxWindows + evalWindows);
  const hook = checkHook(model, "hook", hookText);
  const hookOut = hookOutText === undefined ? hook : checkHook(model, "hook-out", hookOutText);
  if (all.length <= evalWindows) throw new UsageError(`--corpus: ${corpusFile} gives ${all.length} windows of ${setup.ctx} tokens; need more than --eval-windows ${evalWindows}`);
  const trainWindows = all.slice(0, all.length - evalWindows), heldOut = all.slice(all.length - evalWindows);
  const dIn = hookWidth(model, hook, all[0]!, skip), dOut = hookOut === hook ? dIn : hookWidth(model, hookOut, all[0]!, skip);
  const dSae = dSaeText === undefined ? 8 * dIn : int("d-sae", Number(dSaeText), 1);
  if (activation === "topk" && k > dSae) throw new UsageError(`--k ${k} exceeds --d-sae ${dSae}`);
  const chunkTokens = Math.min(chunkWindows, trainWindows.length) * (setup.ctx + (bos === null ? 0 : 1) - skip);
  if (chunkTokens < batch) throw new UsageError(`a shuffle buffer of ${Math.min(chunkWindows, trainWindows.length)} windows holds ${chunkTokens} tokens, fewer than --batch ${batch}: raise --chunk-windows/--max-windows or lower --batch`);
  const sae = new SparseAutoencoder({
    activation, d_in: dIn, d_sae: dSae, d_out: dOut, k: activation === "topk" ? k : null, hook_name: hook, hook_name_out: hookOut, skip: skipPath,
    model_name: path.basename(path.resolve(pos[0]!)), context_size: setup.ctx + (bos === null ? 0 : 1), prepend_bos: bos !== null, dataset_path: corpusFile,
  }, { seed, threshold, decoderNorm: activation === "topk" ? 1 : 0.1 });
  const config: Partial<SaeTrainConfig> = {
    steps, lr, lrWarmupSteps: lrWarmup, lrDecaySteps: lrDecay, sparsityCoefficient: sparsity, sparsityWarmupSteps: sparsityWarmup,
    bandwidth, auxK: auxKText === undefined ? null : int("aux-k", Number(auxKText), 1), auxCoefficient: auxCoef, deadTokens, bDecInit, checkpointEvery, normalizeActivations: normalize, resampleEvery,
  };
  out.info(`${sae.cfg.hook_name === sae.cfg.hook_name_out ? "SAE" : "transcoder"} ${activation} ${dIn} → ${dSae} → ${dOut} on ${hook}${hookOut !== hook ? ` → ${hookOut}` : ""}; ${trainWindows.length} training windows × ${setup.ctx} tokens, ${heldOut.length} held out`);
  const data = modelBatchSource(model, trainWindows, { hookIn: hook, hookOut, skipPositions: skip, batchWindows: setup.batchWindows, chunkWindows, batchTokens: batch, seed });
  const logs: SaeStepLog[] = [];
  fs.mkdirSync(outDir, { recursive: true });
  let result;
  try {
    result = trainSae(sae, data, {
      config, checkpointFile: ckpt, resume, stopAfter, logEvery: Math.max(1, Math.floor(steps / 50)),
      onStep: (l) => {
        logs.push(l);
        out.info(`step ${l.step}/${steps}: loss ${l.loss.toFixed(5)} mse ${l.mse.toFixed(5)} L0 ${l.l0.toFixed(2)} dead ${(100 * l.dead).toFixed(1)}%`);
      },
    });
  } catch (e) {
    if (e instanceof CheckpointError) throw new UsageError(e.message);
    throw e;
  }
  const files = saveSae(sae, outDir);
  const evaluation = heldOut.length > 0 && result.steps === steps ? evaluate(model, sae, heldOut, skip, setup.batchWindows, 30) : null;
  const doc = {
    model: pos[0], sae: { architecture: architectureOf(sae.cfg), ...sae.cfg }, folder: outDir, config: { ...config, batchTokens: batch, chunkWindows, seed },
    corpus: { file: corpusFile, trainWindows: trainWindows.length, heldOutWindows: heldOut.length, ctx: setup.ctx, bos, skippedPositions: skip },
    steps: result.steps, resumedFrom: result.resumedFrom, activationScale: result.scale, seconds: result.seconds, final: result.final, deadFraction: result.deadFraction,
    evaluation, checkpoint: ckpt, files: [...files] as string[],
  };
  const curve = lineChart([
    { name: "MSE", x: logs.map((l) => l.step), y: logs.map((l) => l.mse) },
    { name: "total loss", x: logs.map((l) => l.step), y: logs.map((l) => l.loss), dashed: true },
  ], { title: `${activation} SAE on ${hook}${hookOut !== hook ? ` → ${hookOut}` : ""}: training loss`, xLabel: "step", yLabel: "loss per token", yLog: true });
  const l0 = lineChart([{ name: "L0", x: logs.map((l) => l.step), y: logs.map((l) => l.l0) }], { title: "latents active per token (L0)", xLabel: "step", yLabel: "L0", height: 260 });
  writeOutputFiles(outDir, [["sae-train.svg", svgGrid([curve, l0], { cols: 1 })]], "sae-train", doc);
  out.result(doc, () => [
    `trained ${result.steps} steps${result.resumedFrom !== null ? ` (resumed at ${result.resumedFrom})` : ""} in ${result.seconds.toFixed(1)} s; final batch: ${result.final ? `mse ${result.final.mse.toFixed(5)} L0 ${result.final.l0.toFixed(2)}` : "—"}`,
    ...(evaluation ? [
      `held out: ${summary(evaluation.reconstruction)}`,
      `${ceRecoveredText(evaluation.downstream)}, KL ${evaluation.downstream.klSae.toFixed(4)}`,
    ] : []),
    `files: ${doc.files.join(", ")}`,
  ].join("\n"));
}

/** The CE losses and the fraction recovered, (CE_zero − CE_sae) / (CE_zero − CE_clean); ill-conditioned when zero-ablation barely changes the loss. */
export function ceRecoveredText(d: Pick<DownstreamMetrics, "ceClean" | "ceSae" | "ceZero" | "ceRecovered" | "ceRecoveredConditioning">): string {
  const ce = `CE clean ${d.ceClean.toFixed(4)}, with SAE ${d.ceSae.toFixed(4)}, zero-ablated ${d.ceZero.toFixed(4)}`;
  return d.ceRecoveredConditioning.illConditioned
    ? `${ce}: CE recovered not meaningful (${describeIllConditioned(d.ceRecoveredConditioning, "CE_zero − CE_clean")})`
    : `${ce}: ${(100 * d.ceRecovered).toFixed(1)}% recovered`;
}

function evalCmd(pos: string[], flags: Flags, out: Output): void {
  const maxWindows = int("max-windows", flags.num("max-windows", 32), 1), skipWindows = int("skip-windows", flags.num("skip-windows", 0), 0);
  const bins = int("bins", flags.num("bins", 30), 1), outDir = flags.str("out");
  const setup = corpusSetup(pos[0], flags);
  flags.checkUnknown();
  if (pos.length > 2) throw new UsageError(`unexpected arguments: ${pos.slice(2).join(" ")}`);
  const sae = openSae(pos[1]);
  const { model, windows: all, skip, corpusFile } = setup.open(skipWindows + maxWindows);
  const windows = all.slice(skipWindows);
  if (windows.length === 0) throw new UsageError(`--corpus: no windows left after --skip-windows ${skipWindows}`);
  checkSaeFits(model, sae, windows[0]!, skip);
  out.info(`evaluating ${pos[1]} on ${windows.length} windows × ${setup.ctx} tokens`);
  const { reconstruction, downstream } = evaluate(model, sae, windows, skip, setup.batchWindows, bins);
  const doc = {
    model: pos[0], sae: pos[1], hook: sae.cfg.hook_name, hookOut: sae.cfg.hook_name_out, architecture: sae.cfg.activation,
    corpus: { file: corpusFile, windows: windows.length, skipWindows, ctx: setup.ctx, skippedPositions: skip },
    reconstruction, downstream, files: [] as string[],
  };
  if (outDir !== undefined) writeOutputFiles(outDir, [["sae-density.svg", densitySvg(reconstruction, "latent density")]], "sae-eval", doc);
  out.result(doc, () => [
    summary(reconstruction),
    `${ceRecoveredText(downstream)}; KL(clean ‖ SAE) ${downstream.klSae.toFixed(4)} (zero-ablated ${downstream.klZero.toFixed(4)})`,
    ...(doc.files.length ? [`files: ${doc.files.join(", ")}`] : []),
  ].join("\n"));
}

/** One latent's card, as the neurons command's: statistics, histogram, logit effects, coloured examples. */
function card(d: LatentDoc, hist: string, logits: string): string {
  const max = Math.max(1e-12, ...d.examples.map((e) => Math.abs(e.value)));
  const h = d.histogram;
  const stats = `density ${(100 * d.density).toFixed(3)}% of ${h.count} tokens · max ${fmtTick(h.max)} · mean ${fmtTick(h.mean)}`;
  const rows = d.examples.map((e) => `<div class="ex"><span class="v">${e.value.toFixed(4)}</span>` + tokenSpans(e.tokens.map((t) => t.str), e.tokens.map((t) => t.act), max, e.offset) + "</div>").join("");
  return `<h2>latent ${d.latent}</h2><p>${esc(stats)}</p><div style="display:flex;gap:24px;align-items:flex-start;flex-wrap:wrap"><div>${hist}</div><div>${logits}</div>` +
    `<div>${legendSvg(max, `latent ${d.latent}`, `lg${d.latent}`)}<p style="font-size:12px;color:#555">top ${d.examples.length} examples; outlined: the max token</p></div></div>${rows}`;
}

interface LatentDoc {
  latent: number; density: number; histogram: LatentDashboard["histogram"];
  logits: { via: string; positive: { id: number; str: string; value: number }[]; negative: { id: number; str: string; value: number }[] } | null;
  examples: { value: number; sequence: number; position: number; offset: number; tokens: { id: number; str: string; act: number }[] }[];
}

function dashboardCmd(pos: string[], flags: Flags, out: Output): void {
  const latentsText = flags.str("latents"), topText = flags.str("top");
  const k = int("k", flags.num("k", 8), 1), before = int("before", flags.num("before", 10), 0), after = int("after", flags.num("after", 4), 0);
  const maxWindows = int("max-windows", flags.num("max-windows", 64), 1), bins = int("bins", flags.num("bins", 40), 1), nLogits = int("logits", flags.num("logits", 10), 1);
  const outDir = flags.str("out");
  const setup = corpusSetup(pos[0], flags);
  flags.checkUnknown();
  if (pos.length > 2) throw new UsageError(`unexpected arguments: ${pos.slice(2).join(" ")}`);
  if (latentsText !== undefined && topText !== undefined) throw new UsageError("give --latents or --top, not both");
  const listed = latentsText === undefined ? null : intList(latentsText);
  if (latentsText !== undefined && listed === null) throw new UsageError(`--latents must be comma-separated integers, got "${latentsText}"`);
  const top = topText === undefined ? 4 : int("top", Number(topText), 1);
  const sae = openSae(pos[1]);
  for (const l of listed ?? []) if (l < 0 || l >= sae.cfg.d_sae) throw new UsageError(`--latents: latent ${l} is out of range: the SAE has latents 0..${sae.cfg.d_sae - 1}`);
  const { model, tokenizer, windows, skip, corpusFile } = setup.open(maxWindows);
  checkSaeFits(model, sae, windows[0]!, skip);
  const batches = batchesOf(windows, setup.batchWindows);
  let latents = listed;
  if (!latents) {
    // --top: the latents with the largest activation anywhere in the corpus.
    const r = reconstructionMetrics(sae, collectActivations(model, windows, { hookIn: sae.cfg.hook_name as HookName, hookOut: sae.cfg.hook_name_out as HookName, skipPositions: skip, batchWindows: setup.batchWindows }));
    latents = r.firingFrequency.map((f, i) => [f, i] as const).filter(([f]) => f > 0).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, top).map(([, i]) => i);
    if (latents.length === 0) throw new UsageError("no latent fires on this corpus");
  }
  out.info(`dashboards of latents ${latents.join(", ")} over ${windows.length} windows × ${setup.ctx} tokens`);
  const dash = latentDashboards(model, sae, batches, { latents, k, contextBefore: before, contextAfter: after, bins, skipPositions: skip, topLogits: nLogits });
  const str = (id: number) => tokenizer.decode([id]);
  const docs: LatentDoc[] = dash.map((d) => ({
    latent: d.latent, density: d.density, histogram: d.histogram,
    logits: d.logits && { via: d.logits.via, positive: d.logits.positive.map((e) => ({ id: e.token, str: str(e.token), value: e.value })), negative: d.logits.negative.map((e) => ({ id: e.token, str: str(e.token), value: e.value })) },
    examples: d.examples.map((e) => ({ value: e.value, sequence: e.sequence, position: e.position, offset: e.offset, tokens: e.tokens.map((id, t) => ({ id, str: str(id), act: e.acts[t]! })) })),
  }));
  const doc = {
    model: pos[0], sae: pos[1], hook: sae.cfg.hook_name, hookOut: sae.cfg.hook_name_out,
    corpus: { file: corpusFile, windows: windows.length, ctx: setup.ctx, skippedPositions: skip },
    selection: listed ? { mode: "list" } : { mode: "top", top, rank: "density" }, k, context: { before, after },
    latents: docs, files: [] as string[],
  };
  if (outDir !== undefined) {
    const hist = (d: LatentDoc, title: string) => histogramChart(d.histogram.edges, d.histogram.counts, { title, xLabel: "activation", logCounts: true, width: 360, height: 220 });
    const logitBars = (d: LatentDoc) => d.logits
      ? barChart([...d.logits.positive.slice(0, 8), ...d.logits.negative.slice(0, 8).reverse()].map((t) => ({ label: shownToken(t.str), value: t.value, color: t.value >= 0 ? "#2c7fb8" : "#d95f0e" })), { title: `latent ${d.latent}: logit effects`, xLabel: "W_dec · W_U", width: 360 })
      : `<svg xmlns="http://www.w3.org/2000/svg" width="360" height="40"><text x="8" y="24" font-size="12">no logit effects: the decoder does not write to the residual stream</text></svg>`;
    const html = htmlPage(`SAE latents of ${sae.cfg.hook_name}: feature dashboards`,
      `<p>${esc(`${pos[1]}; ${windows.length} windows of ${setup.ctx} tokens from ${corpusFile}; ${listed ? "chosen latents" : `the ${top} densest latents`}`)}</p>` +
      docs.map((d) => card(d, hist(d, `latent ${d.latent} activations`), logitBars(d))).join(""));
    const grid = svgGrid(docs.flatMap((d) => [hist(d, `latent ${d.latent}`), logitBars(d)]), { title: `SAE latents of ${sae.cfg.hook_name}`, cols: 2 });
    writeOutputFiles(outDir, [["sae-dashboard.html", html], ["sae-dashboard.svg", grid]], "sae-dashboard", doc);
  }
  out.result(doc, () => [
    `latents of ${sae.cfg.hook_name} over ${windows.length} windows × ${setup.ctx} tokens`,
    ...docs.flatMap((d) => [
      `latent ${d.latent}: density ${(100 * d.density).toFixed(3)}%, max ${d.histogram.max.toFixed(4)}` +
        (d.logits ? `; promotes ${d.logits.positive.slice(0, 5).map((t) => JSON.stringify(t.str)).join(" ")}, suppresses ${d.logits.negative.slice(0, 5).map((t) => JSON.stringify(t.str)).join(" ")}` : ""),
      ...d.examples.map((e) => `  ${e.value.toFixed(4).padStart(9)}  ${e.tokens.map((t, i) => (i === e.offset ? `[[${shownToken(t.str)}]]` : shownToken(t.str))).join("")}`),
    ]),
    ...(doc.files.length ? [`files: ${doc.files.join(", ")}`] : []),
  ].join("\n"));
}

export const saeCmd: Command = {
  name: "sae",
  summary: "train, evaluate and inspect sparse autoencoders and transcoders (SAELens layout)",
  usage: USAGE,
  run(pos, flags, out) {
    const [sub, ...rest] = pos;
    switch (sub as (typeof SUBS)[number]) {
      case "train": return trainCmd(rest, flags, out);
      case "eval": return evalCmd(rest, flags, out);
      case "dashboard": return dashboardCmd(rest, flags, out);
      default: throw new UsageError(sub === undefined ? `sae needs a subcommand: ${SUBS.join(", ")}` : `unknown sae subcommand "${sub}"; use ${SUBS.join(", ")}`);
    }
  },
};
