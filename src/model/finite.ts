// Checks that turn silent NaN/Inf into named errors: one pass over an array finds the first
// non-finite element, and NonFiniteError says which tensor or hook point holds it. The model checks
// its logits after every forward (on by default, see transformer.ts); io checks every weight at load.
import type { Tensor } from "../tensor/tensor.js";
import { noGrad } from "../tensor/autodiff.js";
import { scope } from "../tensor/memory.js";

export class NonFiniteError extends Error {
  override name = "NonFiniteError";
  /** The tensor or hook point named by the message (e.g. "blocks.0.ln1.hook_scale"), or null if none was found. */
  constructor(message: string, readonly where: string | null = null) { super(message); }
}

/** Index of the first NaN or ±Infinity in data[from, to), or -1. */
export function firstNonFinite(data: ArrayLike<number>, from = 0, to = data.length): number {
  // v - v is 0 for every finite v and NaN for NaN and ±Infinity: one subtraction per element.
  for (let i = from; i < to; i++) { const v = data[i]!; if (v - v !== 0) return i; }
  return -1;
}

/** "NaN", "Infinity" or "-Infinity". */
export const describe = (v: number): string => (Number.isNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity");

/** Row-major index → "[i, j, k]" for a shape. */
export function indexString(flat: number, shape: readonly number[]): string {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) { const n = shape[d]!; idx[d] = n ? flat % n : 0; flat = n ? Math.floor(flat / n) : 0; }
  return `[${idx.join(", ")}]`;
}

/**
 * Whether every element of t is finite, by one sum on the active backend (a NaN or ±Infinity makes
 * the sum non-finite); a non-finite sum is confirmed element by element, since finite values can
 * overflow it. About 10× faster than a JavaScript loop over GPT-2-sized logits.
 */
export function allFinite(t: Tensor): boolean {
  if (t.size === 0) return true;
  if (Number.isFinite(noGrad(() => scope(() => t.sum().item())))) return true;
  return nonFiniteAt(t) === null;
}

/** Where t first holds a non-finite value ("NaN at [0, 3]"), or null when every element is finite. */
export function nonFiniteAt(t: Tensor): string | null {
  // Read the storage in place (no copy) when the elements are already row-major.
  const c = t.isContiguous ? t : t.contiguous();
  const d = c.data, i = firstNonFinite(d, c.offset, c.offset + c.size);
  return i < 0 ? null : `${describe(d[i]!)} at ${indexString(i - c.offset, t.shape)}`;
}
