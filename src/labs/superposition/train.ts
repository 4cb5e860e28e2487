// Training for the toy models: AdamW on fresh batches every step (the data is infinite, so there is
// no overfitting to guard against), every instance of the batched model at once. Library code: it
// reports progress through a callback and never prints. Not the model (model.ts) nor the sweep
// definition (lab.ts).
import { AdamW } from "../../nn/optim.js";
import { cosineSchedule } from "../../nn/schedule.js";
import { backward, noGrad } from "../../tensor/autodiff.js";
import { scope } from "../../tensor/memory.js";
import { tensor } from "../../tensor/create.js";
import { Rng } from "../../tensor/rng.js";
import { sampleBatch, type ToyModel } from "./model.js";

export interface TrainOptions {
  steps: number; // e.g. 5000
  batchSize: number; // e.g. 1024 (the Colab's)
  lr: number; // peak rate, e.g. 3e-3, decayed to 0 by a cosine (the Colab's constant 1e-3 needs 10k steps)
  weightDecay: number; // e.g. 0.01 (torch AdamW's default, which the Colab keeps)
  seed: number;
  /** Called after each step with the summed loss over instances. */
  onStep?: (step: number, loss: number) => void;
}

export interface TrainTarget {
  model: ToyModel;
  importance: number[][]; // [instances][n]
  featureProb: number[]; // [instances], 1 − S
}

/** Train several toy models in lockstep (e.g. the ReLU and the linear sweep); returns each one's loss curve. */
export function trainToyModels(targets: readonly TrainTarget[], opts: TrainOptions): number[][] {
  const rng = new Rng(opts.seed + 1);
  const setups = targets.map((t) => {
    const n = t.model.cfg.nFeatures;
    if (t.importance.length !== t.model.cfg.nInstances || t.featureProb.length !== t.model.cfg.nInstances)
      throw new Error(`trainToyModels: ${t.model.cfg.nInstances} instances but ${t.importance.length} importance rows and ${t.featureProb.length} feature probabilities`);
    return {
      ...t,
      imp: tensor(Float32Array.from(t.importance.flat()), [t.model.cfg.nInstances, n], t.model.cfg.dtype ?? "float32"),
      opt: new AdamW(t.model.params, { lr: opts.lr, weightDecay: opts.weightDecay }),
      curve: [] as number[],
    };
  });
  // Decaying the rate lets the last steps settle onto the exact geometry instead of jittering around it.
  const schedule = cosineSchedule({ maxLr: opts.lr, minLr: 0, warmupSteps: 0, decaySteps: Math.max(1, opts.steps) });
  for (let step = 1; step <= opts.steps; step++) {
    let total = 0;
    for (const s of setups) {
      s.opt.setLr(schedule(step - 1));
      // One scope per step: the batch, activations and graph go back to the pool when it ends.
      const l = scope(() => {
        const x = sampleBatch(opts.batchSize, s.featureProb, s.model.cfg.nFeatures, rng, s.model.cfg.dtype);
        const loss = s.model.loss(x, s.imp);
        s.opt.zeroGrad();
        backward(loss);
        s.opt.step();
        return loss.item();
      });
      s.curve.push(l);
      total += l;
    }
    opts.onStep?.(step, total);
  }
  return setups.map((s) => s.curve);
}

/** Per-instance loss on a fresh evaluation batch. */
export function evalInstanceLoss(t: TrainTarget, batchSize: number, seed: number): number[] {
  const rng = new Rng(seed + 7919);
  return noGrad(() => scope(() => {
    const imp = tensor(Float32Array.from(t.importance.flat()), [t.model.cfg.nInstances, t.model.cfg.nFeatures]);
    return t.model.instanceLoss(sampleBatch(batchSize, t.featureProb, t.model.cfg.nFeatures, rng), imp).toList();
  }));
}
