// Activation patching (TransformerLens patching.py, rebuilt fast) and attribution patching.
// Noising runs the clean prompt and patches in corrupted activations; denoising runs the corrupted
// prompt and patches in clean ones. The "target" run is the one executed, the "source" supplies
// activations. Each sweep returns a metric per cell with labelled axes (layer × pos, layer × head,
// layer).
//
// Fast path: a patch at layer L cannot change blocks before L, so we cache the target's
// hook_resid_pre at every layer and run model.forwardFrom(L, …) from there; cells of one layer are
// stacked along the batch axis (one forward per chunk); a "last"-position metric unembeds one row.
// The naive path (a full forward with a hook per cell) is the reference it is tested against.
//
// Attribution patching (Nanda 2023; Syed et al. 2023): metric(patched) − metric(target) ≈
// (a_source − a_target) · ∂metric/∂a at the target run, for every cell from one forward + backward.
import { backward, noGrad, withGrad } from "../tensor/autodiff.js";
import { scope } from "../tensor/memory.js";
import { concat } from "../tensor/ops/movement.js";
import { Tensor } from "../tensor/tensor.js";
import { ShapeError } from "../tensor/shape.js";
import type { HookedTransformer, Tokens } from "../model/transformer.js";
import type { HookName } from "../model/hooks.js";
import type { Metric } from "./patching-metrics.js";
import { metricOn, paddingOf, padRuns, type Padding } from "./padding.js";
import type { Conditioning } from "./conditioning.js";

/** Block-level activations [batch, pos, d_model], patched per position or whole. */
export type ResidSite = "resid_pre" | "resid_mid" | "resid_post" | "attn_out" | "mlp_out";
/** Per-head activations: q, k, v, z [batch, pos, head_index, d_head]; pattern [batch, head_index, query_pos, key_pos]. */
export type HeadSite = "z" | "q" | "k" | "v" | "pattern";
export type Direction = "noising" | "denoising";

export interface LabelledAxis { name: string; labels: string[] }

export interface PatchResult {
  /** One metric value per cell, shaped by the axes (e.g. [layer, pos]). */
  values: Tensor;
  axes: LabelledAxis[];
  /** Metric on the target run (nothing patched) and on the source run. */
  targetMetric: number;
  sourceMetric: number;
  direction: Direction;
  site: string;
  /** The metric's conditioning when it is normalised (normalizedMetric): illConditioned means the values are noise. */
  conditioning?: Conditioning;
}

export interface PatchOptions {
  /** Prompts [batch, pos]; clean and corrupted must have the same shape. */
  clean: Tokens;
  corrupted: Tokens;
  metric: Metric;
  /** "denoising" (default, corrupted run, clean activations in) or "noising". */
  direction?: Direction;
  /** Patched runs stacked per forward (default 32). */
  batchSize?: number;
  /** false: one full forward with a hook per cell (the reference semantics). Default true. */
  fast?: boolean;
  /** Labels for the pos axis (e.g. token strings); default "0", "1", …. */
  posLabels?: readonly string[];
  /** Padded prompts: [batch, pos], 1 for real tokens, shared by clean and corrupted (padding on either side). */
  attentionMask?: Tensor;
  /** Explicit positions [batch, pos] for both runs (see ForwardOptions.positionIds). */
  positionIds?: Tensor;
}

const siteHook = (layer: number, site: ResidSite | HeadSite): HookName =>
  (site === "resid_pre" || site === "resid_mid" || site === "resid_post" || site === "attn_out" || site === "mlp_out"
    ? `blocks.${layer}.hook_${site}` : `blocks.${layer}.attn.hook_${site}`) as HookName;

/** Which slice of an activation one cell replaces: index `index` along axis `dim` (batch is axis 0), or everything. */
export interface Cell { layer: number; dim: number | null; index: number }

/** 1 where the cell patches, 0 elsewhere, over one copy of the prompts: shape of the activation [batch, …]. */
function cellMask(shape: readonly number[], cell: Cell, dtype: Tensor["dtype"]): Float32Array | Float64Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const m = new (dtype === "float64" ? Float64Array : Float32Array)(n);
  if (cell.dim === null) { m.fill(1); return m; }
  const d = cell.dim;
  const inner = shape.slice(d + 1).reduce((a, b) => a * b, 1), size = shape[d]!, outer = n / (inner * size);
  for (let o = 0; o < outer; o++) m.fill(1, (o * size + cell.index) * inner, (o * size + cell.index + 1) * inner);
  return m;
}

/**
 * The running activation [K * batch, …] (K copies of the target prompts) with copy k's slice of
 * cells[k] replaced by source [batch, …]. Mixed as t·(1−m) + s·m with m ∈ {0, 1}, which gives s or t
 * exactly (no rounding), and stays differentiable.
 */
function mixCells(target: Tensor, source: Tensor, cells: readonly Cell[]): Tensor {
  const shape = source.shape, per = source.size, K = cells.length;
  if (target.shape[0] !== K * shape[0]! || target.size !== K * per) throw new ShapeError(`patching: activation ${target.shape} is not ${K} copies of ${shape}`);
  const mask = new (target.dtype === "float64" ? Float64Array : Float32Array)(per * K);
  cells.forEach((c, k) => mask.set(cellMask(shape, c, target.dtype), k * per));
  const m = new Tensor(mask, target.shape);
  const src = K === 1 ? source : concat(Array.from({ length: K }, () => source), 0);
  return target.mul(m.neg().add(1)).add(src.mul(m));
}

/**
 * What runCells reads: the target prompts, the target's hook_resid_pre per layer (fast path), and by
 * hook name the source activation [batch, …] a cell's slice is replaced with (ablation passes zeros,
 * a reference mean or resampled rows here).
 */
export interface CellRuns {
  targetTokens: Tensor;
  targetCache: Map<string, Tensor>;
  sourceCache: Map<string, Tensor>;
  /** Padding shared by the target and source prompts. */
  padding?: Padding;
}

interface Runs extends CellRuns {
  sourceTokens: Tensor;
  targetMetric: number;
  sourceMetric: number;
}

function prepare(model: HookedTransformer, o: PatchOptions, names: readonly HookName[], fast: boolean): Runs {
  const clean = model.toTokenTensor(o.clean), corrupted = model.toTokenTensor(o.corrupted);
  if (!clean.shapeEquals(corrupted.shape)) throw new ShapeError(`patching: clean ${clean.shape} and corrupted ${corrupted.shape} prompts must have the same [batch, pos]`);
  const denoise = (o.direction ?? "denoising") === "denoising";
  const [targetTokens, sourceTokens] = denoise ? [corrupted, clean] : [clean, corrupted];
  const resids = fast ? Array.from({ length: model.cfg.n_layers }, (_, l) => `blocks.${l}.hook_resid_pre` as HookName) : [];
  const padding = paddingOf(o, clean.shape[0]!, clean.shape[1]!), fwd = padRuns(padding, 1);
  return noGrad(() => {
    const t = model.runWithCache(targetTokens, { ...fwd, names: [...new Set([...names, ...resids])] });
    const s = model.runWithCache(sourceTokens, { ...fwd, names: [...names] });
    const grab = (c: typeof t.cache, ns: readonly HookName[]) => new Map(ns.map((n) => [n as string, c.get(n)]));
    return {
      targetTokens, sourceTokens, padding,
      targetCache: grab(t.cache, [...new Set([...names, ...resids])]), sourceCache: grab(s.cache, names),
      targetMetric: metricOn(o.metric, t.logits, padding).item(), sourceMetric: metricOn(o.metric, s.logits, padding).item(),
    };
  });
}

/** Metric for each cell, patching hook(layer) at each cell's layer: fast (start at layer, batched) or naive. */
export function runCells(model: HookedTransformer, o: Pick<PatchOptions, "metric" | "fast" | "batchSize">, hook: (layer: number) => HookName, cells: readonly Cell[], runs: CellRuns): Float64Array {
  const fast = o.fast ?? true, K = Math.max(1, o.batchSize ?? 32);
  const out = new Float64Array(cells.length);
  const B = runs.targetTokens.shape[0]!;
  const pad = runs.padding;
  // Under right padding the metric reads each row's last real token, so every position is unembedded.
  const lastOnly = o.metric.positions === "last" && !pad?.lastReal;
  noGrad(() => {
    if (!fast) {
      const fwd = padRuns(pad, 1);
      cells.forEach((c, i) => {
        const name = hook(c.layer), src = runs.sourceCache.get(name)!;
        out[i] = scope(() => metricOn(o.metric, model.runWithHooks(runs.targetTokens, { fwd: [[name, (a) => mixCells(a, src, [c])]] }, fwd), pad).item());
      });
      return;
    }
    for (let start = 0; start < cells.length;) {
      // A chunk holds cells of one layer only, since they share a start layer.
      let end = start;
      while (end < cells.length && end - start < K && cells[end]!.layer === cells[start]!.layer) end++;
      const chunk = cells.slice(start, end), L = chunk[0]!.layer, name = hook(L);
      const src = runs.sourceCache.get(name)!;
      const resid = runs.targetCache.get(`blocks.${L}.hook_resid_pre`)!; // [batch, pos, d_model]
      scope(() => {
        const input = concat(chunk.map(() => resid), 0); // [K * batch, pos, d_model]
        const fwd = padRuns(pad, chunk.length);
        const logits = model.withHooks({ fwd: [[name, (a) => mixCells(a, src, chunk)]] }, () => model.forwardFrom(L, input, { ...fwd, lastPositionOnly: lastOnly }));
        chunk.forEach((_, k) => { out[start + k] = metricOn(o.metric, logits.slice(0, k * B, (k + 1) * B), pad).item(); });
      });
      start = end;
    }
  });
  return out;
}

export const layerAxis = (n: number): LabelledAxis => ({ name: "layer", labels: Array.from({ length: n }, (_, i) => String(i)) });
/** An axis labelled by the given labels (checked against n) or by "0", "1", …. */
export const numbered = (name: string, n: number, labels?: readonly string[]): LabelledAxis => {
  if (labels && labels.length !== n) throw new ShapeError(`${name} labels: ${labels.length} given for ${n}`);
  return { name, labels: labels ? [...labels] : Array.from({ length: n }, (_, i) => String(i)) };
};

function result(values: Float64Array, axes: LabelledAxis[], runs: Runs, o: PatchOptions, site: string): PatchResult {
  return {
    values: new Tensor(values, axes.map((a) => a.labels.length)), axes,
    targetMetric: runs.targetMetric, sourceMetric: runs.sourceMetric, direction: o.direction ?? "denoising", site,
    ...(o.metric.conditioning ? { conditioning: o.metric.conditioning } : {}),
  };
}

const allLayers = (model: HookedTransformer) => Array.from({ length: model.cfg.n_layers }, (_, l) => l);

/** A patching sweep run one layer at a time (so a caller can report progress and stop between layers), then its result. */
export interface PatchSweep {
  layers: number;
  /** Patch every cell of layer l (layers in order, each once). */
  runLayer(l: number): void;
  /** The values of every layer run so far; call after the last layer. */
  result(): PatchResult;
}

/** The sweep behind patchByPos / patchByHead / patchByLayer: by "pos" (resid site per position), "head" (head site per head) or "layer" (resid site whole). */
export function patchSweep(model: HookedTransformer, o: PatchOptions & { by: "pos" | "head" | "layer"; site?: ResidSite | HeadSite }): PatchSweep {
  const Ls = allLayers(model);
  const site = o.site ?? (o.by === "head" ? "z" : "resid_pre");
  if (o.by === "layer" && model.cfg.attn_only && site === "mlp_out") throw new Error("patchByLayer: an attention-only model has no mlp_out");
  const runs = prepare(model, o, Ls.map((l) => siteHook(l, site)), o.fast ?? true);
  const T = runs.targetTokens.shape[1]!;
  // k and v have n_key_value_heads heads under grouped-query attention.
  const H = site === "k" || site === "v" ? model.cfg.n_key_value_heads : model.cfg.n_heads;
  const headDim = site === "pattern" ? 0 : 1; // pattern [batch, head_index, …]; others [batch, pos, head_index, …], dims after batch
  const n = o.by === "pos" ? T : o.by === "head" ? H : 1;
  const cellsOf = (layer: number): Cell[] => o.by === "pos" ? Array.from({ length: T }, (_, p) => ({ layer, dim: 1, index: p }))
    : o.by === "head" ? Array.from({ length: H }, (_, h) => ({ layer, dim: headDim + 1, index: h })) : [{ layer, dim: null, index: 0 }];
  const values = new Float64Array(Ls.length * n);
  const axes = o.by === "layer" ? [layerAxis(Ls.length)] : [layerAxis(Ls.length), o.by === "pos" ? numbered("pos", T, o.posLabels) : numbered("head", H)];
  return {
    layers: Ls.length,
    // Chunks of runCells never span layers, so layer by layer gives the same numbers as one call.
    runLayer: (l) => values.set(runCells(model, o, (x) => siteHook(x, site), cellsOf(l), runs), l * n),
    result: () => result(values, axes, runs, o, site),
  };
}

function drain(s: PatchSweep): PatchResult {
  for (let l = 0; l < s.layers; l++) s.runLayer(l);
  return s.result();
}

/** Patch `site` ([batch, pos, d_model]) one position at a time: values [layer, pos] (get_act_patch_resid_pre and kin). */
export function patchByPos(model: HookedTransformer, o: PatchOptions & { site?: ResidSite }): PatchResult {
  return drain(patchSweep(model, { ...o, by: "pos", site: o.site ?? "resid_pre" }));
}

/** Patch one head's `site` at every position: values [layer, head] (get_act_patch_attn_head_out_all_pos for z). */
export function patchByHead(model: HookedTransformer, o: PatchOptions & { site?: HeadSite }): PatchResult {
  return drain(patchSweep(model, { ...o, by: "head", site: o.site ?? "z" }));
}

/** Patch the whole of `site` (every position) per layer: values [layer], e.g. site "mlp_out" for MLPs. */
export function patchByLayer(model: HookedTransformer, o: PatchOptions & { site: ResidSite }): PatchResult {
  return drain(patchSweep(model, { ...o, by: "layer" }));
}

/**
 * Attribution patching: for each cell, Σ (a_source − a_target) · ∂metric/∂a over the cell's slice,
 * with the gradient taken at the target run. Axes as the matching patch* sweep ("pos" sweeps by
 * position, "head" by head, "layer" whole activations). Values estimate metric(patched) − targetMetric.
 */
export function attributionPatch(model: HookedTransformer, o: Omit<PatchOptions, "fast" | "batchSize"> & { site: ResidSite | HeadSite; by: "pos" | "head" | "layer" }): PatchResult {
  const Ls = allLayers(model), names = Ls.map((l) => siteHook(l, o.site));
  const clean = model.toTokenTensor(o.clean), corrupted = model.toTokenTensor(o.corrupted);
  const denoise = (o.direction ?? "denoising") === "denoising";
  const [targetTokens, sourceTokens] = denoise ? [corrupted, clean] : [clean, corrupted];
  if (!clean.shapeEquals(corrupted.shape)) throw new ShapeError(`attributionPatch: clean ${clean.shape} and corrupted ${corrupted.shape} prompts must have the same [batch, pos]`);
  const padding = paddingOf(o, clean.shape[0]!, clean.shape[1]!), fwd = padRuns(padding, 1);
  const src = noGrad(() => model.runWithCache(sourceTokens, { ...fwd, names }));
  const acts = new Map<string, Tensor>(), grads = new Map<string, Tensor>();
  // The gradient of the metric only: parameter gradients are not accumulated onto the model.
  const params = model.parameters();
  const saved = params.map((p) => p.requiresGrad);
  let targetMetric = 0;
  try {
    params.forEach((p) => p.requireGrad(false));
    withGrad(true, () => model.withHooks({
      // A leaf only where nothing upstream needs grad yet, so the graph stays whole from the first hooked layer on.
      fwd: [[names, (a, ctx) => { acts.set(ctx.name, a.detach()); return a.requiresGrad ? a : a.detach().requireGrad(true); }]],
      bwd: [[names, (g, ctx) => { grads.set(ctx.name, g.detach()); }]],
    }, () => {
      const m = metricOn(o.metric, model.forward(targetTokens, fwd), padding);
      targetMetric = m.item();
      backward(m);
    }));
  } finally { params.forEach((p, i) => p.requireGrad(saved[i]!)); }
  const sourceMetric = noGrad(() => metricOn(o.metric, src.logits, padding).item());
  const first = acts.get(names[0]!)!;
  const axisDim = o.by === "layer" ? null : o.by === "pos" ? 1 : o.site === "pattern" ? 1 : 2;
  if (o.by === "head" && !["z", "q", "k", "v", "pattern"].includes(o.site)) throw new Error(`attributionPatch: by "head" needs a head site, got ${o.site}`);
  const n = axisDim === null ? 1 : first.shape[axisDim]!;
  const values = new Float64Array(Ls.length * n);
  noGrad(() => Ls.forEach((l) => {
    const name = names[l]!, a = acts.get(name)!, g = grads.get(name) ?? a.zerosLike();
    const prod = src.cache.get(name).sub(a).mul(g); // same shape as the activation
    const dims = Array.from({ length: prod.ndim }, (_, i) => i).filter((i) => i !== axisDim);
    const v = prod.sum(dims).toArray();
    for (let i = 0; i < n; i++) values[l * n + i] = v[i]!;
  }));
  const axes = axisDim === null ? [layerAxis(Ls.length)]
    : [layerAxis(Ls.length), o.by === "pos" ? numbered("pos", n, o.posLabels) : numbered("head", n)];
  return {
    values: new Tensor(values, axes.map((a) => a.labels.length)), axes, targetMetric, sourceMetric, direction: o.direction ?? "denoising", site: o.site,
    ...(o.metric.conditioning ? { conditioning: o.metric.conditioning } : {}),
  };
}

/** Pearson correlation of two equally long lists of numbers. */
export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number {
  if (x.length !== y.length || x.length < 2) throw new RangeError(`pearson: need two equally long lists of at least 2, got ${x.length} and ${y.length}`);
  let mx = 0, my = 0;
  for (let i = 0; i < x.length; i++) { mx += x[i]!; my += y[i]!; }
  mx /= x.length; my /= y.length;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < x.length; i++) { const a = x[i]! - mx, b = y[i]! - my; sxy += a * b; sxx += a * a; syy += b * b; }
  return sxy / Math.sqrt(sxx * syy);
}

/**
 * How well attribution patching tracks real patching: Pearson r over cells of the metric change
 * (real: value − targetMetric), and the points behind it (x real, y attribution), one per cell.
 */
export function attributionAgreement(real: PatchResult, attribution: PatchResult): { pearson: number; points: { x: number; y: number; label: string }[] } {
  if (!real.values.shapeEquals(attribution.values.shape)) throw new ShapeError("attributionAgreement: the two results have different shapes");
  const r = real.values.toArray(), a = attribution.values.toArray();
  const dr = Array.from(r, (v) => v - real.targetMetric);
  const labels = cellLabels(real.axes);
  return { pearson: pearson(dr, Array.from(a)), points: dr.map((x, i) => ({ x, y: a[i]!, label: labels[i]! })) };
}

/** "layer 3, pos 7"-style labels for every cell, row-major. */
function cellLabels(axes: readonly LabelledAxis[]): string[] {
  return axes.reduce<string[]>((acc, ax) => acc.flatMap((p) => ax.labels.map((l) => (p ? `${p}, ` : "") + `${ax.name} ${l}`)), [""]);
}
