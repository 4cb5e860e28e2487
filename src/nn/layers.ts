// Standard layers built on the engine's fused ops: Linear (x @ W + b, W [d_in, d_out]), Embedding,
// LayerNorm, RMSNorm, an activation layer and an MLP. Parameter names follow TransformerLens
// (W, b for linear maps; w, b for norms) so checkpoints read the same way across the codebase.
// Transformer blocks live in src/model/, not here.
import type { Tensor } from "../tensor/tensor.js";
import type { DType } from "../tensor/dtype.js";
import type { Rng } from "../tensor/rng.js";
import { linear } from "../tensor/ops/linalg.js";
import { embedding, layerNorm, rmsNorm } from "../tensor/ops/nn.js";
import { Module, ModuleList, type Layer } from "./module.js";
import { init, type Parameter } from "./parameter.js";

/** Elementwise nonlinearities. gelu_tanh is GPT-2's approximation, gelu_erf the exact GELU. */
export type ActivationKind = "relu" | "gelu_tanh" | "gelu_erf" | "silu";

export function activate(x: Tensor, kind: ActivationKind): Tensor {
  switch (kind) {
    case "relu": return x.relu();
    case "gelu_tanh": return x.gelu("tanh");
    case "gelu_erf": return x.gelu("none");
    case "silu": return x.silu();
    default: return kind satisfies never;
  }
}

/** An activation as a parameter-free layer, for Sequential. */
export class Activation extends Module implements Layer {
  constructor(readonly kind: ActivationKind) { super(); }
  forward(x: Tensor): Tensor { return activate(x, this.kind); }
}

export interface LinearOptions {
  rng: Rng;
  bias?: boolean; // default true
  dtype?: DType; // default "float32"
  /**
   * Draw W from N(0, std^2) with a zero bias (GPT-2 uses 0.02). When absent, torch.nn.Linear's
   * default: W and b from U(±1/sqrt(d_in)) (kaiming_uniform with a = sqrt 5 reduces to this).
   */
  std?: number;
}

/** y = x @ W + b over the last axis: x [..., d_in] → y [..., d_out]. */
export class Linear extends Module implements Layer {
  readonly W: Parameter; // [d_in, d_out]
  readonly b: Parameter | null; // [d_out]

  constructor(readonly dIn: number, readonly dOut: number, opts: LinearOptions) {
    super();
    const { rng, dtype } = opts;
    const bound = 1 / Math.sqrt(dIn);
    this.W = this.param("W", opts.std !== undefined
      ? init.normal([dIn, dOut], { rng, dtype, std: opts.std })
      : init.uniform([dIn, dOut], { rng, dtype, bound }));
    this.b = opts.bias === false ? null : this.param("b", opts.std !== undefined
      ? init.zeros([dOut], { dtype })
      : init.uniform([dOut], { rng, dtype, bound }));
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.W, this.b);
  }
}

/** Rows of W [d_vocab, d_model] for token ids of any shape: ids [...] → [..., d_model]. */
export class Embedding extends Module {
  readonly W: Parameter; // [d_vocab, d_model]

  /** W ~ N(0, std^2); std defaults to 1 as in torch.nn.Embedding. */
  constructor(readonly dVocab: number, readonly dModel: number, opts: { rng: Rng; std?: number; dtype?: DType }) {
    super();
    this.W = this.param("W", init.normal([dVocab, dModel], { rng: opts.rng, dtype: opts.dtype, std: opts.std ?? 1 }));
  }

  forward(ids: Tensor | number[]): Tensor {
    return embedding(this.W, ids);
  }
}

/** (x - mean) / sqrt(var + eps) * w + b over the last axis; w starts at 1 and b at 0. */
export class LayerNorm extends Module implements Layer {
  readonly w: Parameter | null; // [d_model]
  readonly b: Parameter | null; // [d_model]

  constructor(readonly dModel: number, readonly opts: { eps?: number; affine?: boolean; bias?: boolean; dtype?: DType } = {}) {
    super();
    const affine = opts.affine ?? true, dtype = opts.dtype;
    this.w = affine ? this.param("w", init.ones([dModel], { dtype })) : null;
    this.b = affine && (opts.bias ?? true) ? this.param("b", init.zeros([dModel], { dtype })) : null;
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.w, this.b, this.opts.eps ?? 1e-5);
  }
}

/** x / sqrt(mean(x^2) + eps) * w over the last axis (Zhang & Sennrich 2019; Llama); w starts at 1. */
export class RMSNorm extends Module implements Layer {
  readonly w: Parameter | null; // [d_model]

  constructor(readonly dModel: number, readonly opts: { eps?: number; affine?: boolean; dtype?: DType } = {}) {
    super();
    this.w = opts.affine ?? true ? this.param("w", init.ones([dModel], { dtype: opts.dtype })) : null;
  }

  forward(x: Tensor): Tensor {
    return rmsNorm(x, this.w, this.opts.eps ?? 1e-6);
  }
}

export interface MLPOptions extends LinearOptions {
  act?: ActivationKind; // between layers, not after the last; default "relu"
}

/**
 * Linear layers of the given widths with an activation between them: sizes [2, 16, 1] gives
 * layers.0 (2 → 16), act, layers.1 (16 → 1).
 */
export class MLP extends Module implements Layer {
  readonly layers: ModuleList<Linear>;
  readonly act: ActivationKind;

  constructor(sizes: number[], opts: MLPOptions) {
    super();
    if (sizes.length < 2) throw new RangeError(`MLP: need at least two sizes (d_in, d_out), got [${sizes.join(", ")}]`);
    this.act = opts.act ?? "relu";
    const ls = sizes.slice(1).map((d, i) => new Linear(sizes[i]!, d, opts));
    this.layers = this.child("layers", new ModuleList(ls));
  }

  forward(x: Tensor): Tensor {
    const n = this.layers.length;
    for (let i = 0; i < n; i++) {
      x = this.layers.at(i).forward(x);
      if (i < n - 1) x = activate(x, this.act);
    }
    return x;
  }
}
