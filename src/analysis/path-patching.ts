// Path patching (Wang et al. 2022, "Interpretability in the Wild: a Circuit for Indirect Object
// Identification in GPT-2 small"; Goldowsky-Dill et al. 2023, "Localizing Model Behavior with Path
// Patching"). Measures the effect of sender heads on the metric *only through* chosen receivers:
//   1. run target and source prompts, caching every head's output (hook_z) and the MLP outputs;
//   2. run the target with the sender heads' hook_z set to the source values and every other head's
//      hook_z frozen to its target value, so the change travels only along direct sender → receiver
//      paths; record the receivers' inputs (hook_q / hook_k / hook_v of the receiver head, i.e. the
//      residual stream entering its layer read through that head's W_Q / W_K / W_V), or the final
//      residual stream for "logits";
//   3. run the target with only the receivers' inputs (that head's slice) replaced by step 2's values.
// With receivers "logits", step 3 reproduces step 2's logits exactly, so step 2's logits are used.
//
// Direction: "noising" (the default, as in Wang et al.) runs the clean prompt with corrupted sender
// outputs; "denoising" runs the corrupted prompt with clean sender outputs.
//
// MLPs: by default MLPs are *not* frozen and recompute in step 2, so a path sender → MLP → receiver
// counts as direct. This follows Wang et al., who freeze attention heads only (MLPs are treated as
// part of the direct path; ARENA's IOI replication does the same). `freezeMlps: true` also freezes
// every hook_mlp_out to its target value, giving head-to-head paths only (closer to Goldowsky-Dill
// et al.'s treatment, where every non-path edge takes its target value). Layer norms always recompute.
//
// Grouped-query attention: a k or v receiver patches the key/value head serving that query head,
// which is shared by n_heads / n_key_value_heads query heads.
import { noGrad } from "../tensor/autodiff.js";
import { scope } from "../tensor/memory.js";
import { Tensor } from "../tensor/tensor.js";
import { ShapeError } from "../tensor/shape.js";
import type { HookedTransformer, Tokens } from "../model/transformer.js";
import type { ForwardHook, HookName } from "../model/hooks.js";
import type { Metric } from "./patching-metrics.js";
import type { Direction, LabelledAxis } from "./patching.js";
import { spanConditioning, type Conditioning } from "./conditioning.js";
import { metricOn, paddingOf, padRuns, type Padding } from "./padding.js";

export interface HeadRef { layer: number; head: number }
export interface ReceiverRef extends HeadRef { input: "q" | "k" | "v" }

export interface PathPatchOptions {
  /** Prompts [batch, pos]; clean and corrupted must have the same shape. */
  clean: Tokens;
  corrupted: Tokens;
  metric: Metric;
  /** Receiver head inputs, or "logits" (the direct path to the unembedding). */
  receivers: readonly ReceiverRef[] | "logits";
  /** "noising" (default: clean run, corrupted senders) or "denoising". */
  direction?: Direction;
  /** Freeze MLP outputs to their target values too (default false: MLPs recompute, as Wang et al.). */
  freezeMlps?: boolean;
  /** Padded prompts: [batch, pos], 1 for real tokens, shared by clean and corrupted (padding on either side). */
  attentionMask?: Tensor;
  /** Explicit positions [batch, pos] for every run (see ForwardOptions.positionIds). */
  positionIds?: Tensor;
}

export interface PathPatchResult {
  /** Metric after path patching. */
  value: number;
  /** (value − corruptedMetric) / (cleanMetric − corruptedMetric): 1 = clean, 0 = corrupted; NaN if they are equal; noise when conditioning.illConditioned. */
  normalized: number;
  /** Whether cleanMetric − corruptedMetric is ~0 (conditioning.ts), so `normalized` is not meaningful. */
  conditioning: Conditioning;
  /** value − targetMetric: the effect of the senders through the receivers. */
  effect: number;
  cleanMetric: number;
  corruptedMetric: number;
  targetMetric: number;
  direction: Direction;
}

export interface PathPatchSweep {
  /** [layer, head] metric after path patching from that sender; NaN where the head is not before every receiver. */
  values: Tensor;
  /** Normalized as PathPatchResult.normalized, [layer, head]. */
  normalized: Tensor;
  conditioning: Conditioning;
  axes: LabelledAxis[];
  cleanMetric: number;
  corruptedMetric: number;
  targetMetric: number;
  direction: Direction;
}

const zHook = (l: number) => `blocks.${l}.attn.hook_z` as HookName;
const mlpOutHook = (l: number) => `blocks.${l}.hook_mlp_out` as HookName;
const inHook = (l: number, input: "q" | "k" | "v") => `blocks.${l}.attn.hook_${input}` as HookName;

/** base with the given head slices (dim 2 of [batch, pos, head_index, d_head]) taken from src; exact (masks are 0/1). */
function mixHeads(base: Tensor, src: Tensor, heads: readonly number[]): Tensor {
  if (heads.length === 0) return base;
  if (!base.shapeEquals(src.shape)) throw new ShapeError(`pathPatch: activation ${base.shape} vs ${src.shape}`);
  const [B, T, H, d] = base.shape as [number, number, number, number];
  const m = new (base.dtype === "float64" ? Float64Array : Float32Array)(B * T * H * d);
  for (let o = 0; o < B * T; o++) for (const h of heads) m.fill(1, (o * H + h) * d, (o * H + h + 1) * d);
  const mask = new Tensor(m, base.shape);
  return base.mul(mask.neg().add(1)).add(src.mul(mask));
}

interface Prepared {
  target: Tensor;
  targetCache: Map<string, Tensor>;
  sourceCache: Map<string, Tensor>;
  cleanMetric: number;
  corruptedMetric: number;
  targetMetric: number;
  direction: Direction;
  /** Padding of the prompts, applied to every run (metricOn reads a "last" metric at each row's last real token). */
  padding?: Padding;
}

function prepare(model: HookedTransformer, o: PathPatchOptions): Prepared {
  const clean = model.toTokenTensor(o.clean), corrupted = model.toTokenTensor(o.corrupted);
  if (!clean.shapeEquals(corrupted.shape)) throw new ShapeError(`pathPatch: clean ${clean.shape} and corrupted ${corrupted.shape} prompts must have the same [batch, pos]`);
  const direction = o.direction ?? "noising";
  if (direction !== "noising" && direction !== "denoising") throw new RangeError(`pathPatch: unknown direction "${String(direction)}"`);
  if (o.freezeMlps && model.cfg.attn_only) throw new Error("pathPatch: freezeMlps on an attention-only model (it has no MLPs)");
  const L = model.cfg.n_layers;
  const names = [
    ...Array.from({ length: L }, (_, l) => zHook(l)),
    ...(o.freezeMlps ? Array.from({ length: L }, (_, l) => mlpOutHook(l)) : []),
  ];
  const padding = paddingOf(o, clean.shape[0]!, clean.shape[1]!, "pathPatch"), fwd = padRuns(padding, 1);
  return noGrad(() => {
    const c = model.runWithCache(clean, { ...fwd, names });
    const k = model.runWithCache(corrupted, { ...fwd, names });
    const grab = (cache: typeof c.cache) => new Map(names.map((n) => [n as string, cache.get(n)]));
    const cleanMetric = metricOn(o.metric, c.logits, padding).item(), corruptedMetric = metricOn(o.metric, k.logits, padding).item();
    const noising = direction === "noising";
    return {
      target: noising ? clean : corrupted, padding,
      targetCache: grab(noising ? c.cache : k.cache), sourceCache: grab(noising ? k.cache : c.cache),
      cleanMetric, corruptedMetric, targetMetric: noising ? cleanMetric : corruptedMetric, direction,
    };
  });
}

function checkHeads(model: HookedTransformer, senders: readonly HeadRef[], receivers: readonly ReceiverRef[] | "logits"): void {
  const { n_layers: L, n_heads: H } = model.cfg;
  const ok = (r: HeadRef) => Number.isInteger(r.layer) && r.layer >= 0 && r.layer < L && Number.isInteger(r.head) && r.head >= 0 && r.head < H;
  for (const s of senders) if (!ok(s)) throw new RangeError(`pathPatch: sender ${s.layer}.${s.head} is not a head of this model`);
  if (senders.length === 0) throw new RangeError("pathPatch: no sender heads");
  if (receivers === "logits") return;
  if (receivers.length === 0) throw new RangeError("pathPatch: no receivers");
  for (const r of receivers) {
    if (!ok(r)) throw new RangeError(`pathPatch: receiver ${r.layer}.${r.head} is not a head of this model`);
    if (r.input !== "q" && r.input !== "k" && r.input !== "v") throw new RangeError(`pathPatch: receiver input must be "q", "k" or "v", got "${String(r.input)}"`);
  }
  const first = Math.min(...receivers.map((r) => r.layer));
  for (const s of senders) if (s.layer >= first) throw new RangeError(`pathPatch: sender ${s.layer}.${s.head} is not before every receiver (earliest receiver layer ${first})`);
}

/** Steps 2 and 3 for one set of senders: the patched metric. */
function runPaths(model: HookedTransformer, o: PathPatchOptions, p: Prepared, senders: readonly HeadRef[]): number {
  const L = model.cfg.n_layers, g = model.cfg.n_heads / model.cfg.n_key_value_heads;
  const receivers = o.receivers, fwd = padRuns(p.padding, 1);
  const run = (hooks: [HookName, ForwardHook][]) => model.runWithHooks(p.target, { fwd: hooks }, fwd);
  return noGrad(() => scope(() => {
    // Step 2: senders from the source, every other head (and optionally MLP) frozen to the target.
    const freeze: [HookName, ForwardHook][] = [];
    for (let l = 0; l < L; l++) {
      const heads = senders.filter((s) => s.layer === l).map((s) => s.head);
      const tz = p.targetCache.get(zHook(l))!, sz = p.sourceCache.get(zHook(l))!;
      freeze.push([zHook(l), () => mixHeads(tz, sz, heads)]);
      if (o.freezeMlps) { const m = p.targetCache.get(mlpOutHook(l))!; freeze.push([mlpOutHook(l), () => m]); }
    }
    if (receivers === "logits") return metricOn(o.metric, run(freeze), p.padding).item();
    // Receiver inputs grouped by hook point: which head slices each replaces.
    const groups = new Map<HookName, number[]>();
    for (const r of receivers) {
      const name = inHook(r.layer, r.input), h = r.input === "q" ? r.head : Math.floor(r.head / g);
      const list = groups.get(name) ?? [];
      if (!list.includes(h)) list.push(h);
      groups.set(name, list);
    }
    const recorded = new Map<string, Tensor>();
    const record: [HookName, ForwardHook][] = [...groups.keys()].map((n) => [n, (a) => { recorded.set(n, a.detach()); }]);
    run([...freeze, ...record]);
    // Step 3: the target run with only the receivers' inputs patched.
    const patch: [HookName, ForwardHook][] = [...groups].map(([n, heads]) => [n, (a) => mixHeads(a, recorded.get(n)!, heads)]);
    return metricOn(o.metric, run(patch), p.padding).item();
  }));
}

// An already normalised, ill-conditioned metric stays flagged: its own clean/corrupted are ~1 and ~0.
const spanOf = (m: Metric, clean: number, corrupted: number) => (m.conditioning?.illConditioned ? m.conditioning : spanConditioning(clean, corrupted));
const normalize = (v: number, clean: number, corrupted: number) => (clean === corrupted ? NaN : (v - corrupted) / (clean - corrupted));

/** Path patching from one sender head (or several, patched together) to the receivers. */
export function pathPatch(model: HookedTransformer, o: PathPatchOptions & { sender: HeadRef | readonly HeadRef[] }): PathPatchResult {
  const senders: readonly HeadRef[] = Array.isArray(o.sender) ? o.sender : [o.sender as HeadRef];
  checkHeads(model, senders, o.receivers);
  const p = prepare(model, o);
  const value = runPaths(model, o, p, senders);
  return {
    value, normalized: normalize(value, p.cleanMetric, p.corruptedMetric), effect: value - p.targetMetric,
    conditioning: spanOf(o.metric, p.cleanMetric, p.corruptedMetric), cleanMetric: p.cleanMetric, corruptedMetric: p.corruptedMetric, targetMetric: p.targetMetric, direction: p.direction,
  };
}

/** A path-patching sweep run one sender layer at a time (so a caller can report progress and stop between layers), then its result. */
export interface PathPatchSteps {
  /** Sender layers: every layer before the first receiver (all layers for "logits"). */
  layers: number;
  /** Path-patch from each head of sender layer l alone (layers in order, each once). */
  runLayer(l: number): void;
  result(): PathPatchSweep;
}

/** The sweep behind pathPatchSweep, stepwise. */
export function pathPatchSteps(model: HookedTransformer, o: PathPatchOptions): PathPatchSteps {
  const { n_layers: L, n_heads: H } = model.cfg;
  checkHeads(model, [{ layer: 0, head: 0 }], o.receivers === "logits" ? "logits" : o.receivers.map((r) => ({ ...r })));
  const before = o.receivers === "logits" ? L : Math.min(...o.receivers.map((r) => r.layer));
  const p = prepare(model, o);
  const vals = new Float64Array(L * H).fill(NaN), norm = new Float64Array(L * H).fill(NaN);
  const label = (name: string, n: number): LabelledAxis => ({ name, labels: Array.from({ length: n }, (_, i) => String(i)) });
  return {
    layers: before,
    runLayer(l) {
      for (let h = 0; h < H; h++) {
        const v = runPaths(model, o, p, [{ layer: l, head: h }]);
        vals[l * H + h] = v;
        norm[l * H + h] = normalize(v, p.cleanMetric, p.corruptedMetric);
      }
    },
    result: () => ({
      values: new Tensor(vals, [L, H]), normalized: new Tensor(norm, [L, H]), axes: [label("layer", L), label("head", H)],
      conditioning: spanOf(o.metric, p.cleanMetric, p.corruptedMetric), cleanMetric: p.cleanMetric, corruptedMetric: p.corruptedMetric, targetMetric: p.targetMetric, direction: p.direction,
    }),
  };
}

/** Path patching from every head before the receivers (each alone): values [layer, head], NaN for heads not before every receiver. */
export function pathPatchSweep(model: HookedTransformer, o: PathPatchOptions): PathPatchSweep {
  const s = pathPatchSteps(model, o);
  for (let l = 0; l < s.layers; l++) s.runLayer(l);
  return s.result();
}
