// Trains a 1-layer modular-addition transformer from scratch with the paper's recipe (Nanda et al.
// 2023, §3 and Appendix A: full-batch AdamW, lr 1e-3 with a 10-step linear warmup, weight decay 1,
// betas (0.9, 0.98), 30% of the pairs for training) and records train/test loss every epoch and the
// progress measures (§5.1) at intervals. Library code: progress goes through a callback.
import { AdamW } from "../../nn/optim.js";
import { backward, noGrad } from "../../tensor/autodiff.js";
import { randn } from "../../tensor/create.js";
import { scope } from "../../tensor/memory.js";
import { crossEntropy } from "../../tensor/ops/nn.js";
import { slice } from "../../tensor/ops/movement.js";
import { Rng } from "../../tensor/rng.js";
import { Tensor } from "../../tensor/tensor.js";
import { HookedTransformer } from "../../model/transformer.js";
import { grokkingConfig } from "./checkpoint.js";
import { evaluateAllPairs } from "./evaluate.js";

export interface GrokTrainOptions {
  p: number; // e.g. 113 (the paper), 53 (the quick default)
  dModel: number; // e.g. 128
  nHeads: number; // e.g. 4
  dMlp: number; // e.g. 512
  fracTrain: number; // e.g. 0.3
  epochs: number; // e.g. 40000 at p = 113
  lr: number; // e.g. 1e-3
  weightDecay: number; // e.g. 1
  seed: number;
  /** Record the test loss every this many epochs (e.g. 10, as the paper's stored curves). */
  logEvery: number;
  /** Snapshot the logits on all pairs every this many epochs (for the progress measures). */
  evalEvery: number;
  /** Called every logEvery epochs with the losses before that epoch's update. */
  onEpoch?: (epoch: number, trainLoss: number, testLoss: number) => void;
}

export interface GrokTrainResult {
  model: HookedTransformer;
  trainSet: Set<number>;
  /** Every logEvery epochs: the epoch (updates done before it) and both losses at those weights. */
  epochs: number[];
  trainLoss: number[];
  testLoss: number[];
  /** Epochs at which logits were snapshot, and the [p², p] logits then (float32 to save memory). */
  snapshots: { epoch: number; logits: Float32Array; embed: Float64Array }[];
  seconds: number;
}

/** A random fracTrain share of the p² pairs (a·p+b), as the paper's seeded shuffle-and-cut. */
export function splitPairs(p: number, fracTrain: number, seed: number): Set<number> {
  const rng = new Rng(seed), idx = Array.from({ length: p * p }, (_, i) => i);
  for (let i = idx.length - 1; i > 0; i--) { const j = Math.floor(rng.uniform() * (i + 1)); [idx[i], idx[j]] = [idx[j]!, idx[i]!]; }
  return new Set(idx.slice(0, Math.round(fracTrain * p * p)));
}

function pairBatch(p: number, pairs: readonly number[]): { tokens: Tensor; labels: Tensor } {
  const t = new Int32Array(pairs.length * 3), l = new Int32Array(pairs.length);
  pairs.forEach((r, i) => { const a = Math.floor(r / p), b = r % p; t.set([a, b, p], i * 3); l[i] = (a + b) % p; });
  return { tokens: new Tensor(t, [pairs.length, 3]), labels: new Tensor(l, [pairs.length, 1]) };
}

/** Cross-entropy at "=" over the p residues (the "=" logit dropped, as the paper's code). */
function pairLoss(model: HookedTransformer, p: number, b: { tokens: Tensor; labels: Tensor }): Tensor {
  const logits = model.forward(b.tokens, { lastPositionOnly: true }); // [batch, 1, p+1]
  return crossEntropy(slice(logits, 2, 0, p).contiguous(), b.labels); // [batch, 1, p] vs [batch, 1]
}

export function trainGrokking(o: GrokTrainOptions): GrokTrainResult {
  const t0 = performance.now();
  const model = new HookedTransformer(grokkingConfig(o.p, o.dModel, o.nHeads, o.dMlp));
  // The paper's init (Appendix A code): every weight ~ N(0, 1/d_model), W_U ~ N(0, 1/d_vocab), biases 0.
  const rng = new Rng(o.seed);
  noGrad(() => {
    for (const [name, prm] of model.namedParameters()) {
      const leaf = name.split(".").pop()!;
      if (leaf.startsWith("b_")) continue;
      const std = leaf === "W_U" ? 1 / Math.sqrt(model.cfg.d_vocab) : 1 / Math.sqrt(o.dModel);
      prm.data.set(randn(prm.shape, { rng, std }).data);
      prm.version++;
    }
  });
  const trainSet = splitPairs(o.p, o.fracTrain, o.seed);
  const all = Array.from({ length: o.p * o.p }, (_, i) => i);
  const train = pairBatch(o.p, all.filter((r) => trainSet.has(r))), test = pairBatch(o.p, all.filter((r) => !trainSet.has(r)));
  const opt = new AdamW(model.parameters(), { lr: o.lr, weightDecay: o.weightDecay, beta1: 0.9, beta2: 0.98 });
  const res: GrokTrainResult = { model, trainSet, epochs: [], trainLoss: [], testLoss: [], snapshots: [], seconds: 0 };
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    opt.setLr(o.lr * Math.min((epoch + 1) / 10, 1)); // the paper's LambdaLR warmup: min(step/10, 1)
    // One scope per step: activations and graph return to the pool when it ends.
    const log = epoch % o.logEvery === 0;
    const [tr, te] = scope(() => {
      // Both losses before the update, as the paper's loop (same weights for train and test).
      const tel = log ? noGrad(() => pairLoss(model, o.p, test).item()) : NaN;
      const loss = pairLoss(model, o.p, train);
      opt.zeroGrad();
      backward(loss);
      opt.step();
      return [loss.item(), tel] as const;
    });
    if (log) { res.epochs.push(epoch); res.trainLoss.push(tr); res.testLoss.push(te); o.onEpoch?.(epoch, tr, te); }
    if ((epoch + 1) % o.evalEvery === 0 || epoch + 1 === o.epochs) {
      const ev = scope(() => evaluateAllPairs(model, o.p));
      res.snapshots.push({ epoch: epoch + 1, logits: Float32Array.from(ev.logits), embed: ev.embed });
    }
  }
  res.seconds = (performance.now() - t0) / 1000;
  return res;
}
