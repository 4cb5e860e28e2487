// Checks that turn silent NaN/Inf into named errors: one pass over an array finds the first
// non-finite element, and NonFiniteError says which tensor or hook point holds it. The model checks
// its logits after every forward (on by default, checkedLogits below); io checks every weight at load.
import type { Tensor } from "../tensor/tensor.js";
import { noGrad } from "../tensor/autodiff.js";
import { scope } from "../tensor/memory.js";
import type { HookedTransformer, ForwardOptions } from "./transformer.js";

export class NonFiniteError extends Error {
  override name = "NonFiniteError";
  /** The tensor or hook point named by the message (e.g. "blocks.0.ln1.hook_scale"), or null if none was found. */
  constructor(message: string, readonly where: string | null = null) { super(message); }
}

/** Index of the first NaN or ±Infinity in data[from, to) (-Infinity passes with allowNegInf), or -1. */
export function firstNonFinite(data: ArrayLike<number>, from = 0, to = data.length, allowNegInf = false): number {
  // v - v is 0 for every finite v and NaN for NaN and ±Infinity: one subtraction per element.
  for (let i = from; i < to; i++) { const v = data[i]!; if (v - v !== 0 && !(allowNegInf && v === -Infinity)) return i; }
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

/** Where t first holds a non-finite value ("NaN at [0, 3]"; -Infinity passes with allowNegInf), or null. */
export function nonFiniteAt(t: Tensor, allowNegInf = false): string | null {
  // Read the storage in place (no copy) when the elements are already row-major.
  const c = t.isContiguous ? t : t.contiguous();
  const d = c.data, i = firstNonFinite(d, c.offset, c.offset + c.size, allowNegInf);
  return i < 0 ? null : `${describe(d[i]!)} at ${indexString(i - c.offset, t.shape)}`;
}

/**
 * The logits of run(), checked unless opts.checkFinite (default model.checkFinite) is false. When they
 * hold NaN/Inf, run() again (without gradients, every hook point probed after its hooks, the KV cache as
 * it was before the call) and throw a NonFiniteError naming the first hook point that holds one.
 */
export function checkedLogits(model: HookedTransformer, opts: ForwardOptions, run: () => Tensor, who: string): Tensor {
  if (!(opts.checkFinite ?? model.checkFinite)) return run();
  const kv = opts.kvCache;
  const saved = kv ? { keys: [...kv.keys], values: [...kv.values] } : null; // views, so this copies no data
  const logits = run();
  if (allFinite(logits)) return logits;
  const bad = nonFiniteAt(logits)!;
  const restore = () => { if (kv && saved) { kv.keys.splice(0, kv.keys.length, ...saved.keys); kv.values.splice(0, kv.values.length, ...saved.values); } };
  let first: string | null = null, firstBad = "";
  restore();
  model.rt.probe = (name, x) => {
    if (first !== null) return;
    // hook_attn_scores holds -Infinity above the diagonal by design (as TransformerLens shows it).
    const at = nonFiniteAt(x, name.endsWith(".hook_attn_scores"));
    if (at !== null) { first = name; firstBad = at; }
  };
  let rerunFinite = false;
  try { rerunFinite = allFinite(noGrad(() => run())); } catch { /* a hook may throw on the rerun; what was found so far still counts */ } finally { model.rt.probe = null; restore(); }
  const param = firstNonFiniteParameter(model);
  const where = first !== null ? `non-finite values first appear at ${first} (${firstBad})${epsHint(model, first)}`
    // The rerun computes every hook point unfused; finite logits there point at a fused kernel.
    : rerunFinite ? "a rerun with every hook point computed unfused gave finite logits, so a fused kernel (norm or attention) produced it"
    : "no hook point holds one, so it arises in the unembedding (W_U, b_U)";
  throw new NonFiniteError(`${who}: the logits hold ${bad}; ${where}${param ? `; parameter ${param}` : ""}. Pass checkFinite: false (or set model.checkFinite = false) to skip this check.`, first ?? "logits");
}

/** Why a norm hook may go non-finite: a negative or non-finite epsilon. */
function epsHint(model: HookedTransformer, name: string): string {
  const eps = model.cfg.eps;
  if (/\.hook_(scale|normalized)$/.test(name) && !(eps >= 0 && Number.isFinite(eps)))
    return ` — eps (layer_norm_epsilon / rms_norm_eps) = ${eps}, so variance + eps can be negative`;
  return "";
}

/** "blocks.1.mlp.W_in holds NaN at [0, 3]" for the first parameter with a non-finite value, or null. */
function firstNonFiniteParameter(model: HookedTransformer): string | null {
  for (const [name, p] of model.namedParameters()) { const at = nonFiniteAt(p); if (at !== null) return `${name} holds ${at}`; }
  return null;
}
