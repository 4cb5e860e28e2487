// Bias probes: run both prompts of a minimal pair (same token count, a few tokens swapped, e.g.
// "The doctor said that" / "The nurse said that") and report where in the network they diverge:
// the residual stream per layer × position, each head's output and each MLP's output, and each
// component's direct logit attribution to a target logit difference (" he" − " she"), A vs B.
// Averaged over many pairs, with every pair's values kept. Not a bias benchmark: it localises a
// difference the user chose; whether that difference is a bias is the user's judgement.
//
// Divergence of two activations x_A, x_B is ‖x_A − x_B‖ / max(‖x_A‖, ‖x_B‖): symmetric, in [0, 2],
// exactly 0 when they are equal (0 when both are 0). Because attention is causal, positions before
// the first differing token are computed from identical inputs and diverge by exactly 0.
import { noGrad } from "../tensor/autodiff.js";
import type { Tensor } from "../tensor/tensor.js";
import { ShapeError } from "../tensor/shape.js";
import { blockHook } from "../model/hooks.js";
import type { HookedTransformer } from "../model/transformer.js";
import { fullLogitAttribution, type DlaTarget } from "./residual.js";

/** Two prompts as token ids of equal length; a pair may carry its own target. */
export interface MinimalPair { a: readonly number[]; b: readonly number[]; target?: DlaTarget }

export interface ProbeOptions {
  /** The logit difference logit[token] − logit[incorrect] at the last position (e.g. " he" vs " she"). */
  target: DlaTarget & { incorrect: number };
  /** Divergence above which the last position counts as diverged (default 0.05). */
  threshold?: number;
}

export interface Divergence { index: number; label: string; value: number }

export interface PairProbe {
  /** Positions whose tokens differ. */
  differing: number[];
  /** Residual divergence [resid layer, pos]; rows "0_pre", …, "{n-1}_pre", "final_post". */
  resid: number[][];
  /** Divergence of each head's output z·W_O over all positions: [layer][head]. */
  heads: number[][];
  /** Divergence of each MLP's output (hook_mlp_out) over all positions: [layer] (empty without MLPs). */
  mlps: number[];
  /** logit[token] − logit[incorrect] at the last position: A, B and A − B. */
  logitDiff: { a: number; b: number; diff: number };
  /**
   * Direct logit attribution at the last position of every component (fullLogitAttribution: embed,
   * pos_embed, L{l}H{h}, {l}_b_O, {l}_mlp_out), on A, on B and A − B. Σ a + constant = logitDiff.a
   * (likewise b); the constant (ln_final.b and b_U terms) is the same for both, so Σ diff = logitDiff.diff.
   */
  dla: { labels: string[]; a: number[]; b: number[]; diff: number[]; constant: number };
  /** The first residual row whose divergence at the last position exceeds the threshold, or null. */
  firstDivergence: Divergence | null;
  /** The component with the largest |DLA difference|, and its share of logitDiff.diff. */
  topComponent: { label: string; diff: number; share: number };
}

export interface BiasProbeResult {
  threshold: number;
  /** Row labels of resid ("0_pre" … "final_post"). */
  residLabels: string[];
  /** Column labels of the mean resid: positions, or "-k" from the end when the pairs' lengths differ. */
  posLabels: string[];
  pairs: PairProbe[];
  /** Averages over pairs (resid end-aligned when lengths differ; each cell over the pairs that have it). */
  mean: Omit<PairProbe, "differing" | "dla"> & { dla: { labels: string[]; diff: number[] } };
}

/** ‖x − y‖ / max(‖x‖, ‖y‖) over `n` consecutive elements from offsets ox, oy. */
function divergence(x: ArrayLike<number>, ox: number, y: ArrayLike<number>, oy: number, n: number): number {
  let d = 0, a = 0, b = 0;
  for (let i = 0; i < n; i++) { const u = x[ox + i]!, v = y[oy + i]!; d += (u - v) * (u - v); a += u * u; b += v * v; }
  const den = Math.sqrt(Math.max(a, b));
  return den === 0 ? 0 : Math.sqrt(d) / den;
}

/** Divergence per leading index of an activation [k, 2, …] between batch rows 0 (A) and 1 (B), over `per`-element blocks. */
function rowsDivergence(t: Tensor, blocks: number): number[][] {
  const data = t.contiguous().toArray(), k = t.shape[0]!, half = t.size / k / 2, per = half / blocks;
  return Array.from({ length: k }, (_, i) => Array.from({ length: blocks }, (_, j) => divergence(data, i * 2 * half + j * per, data, i * 2 * half + half + j * per, per)));
}

const argmaxAbs = (v: readonly number[]): number => v.reduce((best, x, i) => (Math.abs(x) > Math.abs(v[best]!) ? i : best), 0);

function firstAbove(resid: readonly (readonly number[])[], labels: readonly string[], col: number, threshold: number): Divergence | null {
  const i = resid.findIndex((row) => row[col]! > threshold);
  return i < 0 ? null : { index: i, label: labels[i]!, value: resid[i]![col]! };
}

/** Probe one minimal pair: divergences, logit differences and DLA on A and B (one forward of batch 2). */
export function probePair(model: HookedTransformer, pair: MinimalPair, opts: ProbeOptions): PairProbe & { residLabels: string[] } {
  const { a, b } = pair, target = pair.target ?? opts.target;
  if (a.length !== b.length) throw new ShapeError(`probePair: prompts A and B must have the same number of tokens, got ${a.length} and ${b.length}`);
  if (target.incorrect === undefined) throw new Error("probePair: the target needs an incorrect token (a logit difference)");
  const T = a.length, { n_layers: L, n_heads: H } = model.cfg;
  return noGrad(() => {
    const { logits, cache } = model.runWithCache([a, b]);
    const acc = cache.accumulatedResid(); // [n_layers + 1, 2, pos, d_model]
    const resid = rowsDivergence(acc.components, T);
    const heads = rowsDivergence(cache.stackHeadResults().components, 1).map((r) => r[0]!); // [n_layers * n_heads]
    const mlps = model.cfg.attn_only ? [] : Array.from({ length: L }, (_, l) => rowsDivergence(cache.get(blockHook(l, "hook_mlp_out")).reshape([1, 2, -1]), 1)[0]![0]!);
    const V = model.cfg.d_vocab, lg = logits.contiguous().toArray();
    const ld = (row: number) => lg[(row * T + T - 1) * V + target.token]! - lg[(row * T + T - 1) * V + target.incorrect!]!;
    const logitDiff = { a: ld(0), b: ld(1), diff: ld(0) - ld(1) };
    const full = fullLogitAttribution(model, cache, target); // components [n, 2, pos]
    const fd = full.components.contiguous().toArray(), n = full.labels.length;
    const at = (c: number, row: number) => fd[(c * 2 + row) * T + T - 1]!;
    const dA = Array.from({ length: n }, (_, c) => at(c, 0)), dB = Array.from({ length: n }, (_, c) => at(c, 1));
    const diff = dA.map((v, c) => v - dB[c]!);
    const top = argmaxAbs(diff);
    return {
      residLabels: acc.labels,
      differing: a.flatMap((t, i) => (t !== b[i] ? [i] : [])),
      resid,
      heads: Array.from({ length: L }, (_, l) => heads.slice(l * H, (l + 1) * H)),
      mlps,
      logitDiff,
      dla: { labels: full.labels, a: dA, b: dB, diff, constant: full.constant },
      firstDivergence: firstAbove(resid, acc.labels, T - 1, opts.threshold ?? 0.05),
      topComponent: { label: full.labels[top]!, diff: diff[top]!, share: logitDiff.diff === 0 ? 0 : diff[top]! / logitDiff.diff },
    };
  });
}

const mean = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
const meanRows = (ms: readonly (readonly (readonly number[])[])[]) => ms[0]!.map((row, i) => row.map((_, j) => mean(ms.map((m) => m[i]![j]!))));

/** Probe every pair and average; each pair's values are kept in `pairs`. */
export function biasProbe(model: HookedTransformer, pairs: readonly MinimalPair[], opts: ProbeOptions): BiasProbeResult {
  if (pairs.length === 0) throw new Error("biasProbe: no pairs given");
  const threshold = opts.threshold ?? 0.05;
  const probes = pairs.map((p, k) => {
    try { return probePair(model, p, opts); } catch (e) { (e as Error).message = `pair ${k}: ${(e as Error).message}`; throw e; }
  });
  const residLabels = probes[0]!.residLabels;
  const Ts = pairs.map((p) => p.a.length), maxT = Math.max(...Ts), aligned = Ts.some((t) => t !== maxT);
  // End-aligned: column j holds position j − (maxT − T) of a pair of length T, where that exists.
  const resid = residLabels.map((_, i) => Array.from({ length: maxT }, (_, j) => mean(probes.flatMap((p, k) => {
    const pos = j - (maxT - Ts[k]!);
    return pos >= 0 ? [p.resid[i]![pos]!] : [];
  }))));
  const labels = probes[0]!.dla.labels;
  const dlaDiff = labels.map((_, c) => mean(probes.map((p) => p.dla.diff[c]!)));
  const logitDiff = { a: mean(probes.map((p) => p.logitDiff.a)), b: mean(probes.map((p) => p.logitDiff.b)), diff: mean(probes.map((p) => p.logitDiff.diff)) };
  const top = argmaxAbs(dlaDiff);
  return {
    threshold, residLabels,
    posLabels: Array.from({ length: maxT }, (_, j) => (aligned ? String(j - maxT) : String(j))),
    pairs: probes.map(({ residLabels: _, ...p }) => p),
    mean: {
      resid, heads: meanRows(probes.map((p) => p.heads)),
      mlps: probes[0]!.mlps.map((_, l) => mean(probes.map((p) => p.mlps[l]!))),
      logitDiff, dla: { labels, diff: dlaDiff },
      firstDivergence: firstAbove(resid, residLabels, maxT - 1, threshold),
      topComponent: { label: labels[top]!, diff: dlaDiff[top]!, share: logitDiff.diff === 0 ? 0 : dlaDiff[top]! / logitDiff.diff },
    },
  };
}
