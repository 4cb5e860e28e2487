// The superposition lab's experiment: one batched training run holding the paper's sparsity sweep
// three ways — ReLU output with decaying importance (§2, Figure "Demonstrating Superposition"), the
// linear model with the same data (§2: it never superposes), and ReLU with uniform importance for
// dimensions per feature vs 1/(1−S) (§4, "Feature Dimensionality") — then the analysis of each
// instance. Returns plain data; rendering is report.ts, printing is the CLI's.
import { Rng } from "../../tensor/rng.js";
import { ToyModel, importanceRows } from "./model.js";
import { evalInstanceLoss, trainToyModels, type TrainTarget } from "./train.js";
import { analyse, gram, type InstanceAnalysis } from "./analysis.js";

export interface LabOptions {
  nFeatures: number; // n, e.g. 20 (§2)
  nHidden: number; // m, e.g. 5 (§2)
  sparsities: number[]; // S per instance, e.g. [0, 0.7, 0.9, 0.97, 0.99, 0.997]
  decay: number; // importance I_i = decay^i, e.g. 0.7 (§2)
  steps: number; // e.g. 5000
  batchSize: number; // e.g. 1024
  lr: number; // e.g. 3e-3
  seed: number;
  onStep?: (step: number, loss: number) => void;
}

/** Weight decay of every toy model's AdamW (the report quotes it). */
export const TOY_WEIGHT_DECAY = 0.01;

export type Variant = "relu" | "linear" | "relu-uniform";

export interface InstanceResult extends InstanceAnalysis {
  variant: Variant;
  sparsity: number;
  loss: number; // on a fresh evaluation batch
  gram: number[][]; // WᵀW [n][n]
  bias: number[];
}

export interface LabResult {
  options: Omit<LabOptions, "onStep">;
  instances: InstanceResult[];
  lossCurves: Record<"relu" | "linear", number[]>;
  seconds: number;
}

export function runSuperpositionLab(opts: LabOptions): LabResult {
  const { nFeatures: n, nHidden: m, sparsities } = opts;
  if (!(m < n)) throw new RangeError(`superposition lab: needs m < n, got m=${m}, n=${n}`);
  for (const s of sparsities) if (!(s >= 0 && s < 1)) throw new RangeError(`superposition lab: sparsity must be in [0, 1), got ${s}`);
  const t0 = performance.now();
  const rng = new Rng(opts.seed), k = sparsities.length;
  const probs = sparsities.map((s) => 1 - s);
  // The ReLU model carries both importance profiles: instances [0, k) decay, [k, 2k) uniform.
  const relu: TrainTarget = {
    model: new ToyModel({ nFeatures: n, nHidden: m, nInstances: 2 * k, activation: "relu" }, rng),
    importance: [...importanceRows(n, sparsities.map(() => opts.decay)), ...importanceRows(n, sparsities.map(() => 1))],
    featureProb: [...probs, ...probs],
  };
  const linear: TrainTarget = {
    model: new ToyModel({ nFeatures: n, nHidden: m, nInstances: k, activation: "linear" }, rng),
    importance: importanceRows(n, sparsities.map(() => opts.decay)),
    featureProb: probs,
  };
  const [reluCurve, linearCurve] = trainToyModels([relu, linear], { steps: opts.steps, batchSize: opts.batchSize, lr: opts.lr, weightDecay: TOY_WEIGHT_DECAY, seed: opts.seed, onStep: opts.onStep });
  const reluLoss = evalInstanceLoss(relu, 8192, opts.seed), linLoss = evalInstanceLoss(linear, 8192, opts.seed);
  const result = (t: TrainTarget, i: number, variant: Variant, loss: number): InstanceResult => {
    const W = t.model.weights(i);
    return { variant, sparsity: sparsities[i % k]!, loss, gram: gram(W), bias: t.model.bias(i), ...analyse(W) };
  };
  const instances = [
    ...sparsities.map((_, i) => result(relu, i, "relu", reluLoss[i]!)),
    ...sparsities.map((_, i) => result(linear, i, "linear", linLoss[i]!)),
    ...sparsities.map((_, i) => result(relu, k + i, "relu-uniform", reluLoss[k + i]!)),
  ];
  const { onStep: _drop, ...options } = opts;
  return { options, instances, lossCurves: { relu: reluCurve!, linear: linearCurve! }, seconds: (performance.now() - t0) / 1000 };
}
