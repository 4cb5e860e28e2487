// The k largest (or smallest) entries along an axis, sorted, with their indices. Values stay on the
// autodiff graph through gather; indices are int32.
import { normAxis, ShapeError } from "../shape.js";
import { Tensor } from "../tensor.js";
import { gather, permute } from "./movement.js";
import { dense } from "./core.js";

export function topk(x: Tensor, k: number, axis = -1, largest = true): { values: Tensor; indices: Tensor } {
  const a = normAxis("topk", axis, x.ndim);
  const n = x.shape[a]!;
  if (!(k >= 0 && k <= n)) throw new ShapeError(`topk: k = ${k} must be in [0, ${n}] for axis ${axis}`);
  const order = [...x.shape.map((_, i) => i).filter((i) => i !== a), a];
  const moved = dense(permute(x.detach(), order));
  const rows = moved.size / Math.max(n, 1), data = moved.data;
  const idxShape = [...moved.shape.slice(0, -1), k];
  const idx = new Int32Array(rows * k);
  const perm = new Array<number>(n);
  for (let r = 0; r < rows; r++) {
    const base = r * n;
    for (let i = 0; i < n; i++) perm[i] = i;
    // NaN sorts as the largest, and equal values keep their index order (a stable sort).
    const key = (i: number) => { const v = data[base + i]!; return v !== v ? Infinity : v; };
    perm.sort((p, q) => (largest ? key(q) - key(p) : key(p) - key(q)) || p - q);
    for (let j = 0; j < k; j++) idx[r * k + j] = perm[j]!;
  }
  // Back to the caller's axis order.
  const inv = new Array<number>(order.length);
  order.forEach((o, i) => { inv[o] = i; });
  const indices = dense(permute(new Tensor(idx, idxShape), inv));
  return { values: gather(x, a, indices), indices };
}
