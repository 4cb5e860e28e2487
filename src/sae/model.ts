// A sparse autoencoder or transcoder: f = act((x − b_dec) W_enc + b_enc), x̂ = f W_dec + b_dec
// (+ x W_skip for a skip transcoder), with SAELens's parameter names and shapes. Products use plain
// matmul, not linear(): linear packs a weight once for reuse, which for weights that change every
// step would repack (and grow memory) every step.
import { Module } from "../nn/module.js";
import type { Parameter } from "../nn/parameter.js";
import { Rng } from "../tensor/rng.js";
import { Tensor } from "../tensor/tensor.js";
import { randn, zeros, full } from "../tensor/create.js";
import { jumpRelu, topkMask } from "../tensor/ops/sparse.js";
import { noGrad } from "../tensor/autodiff.js";
import { makeSaeConfig, type SaeConfig } from "./config.js";

export interface SaeInitOptions {
  seed?: number;
  /** Norm of each decoder row at initialisation (Anthropic's April 2024 update suggests 0.05–1), default 0.1. */
  decoderNorm?: number;
  /** JumpReLU's initial threshold for every latent (SAELens's default 0.001). */
  threshold?: number;
}

export class SparseAutoencoder extends Module {
  readonly cfg: SaeConfig;
  readonly W_enc: Parameter;     // [d_in, d_sae]
  readonly b_enc: Parameter;     // [d_sae]
  readonly W_dec: Parameter;     // [d_sae, d_out]
  readonly b_dec: Parameter;     // [d_out]
  readonly threshold: Parameter | null; // [d_sae], JumpReLU only
  readonly W_skip: Parameter | null;    // [d_in, d_out], skip transcoders only

  constructor(cfg: Partial<SaeConfig> & Pick<SaeConfig, "d_in" | "d_sae" | "hook_name">, init: SaeInitOptions = {}) {
    super();
    this.cfg = makeSaeConfig(cfg);
    const { d_in, d_sae, d_out, dtype } = this.cfg;
    const rng = new Rng(init.seed ?? 0);
    // Decoder rows in random directions with norm decoderNorm; the encoder starts as its transpose.
    const dec = randn([d_sae, d_out], { rng, dtype });
    const norm = init.decoderNorm ?? 0.1;
    noGrad(() => {
      for (let i = 0; i < d_sae; i++) {
        let s = 0;
        for (let j = 0; j < d_out; j++) s += dec.data[i * d_out + j]! ** 2;
        const c = norm / Math.sqrt(s || 1);
        for (let j = 0; j < d_out; j++) dec.data[i * d_out + j]! *= c;
      }
    });
    const enc = zeros([d_in, d_sae], dtype);
    if (d_in === d_out) for (let i = 0; i < d_sae; i++) for (let j = 0; j < d_in; j++) enc.data[j * d_sae + i] = dec.data[i * d_out + j]!;
    else enc.data.set(randn([d_in, d_sae], { rng, dtype, std: norm / Math.sqrt(d_in) }).data);
    this.W_enc = this.param("W_enc", enc);
    this.b_enc = this.param("b_enc", zeros([d_sae], dtype));
    this.W_dec = this.param("W_dec", dec);
    this.b_dec = this.param("b_dec", zeros([d_out], dtype));
    this.threshold = this.cfg.activation === "jumprelu" ? this.param("threshold", full([d_sae], init.threshold ?? 0.001, dtype)) : null;
    this.W_skip = this.cfg.skip ? this.param("W_skip", zeros([d_in, d_out], dtype)) : null;
  }

  /** Pre-activations (x − b_dec) W_enc + b_enc: [..., d_in] → [..., d_sae]. */
  preacts(x: Tensor): Tensor {
    this.checkWidth(x, this.cfg.d_in, "input");
    const lead = x.shape.slice(0, -1);
    const x2 = x.reshape([-1, this.cfg.d_in]); // [tokens, d_in]
    const centred = this.cfg.apply_b_dec_to_input ? x2.sub(this.b_dec) : x2;
    return centred.matmul(this.W_enc).add(this.b_enc).reshape([...lead, this.cfg.d_sae]);
  }

  /** Latent activations from pre-activations (what the training losses also need). */
  activate(pre: Tensor, bandwidth = 0.001): Tensor {
    switch (this.cfg.activation) {
      case "relu": return pre.relu();
      case "topk": return pre.relu().mul(topkMask(pre, this.cfg.k!));
      case "jumprelu": return jumpRelu(pre, this.threshold!, bandwidth);
      default: return this.cfg.activation satisfies never;
    }
  }

  /** Latents f: [..., d_in] → [..., d_sae]. */
  encode(x: Tensor): Tensor { return this.activate(this.preacts(x)); }

  /** f W_dec + b_dec: [..., d_sae] → [..., d_out] (without the skip path, which needs x). */
  decode(f: Tensor): Tensor {
    this.checkWidth(f, this.cfg.d_sae, "latents");
    const lead = f.shape.slice(0, -1);
    return f.reshape([-1, this.cfg.d_sae]).matmul(this.W_dec).add(this.b_dec).reshape([...lead, this.cfg.d_out]);
  }

  /** The skip path x W_skip ([..., d_out]), or null. */
  skipOf(x: Tensor): Tensor | null {
    if (!this.W_skip) return null;
    const lead = x.shape.slice(0, -1);
    return x.reshape([-1, this.cfg.d_in]).matmul(this.W_skip).reshape([...lead, this.cfg.d_out]);
  }

  /** The reconstruction (or, for a transcoder, the prediction of the output hook) of x. */
  forward(x: Tensor): Tensor {
    const out = this.decode(this.encode(x));
    const s = this.skipOf(x);
    return s ? out.add(s) : out;
  }

  /** ‖W_dec[i]‖₂ for every latent: [d_sae]. */
  decoderNorms(): Tensor { return this.W_dec.square().sum(1).sqrt(); }

  private checkWidth(x: Tensor, d: number, what: string): void {
    if (x.ndim < 1 || x.shape[x.ndim - 1] !== d) throw new RangeError(`sae: ${what} must end in ${d}, got [${x.shape.join(", ")}]`);
  }
}

/** Mean of rows [n, d] in float64 (b_dec's simple initialisation). */
export function rowMean(rows: Float32Array | Float64Array, d: number): Float64Array {
  const n = rows.length / d, m = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) m[j]! += rows[i * d + j]!;
  for (let j = 0; j < d; j++) m[j]! /= Math.max(n, 1);
  return m;
}

/**
 * The geometric median of rows [n, d] by Weiszfeld's iteration (the point minimising the sum of
 * Euclidean distances; SAELens's b_dec initialisation), from the mean, in float64.
 */
export function geometricMedian(rows: Float32Array | Float64Array, d: number, iters = 100, tol = 1e-7): Float64Array {
  const n = rows.length / d;
  let y = rowMean(rows, d);
  for (let it = 0; it < iters; it++) {
    const num = new Float64Array(d);
    let den = 0;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += (rows[i * d + j]! - y[j]!) ** 2;
      const w = 1 / Math.max(Math.sqrt(s), 1e-12); // a row on top of y would divide by 0
      den += w;
      for (let j = 0; j < d; j++) num[j]! += w * rows[i * d + j]!;
    }
    let move = 0;
    for (let j = 0; j < d; j++) { num[j]! /= den; move += (num[j]! - y[j]!) ** 2; }
    y = num;
    if (Math.sqrt(move) < tol) break;
  }
  return y;
}

/** A [d] tensor of the model's dtype holding v. */
export const vectorOf = (v: ArrayLike<number>, dtype: "float32" | "float64"): Tensor => {
  const t = zeros([v.length], dtype);
  for (let i = 0; i < v.length; i++) t.data[i] = v[i]!;
  return t;
};
