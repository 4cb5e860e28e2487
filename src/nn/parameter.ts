// Parameters and their initialisers. A Parameter is an ordinary leaf Tensor that requires grad; the
// subclass only marks intent (Module.param accepts it as is) and adds no behaviour, so every op
// treats it exactly like a Tensor. Random initialisers take an explicit Rng so a seed fixes a model.
//
// Fans follow our weight layout, W [d_in, d_out] (torch stores [d_out, d_in]): for a tensor of
// shape [..., a, b], fan_in = a and fan_out = b; pass `fans` where that is not what you mean
// (e.g. W_O [n_heads, d_head, d_model] has fan_in n_heads * d_head).
import { Tensor } from "../tensor/tensor.js";
import { pin } from "../tensor/memory.js";
import { allocate, type DType } from "../tensor/dtype.js";
import { numel, ShapeError, type Shape } from "../tensor/shape.js";
import type { Rng } from "../tensor/rng.js";

export class Parameter extends Tensor {
  constructor(data: Float32Array | Float64Array, shape: Shape) {
    super(data, shape);
    this.requiresGrad = true;
    pin(this); // parameters outlive any scope() they were made in
  }

  /**
   * A parameter holding t's values. A contiguous, offset-0 float leaf is adopted without copying
   * (so loading a checkpoint tensor is free); anything else is copied. Graph history is dropped.
   */
  static from(t: Tensor, name?: string): Parameter {
    if (t instanceof Parameter) return t;
    if (t.dtype === "int32") throw new TypeError(`Parameter.from${name ? ` (${name})` : ""}: parameters must be float32 or float64, got int32`);
    const adopt = t.isContiguous && t.offset === 0 && t.data.length === t.size;
    const data = (adopt ? t.data : t.contiguous().toArray().slice()) as Float32Array | Float64Array;
    const p = new Parameter(data, t.shape);
    p.name = name ?? t.name;
    return p;
  }
}

export interface InitOptions {
  dtype?: DType; // e.g. "float32" (the default)
}
export interface RandomInitOptions extends InitOptions {
  rng: Rng;
  /** [fan_in, fan_out] when the trailing-two-axes rule does not apply. */
  fans?: [number, number];
}

function floatAlloc(shape: Shape, dtype: DType = "float32"): Float32Array | Float64Array {
  if (dtype === "int32") throw new TypeError("init: parameters must be float32 or float64, got int32");
  return allocate(dtype, numel(shape)) as Float32Array | Float64Array;
}

/** [fan_in, fan_out] of a weight in our [..., d_in, d_out] layout. */
export function fansOf(shape: Shape): [number, number] {
  if (shape.length === 0) throw new ShapeError("init: fan-based initialisers need at least one axis, got a scalar");
  if (shape.length === 1) return [shape[0]!, shape[0]!];
  return [shape[shape.length - 2]!, shape[shape.length - 1]!];
}

export function zeros(shape: Shape, opts: InitOptions = {}): Parameter {
  return new Parameter(floatAlloc(shape, opts.dtype), shape);
}

export function ones(shape: Shape, opts: InitOptions = {}): Parameter {
  const d = floatAlloc(shape, opts.dtype);
  d.fill(1);
  return new Parameter(d, shape);
}

/** N(mean, std^2) draws, e.g. std 0.02 for GPT-2's weights. */
export function normal(shape: Shape, opts: RandomInitOptions & { std: number; mean?: number }): Parameter {
  const d = floatAlloc(shape, opts.dtype), m = opts.mean ?? 0;
  for (let i = 0; i < d.length; i++) d[i] = m + opts.std * opts.rng.normal();
  return new Parameter(d, shape);
}

/** U(-bound, bound) draws. */
export function uniform(shape: Shape, opts: RandomInitOptions & { bound: number }): Parameter {
  if (!(opts.bound >= 0)) throw new RangeError(`init.uniform: bound must be >= 0, got ${opts.bound}`);
  const d = floatAlloc(shape, opts.dtype);
  for (let i = 0; i < d.length; i++) d[i] = opts.bound * (2 * opts.rng.uniform() - 1);
  return new Parameter(d, shape);
}

/** Glorot & Bengio (2010): U(±gain·sqrt(6 / (fan_in + fan_out))), as torch.nn.init.xavier_uniform_. */
export function xavierUniform(shape: Shape, opts: RandomInitOptions & { gain?: number }): Parameter {
  const [fanIn, fanOut] = opts.fans ?? fansOf(shape);
  return uniform(shape, { ...opts, bound: (opts.gain ?? 1) * Math.sqrt(6 / (fanIn + fanOut)) });
}

/**
 * He et al. (2015) in fan_in mode: U(±gain·sqrt(3 / fan_in)) with gain = sqrt(2 / (1 + a^2)), as
 * torch.nn.init.kaiming_uniform_ with a leaky_relu slope a (a = 0 is ReLU's gain sqrt 2).
 */
export function kaimingUniform(shape: Shape, opts: RandomInitOptions & { a?: number }): Parameter {
  const [fanIn] = opts.fans ?? fansOf(shape);
  const a = opts.a ?? 0;
  const gain = Math.sqrt(2 / (1 + a * a));
  return uniform(shape, { ...opts, bound: gain * Math.sqrt(3 / fanIn) });
}

/** The initialisers as one namespace, so `init.zeros` cannot be confused with the tensor `zeros`. */
export const init = { zeros, ones, normal, uniform, xavierUniform, kaimingUniform } as const;
