// Activations of sparse autoencoders that plain autodiff cannot train: JumpReLU and the Heaviside
// step (Rajamanoharan et al. 2024, "Jumping Ahead"), whose threshold θ gets a pseudo-derivative
// through a rectangle kernel of width ε (the bandwidth), and the top-k mask (Gao et al. 2024).
// Their backward rules live in vjp.ts beside every other primitive's.
import { noGrad, record } from "../autodiff.js";
import { Tensor } from "../tensor.js";
import { compare, mul } from "./elementwise.js";
import { topk } from "./topk.js";
import { contiguousStrides, normAxis } from "../shape.js";
import { allocate } from "../dtype.js";
import { dense } from "./core.js";

const checkBandwidth = (op: string, bandwidth: number) => {
  if (!(bandwidth > 0) || !Number.isFinite(bandwidth)) throw new RangeError(`${op}: bandwidth must be a positive number, got ${bandwidth}`);
};

/**
 * JumpReLU_θ(z) = z · H(z − θ), θ broadcast against z (e.g. [d_sae] against [batch, d_sae]).
 * Backward: ∂/∂z = H(z − θ); ∂/∂θ is the pseudo-derivative −(θ/ε) K((z − θ)/ε), K(u) = 1[|u| < ½].
 */
export function jumpRelu(z: Tensor, threshold: Tensor, bandwidth: number): Tensor {
  checkBandwidth("jumpRelu", bandwidth);
  const out = noGrad(() => mul(z, compare("gt", z, threshold)));
  return record("jumpRelu", out, [z, threshold], { bandwidth });
}

/**
 * H(z − θ): 1 where z > θ, else 0. Backward: nothing to z (as in the paper), and the
 * pseudo-derivative −(1/ε) K((z − θ)/ε) to θ — what makes an L0 penalty trainable.
 */
export function heavisideStep(z: Tensor, threshold: Tensor, bandwidth: number): Tensor {
  checkBandwidth("heavisideStep", bandwidth);
  const out = noGrad(() => compare("gt", z, threshold));
  return record("step", out, [z, threshold], { bandwidth });
}

/**
 * 1 at the k largest entries along `axis` (ties to the lower index, as topk), 0 elsewhere; in x's
 * dtype and off the graph: multiply by it to keep exactly k entries and their gradients.
 */
export function topkMask(x: Tensor, k: number, axis = -1): Tensor {
  const a = normAxis("topkMask", axis, x.ndim);
  const indices = dense(noGrad(() => topk(x.detach(), k, a)).indices);
  const dtype = x.dtype === "int32" ? "float32" : x.dtype;
  const out = new Tensor(allocate(dtype, x.size), x.shape);
  const os = contiguousStrides(x.shape), is = contiguousStrides(indices.shape), I = indices.data;
  // indices has x's shape with k along `axis`: each entry names the position along `axis` to set.
  for (let i = 0; i < indices.size; i++) {
    let o = 0, rest = i;
    for (let d = 0; d < x.ndim; d++) {
      const c = Math.floor(rest / is[d]!); rest -= c * is[d]!;
      o += (d === a ? I[i]! : c) * os[d]!;
    }
    out.data[o] = 1;
  }
  return out;
}
