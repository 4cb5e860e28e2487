// Appending new positions to a layer's cached keys or values without copying the past at every
// generation step. Keys live in a buffer [batch, capacity, heads, d_head] with spare room; the cache
// holds a view of its first `past` positions, and an append writes the new positions into the room
// and returns a longer view (amortised O(new positions) instead of O(past + new) for a concat).
//
// Ownership: the buffer belongs to the views over it (it lives as long as any of them). Only the
// view the last append returned may be extended in place, so forking a cache (two continuations of
// one prompt) stays correct: the second append from the same view copies into a fresh buffer
// instead of overwriting the first continuation's positions.
//
// Inference only: the returned view is not on the autodiff graph (components.ts concatenates when
// gradients are on).
import { allocate, type Storage } from "../tensor/dtype.js";
import { fmt, ShapeError } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";

/** Capacity (positions) of each buffer this file made, and the view its last append returned. */
const buffers = new WeakMap<Storage, { capacity: number; latest: Tensor | null }>();

/** prev [batch, past, heads, d_head] (or null) followed by x [batch, pos, heads, d_head] along pos. */
export function appendPositions(prev: Tensor | null, x: Tensor): Tensor {
  if (x.ndim !== 4) throw new ShapeError(`appendPositions: expected [batch, pos, heads, d_head], got ${fmt(x.shape)}`);
  const [B, T, H, D] = x.shape as [number, number, number, number];
  const past = prev?.shape[1] ?? 0;
  if (prev && (prev.ndim !== 4 || prev.shape[0] !== B || prev.shape[2] !== H || prev.shape[3] !== D || prev.dtype !== x.dtype))
    throw new ShapeError(`appendPositions: cached ${fmt(prev.shape)} ${prev.dtype} does not fit new ${fmt(x.shape)} ${x.dtype}`);
  const row = H * D, need = past + T;
  let buf = prev ? reusable(prev, need) : null;
  if (!buf) {
    // Double the room so a long generation reallocates O(log n) times.
    const capacity = Math.max(2 * need, 16);
    buf = allocate(x.dtype, B * capacity * row);
    buffers.set(buf, { capacity, latest: null });
    if (prev) writeRows(buf, capacity, 0, prev);
  }
  const info = buffers.get(buf)!;
  writeRows(buf, info.capacity, past, x);
  return (info.latest = new Tensor(buf, [B, need, H, D], [info.capacity * row, row, D, 1], 0));
}

/** prev's buffer when prev is the view its last append returned and the buffer has room for `need` positions. */
function reusable(prev: Tensor, need: number): Storage | null {
  const buf = prev.rawData, info = buffers.get(buf);
  return info && info.latest === prev && need <= info.capacity ? buf : null;
}

/** Copy src [batch, n, heads, d_head] into positions [at, at + n) of buf [batch, capacity, heads, d_head]. */
function writeRows(buf: Storage, capacity: number, at: number, src: Tensor): void {
  const [B, n, H, D] = src.shape as [number, number, number, number];
  const row = H * D;
  // Each batch row's positions are one contiguous run once the inner three dims are contiguous.
  const s = src.strides[1] === row && src.strides[2] === D && src.strides[3] === 1 ? src : src.contiguous();
  const data = s.data;
  for (let b = 0; b < B; b++) {
    const from = s.offset + b * (B > 1 ? s.strides[0]! : 0);
    buf.set(data.subarray(from, from + n * row), (b * capacity + at) * row);
  }
}
