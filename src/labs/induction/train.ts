// Training for the induction-heads lab (Olsson et al. 2022, "In-context Learning and Induction
// Heads", https://transformer-circuits.pub/2022/in-context-learning-and-induction-heads/): a 2-layer
// attention-only transformer trained from scratch (seeded) on repeated random token sequences, logging
// per step the total loss, the loss on the first (unpredictable) segment and on the repeats, and every
// logEvery steps the induction and previous-token detector scores of every head. Not the analysis
// (analysis.ts) nor the report (report.ts).
import { headDetectorScores, repeatedRandomTokens } from "../../analysis/index.js";
import { makeConfig } from "../../model/config.js";
import { HookedTransformer } from "../../model/transformer.js";
import { AdamW } from "../../nn/optim.js";
import { backward, noGrad } from "../../tensor/autodiff.js";
import { scope } from "../../tensor/memory.js";
import { crossEntropy } from "../../tensor/ops/nn.js";
import { slice } from "../../tensor/ops/movement.js";
import { Rng } from "../../tensor/rng.js";
import { Tensor } from "../../tensor/tensor.js";

export interface InductionTrainOptions {
  seed?: number; // e.g. 0
  steps?: number; // e.g. 600
  half?: number; // longest random segment, e.g. 12 (n_ctx = 2 * half)
  batch?: number; // e.g. 32
  lr?: number; // e.g. 6e-3
  weightDecay?: number; // e.g. 0.01
  nHeads?: number; // per layer, e.g. 2
  dHead?: number; // e.g. 16
  dVocab?: number; // random tokens, e.g. 40 (plus a BOS token when bos)
  bos?: boolean; // e.g. true
  /** Detector scores every logEvery steps (and at step 0 and the end), e.g. 10. */
  logEvery?: number;
  onStep?: (step: number, loss: number, repeatedLoss: number) => void;
}

export interface InductionBatch {
  tokens: Tensor; // [batch, 2 * half] int32
  targets: Tensor; // [batch, 2 * half - 1] next tokens; -1 until the first copy starts (unpredictable)
  all: Tensor; // [batch, 2 * half - 1] every next token
  first: Tensor; // [batch, 2 * half - 1] next tokens inside the first segment only, -1 elsewhere
}

/**
 * Each row a random segment of length L (uniform in [4, half]) repeated to fill 2 * half tokens. The
 * length varies per row, so no fixed positional offset finds the copied token: only an induction
 * circuit (previous-token head → induction head, K-composition) predicts the repeats.
 */
/** Shortest random segment of a training row. */
export const MIN_SEGMENT = 4;

export function inductionBatch(rng: Rng, batch: number, half: number, dVocab: number, bos = true): InductionBatch {
  // With bos, every row starts with token dVocab (outside the random tokens' range): an attention sink,
  // so heads with nothing to attend to (an induction head before any repeat) need not copy noise.
  const o = bos ? 1 : 0, T = 2 * half + o, data = new Int32Array(batch * T);
  const rep = new Int32Array(batch * (T - 1)), all = new Int32Array(batch * (T - 1)), first = new Int32Array(batch * (T - 1));
  for (let b = 0; b < batch; b++) {
    const L = rng.int(MIN_SEGMENT, half + 1);
    if (bos) data[b * T] = dVocab;
    for (let i = 0; i < 2 * half; i++) data[b * T + o + i] = i < L ? rng.int(0, dVocab) : data[b * T + o + i - L]!;
    // Position p predicts token p + 1: predictable once p's own token is a copy (segment index p - o >= L),
    // so the induction head has a previous occurrence to look up; the first copied token is not.
    for (let p = 0; p < T - 1; p++) {
      const next = data[b * T + p + 1]!, k = b * (T - 1) + p, copy = p - o >= L;
      all[k] = next; rep[k] = copy ? next : -1; first[k] = copy ? -1 : next;
    }
  }
  const shape = [batch, T - 1];
  return { tokens: new Tensor(data, [batch, T]), targets: new Tensor(rep, shape), all: new Tensor(all, shape), first: new Tensor(first, shape) };
}

/** A 2-layer attention-only model, no LayerNorm and no biases (the circuits are exactly the weight products), embeddings at std 0.3. */
export function inductionModel(opts: { seed: number; half: number; nHeads: number; dHead: number; dVocab: number; bos: boolean }): HookedTransformer {
  return attnOnlyModel({ seed: opts.seed, nCtx: 2 * opts.half + (opts.bos ? 1 : 0), dVocab: opts.dVocab + (opts.bos ? 1 : 0), dModel: 32, nHeads: opts.nHeads, dHead: opts.dHead });
}

export interface AttnOnlyOptions {
  seed: number;
  nCtx: number; // e.g. 25
  dVocab: number; // e.g. 41
  dModel: number; // e.g. 32
  nHeads: number; // per layer, e.g. 2
  dHead: number; // e.g. 16
  /** Positional embeddings at init: random (std 0.3) or Vaswani et al.'s sinusoids scaled to RMS 0.3. */
  posInit?: "random" | "sinusoidal";
  /** Std of W_Q and W_K at init (default GPT-2's 0.02). */
  qkStd?: number;
}

/** The lab's 2-layer attention-only transformer (no LayerNorm, no biases), for random tokens or text. */
export function attnOnlyModel(opts: AttnOnlyOptions): HookedTransformer {
  const cfg = makeConfig({
    architecture: "attn-only", d_model: opts.dModel, n_layers: 2, n_heads: opts.nHeads, d_head: opts.dHead, d_vocab: opts.dVocab, n_ctx: opts.nCtx,
    normalization_type: null, attn_bias: false, positional_embedding_type: "standard",
  });
  const model = new HookedTransformer(cfg).initWeights(opts.seed);
  // Larger embeddings than GPT-2's 0.02 so attention is not uniform at step 0 (faster start).
  noGrad(() => {
    const rng = new Rng(opts.seed + 1), W_pos = model.pos_embed!.W_pos, d = opts.dModel;
    for (const p of [model.embed.W_E, W_pos]) {
      for (let i = 0; i < p.size; i++) p.data[p.offset + i] = 0.3 * rng.normal();
      p.version++;
    }
    // Sinusoids make "one position back" a rotation, which a rank-d_head QK circuit can express at any n_ctx.
    if (opts.posInit === "sinusoidal") {
      const amp = 0.3 * Math.SQRT2;
      for (let t = 0; t < opts.nCtx; t++) for (let i = 0; i + 1 < d; i += 2) {
        const w = Math.pow(10000, -i / d);
        W_pos.data[W_pos.offset + t * d + i] = amp * Math.sin(t * w);
        W_pos.data[W_pos.offset + t * d + i + 1] = amp * Math.cos(t * w);
      }
      W_pos.version++;
    }
    if (opts.qkStd !== undefined) {
      const r = new Rng(opts.seed + 3);
      for (const b of [0, 1]) for (const p of [model.blocks.at(b).attn.W_Q, model.blocks.at(b).attn.W_K]) {
        for (let i = 0; i < p.size; i++) p.data[p.offset + i] = opts.qkStd * r.normal();
        p.version++;
      }
    }
  });
  return model;
}

export interface DetectorLog {
  steps: number[]; // the steps at which the scores were measured (before that step's update)
  induction: number[][][]; // [log point][layer][head]
  previousToken: number[][][];
}

export interface InductionTraining {
  model: HookedTransformer;
  options: Required<Omit<InductionTrainOptions, "onStep">>;
  /** Per step: mean loss over every next token, over the first segment (unpredictable), over the repeats. */
  loss: number[];
  firstLoss: number[];
  repeatedLoss: number[];
  detectors: DetectorLog;
  seconds: number;
}

/** Length of the detectors' random segment and how many rows of it they average over. */
export const DETECTOR_SEGMENT = 10, DETECTOR_BATCH = 8;

/** Tokens for the detectors: (BOS,) a random DETECTOR_SEGMENT-token segment and its copy, fixed per seed. */
export function detectorTokens(dVocab: number, seed: number, bos: boolean): Tensor {
  return repeatedRandomTokens({ seqLen: DETECTOR_SEGMENT, batch: DETECTOR_BATCH, dVocab, seed: seed + 99, ...(bos ? { bos: dVocab } : {}) });
}

export function trainInduction(opts: InductionTrainOptions = {}): InductionTraining {
  const o = {
    seed: opts.seed ?? 0, steps: opts.steps ?? 600, half: opts.half ?? 12, batch: opts.batch ?? 32, lr: opts.lr ?? 6e-3,
    weightDecay: opts.weightDecay ?? 0.01, nHeads: opts.nHeads ?? 2, dHead: opts.dHead ?? 16, dVocab: opts.dVocab ?? 40, bos: opts.bos ?? true, logEvery: opts.logEvery ?? 10,
  };
  const t0 = performance.now();
  const model = inductionModel(o);
  const opt = new AdamW(model.parameters(), { lr: o.lr, weightDecay: o.weightDecay });
  const rng = new Rng(o.seed + 2), detToks = detectorTokens(o.dVocab, o.seed, o.bos);
  const loss: number[] = [], firstLoss: number[] = [], repeatedLoss: number[] = [];
  const detectors: DetectorLog = { steps: [], induction: [], previousToken: [] };
  const detect = (step: number) => {
    const s = noGrad(() => scope(() => headDetectorScores(model, detToks)));
    detectors.steps.push(step); detectors.induction.push(s.induction_head); detectors.previousToken.push(s.previous_token_head);
  };
  const T = 2 * o.half + (o.bos ? 1 : 0);
  for (let step = 0; step < o.steps; step++) {
    if (step % o.logEvery === 0) detect(step);
    const [l, f, r] = scope(() => {
      const b = inductionBatch(rng, o.batch, o.half, o.dVocab, o.bos);
      const logits = slice(model.forward(b.tokens), 1, 0, T - 1); // [batch, pos, d_vocab]
      const total = crossEntropy(logits, b.all);
      const parts = noGrad(() => [crossEntropy(logits, b.first, { ignoreIndex: -1 }).item(), crossEntropy(logits, b.targets, { ignoreIndex: -1 }).item()]);
      opt.zeroGrad();
      backward(total);
      opt.step();
      return [total.item(), parts[0]!, parts[1]!];
    });
    loss.push(l!); firstLoss.push(f!); repeatedLoss.push(r!);
    opts.onStep?.(step, l!, r!);
  }
  detect(o.steps);
  return { model, options: o, loss, firstLoss, repeatedLoss, detectors, seconds: (performance.now() - t0) / 1000 };
}
