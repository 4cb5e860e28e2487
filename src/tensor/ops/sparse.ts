// Activations of sparse autoencoders that plain autodiff cannot train: JumpReLU and the Heaviside
// step (Rajamanoharan et al. 2024, "Jumping Ahead"), whose threshold θ gets a pseudo-derivative
// through a rectangle kernel of width ε (the bandwidth), and the top-k mask (Gao et al. 2024).
// Their backward rules live in vjp.ts beside every other primitive's.
import { noGrad, record } from "../autodiff.js";
import { Tensor } from "../tensor.js";
import { compare, mul } from "./elementwise.js";
import { permute } from "./movement.js";
import { normAxis, ShapeError } from "../shape.js";
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
 * 1 at the k largest entries along `axis` (NaN counts as largest; ties go to the lower index, as
 * topk's stable order), 0 elsewhere; in x's dtype and off the graph: multiply by it to keep exactly k
 * entries and their gradients. A bounded min-heap per row, O(n log k), since k ≪ n in TopK SAEs and a
 * full sort per row (topk()) costs more than the rest of a training step.
 */
export function topkMask(x: Tensor, k: number, axis = -1): Tensor {
  const a = normAxis("topkMask", axis, x.ndim);
  const n = x.shape[a]!;
  if (!(Number.isInteger(k) && k >= 0 && k <= n)) throw new ShapeError(`topkMask: k = ${k} must be an integer in [0, ${n}] for axis ${axis}`);
  const last = x.ndim - 1;
  const order = [...x.shape.map((_, i) => i).filter((i) => i !== a), a];
  const moved = dense(a === last ? x.detach() : permute(x.detach(), order)); // [..., n]
  const dtype = x.dtype === "int32" ? "float32" : x.dtype;
  const out = new Tensor(allocate(dtype, x.size), moved.shape);
  const D = moved.data, O = out.data, rows = moved.size / Math.max(n, 1);
  const hv = new Float64Array(k), hi = new Int32Array(k);
  for (let r = 0; r < rows; r++) {
    const size = selectTopK(D, r * n, n, k, hv, hi);
    for (let j = 0; j < size; j++) O[r * n + hi[j]!] = 1;
  }
  if (a === last) return out;
  const inv = new Array<number>(order.length);
  order.forEach((o, i) => { inv[o] = i; });
  return dense(permute(out, inv));
}

/**
 * The k largest of data[base, base + n) by a bounded min-heap, O(n log k): their indices (relative to
 * base, in heap order) go to hi[0, size), size = min(k, n) returned. NaN counts as largest; equal values
 * rank by lower index. hv and hi are scratch of length ≥ k, reused across rows.
 */
function selectTopK(D: ArrayLike<number>, base: number, n: number, k: number, hv: Float64Array, hi: Int32Array): number {
  // "p ranks before q": larger value, or equal value and lower index. The heap's root ranks last.
  const before = (v: number, i: number, w: number, j: number) => v > w || (v === w && i < j);
  let size = 0;
  for (let i = 0; i < n; i++) {
    let v = D[base + i]!;
    if (v !== v) v = Infinity;
    if (size < k) {
      let c = size++;
      while (c > 0) { const p = (c - 1) >> 1; if (!before(hv[p]!, hi[p]!, v, i)) break; hv[c] = hv[p]!; hi[c] = hi[p]!; c = p; }
      hv[c] = v; hi[c] = i;
    } else if (k > 0 && before(v, i, hv[0]!, hi[0]!)) {
      let c = 0;
      for (;;) {
        const l = 2 * c + 1, rr = l + 1;
        let w = -1;
        if (l < size) w = l;
        if (rr < size && before(hv[l]!, hi[l]!, hv[rr]!, hi[rr]!)) w = rr;
        if (w < 0 || !before(v, i, hv[w]!, hi[w]!)) break;
        hv[c] = hv[w]!; hi[c] = hi[w]!; c = w;
      }
      hv[c] = v; hi[c] = i;
    }
  }
  return size;
}

/**
 * Indices of the k largest values of row, largest first, ties to the lower index (NaN largest): the
 * first k of a full sort, without sorting all of a 50,257-token row (the logit lens's top tokens).
 */
export function topKIndices(row: ArrayLike<number>, k: number): number[] {
  const m = Math.max(0, Math.min(k, row.length)), hv = new Float64Array(m), hi = new Int32Array(m);
  const size = selectTopK(row, 0, row.length, m, hv, hi);
  const key = (i: number) => (row[i] !== row[i] ? Infinity : row[i]!);
  return Array.from(hi.subarray(0, size)).sort((x, y) => key(y) - key(x) || x - y);
}
