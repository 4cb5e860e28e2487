// Ablation: replace one activation (a head's z, an MLP's output, one neuron, or the residual at a
// position) with zero, its mean over a reference dataset (per position), or its value on another
// input (resample, seeded choice), and read the patched logits; plus sweeps over every head, MLP,
// residual position or neuron of a layer, batched through the activation-patching machinery.
// The replacement is mixed as act·(1−m) + rep·m with m ∈ {0, 1}, so untouched entries stay bitwise.
// Padded prompts or references (attentionMask / referenceAttentionMask): reference activations are
// matched by real-token index (the i-th real token of an input row takes the mean over the reference's
// i-th real tokens, or the resampled row's i-th real token), so padding on either side changes nothing.
import { noGrad } from "../tensor/autodiff.js";
import { Rng } from "../tensor/rng.js";
import { Tensor } from "../tensor/tensor.js";
import { ShapeError, fmt } from "../tensor/shape.js";
import type { ForwardHook, HookName } from "../model/hooks.js";
import type { HookedTransformer, Tokens } from "../model/transformer.js";
import type { Metric } from "./patching-metrics.js";
import { layerAxis, numbered, runCells, type Cell, type LabelledAxis } from "./patching.js";
import { metricOn, paddingOf, padRuns } from "./padding.js";

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
  /** Prompts [n, pos] for mean and resample: the same pos as the input, unless either is padded (then matched by real-token index). */
  reference?: Tokens;
  /** Seed of the resample choice (default 0). */
  seed?: number;
  /** Padded prompts: [batch, pos], 1 for real tokens (padding on either side). */
  attentionMask?: Tensor;
  /** Explicit positions [batch, pos] for the prompts (see ForwardOptions.positionIds). */
  positionIds?: Tensor;
  /** Padded reference prompts: [n, pos]; the reference may then be longer than the input. */
  referenceAttentionMask?: Tensor;
  /** Explicit positions [n, pos] for the reference run. */
  referencePositionIds?: Tensor;
}

type PadOpts = Pick<AblationOptions, "attentionMask" | "positionIds" | "referenceAttentionMask" | "referencePositionIds">;

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

/** The reference prompts' activations at the given hooks [n, pos, …] (mean and resample need them). */
function referenceActs(model: HookedTransformer, names: readonly HookName[], opts: { kind: AblationKind; reference?: Tokens } & PadOpts): Map<HookName, Tensor> {
  if (opts.reference === undefined) throw new Error(`ablate: "${opts.kind}" needs reference tokens`);
  const fwd = { attentionMask: opts.referenceAttentionMask, positionIds: opts.referencePositionIds };
  if (fwd.attentionMask) { const [n, T] = model.toTokenTensor(opts.reference).shape as [number, number]; realIndex(fwd.attentionMask, n, T, "referenceAttentionMask"); }
  const { cache } = noGrad(() => model.runWithCache(opts.reference!, { ...fwd, names: [...names] }));
  return new Map(names.map((n) => [n, cache.get(n)]));
}

/** Each column's real-token index per row, −1 at padding, from a mask [rows, pos] (every column real without one). */
function realIndex(mask: Tensor | undefined, rows: number, T: number, field: string): Int32Array {
  if (mask && (mask.ndim !== 2 || mask.shape[0] !== rows || mask.shape[1] !== T)) throw new ShapeError(`ablate: ${field} must be [batch, pos] = [${rows}, ${T}], got ${fmt(mask.shape)}`);
  const md = mask?.toArray(), out = new Int32Array(rows * T);
  for (let b = 0; b < rows; b++) { let c = 0; for (let t = 0; t < T; t++) out[b * T + t] = !md || md[b * T + t] !== 0 ? c++ : -1; }
  return out;
}

/** Where padded input and reference meet: each one's real-token index per column (realIndex). */
interface Alignment { input: Int32Array; T: number; ref: Int32Array }

/** The alignment when either side is padded, or null (then positions match column for column). */
function alignment(model: HookedTransformer, tokens: Tokens, opts: { reference?: Tokens } & PadOpts): Alignment | null {
  if (!opts.attentionMask && !opts.referenceAttentionMask) return null;
  const [B, T] = model.toTokenTensor(tokens).shape as [number, number];
  const ref = model.toTokenTensor(opts.reference!);
  return { input: realIndex(opts.attentionMask, B, T, "attentionMask"), T, ref: realIndex(opts.referenceAttentionMask, ref.shape[0]!, ref.shape[1]!, "referenceAttentionMask") };
}

/**
 * Mean ablation's per-position mean [1, pos, …], or resample's seeded rows [batch, pos, …], of
 * reference activations [n, pos, …]. With an alignment, [batch, pos, …] matched by real-token index
 * (the mean over real reference tokens only; zeros at the input's padding, which no real token reads).
 */
function fromReference(refAct: Tensor, batch: number, opts: { kind: "mean" | "resample"; seed?: number }, align: Alignment | null = null): Tensor {
  const rng = new Rng(opts.seed ?? 0), n = refAct.shape[0]!;
  const rows = opts.kind === "resample" ? Array.from({ length: batch }, () => rng.int(0, n)) : [];
  if (!align) return opts.kind === "mean" ? noGrad(() => refAct.mean(0, true)) : refAct.indexSelect(0, rows);
  const Tr = refAct.shape[1]!, rest = refAct.shape.slice(2), D = rest.reduce((a, b) => a * b, 1), T = align.T;
  const data = refAct.toArray(), out = new Float64Array(batch * T * D);
  // For each reference row, the column of its j-th real token.
  const colOf = Array.from({ length: n }, (_, r) => { const m: number[] = []; for (let t = 0; t < Tr; t++) { const j = align.ref[r * Tr + t]!; if (j >= 0) m[j] = t; } return m; });
  const sums = new Float64Array(Tr * D), counts = new Int32Array(Tr);
  if (opts.kind === "mean") for (let r = 0; r < n; r++) colOf[r]!.forEach((t, j) => { counts[j]!++; for (let d = 0; d < D; d++) sums[j * D + d]! += data[(r * Tr + t) * D + d]!; });
  for (let b = 0; b < batch; b++) for (let t = 0; t < T; t++) {
    const j = align.input[b * T + t]!;
    if (j < 0) continue;
    const o = (b * T + t) * D;
    if (opts.kind === "mean") {
      if (!(j < Tr && counts[j]! > 0)) throw new RangeError(`ablate: no reference row has a real token at position ${j}, which input row ${b} needs for mean ablation`);
      for (let d = 0; d < D; d++) out[o + d] = sums[j * D + d]! / counts[j]!;
    } else {
      const r = rows[b]!, c = colOf[r]![j];
      if (c === undefined) throw new RangeError(`ablate: resampled reference row ${r} has no real token at position ${j}, which input row ${b} needs`);
      for (let d = 0; d < D; d++) out[o + d] = data[(r * Tr + c) * D + d]!;
    }
  }
  return new Tensor(out, [batch, T, ...rest]).cast(refAct.dtype);
}

/** The replacement activation for the input's batch: zeros, reference mean [1, …], or resampled rows [batch, …]. */
function replacement(model: HookedTransformer, name: HookName, tokens: Tokens, batch: number, opts: AblationOptions): Tensor | null {
  if (opts.kind === "zero") return null;
  return fromReference(referenceActs(model, [name], opts).get(name)!, batch, { kind: opts.kind, seed: opts.seed }, alignment(model, tokens, opts));
}

const fits = (rep: Tensor, act: Tensor): void => {
  if (rep.ndim !== act.ndim || rep.shape.slice(1).some((d, i) => d !== act.shape[i + 1]))
    throw new ShapeError(`ablate: reference activation ${fmt(rep.shape)} does not fit ${fmt(act.shape)} (same pos length needed)`);
};

/** The forward hook an ablation attaches (for composing with other hooks, e.g. to record activations); run it with opts' attentionMask and positionIds. */
export function ablationHook(model: HookedTransformer, tokens: Tokens, opts: AblationOptions): [HookName, ForwardHook] {
  const s = site(model, opts.target);
  const batch = model.toTokenTensor(tokens).shape[0]!;
  const rep = replacement(model, s.name, tokens, batch, opts);
  const fn: ForwardHook = (act) => {
    if (rep) fits(rep, act);
    const m = mask(act.shape, s.dim, s.index, act.dtype);
    const kept = act.mul(m.neg().add(1));
    return rep ? kept.add(rep.cast(act.dtype).mul(m)) : kept;
  };
  return [s.name, fn];
}

/** Logits [batch, pos, d_vocab] with the target ablated (padded prompts run with their mask and positions). */
export function ablate(model: HookedTransformer, tokens: Tokens, opts: AblationOptions): Tensor {
  const hook = ablationHook(model, tokens, opts);
  return noGrad(() => model.runWithHooks(tokens, { fwd: [hook] }, { attentionMask: opts.attentionMask, positionIds: opts.positionIds }));
}

/** What a sweep ablates in turn: every head (layer × head), every MLP (layer), the residual stream
 * at every layer × position (hook_resid_pre), or every neuron of one layer's MLP. */
export type SweepOver = "heads" | "mlps" | "positions" | "neurons";
export const SWEEP_OVER: readonly SweepOver[] = ["heads", "mlps", "positions", "neurons"];

export interface SweepOptions extends PadOpts {
  kind: AblationKind;
  metric: Metric;
  /** Default "heads". */
  over?: SweepOver;
  /** The layer whose neurons a "neurons" sweep ablates. */
  layer?: number;
  /** Prompts [n, pos] for mean and resample: the same pos as the input, unless either is padded (then matched by real-token index). */
  reference?: Tokens;
  /** Seed of the resample choice (default 0): the same rows for every target, as ablate() with that seed. */
  seed?: number;
  /** How many cells `top` lists, by |Δ metric| (default 10). */
  topK?: number;
  /** Ablated runs stacked per forward (default 32). */
  batchSize?: number;
  /** false: one ablate() call (a full forward) per target, the reference the fast path is tested against. Default true. */
  fast?: boolean;
  /** Labels for the pos axis of a "positions" sweep (e.g. token strings). */
  posLabels?: readonly string[];
}

export interface SweepCell { target: AblationTarget; label: string; value: number }

export interface AblationSweep {
  over: SweepOver;
  /** metric(ablated) − metric(clean): [layer, head], [layer], [layer, pos] or [neuron]. */
  values: Tensor;
  axes: LabelledAxis[];
  cleanMetric: number;
  /** The topK cells with the largest |Δ metric|, largest first. */
  top: SweepCell[];
}

interface Planned { target: AblationTarget; label: string; name: HookName; cell: Cell }

/** Every target of a sweep, row-major over its axes, with the hook and slice each one ablates. */
function plan(model: HookedTransformer, T: number, o: SweepOptions): { targets: Planned[]; axes: LabelledAxis[] } {
  const { n_layers: L, n_heads: H, d_mlp } = model.cfg;
  const over = o.over ?? "heads";
  const count = numbered, layers = layerAxis(L);
  const one = (target: AblationTarget, label: string): Planned => {
    const s = site(model, target);
    return { target, label, name: s.name, cell: { layer: "layer" in target && target.layer !== undefined ? target.layer : 0, dim: s.dim, index: s.index } };
  };
  const grid = <T>(n: number, m: number, f: (i: number, j: number) => T) => Array.from({ length: n * m }, (_, k) => f(Math.floor(k / m), k % m));
  if ((over === "mlps" || over === "neurons") && model.cfg.attn_only) throw new Error(`ablationSweep: an attention-only model has no MLPs to sweep over ${over}`);
  switch (over) {
    case "heads": return { targets: grid(L, H, (l, h) => one({ layer: l, head: h }, `L${l}H${h}`)), axes: [layers, count("head", H)] };
    case "mlps": return { targets: grid(L, 1, (l) => one({ layer: l, mlp: true }, `L${l} MLP`)), axes: [layers] };
    case "positions": return { targets: grid(L, T, (l, p) => one({ layer: l, position: p }, `L${l} pos ${p}`)), axes: [layers, count("pos", T, o.posLabels)] };
    case "neurons": {
      if (o.layer === undefined) throw new Error("ablationSweep: a neurons sweep needs a layer");
      const layer = o.layer;
      return { targets: grid(1, d_mlp, (_, n) => one({ layer, neuron: n }, `L${layer}N${n}`)), axes: [count("neuron", d_mlp)] };
    }
    default: return over satisfies never;
  }
}

/**
 * Ablate every target of a sweep in turn; the change in metric per cell. Fast path (default): the
 * patching machinery (patching.ts runCells) — each run starts from the cached hook_resid_pre of
 * the target's layer, several targets are stacked along the batch axis per forward, and a
 * "last"-position metric unembeds one row. The replacement (zeros, the reference's per-position
 * mean, or its seeded resampled rows) is computed once per hook, so each entry equals ablate() on
 * that target with the same options.
 */
export function ablationSweep(model: HookedTransformer, tokens: Tokens, opts: SweepOptions): AblationSweep {
  const toks = model.toTokenTensor(tokens);
  const [B, T] = toks.shape as [number, number];
  const { targets, axes } = plan(model, T, opts);
  const values = new Float64Array(targets.length);
  const padding = paddingOf(opts, B, T, "ablationSweep"), fwd = padRuns(padding, 1);
  let clean: number;
  if (opts.fast ?? true) {
    const names = [...new Set(targets.map((t) => t.name))];
    const layers = [...new Set(targets.map((t) => t.cell.layer))];
    const resids = layers.map((l) => `blocks.${l}.hook_resid_pre` as HookName);
    const run = noGrad(() => model.runWithCache(toks, { ...fwd, names: [...new Set([...names, ...resids])] }));
    clean = noGrad(() => metricOn(opts.metric, run.logits, padding).item());
    const refs = opts.kind === "zero" ? null : referenceActs(model, names, opts);
    const align = refs ? alignment(model, toks, opts) : null;
    const sourceCache = new Map<string, Tensor>(names.map((n) => {
      const act = run.cache.get(n);
      if (!refs) return [n, act.zerosLike()];
      const rep = fromReference(refs.get(n)!, B, { kind: opts.kind as "mean" | "resample", seed: opts.seed }, align);
      fits(rep, act);
      return [n, noGrad(() => rep.cast(act.dtype).expand(act.shape).contiguous())];
    }));
    const targetCache = new Map<string, Tensor>(resids.map((n) => [n, run.cache.get(n)]));
    const hookAt = new Map(targets.map((t) => [t.cell.layer, t.name]));
    const out = runCells(model, { metric: opts.metric, batchSize: opts.batchSize }, (l) => hookAt.get(l)!, targets.map((t) => t.cell), { targetTokens: toks, targetCache, sourceCache, padding });
    out.forEach((v, i) => { values[i] = v - clean; });
  } else {
    clean = noGrad(() => metricOn(opts.metric, model.forward(toks, fwd), padding).item());
    const { attentionMask, positionIds, referenceAttentionMask, referencePositionIds } = opts;
    targets.forEach((t, i) => {
      const logits = ablate(model, toks, { kind: opts.kind, target: t.target, reference: opts.reference, seed: opts.seed, attentionMask, positionIds, referenceAttentionMask, referencePositionIds });
      values[i] = noGrad(() => metricOn(opts.metric, logits, padding).item()) - clean;
    });
  }
  const order = targets.map((_, i) => i).sort((a, b) => Math.abs(values[b]!) - Math.abs(values[a]!) || a - b);
  const top = order.slice(0, Math.max(0, opts.topK ?? 10)).map((i) => ({ target: targets[i]!.target, label: targets[i]!.label, value: values[i]! }));
  return { over: opts.over ?? "heads", values: new Tensor(values, axes.map((a) => a.labels.length)), axes, cleanMetric: clean, top };
}
