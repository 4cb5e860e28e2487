// Attention-head detectors: how much of each head's attention lands where a known kind of head would
// look (previous token, previous occurrence of the same token, the token after that occurrence),
// scored per layer × head from the attention patterns of runWithCache. Also TransformerLens's
// detect_head (transformer_lens/head_detector.py) with a user-given [query_pos, key_pos] pattern and
// its "mul" / "abs" error measures. Reads patterns only: it neither changes the model nor prints.
import { noGrad } from "../tensor/autodiff.js";
import { fmt, ShapeError } from "../tensor/shape.js";
import { Rng } from "../tensor/rng.js";
import { Tensor } from "../tensor/tensor.js";
import { attnHook } from "../model/hooks.js";
import type { HookedTransformer, Tokens } from "../model/transformer.js";

/** The built-in detection patterns (TransformerLens's names). */
export type HeadKind = "previous_token_head" | "duplicate_token_head" | "induction_head";
export const HEAD_KINDS: readonly HeadKind[] = ["previous_token_head", "duplicate_token_head", "induction_head"];

/**
 * "mul": among query rows where the detection pattern has any weight, the attention mass on the
 * pattern's positions (each weighted by its detection value over the row's largest), averaged over
 * those rows: 1 = a perfect head of that kind, 0 = never looks there.
 * "abs": 1 − the mean over the same rows of the total-variation distance ½ Σ_k |pattern − detection|
 * (detection rows normalised to sum 1): also 1 for a perfect match, but penalises attention spread
 * elsewhere as much as attention missing from the target. Excluded keys (excludeBos,
 * excludeCurrentToken) are left out of both measures without renormalising the pattern.
 */
export type ErrorMeasure = "mul" | "abs";

export interface DetectOptions {
  errorMeasure?: ErrorMeasure; // default "mul"
  /** Ignore attention to position 0 (a BOS sink), as TransformerLens's exclude_bos. */
  excludeBos?: boolean;
  /** Ignore attention to the query's own position, as TransformerLens's exclude_current_token. */
  excludeCurrentToken?: boolean;
}

/** Seeded [batch, 2 * seqLen] tokens (plus a leading bos column if given): seqLen random tokens, then the same again. */
export function repeatedRandomTokens(opts: { seqLen: number; batch?: number; dVocab: number; seed?: number; bos?: number }): Tensor {
  const { seqLen, dVocab } = opts, batch = opts.batch ?? 1, rng = new Rng(opts.seed ?? 0);
  const lead = opts.bos === undefined ? 0 : 1, T = lead + 2 * seqLen;
  const data = new Int32Array(batch * T);
  for (let b = 0; b < batch; b++) {
    if (lead) data[b * T] = opts.bos!;
    for (let i = 0; i < seqLen; i++) data[b * T + lead + i] = data[b * T + lead + seqLen + i] = rng.int(0, dVocab);
  }
  return new Tensor(data, [batch, T]);
}

/**
 * The detection pattern of a head kind for one token sequence: [query_pos, key_pos] row-major,
 * 1 where such a head attends. Derived from the tokens, so it works on any text, not only repeats.
 */
export function detectionPattern(kind: HeadKind, tokens: ArrayLike<number>): Float64Array {
  const T = tokens.length, p = new Float64Array(T * T);
  for (let q = 0; q < T; q++) {
    if (kind === "previous_token_head") { if (q > 0) p[q * T + q - 1] = 1; continue; }
    for (let k = 0; k < q; k++) {
      if (tokens[k] !== tokens[q]) continue;
      // Duplicate: the earlier occurrence itself; induction: the token that followed it.
      if (kind === "duplicate_token_head") p[q * T + k] = 1;
      else if (kind === "induction_head") p[q * T + k + 1] = 1;
      else kind satisfies never;
    }
  }
  return p;
}

/**
 * Score one head's pattern rows [query_pos, key_pos] (row-major, T × T) against a detection pattern
 * of the same shape; see ErrorMeasure. Returns { sum, rows } so batches can be pooled; NaN-free.
 */
export function scorePattern(pattern: ArrayLike<number>, detection: ArrayLike<number>, T: number, opts: DetectOptions = {}): { sum: number; rows: number } {
  const measure = opts.errorMeasure ?? "mul";
  let sum = 0, rows = 0;
  for (let q = 0; q < T; q++) {
    const skip = (k: number) => (opts.excludeBos && k === 0) || (opts.excludeCurrentToken && k === q);
    let dTotal = 0;
    for (let k = 0; k < T; k++) if (!skip(k)) dTotal += detection[q * T + k]!;
    if (dTotal <= 0) continue; // a row with nothing to find says nothing about the head
    let s = 0;
    if (measure === "mul") {
      // Mass on the targets, each weighted relative to the row's strongest target (so 0/1 rows give the plain mass).
      let maxW = 0;
      for (let k = 0; k < T; k++) if (!skip(k)) maxW = Math.max(maxW, detection[q * T + k]!);
      for (let k = 0; k < T; k++) if (!skip(k)) s += pattern[q * T + k]! * detection[q * T + k]! / maxW;
    } else if (measure === "abs") {
      let tv = 0;
      for (let k = 0; k < T; k++) if (!skip(k)) tv += Math.abs(pattern[q * T + k]! - detection[q * T + k]! / dTotal);
      s = 1 - tv / 2;
    } else measure satisfies never;
    sum += s; rows++;
  }
  return { sum, rows };
}

/** The attention patterns of every layer: [batch, head_index, query_pos, key_pos] per layer. */
function patterns(model: HookedTransformer, tokens: Tokens): { tokens: Tensor; perLayer: Tensor[] } {
  const toks = model.toTokenTensor(tokens);
  const names = Array.from({ length: model.cfg.n_layers }, (_, l) => attnHook(l, "pattern"));
  const { cache } = noGrad(() => model.runWithCache(toks, { names }));
  return { tokens: toks, perLayer: names.map((n) => cache.get(n)) };
}

/** A detection pattern: a built-in kind, or an explicit [query_pos, key_pos] matrix of non-negative weights shared by the batch. */
export type Detection = HeadKind | readonly (readonly number[])[] | Tensor;

/** Mean score per [layer][head] over every row of every sequence in the batch. */
function scoreLayers(perLayer: Tensor[], T: number, detections: readonly Float64Array[], opts: DetectOptions): number[][] {
  return perLayer.map((pat) => {
    const H = pat.shape[1]!, data = pat.contiguous().toArray();
    return Array.from({ length: H }, (_, h) => {
      let sum = 0, rows = 0;
      detections.forEach((det, b) => {
        const off = (b * H + h) * T * T;
        const r = scorePattern(data.subarray(off, off + T * T), det, T, opts);
        sum += r.sum; rows += r.rows;
      });
      return rows > 0 ? sum / rows : 0;
    });
  });
}

/** One detection pattern per sequence of the batch. */
function detectionsFor(detection: Detection, toks: Tensor): Float64Array[] {
  const [B, T] = toks.shape as [number, number];
  if (typeof detection === "string") {
    const tokData = toks.contiguous().toArray();
    return Array.from({ length: B }, (_, b) => detectionPattern(detection, tokData.subarray(b * T, (b + 1) * T)));
  }
  const t = detection instanceof Tensor ? detection : new Tensor(Float64Array.from(detection.flat()), [detection.length, detection[0]?.length ?? 0]);
  if (t.ndim !== 2 || t.shape[0] !== T || t.shape[1] !== T) throw new ShapeError(`detectHead: detection pattern must be [query_pos, key_pos] = [${T}, ${T}], got ${fmt(t.shape)}`);
  const fixed = Float64Array.from(t.contiguous().toArray());
  if (fixed.some((v) => !(v >= 0))) throw new RangeError("detectHead: detection pattern values must be finite and >= 0 (weights of where the head should attend)");
  return Array.from({ length: B }, () => fixed);
}

/**
 * TransformerLens's detect_head: a score per [layer][head] of how closely each head's attention on
 * `tokens` ([batch, pos] or [pos]) matches the detection pattern, pooled over the batch's rows.
 */
export function detectHead(model: HookedTransformer, tokens: Tokens, detection: Detection, opts: DetectOptions = {}): number[][] {
  const { tokens: toks, perLayer } = patterns(model, tokens);
  return scoreLayers(perLayer, toks.shape[1]!, detectionsFor(detection, toks), opts);
}

export interface HeadScores {
  previous_token_head: number[][]; // [layer][head]
  duplicate_token_head: number[][];
  induction_head: number[][];
}

/** The three built-in detectors ("mul" measure) from one run of the model over tokens. */
export function headDetectorScores(model: HookedTransformer, tokens: Tokens, opts: Omit<DetectOptions, "errorMeasure"> = {}): HeadScores {
  const { tokens: toks, perLayer } = patterns(model, tokens);
  const run = (kind: HeadKind) => scoreLayers(perLayer, toks.shape[1]!, detectionsFor(kind, toks), { ...opts, errorMeasure: "mul" });
  return { previous_token_head: run("previous_token_head"), duplicate_token_head: run("duplicate_token_head"), induction_head: run("induction_head") };
}

/** The (layer, head) with the highest score, optionally within one layer. */
export function topHead(scores: readonly (readonly number[])[], layer?: number): { layer: number; head: number; score: number } {
  let best = { layer: -1, head: -1, score: -Infinity };
  scores.forEach((row, l) => {
    if (layer !== undefined && l !== layer) return;
    row.forEach((s, h) => { if (s > best.score) best = { layer: l, head: h, score: s }; });
  });
  return best;
}
