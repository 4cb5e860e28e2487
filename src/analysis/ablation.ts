// Ablation: replace one activation (a head's z, an MLP's output, one neuron, or the residual at a
// position) with zero, its mean over a reference dataset (per position), or its value on another
// input (resample, seeded choice), and read the patched logits; plus a sweep over all heads.
// The replacement is mixed as act·(1−m) + rep·m with m ∈ {0, 1}, so untouched entries stay bitwise.
import { noGrad } from "../tensor/autodiff.js";
import { Rng } from "../tensor/rng.js";
import { Tensor } from "../tensor/tensor.js";
import { ShapeError, fmt } from "../tensor/shape.js";
import type { ForwardHook, HookName } from "../model/hooks.js";
import type { HookedTransformer, Tokens } from "../model/transformer.js";
import type { Metric } from "./patching-metrics.js";
import type { LabelledAxis } from "./patching.js";

export type AblationKind = "zero" | "mean" | "resample";
export type AblationTarget =
  | { layer: number; head: number }
  | { layer: number; mlp: true }
  | { layer: number; neuron: number }
  /** The residual stream entering block `layer` (default 0) at one position. */
  | { position: number; layer?: number };

export interface AblationOptions {
  kind: AblationKind;
  target: AblationTarget;
  /** Prompts [n, pos] (same pos as the input) for mean and resample. */
  reference?: Tokens;
  /** Seed of the resample choice (default 0). */
  seed?: number;
}

/** Which hook, and which slice of its activation (axis after batch, index), an ablation target means. */
function site(model: HookedTransformer, t: AblationTarget): { name: HookName; dim: number | null; index: number } {
  const n = model.cfg.n_layers;
  const layer = "layer" in t && t.layer !== undefined ? t.layer : 0;
  if (!Number.isInteger(layer) || layer < 0 || layer >= n) throw new RangeError(`ablate: layer ${layer} out of range [0, ${n})`);
  if ("head" in t) {
    if (!Number.isInteger(t.head) || t.head < 0 || t.head >= model.cfg.n_heads) throw new RangeError(`ablate: head ${t.head} out of range`);
    return { name: `blocks.${layer}.attn.hook_z` as HookName, dim: 2, index: t.head }; // z: [batch, pos, head_index, d_head]
  }
  if ("mlp" in t) return { name: `blocks.${layer}.hook_mlp_out` as HookName, dim: null, index: 0 };
  if ("neuron" in t) return { name: `blocks.${layer}.mlp.hook_post` as HookName, dim: 2, index: t.neuron }; // [batch, pos, d_mlp]
  return { name: `blocks.${layer}.hook_resid_pre` as HookName, dim: 1, index: t.position }; // [batch, pos, d_model]
}

/** 1 on the ablated slice, 0 elsewhere: shape [1, ...activation shape without batch]. */
function mask(shape: readonly number[], dim: number | null, index: number, dtype: Tensor["dtype"]): Tensor {
  const s = [1, ...shape.slice(1)];
  const size = s.reduce((a, b) => a * b, 1);
  const m = new (dtype === "float64" ? Float64Array : Float32Array)(size);
  if (dim === null) m.fill(1);
  else {
    const len = s[dim]!, idx = index < 0 ? index + len : index;
    if (!Number.isInteger(idx) || idx < 0 || idx >= len) throw new RangeError(`ablate: index ${index} out of range for ${len}`);
    const inner = s.slice(dim + 1).reduce((a, b) => a * b, 1), outer = size / (inner * len);
    for (let o = 0; o < outer; o++) m.fill(1, (o * len + idx) * inner, (o * len + idx + 1) * inner);
  }
  return new Tensor(m, s);
}

/** The replacement activation for the input's batch: zeros, reference mean [1, …], or resampled rows [batch, …]. */
function replacement(model: HookedTransformer, name: HookName, batch: number, opts: AblationOptions): Tensor | null {
  if (opts.kind === "zero") return null;
  if (opts.reference === undefined) throw new Error(`ablate: "${opts.kind}" needs reference tokens`);
  const refAct = noGrad(() => model.runWithCache(opts.reference!, { names: [name] }).cache.get(name)); // [n, pos, …]
  if (opts.kind === "mean") return noGrad(() => refAct.mean(0, true)); // per position: [1, pos, …]
  const rng = new Rng(opts.seed ?? 0), n = refAct.shape[0]!;
  const rows = Array.from({ length: batch }, () => rng.int(0, n));
  return refAct.indexSelect(0, rows); // [batch, pos, …]
}

/** The forward hook an ablation attaches (for composing with other hooks, e.g. to record activations). */
export function ablationHook(model: HookedTransformer, tokens: Tokens, opts: AblationOptions): [HookName, ForwardHook] {
  const s = site(model, opts.target);
  const batch = model.toTokenTensor(tokens).shape[0]!;
  const rep = replacement(model, s.name, batch, opts);
  const fn: ForwardHook = (act) => {
    if (rep && (rep.ndim !== act.ndim || rep.shape.slice(1).some((d, i) => d !== act.shape[i + 1])))
      throw new ShapeError(`ablate: reference activation ${fmt(rep.shape)} does not fit ${fmt(act.shape)} (same pos length needed)`);
    const m = mask(act.shape, s.dim, s.index, act.dtype);
    const kept = act.mul(m.neg().add(1));
    return rep ? kept.add(rep.cast(act.dtype).mul(m)) : kept;
  };
  return [s.name, fn];
}

/** Logits [batch, pos, d_vocab] with the target ablated. */
export function ablate(model: HookedTransformer, tokens: Tokens, opts: AblationOptions): Tensor {
  const hook = ablationHook(model, tokens, opts);
  return noGrad(() => model.runWithHooks(tokens, { fwd: [hook] }));
}

export interface AblationSweep {
  /** metric(ablated) − metric(clean), [layer, head]. */
  values: Tensor;
  axes: LabelledAxis[];
  cleanMetric: number;
}

/** Ablate every head in turn; the change in metric per layer × head. */
export function ablationSweep(model: HookedTransformer, tokens: Tokens, opts: { kind: AblationKind; metric: Metric; reference?: Tokens; seed?: number }): AblationSweep {
  const { n_layers: L, n_heads: H } = model.cfg;
  const clean = noGrad(() => opts.metric.compute(model.forward(tokens)).item());
  const out = new Float64Array(L * H);
  for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) {
    const logits = ablate(model, tokens, { kind: opts.kind, target: { layer: l, head: h }, reference: opts.reference, seed: opts.seed });
    out[l * H + h] = noGrad(() => opts.metric.compute(logits).item()) - clean;
  }
  return {
    values: new Tensor(out, [L, H]), cleanMetric: clean,
    axes: [{ name: "layer", labels: Array.from({ length: L }, (_, i) => String(i)) }, { name: "head", labels: Array.from({ length: H }, (_, i) => String(i)) }],
  };
}
