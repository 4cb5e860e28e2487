// Gradient attribution around one input: saliency, input × gradient and integrated gradients for any
// differentiable score of a tensor, and the same (plus layer integrated gradients) for a hooked
// transformer through any hook point (`hook_embed` gives per-token attributions). Definitions follow
// Captum (attr/_core/saliency.py, input_x_gradient.py, integrated_gradients.py,
// layer/layer_integrated_gradients.py; attr/_utils/approximation_methods.py) and Sundararajan et al.
// 2017, "Axiomatic Attribution for Deep Networks". Every result carries its completeness gap
// |Σ attributions − (f(x) − f(baseline))|. This file is not LRP (see lrp.ts) and draws nothing.
import { grad, noGrad } from "../tensor/autodiff.js";
import { zeros } from "../tensor/create.js";
import { concat } from "../tensor/ops/movement.js";
import { fmt, ShapeError } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";
import type { ForwardOptions, HookedTransformer } from "../model/transformer.js";
import type { HookName } from "../model/hooks.js";
import { conditioning, type Conditioning } from "./conditioning.js";

/** Captum's approximation methods for the path integral ∫₀¹ ∂f/∂x(b + α(x − b)) dα. */
export type IntegrationMethod = "riemann_left" | "riemann_right" | "riemann_middle" | "riemann_trapezoid" | "gausslegendre";
export const INTEGRATION_METHODS: readonly IntegrationMethod[] = ["riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre"];

/** How far Σ attributions is from f(x) − f(baseline) (Sundararajan et al.'s completeness axiom). */
export interface Completeness {
  /** Σ attributions over every element. */
  sum: number;
  fInput: number;
  fBaseline: number;
  /** |sum − (fInput − fBaseline)|, Captum's convergence delta (absolute). */
  gap: number;
  /** gap / |fInput − fBaseline| (Infinity when the two scores are equal but sum is not 0). */
  relativeGap: number;
  /** Whether fInput − fBaseline is ~0 relative to the scores (conditioning.ts): relativeGap is then not meaningful; report gap. */
  relativeGapConditioning: Conditioning;
}

export interface Attribution {
  /** Same shape as the input (or the hooked activation without its batch axis). */
  attributions: Tensor;
  completeness: Completeness;
}

/** A score per batch row: [n, ...inputShape] → [n]. Rows must not interact (IG batches its points). */
export type ScoreFn = (xs: Tensor) => Tensor;

/** "zeros", a constant fill, or a tensor of the input's shape (e.g. a padding token's embedding). */
export type Baseline = "zeros" | number | Tensor;

export interface IGOptions {
  baseline?: Baseline;
  /** Number of points on the path; Captum's default is 50. */
  steps?: number;
  /** Captum's default is "gausslegendre". */
  method?: IntegrationMethod;
  /** Points per forward/backward (all at once by default), to bound memory. */
  internalBatchSize?: number;
}

export function completeness(sum: number, fInput: number, fBaseline: number): Completeness {
  const gap = Math.abs(sum - (fInput - fBaseline)), denom = Math.abs(fInput - fBaseline);
  const relativeGapConditioning = conditioning(fInput - fBaseline, Math.max(Math.abs(fInput), Math.abs(fBaseline)));
  return { sum, fInput, fBaseline, gap, relativeGap: denom > 0 ? gap / denom : gap === 0 ? 0 : Infinity, relativeGapConditioning };
}

/**
 * Gauss–Legendre nodes and weights on [-1, 1] for n points: the roots of P_n found by Newton's method
 * from Tricomi's guess cos(π(i − 1/4)/(n + 1/2)), weights 2 / ((1 − x²) P_n'(x)²) (Abramowitz & Stegun 25.4.29).
 */
export function gaussLegendre(n: number): { nodes: number[]; weights: number[] } {
  if (!(Number.isInteger(n) && n >= 1)) throw new RangeError(`gaussLegendre: n must be a positive integer, got ${n}`);
  const nodes = new Array<number>(n), weights = new Array<number>(n);
  const m = Math.ceil(n / 2);
  for (let i = 1; i <= m; i++) {
    let x = Math.cos((Math.PI * (i - 0.25)) / (n + 0.5)), dp = 0;
    for (let it = 0; it < 100; it++) {
      // Bonnet's recurrence: (k+1) P_{k+1} = (2k+1) x P_k − k P_{k−1}.
      let p0 = 1, p1 = x;
      for (let k = 1; k < n; k++) { const p2 = ((2 * k + 1) * x * p1 - k * p0) / (k + 1); p0 = p1; p1 = p2; }
      const pn = n === 1 ? x : p1, pm = n === 1 ? 1 : p0;
      dp = (n * (x * pn - pm)) / (x * x - 1); // P_n'(x) = n (x P_n − P_{n−1}) / (x² − 1)
      const dx = pn / dp;
      x -= dx;
      if (Math.abs(dx) < 1e-15) break;
    }
    // Recompute the derivative at the converged root for the weight.
    let p0 = 1, p1 = x;
    for (let k = 1; k < n; k++) { const p2 = ((2 * k + 1) * x * p1 - k * p0) / (k + 1); p0 = p1; p1 = p2; }
    dp = n === 1 ? 1 : (n * (x * p1 - p0)) / (x * x - 1);
    const w = 2 / ((1 - x * x) * dp * dp);
    // Ascending order: roots come out from +1 downwards.
    nodes[n - i] = x; weights[n - i] = w;
    nodes[i - 1] = -x; weights[i - 1] = w;
  }
  return { nodes, weights };
}

/** The points α in [0, 1] and their weights (summing to 1) for a method with n points, as Captum defines them. */
export function integrationPoints(method: IntegrationMethod, n: number): { alphas: number[]; weights: number[] } {
  if (!(Number.isInteger(n) && n >= 1)) throw new RangeError(`integrationPoints: steps must be a positive integer, got ${n}`);
  const range = (f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i));
  switch (method) {
    case "riemann_left": return { alphas: range((i) => i / n), weights: range(() => 1 / n) };
    case "riemann_right": return { alphas: range((i) => (i + 1) / n), weights: range(() => 1 / n) };
    case "riemann_middle": return { alphas: range((i) => (i + 0.5) / n), weights: range(() => 1 / n) };
    case "riemann_trapezoid": {
      if (n < 2) throw new RangeError("integrationPoints: riemann_trapezoid needs at least 2 steps");
      return { alphas: range((i) => i / (n - 1)), weights: range((i) => (i === 0 || i === n - 1 ? 0.5 : 1) / (n - 1)) };
    }
    case "gausslegendre": {
      // Map [-1, 1] to [0, 1]: α = (x + 1) / 2, weight w / 2.
      const { nodes, weights } = gaussLegendre(n);
      return { alphas: nodes.map((x) => (x + 1) / 2), weights: weights.map((w) => w / 2) };
    }
    default: return method satisfies never;
  }
}

function resolveBaseline(b: Baseline | undefined, like: Tensor): Tensor {
  if (b === undefined || b === "zeros") return zeros(like.shape, like.dtype);
  if (typeof b === "number") return zeros(like.shape, like.dtype).add(b);
  if (!b.shapeEquals(like.shape)) throw new ShapeError(`baseline shape ${fmt(b.shape)} differs from the input's ${fmt(like.shape)}`);
  return b.detach().cast(like.dtype);
}

/** [n, 1, …, 1] column of numbers in dtype, for broadcasting over one row per point. */
function column(values: readonly number[], ndimRest: number, like: Tensor): Tensor {
  const t = zeros([values.length, ...new Array<number>(ndimRest).fill(1)], like.dtype);
  t.data.set(values);
  return t;
}

function checkScores(s: Tensor, n: number, who: string): void {
  if (s.ndim !== 1 || s.shape[0] !== n) throw new ShapeError(`${who}: the score function must return [n] = [${n}] for [n, ...] inputs, got ${fmt(s.shape)}`);
}

/** Scores of a batch under noGrad. */
function scoresOf(f: ScoreFn, xs: Tensor, who: string): number[] {
  const s = noGrad(() => f(xs));
  checkScores(s, xs.shape[0]!, who);
  return s.toList();
}

/** ∂f/∂x at each row of xs: [n, ...] (one backward of Σ f over the rows, which do not interact). */
function gradientsAt(f: ScoreFn, xs: Tensor, who: string): Tensor {
  const leaf = xs.detach().requireGrad();
  const s = f(leaf);
  checkScores(s, xs.shape[0]!, who);
  return grad(s.sum(), [leaf])[0]!;
}

/** Weighted sum over the points of rows of g [n, ...] → [...]. */
function weightedMean(g: Tensor, weights: readonly number[]): Tensor {
  return noGrad(() => g.mul(column(weights, g.ndim - 1, g)).sum(0));
}

/**
 * Integrated gradients (Captum IntegratedGradients): (x − b) ⊙ Σ_k w_k ∂f/∂x(b + α_k (x − b)), the
 * points batched into one forward and backward (or chunks of internalBatchSize).
 */
export function integratedGradients(f: ScoreFn, x: Tensor, opts: IGOptions = {}): Attribution {
  const b = resolveBaseline(opts.baseline, x);
  const { alphas, weights } = integrationPoints(opts.method ?? "gausslegendre", opts.steps ?? 50);
  const delta = noGrad(() => x.detach().sub(b));
  const chunk = opts.internalBatchSize ?? alphas.length;
  let avg: Tensor | null = null;
  for (let s = 0; s < alphas.length; s += chunk) {
    const a = alphas.slice(s, s + chunk), w = weights.slice(s, s + chunk);
    const xs = noGrad(() => b.unsqueeze(0).add(column(a, x.ndim, x).mul(delta.unsqueeze(0)))); // [n, ...x.shape]
    const part = weightedMean(gradientsAt(f, xs, "integratedGradients"), w);
    avg = avg ? noGrad(() => avg!.add(part)) : part;
  }
  const attributions = noGrad(() => delta.mul(avg!));
  const [fx, fb] = scoresOf(f, noGrad(() => concat([x.detach().unsqueeze(0), b.unsqueeze(0)], 0)), "integratedGradients") as [number, number];
  return { attributions, completeness: completeness(sumOf(attributions), fx, fb) };
}

/** Saliency (Captum Saliency): |∂f/∂x| by default, the signed gradient with abs: false. Completeness is against a zero baseline, for the record: saliency does not claim it. */
export function saliency(f: ScoreFn, x: Tensor, opts: { abs?: boolean } = {}): Attribution {
  const g = gradientsAt(f, x.detach().unsqueeze(0), "saliency").squeeze(0);
  const attributions = opts.abs === false ? g : noGrad(() => g.abs());
  const [fx, f0] = scoresOf(f, noGrad(() => concat([x.detach().unsqueeze(0), x.zerosLike().unsqueeze(0)], 0)), "saliency") as [number, number];
  return { attributions, completeness: completeness(sumOf(attributions), fx, f0) };
}

/** Input × gradient (Captum InputXGradient): x ⊙ ∂f/∂x, complete for functions homogeneous of degree 1 (baseline zero). */
export function inputXGradient(f: ScoreFn, x: Tensor): Attribution {
  const g = gradientsAt(f, x.detach().unsqueeze(0), "inputXGradient").squeeze(0);
  const attributions = noGrad(() => x.detach().mul(g));
  const [fx, f0] = scoresOf(f, noGrad(() => concat([x.detach().unsqueeze(0), x.zerosLike().unsqueeze(0)], 0)), "inputXGradient") as [number, number];
  return { attributions, completeness: completeness(sumOf(attributions), fx, f0) };
}

export function sumOf(t: Tensor): number {
  let s = 0;
  for (const v of t.toArray()) s += v;
  return s;
}

// ---- transformers ------------------------------------------------------------------------------

/** A score per row from logits [n, pos, d_vocab] → [n]. */
export type LogitScore = (logits: Tensor) => Tensor;

/** The logit of `token` at position pos (default: the last). */
export function logitOf(token: number, pos = -1): LogitScore {
  return (logits) => logits.select(1, pos < 0 ? logits.shape[1]! + pos : pos).select(1, token);
}

/** logit(a) − logit(b) at position pos (default: the last), the usual IOI-style metric. */
export function logitDiffOf(a: number, b: number, pos = -1): LogitScore {
  return (logits) => { const l = logits.select(1, pos < 0 ? logits.shape[1]! + pos : pos); return l.select(1, a).sub(l.select(1, b)); };
}

/** Where the hooked activation starts: zeros, a constant, a tensor ([...] or [1, ...]), or the activation on other tokens (Captum's layer baseline). */
export type LayerBaseline = Baseline | { tokens: readonly number[] };

export interface LayerIGOptions extends Omit<IGOptions, "baseline"> {
  baseline?: LayerBaseline;
  /**
   * A padded input: 1 for real tokens, 0 for padding (either side), one per token; the baseline tokens
   * get the same. Score positions index the padded sequence (for right padding, pass the last real one).
   */
  attentionMask?: readonly number[];
  /** Explicit positions, one per token (see ForwardOptions.positionIds). */
  positionIds?: readonly number[];
}

/** Forward options for n copies of one padded input. */
function padOpts(o: Pick<LayerIGOptions, "attentionMask" | "positionIds">, T: number, n = 1): ForwardOptions {
  const rows = (v: readonly number[] | undefined, what: string) => {
    if (!v) return undefined;
    if (v.length !== T) throw new ShapeError(`layer attribution: ${what} has ${v.length} entries for ${T} tokens`);
    const d = new Int32Array(n * T);
    for (let i = 0; i < n; i++) d.set(v, i * T);
    return new Tensor(d, [n, T]);
  };
  return { attentionMask: rows(o.attentionMask, "attentionMask"), positionIds: rows(o.positionIds, "positionIds") };
}

export interface LayerAttribution extends Attribution {
  hook: HookName;
  /** Σ over every axis but pos of the attributions, when the activation has a pos axis ([batch, pos, ...]); else empty. */
  perPosition: number[];
}

/** The activation at `hook` for tokens (batch 1), detached: [1, ...]. */
export function activationAt(model: HookedTransformer, tokens: readonly number[], hook: HookName, fwd: ForwardOptions = {}): Tensor {
  let act: Tensor | null = null;
  noGrad(() => model.runWithHooks([tokens], { fwd: [[hook, (a) => { act = a.detach(); }]] }, fwd));
  if (!act) throw new Error(`activationAt: hook point "${hook}" was not reached`);
  return act;
}

/** Run the model on `tokens` repeated once per row of acts, with the activation at hook replaced by acts' rows; scores [n]. */
function patchedScores(model: HookedTransformer, tokens: readonly number[], hook: HookName, acts: Tensor, score: LogitScore, pad: LayerIGOptions = {}): Tensor {
  const n = acts.shape[0]!;
  const rows = Array.from({ length: n }, () => tokens);
  const logits = model.runWithHooks(rows, { fwd: [[hook, () => acts]] }, padOpts(pad, tokens.length, n));
  const s = score(logits);
  checkScores(s, n, "layer attribution");
  return s;
}

function layerBaseline(model: HookedTransformer, b: LayerBaseline | undefined, actual: Tensor, hook: HookName, pad: LayerIGOptions = {}): Tensor {
  if (b !== undefined && typeof b === "object" && !(b instanceof Tensor)) {
    return resolveBaseline(activationAt(model, b.tokens, hook, padOpts(pad, b.tokens.length)), actual);
  }
  if (b instanceof Tensor && b.ndim === actual.ndim - 1) return resolveBaseline(b.unsqueeze(0), actual);
  return resolveBaseline(b, actual);
}

function perPosition(attr: Tensor, hook: HookName): number[] {
  // attr is [pos, ...] for hook points shaped [batch, pos, ...]; the pattern and scores are [batch, head_index, query_pos, key_pos].
  if (attr.ndim < 2 || hook.endsWith(".attn.hook_pattern") || hook.endsWith(".attn.hook_attn_scores")) return [];
  const flat = attr.reshape([attr.shape[0]!, attr.size / attr.shape[0]!]).sum(1);
  return flat.toList();
}

/**
 * Layer integrated gradients (Captum LayerIntegratedGradients): the activation at `hook` is
 * interpolated from its baseline to its value on `tokens` while the model runs on `tokens` (so the
 * rest of the forward is fixed), and IG is taken with respect to that activation. Completeness is
 * against the score with the activation patched to its baseline, the quantity the path integral
 * sums to (Captum's delta instead reruns the model on baseline inputs; the two agree for hook_embed
 * with no other input path).
 */
export function layerIntegratedGradients(model: HookedTransformer, tokens: readonly number[], hook: HookName, score: LogitScore, opts: LayerIGOptions = {}): LayerAttribution {
  const actual = activationAt(model, tokens, hook, padOpts(opts, tokens.length)); // [1, ...]
  const b = layerBaseline(model, opts.baseline, actual, hook, opts);
  const f: ScoreFn = (xs) => patchedScores(model, tokens, hook, xs.reshape([xs.shape[0]!, ...actual.shape.slice(1)]), score, opts);
  const res = integratedGradients(f, actual.squeeze(0), { ...opts, baseline: b.squeeze(0) });
  return { ...res, hook, perPosition: perPosition(res.attributions, hook) };
}

export type GradientMethod = "ig" | "saliency" | "ixg";

/**
 * Attributions to each token's embedding (hook_embed, [pos, d_model]), summed over d_model per token.
 * For saliency the per-token value is the L2 norm of the gradient over d_model (Σ |g| would mix signs
 * only for signed saliency); for "ig" and "ixg" it is the sum, so the per-token values add up to Σ attributions.
 */
export function tokenAttribution(model: HookedTransformer, tokens: readonly number[], score: LogitScore, opts: LayerIGOptions & { attribution?: GradientMethod } = {}): LayerAttribution {
  const hook = "hook_embed" as HookName;
  const method = opts.attribution ?? "ig";
  if (method === "ig") return layerIntegratedGradients(model, tokens, hook, score, opts);
  const actual = activationAt(model, tokens, hook, padOpts(opts, tokens.length)).squeeze(0);
  const f: ScoreFn = (xs) => patchedScores(model, tokens, hook, xs, score, opts);
  const res = method === "saliency" ? saliency(f, actual) : inputXGradient(f, actual);
  const per = method === "saliency"
    ? Array.from({ length: actual.shape[0]! }, (_, p) => Math.sqrt(sumOf(noGrad(() => res.attributions.select(0, p).square()))))
    : perPosition(res.attributions, hook);
  return { ...res, hook, perPosition: per };
}
