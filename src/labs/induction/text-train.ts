// Training for the text variant of the induction-heads lab (Olsson et al. 2022): the lab's 2-layer
// attention-only transformer trained on a character-level corpus (Tiny Shakespeare) with the shared
// trainer (src/train/trainer.ts), measuring at checkpoints what the paper tracks together: the
// in-context-learning score on held-out text, the loss on repeated random text, the previous-token
// and induction detector scores of every head, and the K-composition of layer-0 into layer-1 heads.
// Not the analysis (text-analysis.ts) nor the report (text-report.ts).
import { compositionScoresBetween, headDetectorScores } from "../../analysis/index.js";
import type { HookedTransformer } from "../../model/transformer.js";
import { noGrad } from "../../tensor/autodiff.js";
import { scope } from "../../tensor/memory.js";
import { crossEntropy } from "../../tensor/ops/nn.js";
import { slice } from "../../tensor/ops/movement.js";
import { Rng } from "../../tensor/rng.js";
import { Tensor } from "../../tensor/tensor.js";
import { BatchSampler, lmObjective, prepareCorpus, TokenFile, train, type CharTokenizer } from "../../train/index.js";
import { iclScore, iclWindows, perPositionLoss, type IclWindows } from "./icl.js";
import { attnOnlyModel } from "./train.js";

export interface TextTrainOptions {
  corpus: string; // a text file, e.g. ../shared/data/tinyshakespeare.txt
  tokensDir: string; // where the token files go (reused when the corpus is unchanged)
  seed?: number; // e.g. 0
  steps?: number; // e.g. 1500
  nCtx?: number; // e.g. 128 characters
  batch?: number; // e.g. 16
  lr?: number; // peak, e.g. 1e-2 (warm-up then cosine to lr/10)
  weightDecay?: number; // e.g. 0.01
  dModel?: number; // e.g. 64
  nHeads?: number; // per layer, e.g. 4
  dHead?: number; // e.g. 16
  /** Measurements every logEvery steps (and at step 0 and the end), e.g. 50. */
  logEvery?: number;
  /** Held-out windows per ICL measurement, e.g. 64. */
  evalWindows?: number;
  onStep?: (step: number, loss: number) => void;
}

export type TextOptions = Required<Omit<TextTrainOptions, "onStep">>;

/** What one checkpoint measures. */
export interface TextCheckpoint {
  step: number;
  early: number; // held-out loss at positions iclWindows().early
  late: number;
  icl: number; // late − early (nats)
  repeated: number; // loss on the second half of repeated random text
  firstHalf: number; // loss on its first half (nothing to copy)
  induction: number[][]; // [layer][head], on repeated random text
  previousToken: number[][];
  kComposition: number[][]; // [layer-0 head][layer-1 head]
}

export interface TextTraining {
  model: HookedTransformer;
  tokenizer: CharTokenizer;
  options: TextOptions;
  windows: IclWindows;
  /** Training loss per step. */
  loss: number[];
  checkpoints: TextCheckpoint[];
  /** Held-out loss per position at the first and the last checkpoint. */
  perPositionInitial: number[];
  perPositionFinal: number[];
  /** The repeated random text ([batch, n_ctx]) the detectors and the repeated loss use. */
  detectorTokens: Tensor;
  /** A held-out text snippet (n_ctx/4 characters) for the attention-pattern figure. */
  snippet: number[];
  trainTokens: number;
  seconds: number;
}

/**
 * Random text in the corpus's vocabulary: each row a segment of n_ctx/2 characters drawn
 * independently from the corpus's character frequencies, then the same segment again. Frequencies
 * rather than uniform so the text is made of characters the model has seen often (Tiny Shakespeare
 * has "$", "&", "3" a handful of times), yet there is nothing to predict except by copying.
 */
export function repeatedCorpusText(counts: ArrayLike<number>, opts: { nCtx: number; batch: number; seed: number }): Tensor {
  const half = Math.floor(opts.nCtx / 2), T = 2 * half, rng = new Rng(opts.seed), data = new Int32Array(opts.batch * T);
  for (let b = 0; b < opts.batch; b++) for (let i = 0; i < half; i++) data[b * T + i] = data[b * T + half + i] = rng.categorical(counts);
  return new Tensor(data, [opts.batch, T]);
}

/** Mean loss over the first and the second half of repeated text [batch, T] (predicting position p + 1 from p). */
function halfLosses(model: HookedTransformer, toks: Tensor): { first: number; repeated: number } {
  const [B, T] = toks.shape as [number, number], half = T / 2;
  const nll = noGrad(() => scope(() => crossEntropy(slice(model.forward(toks), 1, 0, T - 1).contiguous(), slice(toks, 1, 1, T).contiguous(), { reduction: "none" }).toArray()));
  let f = 0, r = 0;
  // Position p predicts p + 1, which is a copy when p + 1 ≥ half + 1 (the first repeated token itself is not predictable).
  for (let b = 0; b < B; b++) for (let p = 0; p < T - 1; p++) { if (p >= half) r += nll[b * (T - 1) + p]!; else f += nll[b * (T - 1) + p]!; }
  return { first: f / (B * half), repeated: r / (B * (half - 1)) };
}

/** Rows of repeated random text the detectors read, and the init std of W_Q and W_K (the report quotes both). */
export const DETECTOR_ROWS = 8, TEXT_QK_STD = 0.15;

export function trainInductionText(opts: TextTrainOptions): TextTraining {
  const o: TextOptions = {
    corpus: opts.corpus, tokensDir: opts.tokensDir, seed: opts.seed ?? 0, steps: opts.steps ?? 1500, nCtx: opts.nCtx ?? 128, batch: opts.batch ?? 16,
    lr: opts.lr ?? 1e-2, weightDecay: opts.weightDecay ?? 0.01, dModel: opts.dModel ?? 64, nHeads: opts.nHeads ?? 4, dHead: opts.dHead ?? 16,
    logEvery: opts.logEvery ?? 50, evalWindows: opts.evalWindows ?? 64,
  };
  const t0 = performance.now();
  const data = prepareCorpus(o.corpus, o.tokensDir);
  if (data.tokenizer.kind !== "char") throw new Error("lab induction --data text: expected a character vocabulary");
  const trainFile = TokenFile.open(data.trainFile), valFile = TokenFile.open(data.valFile);
  try {
    const model = attnOnlyModel({ seed: o.seed, nCtx: o.nCtx, dVocab: data.vocabSize, dModel: o.dModel, nHeads: o.nHeads, dHead: o.dHead, posInit: "sinusoidal", qkStd: TEXT_QK_STD });
    const counts = new Float64Array(data.vocabSize);
    const sample = trainFile.read(0, Math.min(trainFile.length, 200_000));
    for (const t of sample) counts[t]!++;
    const detectorTokens = repeatedCorpusText(counts, { nCtx: o.nCtx, batch: DETECTOR_ROWS, seed: o.seed + 99 });
    // Fixed held-out windows, so every checkpoint's ICL score is measured on the same text.
    const evalBatch = Math.min(16, o.evalWindows), evalSampler = new BatchSampler(valFile, evalBatch, o.nCtx, o.seed + 7);
    const evalSet = Array.from({ length: Math.ceil(o.evalWindows / evalBatch) }, () => evalSampler.next());
    const windows = iclWindows(o.nCtx), checkpoints: TextCheckpoint[] = [], loss: number[] = [];
    let perPositionInitial: number[] = [], perPositionFinal: number[] = [];
    const measure = (step: number) => {
      const pos = perPositionLoss(model, evalSet), icl = iclScore(pos, windows);
      if (step === 0) perPositionInitial = pos;
      perPositionFinal = pos;
      const h = halfLosses(model, detectorTokens);
      const s = noGrad(() => scope(() => headDetectorScores(model, detectorTokens)));
      checkpoints.push({
        step, early: icl.early, late: icl.late, icl: icl.score, repeated: h.repeated, firstHalf: h.first,
        induction: s.induction_head, previousToken: s.previous_token_head, kComposition: compositionScoresBetween(model, "K", 0, 1),
      });
    };
    measure(0);
    train({
      model: lmObjective(model), train: trainFile,
      config: { iters: o.steps, batch: o.batch, ctx: o.nCtx, lr: o.lr, minLr: o.lr / 10, warmupIters: Math.min(50, Math.floor(o.steps / 10)), decayIters: o.steps, weightDecay: o.weightDecay, evalEvery: 0, checkpointEvery: 0, seed: o.seed },
      onProgress: (p) => {
        loss.push(p.loss);
        if (p.step % o.logEvery === 0 || p.step === o.steps) measure(p.step);
        opts.onStep?.(p.step, p.loss);
      },
    });
    const snippet = Array.from(evalSet[0]!.toArray().subarray(0, Math.floor(o.nCtx / 4)));
    return { model, tokenizer: data.tokenizer.tokenizer, options: o, windows, loss, checkpoints, perPositionInitial, perPositionFinal, detectorTokens, snippet, trainTokens: data.trainTokens, seconds: (performance.now() - t0) / 1000 };
  } finally {
    trainFile.close(); valFile.close();
  }
}
