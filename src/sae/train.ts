// Training an SAE or transcoder on batches of activations: Adam, linear LR warm-up and final decay,
// a linear warm-up of the sparsity coefficient, b_dec initialised at the geometric median (or mean)
// of the first chunk, dead-latent tracking (tokens since each latent last fired) feeding AuxK for
// TopK or optional resampling for ReLU/JumpReLU, unit-norm decoder rows for TopK, θ ≥ 0 for JumpReLU, and checkpoints (train/checkpoint.ts,
// written atomically) from which a killed run resumes bit-identically. The library neither prints
// nor exits: progress goes to the onProgress callback.
import fs from "node:fs";
import { AdamW } from "../nn/optim.js";
import { backward, noGrad } from "../tensor/autodiff.js";
import { scope } from "../tensor/memory.js";
import { Rng } from "../tensor/rng.js";
import { Tensor } from "../tensor/tensor.js";
import { loadCheckpointFile, saveCheckpointFile, readCheckpointJson, CheckpointError, type CheckpointCore } from "../train/checkpoint.js";
import type { BatchSource } from "./activations.js";
import { configToJson } from "./config.js";
import { saeLoss } from "./loss.js";
import { geometricMedian, rowMean, type SparseAutoencoder } from "./model.js";

export interface SaeTrainConfig {
  steps: number;              // optimizer steps, e.g. 2000
  lr: number;                 // Adam's peak learning rate, e.g. 1e-3
  lrWarmupSteps: number;      // linear warm-up from 0, e.g. 0
  lrDecaySteps: number;       // linear decay to 0 over the final steps (SAELens's lr_decay_steps), e.g. steps / 5
  sparsityCoefficient: number; // λ: L1 (relu) or L0 (jumprelu); ignored by topk, e.g. 5
  sparsityWarmupSteps: number; // λ grows linearly from 0 over these steps (SAELens's l1_warm_up_steps)
  bandwidth: number;          // JumpReLU's ε, e.g. 0.001
  auxK: number | null;        // TopK's AuxK k (null: d_in / 2)
  auxCoefficient: number;     // α, e.g. 1/32
  deadTokens: number;         // a latent that has not fired for this many tokens counts as dead, e.g. 10_000
  bDecInit: "geometric_median" | "mean" | "zeros";
  beta1: number; beta2: number; // Adam's betas, e.g. 0.9, 0.999
  checkpointEvery: number;    // steps between checkpoints (0: none)
  /**
   * "expected_average_only_in" trains on activations scaled so their mean norm is √d (SAELens's
   * option of that name, from Anthropic's April 2024 update), which makes one λ fit every hook, and
   * folds the scale back into the weights at the end; "none" trains on them as they are.
   */
  normalizeActivations: "none" | "expected_average_only_in";
  /**
   * ReLU and JumpReLU: every this many steps (0: never; never during the final LR decay) re-initialise
   * dead latents toward inputs the SAE reconstructs badly (Anthropic's "Towards Monosemanticity"
   * resampling) and reset their Adam moments. TopK revives its dead latents with AuxK instead.
   */
  resampleEvery: number;
}

export const defaultSaeTrainConfig: SaeTrainConfig = {
  steps: 1000, lr: 1e-3, lrWarmupSteps: 0, lrDecaySteps: 200, sparsityCoefficient: 5, sparsityWarmupSteps: 100,
  bandwidth: 0.001, auxK: null, auxCoefficient: 1 / 32, deadTokens: 10_000, bDecInit: "geometric_median",
  beta1: 0.9, beta2: 0.999, checkpointEvery: 0, normalizeActivations: "none", resampleEvery: 0,
};

export interface SaeStepLog { step: number; loss: number; mse: number; sparsity: number; aux: number | null; l0: number; dead: number; lr: number; coefficient: number; resampled: number }

export interface SaeTrainOptions {
  config?: Partial<SaeTrainConfig>;
  /** Where checkpoints go (with checkpointEvery > 0) and what `resume` reads. */
  checkpointFile?: string;
  resume?: boolean;
  /** Stop after this step count in all (the checkpoint is written), to continue with resume. */
  stopAfter?: number;
  onStep?: (log: SaeStepLog) => void;
  /** How often onStep is called (default every 50 steps, and at the last). */
  logEvery?: number;
}

export interface SaeTrainResult {
  steps: number;
  resumedFrom: number | null;
  /** Fraction of latents that had not fired for deadTokens tokens when training stopped. */
  deadFraction: number;
  final: SaeStepLog | null;
  /** The factors the input and target activations were multiplied by in training (1 without normalisation). */
  scale: { in: number; out: number };
  seconds: number;
}

interface SaeCheckpointState { step: number; sae: Record<string, unknown>; config: SaeTrainConfig; scale: { in: number; out: number } }
const CHECKPOINT_KEY = "circuitscope.sae";
const CHECKPOINT_VERSION = 1;

export const lrAt = (c: SaeTrainConfig, step: number): number => {
  const warm = c.lrWarmupSteps > 0 ? Math.min(1, (step + 1) / c.lrWarmupSteps) : 1;
  const left = c.steps - step;
  const decay = c.lrDecaySteps > 0 && left <= c.lrDecaySteps ? left / c.lrDecaySteps : 1;
  return c.lr * warm * decay;
};
export const coefficientAt = (c: SaeTrainConfig, step: number): number =>
  c.sparsityCoefficient * (c.sparsityWarmupSteps > 0 ? Math.min(1, (step + 1) / c.sparsityWarmupSteps) : 1);

function checkConfig(c: SaeTrainConfig): void {
  const pos = (k: keyof SaeTrainConfig, allowZero = false) => {
    const v = c[k] as number;
    if (!(typeof v === "number" && Number.isFinite(v) && (allowZero ? v >= 0 : v > 0))) throw new RangeError(`sae train: ${k} must be ${allowZero ? "≥ 0" : "> 0"}, got ${v}`);
  };
  pos("steps"); pos("lr"); pos("bandwidth"); pos("deadTokens");
  pos("lrWarmupSteps", true); pos("lrDecaySteps", true); pos("sparsityCoefficient", true); pos("sparsityWarmupSteps", true); pos("auxCoefficient", true); pos("checkpointEvery", true); pos("resampleEvery", true);
}

/** Unit-norm decoder rows (TopK keeps them so; Gao et al. 2024). */
function normaliseDecoder(sae: SparseAutoencoder): void {
  const W = sae.W_dec, d = sae.cfg.d_out;
  for (let i = 0; i < sae.cfg.d_sae; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += W.data[i * d + j]! ** 2;
    const c = s > 0 ? 1 / Math.sqrt(s) : 1;
    for (let j = 0; j < d; j++) W.data[i * d + j]! *= c;
  }
  W.version++;
}

/** Train `sae` on `data` in place. */
export function trainSae(sae: SparseAutoencoder, data: BatchSource, opts: SaeTrainOptions = {}): SaeTrainResult {
  const c: SaeTrainConfig = { ...defaultSaeTrainConfig, ...opts.config };
  checkConfig(c);
  if (data.dIn !== sae.cfg.d_in) throw new RangeError(`sae train: activations have width ${data.dIn}, the SAE's d_in is ${sae.cfg.d_in}`);
  if (data.dOut !== sae.cfg.d_out) throw new RangeError(`sae train: target activations have width ${data.dOut}, the SAE's d_out is ${sae.cfg.d_out}`);
  if (c.normalizeActivations !== "none" && c.normalizeActivations !== "expected_average_only_in") throw new RangeError(`sae train: normalizeActivations must be none or expected_average_only_in, got ${c.normalizeActivations}`);
  const t0 = Date.now();
  const params = sae.parameters(), names = sae.namedParameters().map(([n]) => n);
  const opt = new AdamW(params, { lr: c.lr, beta1: c.beta1, beta2: c.beta2, eps: 1e-8, weightDecay: 0 });
  const dSae = sae.cfg.d_sae;
  // Tokens since each latent last fired (float64 so counts stay exact).
  const since = new Tensor(new Float64Array(dSae), [dSae]);
  let start = 0, resumedFrom: number | null = null;
  let scale = c.normalizeActivations === "none" ? { in: 1, out: 1 } : normalisingScale(data, sae.cfg.apply_b_dec_to_input);
  const file = opts.checkpointFile;
  if (opts.resume) {
    if (!file || !fs.existsSync(file)) throw new CheckpointError(`sae train: nothing to resume: no checkpoint at ${file}`);
    const st = readCheckpointJson<SaeCheckpointState & CheckpointCore>(file, CHECKPOINT_KEY, CHECKPOINT_VERSION);
    if (JSON.stringify(st.sae) !== JSON.stringify(configToJson(sae.cfg))) throw new CheckpointError(`${file}: the checkpoint is of a different SAE (${JSON.stringify(st.sae)})`);
    if (JSON.stringify(st.config) !== JSON.stringify(c)) throw new CheckpointError(`${file}: the checkpoint was trained with different settings; resume needs the same ones`);
    const { state, tensors } = loadCheckpointFile<SaeCheckpointState & CheckpointCore>(file, CHECKPOINT_KEY, CHECKPOINT_VERSION, params, names, opt);
    since.data.set(tensors.get("sae.since_fired")!.toArray());
    start = resumedFrom = state.step;
    scale = state.scale;
  } else {
    const s = data.sample();
    if (c.bDecInit !== "zeros") {
      const target = s.y.map((v) => v * scale.out), d = s.dOut;
      const init = c.bDecInit === "mean" ? rowMean(target, d) : geometricMedian(target, d);
      noGrad(() => { sae.b_dec.data.set(init); sae.b_dec.version++; });
    }
    if (sae.cfg.activation === "topk") normaliseDecoder(sae);
  }
  const save = (step: number) => {
    if (!file) return;
    saveCheckpointFile(file, CHECKPOINT_KEY, {
      flatParams: params, names, opt, version: CHECKPOINT_VERSION,
      state: { step, sae: configToJson(sae.cfg), config: c, scale }, extra: new Map([["sae.since_fired", since]]),
    });
  };
  const end = Math.min(c.steps, opts.stopAfter ?? c.steps);
  const logEvery = opts.logEvery ?? 50;
  let last: SaeStepLog | null = null;
  for (let step = start; step < end; step++) {
    const lr = lrAt(c, step), coefficient = coefficientAt(c, step);
    opt.setLr(lr);
    const log = scope(() => {
      const raw = data.batch(step);
      const x = scale.in === 1 ? raw.x : raw.x.mul(scale.in), y = raw.y === raw.x ? x : scale.out === 1 ? raw.y : raw.y.mul(scale.out);
      const dead = sae.cfg.activation === "topk" ? deadMask(since, c.deadTokens, sae.cfg.dtype) : null;
      const parts = saeLoss(sae, x, y, { sparsityCoefficient: coefficient, bandwidth: c.bandwidth, deadMask: dead, auxK: c.auxK ?? undefined, auxCoefficient: c.auxCoefficient });
      backward(parts.loss);
      opt.step();
      opt.zeroGrad();
      // Which latents fired in this batch, and the batch's L0.
      const f = parts.acts.toArray(), n = x.shape[0]!;
      const fired = new Uint8Array(dSae);
      let active = 0;
      for (let i = 0; i < f.length; i++) if (f[i]! > 0) { fired[i % dSae] = 1; active++; }
      let deadCount = 0;
      for (let j = 0; j < dSae; j++) {
        since.data[j] = fired[j] ? 0 : since.data[j]! + n;
        if (since.data[j]! >= c.deadTokens) deadCount++;
      }
      const resampleNow = c.resampleEvery > 0 && sae.cfg.activation !== "topk" && (step + 1) % c.resampleEvery === 0 && c.steps - (step + 1) > c.lrDecaySteps;
      const resampled = resampleNow && deadCount > 0 ? resampleDead(sae, opt, since, c.deadTokens, x, y, parts.recon, step) : 0;
      return {
        step: step + 1, loss: parts.loss.item(), mse: parts.mse.item(), sparsity: parts.sparsity.item(), aux: parts.aux ? parts.aux.item() : null,
        l0: active / n, dead: deadCount / dSae, lr, coefficient, resampled,
      };
    });
    noGrad(() => {
      if (sae.threshold) { const t = sae.threshold.data; for (let i = 0; i < t.length; i++) if (t[i]! < 0) t[i] = 0; sae.threshold.version++; }
      if (sae.cfg.activation === "topk") normaliseDecoder(sae);
    });
    if (!Number.isFinite(log.loss)) throw new RangeError(`sae train: the loss became ${log.loss} at step ${log.step}; lower the learning rate`);
    last = log;
    if (opts.onStep && (log.step % logEvery === 0 || log.step === end)) opts.onStep(log);
    if (file && ((c.checkpointEvery > 0 && log.step % c.checkpointEvery === 0) || log.step === end)) save(log.step);
  }
  let deadCount = 0;
  for (let j = 0; j < dSae; j++) if (since.data[j]! >= c.deadTokens) deadCount++;
  foldScale(sae, scale);
  return { steps: end, resumedFrom, deadFraction: deadCount / dSae, final: last, scale, seconds: (Date.now() - t0) / 1000 };
}

/** √d / E‖a‖ for the input and target rows of the first chunk (SAELens's expected_average_only_in). */
function normalisingScale(data: BatchSource, shared: boolean): { in: number; out: number } {
  const s = data.sample();
  const meanNorm = (rows: Float32Array, d: number) => {
    let t = 0;
    for (let i = 0; i < s.n; i++) { let q = 0; for (let j = 0; j < d; j++) q += rows[i * d + j]! ** 2; t += Math.sqrt(q); }
    return t / Math.max(s.n, 1);
  };
  const f = (rows: Float32Array, d: number) => { const m = meanNorm(rows, d); return m > 0 ? Math.sqrt(d) / m : 1; };
  const sin = f(s.x, s.dIn);
  // b_dec subtracted from the input lives in both spaces, so then both share the input's scale.
  return { in: sin, out: s.y === s.x || shared ? sin : f(s.y, s.dOut) };
}

/**
 * Turn an SAE trained on (s_in·x → s_out·y) into one on (x → y): pre-activations are unchanged when
 * W_enc ← s_in·W_enc (and, when b_dec is subtracted from the input, s_in = s_out so b_dec/s_out works
 * on both sides); the output scales back with W_dec, b_dec ← /s_out and W_skip ← ·s_in/s_out.
 */
export function foldScale(sae: SparseAutoencoder, scale: { in: number; out: number }): void {
  if (scale.in === 1 && scale.out === 1) return;
  noGrad(() => {
    const mul = (p: Tensor, k: number) => { for (let i = 0; i < p.data.length; i++) p.data[i]! *= k; p.version++; };
    mul(sae.W_enc, scale.in);
    mul(sae.W_dec, 1 / scale.out);
    mul(sae.b_dec, 1 / scale.out);
    if (sae.W_skip) mul(sae.W_skip, scale.in / scale.out);
  });
}

/**
 * Give each dead latent (silent for deadTokens tokens) a new direction: rows of the batch are drawn
 * with probability ∝ their squared reconstruction error (seeded by the step, so resumes repeat it);
 * the decoder row becomes the row's unit residual y − ŷ times the mean live decoder norm, the encoder
 * column its unit (centred) input times 0.2 × the mean live encoder norm, b_enc 0; Adam's moments of
 * those entries restart from zero. Returns how many latents were resampled.
 */
function resampleDead(sae: SparseAutoencoder, opt: AdamW, since: Tensor, deadTokens: number, x: Tensor, y: Tensor, recon: Tensor, step: number): number {
  const { d_in, d_sae, d_out } = sae.cfg;
  const dead: number[] = [];
  for (let j = 0; j < d_sae; j++) if (since.data[j]! >= deadTokens) dead.push(j);
  if (dead.length === 0 || dead.length === d_sae) return 0;
  const X = x.toArray(), Y = y.toArray(), Yh = recon.toArray(), n = x.shape[0]!;
  const err = new Float64Array(n);
  for (let r = 0; r < n; r++) { let e = 0; for (let j = 0; j < d_out; j++) e += (Y[r * d_out + j]! - Yh[r * d_out + j]!) ** 2; err[r] = e * e; }
  if (!(err.reduce((a, b) => a + b, 0) > 0)) return 0;
  const rng = new Rng(1_000_003 * (step + 1) + 17);
  const isDead = new Uint8Array(d_sae);
  for (const j of dead) isDead[j] = 1;
  const We = sae.W_enc.data, Wd = sae.W_dec.data, be = sae.b_enc.data, bd = sae.b_dec.data;
  let encNorm = 0, decNorm = 0;
  for (let j = 0; j < d_sae; j++) {
    if (isDead[j]) continue;
    let e = 0, d = 0;
    for (let i = 0; i < d_in; i++) e += We[i * d_sae + j]! ** 2;
    for (let i = 0; i < d_out; i++) d += Wd[j * d_out + i]! ** 2;
    encNorm += Math.sqrt(e); decNorm += Math.sqrt(d);
  }
  encNorm /= d_sae - dead.length; decNorm /= d_sae - dead.length;
  const sd = opt.stateDict();
  const names = sae.namedParameters().map(([k]) => k);
  const moments = (name: string) => sd.state[names.indexOf(name)]?.buffers ?? {};
  for (const j of dead) {
    const r = rng.categorical(err);
    const res = Array.from({ length: d_out }, (_, i) => Y[r * d_out + i]! - Yh[r * d_out + i]!);
    const inp = Array.from({ length: d_in }, (_, i) => X[r * d_in + i]! - (sae.cfg.apply_b_dec_to_input ? bd[i]! : 0));
    const rn = Math.hypot(...res) || 1, xn = Math.hypot(...inp) || 1;
    for (let i = 0; i < d_out; i++) Wd[j * d_out + i] = (res[i]! / rn) * decNorm;
    for (let i = 0; i < d_in; i++) We[i * d_sae + j] = (inp[i]! / xn) * 0.2 * encNorm;
    be[j] = 0;
    for (const b of Object.values(moments("W_dec"))) b.fill(0, j * d_out, (j + 1) * d_out);
    for (const b of Object.values(moments("W_enc"))) for (let i = 0; i < d_in; i++) b[i * d_sae + j] = 0;
    for (const b of Object.values(moments("b_enc"))) b[j] = 0;
    for (const b of Object.values(moments("threshold"))) b[j] = 0;
    since.data[j] = 0;
  }
  opt.loadStateDict(sd);
  for (const p of [sae.W_enc, sae.W_dec, sae.b_enc]) p.version++;
  return dead.length;
}

function deadMask(since: Tensor, deadTokens: number, dtype: "float32" | "float64"): Tensor {
  const m = new (dtype === "float64" ? Float64Array : Float32Array)(since.size);
  for (let j = 0; j < m.length; j++) m[j] = since.data[j]! >= deadTokens ? 1 : 0;
  return new Tensor(m, [m.length]);
}
