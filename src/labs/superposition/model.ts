// The toy model of Elhage et al. 2022, "Toy Models of Superposition" (§2, "Demonstrating
// Superposition"): n sparse features squeezed through m < n hidden dimensions and read back out,
// h = W x, x' = ReLU(Wᵀh + b) (or the linear x' = Wᵀh + b), with importance-weighted squared error.
// Many instances (one per sparsity or importance profile) live in one batched model [instances, m, n]
// so a whole sweep is one training run, as in the paper's Colab. This file is the model, its loss and
// its data; it is not the training loop (train.ts) nor the analysis (analysis.ts).
import { Parameter } from "../../nn/parameter.js";
import { tensor } from "../../tensor/create.js";
import type { Tensor } from "../../tensor/tensor.js";
import type { Rng } from "../../tensor/rng.js";

export type Activation = "relu" | "linear";

export interface ToyModelConfig {
  nFeatures: number; // n, e.g. 20
  nHidden: number; // m, e.g. 5
  nInstances: number; // e.g. 6 (one per sparsity)
  activation: Activation;
  dtype?: "float32" | "float64"; // float64 only for reference tests
}

export class ToyModel {
  readonly cfg: ToyModelConfig;
  /** [instances, m, n]: column W[:, i] is feature i's direction in the hidden space. */
  readonly W: Parameter;
  /** [instances, n] */
  readonly b: Parameter;

  constructor(cfg: ToyModelConfig, rng: Rng) {
    this.cfg = cfg;
    const { nFeatures: n, nHidden: m, nInstances: k } = cfg;
    const Arr = cfg.dtype === "float64" ? Float64Array : Float32Array;
    // Xavier-normal per instance, std sqrt(2 / (n + m)) (the Colab uses xavier_normal_; torch's fans
    // for its 3-d tensor differ, which only rescales the start).
    const w = new Arr(k * m * n), std = Math.sqrt(2 / (n + m));
    for (let i = 0; i < w.length; i++) w[i] = std * rng.normal();
    this.W = new Parameter(w, [k, m, n]);
    this.W.name = "W";
    this.b = new Parameter(new Arr(k * n), [k, n]);
    this.b.name = "b";
  }

  get params(): Parameter[] { return [this.W, this.b]; }

  /** x [instances, batch, n] → x' [instances, batch, n]. Instances lead so both products are plain batched matmuls. */
  forward(x: Tensor): Tensor {
    const h = x.matmul(this.W.transpose(-2, -1)); // h = W x: [instances, batch, m]
    const pre = h.matmul(this.W).add(this.b.unsqueeze(1)); // Wᵀh + b: [instances, batch, n]
    return this.cfg.activation === "relu" ? pre.relu() : pre;
  }

  /**
   * Per-instance loss [instances]: mean over the batch of Σ_i I_i (x_i − x'_i)² (§2, "Experiment
   * Setup"). importance is [instances, n].
   */
  instanceLoss(x: Tensor, importance: Tensor): Tensor {
    const err = x.sub(this.forward(x)).square().mul(importance.unsqueeze(1)); // [instances, batch, n]
    return err.sum(2).mean(1);
  }

  /** The training objective: instances are independent, so summing their losses trains each on its own. */
  loss(x: Tensor, importance: Tensor): Tensor { return this.instanceLoss(x, importance).sum(); }

  /** W of one instance as rows [m][n] of plain numbers. */
  weights(instance: number): number[][] {
    const { nFeatures: n, nHidden: m } = this.cfg, d = this.W.data, o = instance * m * n;
    return Array.from({ length: m }, (_, r) => Array.from(d.subarray(o + r * n, o + r * n + n)));
  }

  bias(instance: number): number[] {
    const n = this.cfg.nFeatures;
    return Array.from(this.b.data.subarray(instance * n, instance * n + n));
  }
}

/** I_i = decay^i (§2: "importance ... I_i = 0.7^i" in the n=20, m=5 demonstration), one row per instance. */
export function importanceRows(nFeatures: number, decays: readonly number[]): number[][] {
  return decays.map((r) => Array.from({ length: nFeatures }, (_, i) => Math.pow(r, i)));
}

/**
 * A fresh batch [instances, batch, n]: feature i of instance k is present with probability
 * p_k = 1 − S_k and then uniform on [0, 1] (§2, "Feature Sparsity"). One uniform draw u per entry
 * suffices: given u < p, u / p is itself uniform on [0, 1).
 */
export function sampleBatch(batch: number, featureProb: readonly number[], nFeatures: number, rng: Rng, dtype: "float32" | "float64" = "float32"): Tensor {
  const k = featureProb.length, data = dtype === "float64" ? new Float64Array(batch * k * nFeatures) : new Float32Array(batch * k * nFeatures);
  let o = 0;
  for (let i = 0; i < k; i++) for (let b = 0; b < batch; b++) {
    const p = featureProb[i]!;
    for (let f = 0; f < nFeatures; f++, o++) { const u = rng.uniform(); data[o] = u < p ? u / p : 0; }
  }
  return tensor(data, [k, batch, nFeatures]);
}
