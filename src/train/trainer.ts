// The training loop: AdamW with nanoGPT's warm-up + cosine schedule, gradient clipping, periodic
// evaluation on fixed held-out batches, a JSONL metrics log, atomic checkpoints and exact resume.
// It trains anything with parameters() and loss(batch); `lmObjective` adapts a HookedTransformer.
//
// Resume is exact: a checkpoint holds the weights, the optimizer's buffers and step counts, the
// batch sampler's state and the step, so killing a run and resuming it replays the same batches
// with the same state and reaches bitwise the same weights as an uninterrupted run (given the
// engine's deterministic kernels). A checkpoint is ONE safetensors file (tensors plus the trainer
// state as JSON metadata) written to a temporary file and renamed, so it is never half-written;
// ckpt.json beside it is a human-readable copy that resume does not need.
//
// Library code: nothing here prints; progress goes to the onProgress callback.
import fs from "node:fs";
import path from "node:path";
import { writeFileAtomic } from "../io/safetensors.js";
import { AdamW, clipGradNorm, cosineSchedule } from "../nn/index.js";
import { CheckpointError, loadCheckpointFile, readCheckpointJson, saveCheckpointFile, type CheckpointCore } from "./checkpoint.js";
export { CheckpointError } from "./checkpoint.js";
import { HookedTransformer } from "../model/transformer.js";
import { backward, noGrad } from "../tensor/autodiff.js";
import { scope } from "../tensor/memory.js";
import { crossEntropy } from "../tensor/ops/nn.js";
import { slice } from "../tensor/ops/movement.js";
import { Tensor } from "../tensor/tensor.js";
import { lineChart } from "../plot/svg.js";
import { BatchSampler, type SamplerState, type TokenFile } from "./data.js";

/** What the trainer can train: parameters to update and a scalar loss of a [batch, ctx + 1] token batch. */
export interface Trainable {
  parameters(): Tensor[];
  loss(batch: Tensor): Tensor;
  /** Optional names of parameters() (same order), recorded in checkpoints and checked on resume. */
  parameterNames?(): string[];
}

/**
 * Next-token cross-entropy of a HookedTransformer on windows [batch, ctx + 1]: inputs are the first
 * ctx columns, targets the last ctx (nanoGPT's x, y), so the model needs n_ctx ≥ ctx only.
 */
export function lmObjective(model: HookedTransformer): Trainable {
  return {
    parameters: () => model.parameters(),
    parameterNames: () => model.namedParameters().map(([n]) => n),
    loss: (batch) => {
      const W = batch.shape[1]!;
      const logits = model.forward(slice(batch, 1, 0, W - 1).contiguous()); // [batch, pos, d_vocab]
      return crossEntropy(logits, slice(batch, 1, 1, W).contiguous());
    },
  };
}

export interface TrainConfig {
  iters: number; // e.g. 2000 optimizer steps in all
  batch: number; // e.g. 12
  ctx: number; // e.g. 64 predicted positions per window
  lr: number; // e.g. 1e-3, the peak
  minLr: number; // e.g. 1e-4, reached at decayIters
  warmupIters: number; // e.g. 100
  decayIters: number; // e.g. 2000 (nanoGPT's lr_decay_iters)
  weightDecay: number; // e.g. 0.1, on matrices only (biases, norms: 0)
  beta1: number; // e.g. 0.9
  beta2: number; // e.g. 0.99 (nanoGPT shakespeare_char)
  gradClip: number; // e.g. 1.0; 0 disables clipping
  evalEvery: number; // e.g. 200; 0 disables evaluation
  evalIters: number; // e.g. 20 held-out batches per evaluation
  checkpointEvery: number; // e.g. 200; 0 checkpoints only at the end (when outDir is set)
  seed: number; // e.g. 0, seeds the batch sampler
}

/** nanoGPT's config/train_shakespeare_char.py, with evaluation scaled to a shared CPU. */
export function defaultTrainConfig(over: Partial<TrainConfig> = {}): TrainConfig {
  const iters = over.iters ?? 2000;
  return {
    iters, batch: 12, ctx: 64, lr: 1e-3, minLr: 1e-4,
    warmupIters: Math.min(100, Math.floor(iters / 10)), decayIters: iters,
    weightDecay: 0.1, beta1: 0.9, beta2: 0.99, gradClip: 1, evalEvery: 200, evalIters: 20, checkpointEvery: 200, seed: 0,
    ...over,
  };
}

export interface Progress {
  step: number; // optimizer steps done
  iters: number;
  loss: number; // this step's training loss
  lr: number;
  valLoss?: number; // when this step evaluated
  elapsedMs: number; // in this process
}

/** One line of metrics.jsonl. */
export interface MetricsRecord {
  step: number;
  loss?: number;
  lr?: number;
  grad_norm?: number;
  val_loss?: number;
  elapsed_s: number; // wall time in the process that logged it
}

export interface TrainOptions {
  model: Trainable;
  train: TokenFile;
  /** Held-out tokens; evaluation is skipped without them. */
  val?: TokenFile;
  config?: Partial<TrainConfig>;
  /** Where checkpoints, metrics.jsonl and curve.svg go; nothing is written without it. */
  outDir?: string;
  /** Continue from outDir's checkpoint if there is one. */
  resume?: boolean;
  /** Stop (as if killed) once this many steps are done, without a final checkpoint; for tests and time limits. */
  stopAfter?: number;
  /** Extra JSON saved in every checkpoint (e.g. the model config). */
  meta?: Record<string, unknown>;
  onProgress?: (p: Progress) => void;
}

export interface TrainResult {
  steps: number; // optimizer steps done in all
  resumedFrom: number; // 0 for a fresh run
  finalLoss: number; // the last step's training loss (from the checkpoint if no step ran here; NaN if none)
  finalValLoss?: number; // the last evaluation's
  elapsedMs: number; // in this process
  stepsPerSec: number; // in this process, evaluation and checkpoints included
  stopped: boolean; // true when stopAfter ended the run early
}

export const CHECKPOINT_FILE = "ckpt.safetensors";
const STATE_KEY = "circuitscope.trainer";
const CHECKPOINT_VERSION = 1;

interface CheckpointState extends CheckpointCore {
  step: number;
  config: TrainConfig;
  sampler: SamplerState;
  lastLoss?: number; // the training loss of step `step`
  lastValLoss?: number;
  meta?: Record<string, unknown>;
}

/** Matrices get weight decay, vectors (biases, norm weights) do not, as nanoGPT's configure_optimizers. */
function paramGroups(params: Tensor[], wd: number) {
  const decay = params.filter((p) => p.ndim >= 2), rest = params.filter((p) => p.ndim < 2);
  return [{ params: decay, weightDecay: wd }, { params: rest, weightDecay: 0 }].filter((g) => g.params.length > 0);
}

/** Mean loss over evalIters fixed batches (a fresh sampler each time, so every evaluation sees the same windows). */
function evaluate(model: Trainable, val: TokenFile, cfg: TrainConfig): number {
  const sampler = new BatchSampler(val, cfg.batch, cfg.ctx, cfg.seed + 1);
  let sum = 0;
  for (let i = 0; i < cfg.evalIters; i++) sum += noGrad(() => scope(() => model.loss(sampler.next()).item()));
  return sum / cfg.evalIters;
}

export function train(opts: TrainOptions): TrainResult {
  const cfg = defaultTrainConfig(opts.config);
  for (const k of ["iters", "batch", "ctx", "decayIters"] as const)
    if (!Number.isInteger(cfg[k]) || cfg[k] < 1) throw new RangeError(`train: ${k} must be a positive integer, got ${cfg[k]}`);
  for (const k of ["warmupIters", "evalEvery", "evalIters", "checkpointEvery", "seed"] as const)
    if (!Number.isInteger(cfg[k]) || cfg[k] < 0) throw new RangeError(`train: ${k} must be a non-negative integer, got ${cfg[k]}`);
  if (cfg.evalEvery > 0 && opts.val && cfg.evalIters < 1) throw new RangeError("train: evalIters must be ≥ 1 when evaluating");
  const params = opts.model.parameters();
  const opt = new AdamW(paramGroups(params, cfg.weightDecay), { lr: cfg.lr, beta1: cfg.beta1, beta2: cfg.beta2, weightDecay: cfg.weightDecay });
  const sampler = new BatchSampler(opts.train, cfg.batch, cfg.ctx, cfg.seed);
  const schedule = cosineSchedule({ maxLr: cfg.lr, minLr: cfg.minLr, warmupSteps: cfg.warmupIters, decaySteps: cfg.decayIters });
  const flatParams = opt.groups.flatMap((g) => g.params); // the optimizer's order, which its state follows
  const names = opts.model.parameterNames ? nameInOrder(opts.model.parameterNames(), params, flatParams) : null;

  const out = opts.outDir;
  const ckptFile = out ? path.join(out, CHECKPOINT_FILE) : null;
  const metricsFile = out ? path.join(out, "metrics.jsonl") : null;
  let start = 0, loss = NaN;
  let lastVal: number | undefined;
  if (out) {
    fs.mkdirSync(out, { recursive: true });
    removeStaleTemps(out);
  }
  if (opts.resume && ckptFile && fs.existsSync(ckptFile)) {
    const st = loadCheckpoint(ckptFile, flatParams, names, opt, cfg);
    sampler.setState(st.sampler);
    start = st.step;
    lastVal = st.lastValLoss;
    loss = st.lastLoss ?? NaN;
  }
  // A killed run may have logged steps after its last checkpoint; those will be redone.
  if (metricsFile) trimMetrics(metricsFile, start);

  const t0 = performance.now();
  const log = (r: Omit<MetricsRecord, "elapsed_s">) => {
    if (metricsFile) fs.appendFileSync(metricsFile, JSON.stringify({ ...r, elapsed_s: round((performance.now() - t0) / 1000, 3) }) + "\n");
  };
  const save = (step: number) => {
    if (!ckptFile) return;
    saveCheckpoint(ckptFile, { step, cfg, sampler: sampler.state(), names, opt, flatParams, lastLoss: loss, lastVal, meta: opts.meta });
  };

  if (start === 0 && opts.val && cfg.evalEvery > 0) {
    lastVal = evaluate(opts.model, opts.val, cfg);
    log({ step: 0, val_loss: lastVal });
  }
  let step = start, stopped = false;
  while (step < cfg.iters) {
    if (opts.stopAfter !== undefined && step >= opts.stopAfter) { stopped = true; break; }
    const lr = schedule(step);
    opt.setLr(lr);
    // One step's tensors are recycled when the scope closes; parameters, grads and AdamW state are pinned.
    const r = scope(() => {
      const l = opts.model.loss(sampler.next());
      backward(l);
      const gradNorm = cfg.gradClip > 0 ? clipGradNorm(params, cfg.gradClip) : NaN;
      opt.step();
      opt.zeroGrad();
      return { loss: l.item(), gradNorm };
    });
    loss = r.loss;
    step++;
    let valLoss: number | undefined;
    if (opts.val && cfg.evalEvery > 0 && (step % cfg.evalEvery === 0 || step === cfg.iters)) lastVal = valLoss = evaluate(opts.model, opts.val, cfg);
    log({ step, loss: r.loss, lr, ...(Number.isFinite(r.gradNorm) ? { grad_norm: r.gradNorm } : {}), ...(valLoss !== undefined ? { val_loss: valLoss } : {}) });
    if (cfg.checkpointEvery > 0 && step % cfg.checkpointEvery === 0 && step !== cfg.iters) save(step);
    opts.onProgress?.({ step, iters: cfg.iters, loss: r.loss, lr, valLoss, elapsedMs: performance.now() - t0 });
  }
  if (!stopped && step > start) save(step);
  if (out && metricsFile) writeCurve(metricsFile, path.join(out, "curve.svg"));
  const elapsedMs = performance.now() - t0;
  return { steps: step, resumedFrom: start, finalLoss: loss, finalValLoss: lastVal, elapsedMs, stepsPerSec: (step - start) / (elapsedMs / 1000), stopped };
}

/** Temporary files a killed run left mid-write (writeFileAtomic names them .<file>.<pid>.<random>.tmp). */
function removeStaleTemps(dir: string): void {
  for (const f of fs.readdirSync(dir))
    if (/^\.(ckpt\.safetensors|ckpt\.json|metrics\.jsonl|curve\.svg)\..*\.tmp$/.test(f)) fs.rmSync(path.join(dir, f), { force: true });
}

const round = (x: number, d: number) => Math.round(x * 10 ** d) / 10 ** d;

/** The names of flatParams, given names in params' order. */
function nameInOrder(names: string[], params: Tensor[], flat: Tensor[]): string[] {
  if (names.length !== params.length) throw new Error(`train: parameterNames() gives ${names.length} names for ${params.length} parameters`);
  const byParam = new Map(params.map((p, i) => [p, names[i]!]));
  return flat.map((p) => byParam.get(p)!);
}

function saveCheckpoint(file: string, s: { step: number; cfg: TrainConfig; sampler: SamplerState; names: string[] | null; opt: AdamW; flatParams: Tensor[]; lastLoss: number; lastVal?: number; meta?: Record<string, unknown> }): void {
  const state = saveCheckpointFile(file, STATE_KEY, {
    flatParams: s.flatParams, names: s.names, opt: s.opt, version: CHECKPOINT_VERSION,
    state: {
      step: s.step, config: s.cfg, sampler: s.sampler,
      ...(Number.isFinite(s.lastLoss) ? { lastLoss: s.lastLoss } : {}),
      ...(s.lastVal !== undefined ? { lastValLoss: s.lastVal } : {}),
      ...(s.meta ? { meta: s.meta } : {}),
    },
  });
  const { optimizer: _o, ...readable } = state;
  writeFileAtomic(file.replace(/\.safetensors$/, "") + ".json", (fd) => fs.writeFileSync(fd, JSON.stringify(readable, null, 2) + "\n"));
}

/** The trainer state in a checkpoint file (step, config, sampler, meta), without loading tensors. */
export function readCheckpointState(file: string): CheckpointState {
  return readCheckpointJson<CheckpointState>(file, STATE_KEY, CHECKPOINT_VERSION);
}

function loadCheckpoint(file: string, flat: Tensor[], names: string[] | null, opt: AdamW, cfg: TrainConfig): CheckpointState {
  const st = readCheckpointState(file);
  // Settings that change which batches are drawn or how they are used must match for an exact resume.
  for (const k of ["batch", "ctx", "seed", "lr", "minLr", "warmupIters", "decayIters", "weightDecay", "beta1", "beta2", "gradClip"] as const)
    if (st.config[k] !== cfg[k]) throw new CheckpointError(`${file}: checkpoint was trained with ${k} = ${st.config[k]}, this run has ${cfg[k]}; resume with the same settings`);
  if (!(Number.isInteger(st.step) && st.step >= 0)) throw new CheckpointError(`${file}: checkpoint step ${st.step} must be an integer >= 0`);
  if (st.step > cfg.iters) throw new CheckpointError(`${file}: checkpoint is at step ${st.step}, beyond iters = ${cfg.iters}`);
  return loadCheckpointFile<CheckpointState>(file, STATE_KEY, CHECKPOINT_VERSION, flat, names, opt).state;
}

/** Keep the complete metrics lines with step ≤ upTo (rewritten atomically); a fresh run (upTo 0) starts an empty log. */
function trimMetrics(file: string, upTo: number): void {
  if (!fs.existsSync(file)) return;
  const keep = upTo === 0 ? [] : readMetrics(file).filter((r) => r.step <= upTo);
  writeFileAtomic(file, (fd) => fs.writeFileSync(fd, keep.map((r) => JSON.stringify(r) + "\n").join("")));
}

/** Parse metrics.jsonl, skipping a torn last line (a kill mid-write). */
export function readMetrics(file: string): MetricsRecord[] {
  const lines = fs.readFileSync(file, "utf8").split("\n");
  const out: MetricsRecord[] = [];
  for (const line of lines) {
    if (!line.trim()) continue;
    try { out.push(JSON.parse(line) as MetricsRecord); } catch { /* a partial line from a killed write */ }
  }
  return out;
}

/** curve.svg: training loss per step and validation loss at each evaluation. */
export function writeCurve(metricsFile: string, svgFile: string): void {
  const recs = readMetrics(metricsFile);
  const tr = recs.filter((r) => r.loss !== undefined), va = recs.filter((r) => r.val_loss !== undefined);
  const svg = lineChart([
    { name: "train loss", x: tr.map((r) => r.step), y: tr.map((r) => r.loss!) },
    { name: "val loss", x: va.map((r) => r.step), y: va.map((r) => r.val_loss!) },
  ], { title: "training curve", xLabel: "step", yLabel: "cross-entropy (nats/token)" });
  writeFileAtomic(svgFile, (fd) => fs.writeFileSync(fd, svg));
}
