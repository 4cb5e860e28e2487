// Autoregressive generation from a HookedTransformer: greedy or seeded sampling (temperature,
// top-k, top-p), per-sequence EOS stopping, and batches of prompts of unequal length (left padded,
// with an attention mask). With the KV cache (the default) the prompt is run once and each new token
// costs one position's forward pass; without it every step re-runs the whole sequence (the slow
// reference the cached path is tested against).
//
// Hooks: generate() calls model.forward, so hooks attached around it fire at every step:
//   model.withHooks({ fwd: [[attnHook(0, "pattern"), seePattern]] }, () => generate(model, prompt, opts))
// With the cache, the first call sees the whole prompt ([batch, prompt_pos, ...]) and every later
// call one new position ([batch, 1, ...]; attention patterns are [batch, head_index, 1, key_pos]).
// Each step runs in its own memory scope, so a hook that keeps an activation beyond its step must
// keep() it (or copy it with toArray()), or pass { recycle: false }.
//
// This file samples tokens; it does not tokenize text (see tokens.ts).
import { noGrad } from "../tensor/autodiff.js";
import { scope, unscoped } from "../tensor/memory.js";
import { defaultRng, Rng } from "../tensor/rng.js";
import { fmt, ShapeError } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";
import type { KVCache } from "./components.js";
import type { HookedTransformer } from "./transformer.js";

/** How the next token is chosen from the logits of one sequence. */
export interface SamplingOptions {
  /** Sample (true, the default, as TransformerLens) or take the argmax (false). */
  doSample?: boolean;
  /** Logits are divided by this before sampling; 0 means greedy. Default 1. */
  temperature?: number;
  /** Keep only the k most likely tokens (ties broken towards the lower token id). */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability sums to at least p, in (0, 1]. */
  topP?: number;
}

export interface GenerateOptions extends SamplingOptions {
  /** How many tokens to add to each sequence, e.g. 20. */
  maxNewTokens: number;
  /** Sampling randomness: a seed or a generator (default: the engine's global generator, see manualSeed). */
  seed?: number;
  rng?: Rng;
  /** Token id(s) that end a sequence, e.g. 50256 for GPT-2. */
  eosTokenId?: number | readonly number[];
  /** Stop a sequence once it emits EOS (default true when eosTokenId is given). */
  stopAtEos?: boolean;
  /** Filler for left padding and for sequences that already stopped (default: the first EOS id, else 0). */
  padTokenId?: number;
  /** [batch, pos] 1 for real tokens, 0 for (left) padding, when `prompts` is an already padded tensor. */
  attentionMask?: Tensor;
  /**
   * Positions [batch, pos] of the prompt tokens (custom offsets; see ForwardOptions.positionIds); each new
   * token takes its row's last prompt position + 1, + 2, …. Default: positions count each row's real tokens.
   */
  positionIds?: Tensor;
  /** Reuse keys and values between steps (default true); false re-runs the whole sequence every step. */
  useCache?: boolean;
  /**
   * What a model with learned positions (n_ctx) does when prompt + new tokens exceed n_ctx: "error"
   * (the default, as Hugging Face) or "slide": each step past n_ctx sees only the last n_ctx tokens,
   * without the KV cache, as nanoGPT's sampler does.
   */
  contextOverflow?: "error" | "slide";
  /** Run each step in a memory scope that recycles its intermediates (default true). */
  recycle?: boolean;
  /** Also return every step's logits as [batch, new_pos, d_vocab]. */
  returnLogits?: boolean;
  /** Called after each step, e.g. to draw a progress bar. */
  onStep?: (p: GenerateProgress) => void;
}

export interface GenerateProgress {
  /** 1-based step just finished. */
  step: number;
  maxNewTokens: number;
  /** The token each sequence got at this step (filler for stopped sequences). */
  tokens: readonly number[];
  finished: readonly boolean[];
}

export interface GenerateResult {
  /** Prompt plus generated tokens per sequence, without padding, ending at the EOS when it stopped there. */
  tokens: number[][];
  /** Only the generated tokens per sequence (EOS included when it stopped there). */
  newTokens: number[][];
  /** log p(token) under the model's own distribution (before temperature, top-k, top-p) for each of newTokens. */
  logprobs: number[][];
  /** Why each sequence ended. */
  stopReasons: ("eos" | "length")[];
  /** All sequences left padded to one length: int32 [batch, pos], with stopped rows continued by the filler. */
  sequences: Tensor;
  /** int32 [batch, pos]: 1 for real tokens of `sequences`, 0 for left padding. */
  attentionMask: Tensor;
  /** [batch, new_pos, d_vocab] logits of every step when returnLogits was set; otherwise null. */
  logits: Tensor | null;
}

/** The candidates a sampling step chooses among and their normalised probabilities, most likely first. */
export interface SamplingDistribution {
  tokens: Int32Array;
  probs: Float64Array;
}

function checkSampling(o: SamplingOptions): void {
  const t = o.temperature ?? 1;
  if (!(t >= 0) || !Number.isFinite(t)) throw new RangeError(`temperature must be a finite number >= 0, got ${t}`);
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 1)) throw new RangeError(`topK must be a positive integer, got ${o.topK}`);
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) throw new RangeError(`topP must be in (0, 1], got ${o.topP}`);
}

const isGreedy = (o: SamplingOptions): boolean => o.doSample === false || o.temperature === 0;

/** Index of the largest logit (the lowest index among equal maxima). */
export function argmaxRow(logits: ArrayLike<number>): number {
  let best = 0, bv = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > bv) { bv = logits[i]!; best = i; }
  return best;
}

/**
 * The distribution a sampling step draws from, as TransformerLens's sample_logits builds it: logits
 * divided by the temperature, cut to the top k, then to the nucleus (most likely tokens until their
 * cumulative probability reaches topP), then renormalised. Sorted most likely first (lower token id
 * first among ties).
 */
export function samplingDistribution(logits: ArrayLike<number>, opts: SamplingOptions = {}): SamplingDistribution {
  checkSampling(opts);
  const { cand, probs } = candidates(logits, opts);
  const order = Array.from(cand.keys()).sort((a, b) => probs[b]! - probs[a]! || cand[a]! - cand[b]!);
  let sum = 0;
  for (const q of probs) sum += q;
  return { tokens: Int32Array.from(order, (j) => cand[j]!), probs: Float64Array.from(order, (j) => probs[j]! / sum) };
}

/** The candidates of samplingDistribution in no particular order, with unnormalised probabilities. */
function candidates(logits: ArrayLike<number>, opts: SamplingOptions): { cand: Int32Array; probs: Float64Array } {
  const V = logits.length, temp = opts.temperature ?? 1;
  if (isGreedy(opts)) return { cand: Int32Array.of(argmaxRow(logits)), probs: Float64Array.of(1) };
  const cand = topKIndices(logits, Math.min(opts.topK ?? V, V));
  // Softmax over the candidates in float64: p_i = exp((l_i - max) / T) / sum_j exp((l_j - max) / T).
  let max = -Infinity;
  for (const i of cand) max = Math.max(max, logits[i]!);
  if (!Number.isFinite(max)) throw new RangeError(`sampling: the largest logit is ${max}`);
  const probs = new Float64Array(cand.length);
  let total = 0;
  for (let j = 0; j < cand.length; j++) { const e = Math.exp((logits[cand[j]!]! - max) / temp); probs[j] = e; total += e; }
  if (Number.isNaN(total)) throw new RangeError("sampling: the logits contain NaN");
  for (let j = 0; j < probs.length; j++) probs[j]! /= total;
  return opts.topP !== undefined && opts.topP < 1 ? nucleus(cand, probs, opts.topP) : { cand, probs };
}

/** The k largest entries' indices (ties towards the lower index), in index order. */
function topKIndices(x: ArrayLike<number>, k: number): Int32Array {
  const n = x.length;
  if (k >= n) return Int32Array.from({ length: n }, (_, i) => i);
  // The k-th largest value is the threshold; take everything above it, then ties in index order.
  const sorted = Float64Array.from(x).sort();
  const thr = sorted[n - k]!;
  let above = 0;
  for (let i = 0; i < n; i++) if (x[i]! > thr) above++;
  const out = new Int32Array(k);
  let j = 0, ties = k - above;
  for (let i = 0; i < n && j < k; i++) {
    const v = x[i]!;
    if (v > thr) out[j++] = i;
    else if (v === thr && ties > 0) { out[j++] = i; ties--; }
  }
  return out;
}

/**
 * The smallest set of most likely candidates whose probabilities sum to at least p. Only candidates
 * above a threshold are sorted: if those already reach p, every other candidate is less likely than
 * all of them and cannot be in the set; otherwise the threshold is lowered.
 */
function nucleus(cand: Int32Array, probs: Float64Array, p: number): { cand: Int32Array; probs: Float64Array } {
  let pmax = 0;
  for (const q of probs) pmax = Math.max(pmax, q);
  for (let thr = pmax / 64; ; thr = thr > 1e-12 ? thr / 64 : 0) {
    const pick: number[] = [];
    let mass = 0;
    for (let j = 0; j < probs.length; j++) if (probs[j]! >= thr) { pick.push(j); mass += probs[j]!; }
    if (mass < p && thr > 0) continue;
    pick.sort((a, b) => probs[b]! - probs[a]! || cand[a]! - cand[b]!);
    let n = 0, cum = 0;
    while (n < pick.length && (n === 0 || cum < p)) cum += probs[pick[n++]!]!;
    const keep = pick.slice(0, n);
    return { cand: Int32Array.from(keep, (j) => cand[j]!), probs: Float64Array.from(keep, (j) => probs[j]!) };
  }
}

/** One token from one row of logits: the argmax when greedy, else a draw from samplingDistribution. */
export function sampleToken(logits: ArrayLike<number>, opts: SamplingOptions, rng: Rng = defaultRng()): number {
  checkSampling(opts);
  if (isGreedy(opts)) return argmaxRow(logits);
  const { cand, probs } = candidates(logits, opts);
  return cand[rng.categorical(probs)]!;
}

type Prompts = Tensor | readonly number[] | readonly (readonly number[])[];

/** Prompts as left-padded rows plus a mask; ragged arrays are padded here. */
function leftPad(model: HookedTransformer, prompts: Prompts, mask: Tensor | undefined, pad: number): { rows: number[][]; mask: number[][]; padded: boolean } {
  let rows: number[][];
  let m: number[][] | null = null;
  if (prompts instanceof Tensor) {
    const t = model.toTokenTensor(prompts);
    rows = t.toNested() as number[][];
    if (mask) {
      if (!mask.shapeEquals(t.shape)) throw new ShapeError(`generate: attentionMask ${fmt(mask.shape)} must match tokens ${fmt(t.shape)}`);
      m = (mask.toNested() as number[][]).map((r) => r.map((v) => (v !== 0 ? 1 : 0)));
    }
  } else {
    if (mask) throw new ShapeError("generate: attentionMask goes with a padded token tensor; pass token arrays unpadded instead");
    rows = (Array.isArray(prompts[0]) ? prompts : [prompts]) as number[][];
    rows = rows.map((r) => Array.from(r));
    for (const r of rows) model.toTokenTensor([r]); // range check with the model's error message
  }
  if (rows.length === 0 || rows.some((r, b) => (m ? m[b]!.every((v) => v === 0) : r.length === 0))) throw new ShapeError("generate: every prompt needs at least one token");
  const P = Math.max(...rows.map((r) => r.length));
  if (!m) {
    m = rows.map((r) => [...new Array<number>(P - r.length).fill(0), ...new Array<number>(r.length).fill(1)]);
    rows = rows.map((r) => [...new Array<number>(P - r.length).fill(pad), ...r]);
  }
  for (const r of m) {
    // Padding must be on the left: once a row has a real token, every later one is real.
    const first = r.indexOf(1);
    if (r.slice(first).includes(0)) throw new ShapeError("generate: attentionMask must be left padded (zeros only before the first real token)");
  }
  return { rows, mask: m, padded: m.some((r) => r[0] === 0) };
}

/**
 * Extend each prompt by up to maxNewTokens tokens. `prompts` is one token list, several (of any
 * lengths: they are left padded), or an int32 [batch, pos] tensor (with attentionMask if padded).
 */
export function generate(model: HookedTransformer, prompts: Prompts, opts: GenerateOptions): GenerateResult {
  checkSampling(opts);
  const N = opts.maxNewTokens;
  if (!(Number.isInteger(N) && N >= 0)) throw new RangeError(`maxNewTokens must be a non-negative integer, got ${N}`);
  const eos = opts.eosTokenId === undefined ? [] : typeof opts.eosTokenId === "number" ? [opts.eosTokenId] : [...opts.eosTokenId];
  const stopAtEos = (opts.stopAtEos ?? true) && eos.length > 0;
  const pad = opts.padTokenId ?? eos[0] ?? 0;
  const rng = opts.rng ?? (opts.seed !== undefined ? new Rng(opts.seed) : defaultRng());
  const useCache = opts.useCache ?? true, recycle = opts.recycle ?? true;
  const V = model.cfg.d_vocab;

  const { rows, mask, padded } = leftPad(model, prompts, opts.attentionMask, pad);
  const B = rows.length, P = rows[0]!.length;
  const slide = opts.contextOverflow === "slide";
  if (opts.contextOverflow !== undefined && !slide && opts.contextOverflow !== "error") throw new RangeError(`contextOverflow must be "error" or "slide", got ${String(opts.contextOverflow)}`);
  // Only learned absolute positions have a hard limit; rotary models run past n_ctx (quality aside).
  const window = model.cfg.positional_embedding_type === "standard" ? model.cfg.n_ctx : Infinity;
  const pids = opts.positionIds;
  if (pids && (pids.ndim !== 2 || pids.shape[0] !== B || pids.shape[1] !== P)) throw new ShapeError(`generate: positionIds must be [batch, pos] = [${B}, ${P}] like the prompts, got ${fmt(pids.shape)}`);
  const pidRows = pids ? (pids.toNested() as number[][]) : null;
  if (slide && pidRows) throw new RangeError(`generate: contextOverflow "slide" renumbers the positions of the window it keeps, so it does not take positionIds`);
  if (slide && P > window) throw new RangeError(`generate: the padded prompt (${P} tokens) is longer than n_ctx = ${window}; even a sliding window starts from a prompt that fits`);
  if (!slide && window < Infinity) {
    if (pidRows) {
      const last = Math.max(...pidRows.map((r) => r[P - 1]!));
      if (last + N >= window) throw new RangeError(`generate: the last prompt position ${last} + ${N} new tokens exceed n_ctx = ${window}`);
    } else {
      const longest = Math.max(...mask.map((r) => r.reduce((a, v) => a + v, 0)));
      if (longest + N > window) throw new RangeError(`generate: ${longest} prompt tokens + ${N} new tokens exceed n_ctx = ${window} (contextOverflow: "slide" keeps the last n_ctx tokens instead)`);
    }
  }

  const newTokens: number[][] = rows.map(() => []);
  const logprobs: number[][] = rows.map(() => []);
  const finished = new Array<boolean>(B).fill(false);
  const stopReasons: ("eos" | "length")[] = new Array(B).fill("length");
  const stepLogits: Float32Array[] = [];
  const cache: KVCache = { keys: new Array(model.cfg.n_layers).fill(null), values: new Array(model.cfg.n_layers).fill(null) };

  // Logits of the last position [batch * d_vocab] and their log-sum-exp per row, given the tokens not yet fed to the model.
  const nextLogits = (step: number): { logits: Float32Array; lse: Float32Array } => {
    const T = P + step; // tokens so far
    // Past the window every step re-runs the last n_ctx tokens: cached keys sit at positions that have shifted.
    const over = Math.max(0, T - window);
    const cached = useCache && over === 0;
    const feedFrom = cached && step > 0 ? T - 1 : over;
    const width = T - feedFrom;
    const toks = new Int32Array(B * width), pos = pidRows ? new Int32Array(B * width) : null;
    for (let b = 0; b < B; b++) for (let j = 0; j < width; j++) {
      const t = feedFrom + j;
      toks[b * width + j] = t < P ? rows[b]![t]! : newTokens[b]![t - P]!;
      if (pos) pos[b * width + j] = t < P ? pidRows![b]![t]! : pidRows![b]![P - 1]! + t - P + 1;
    }
    const run = () => {
      const attentionMask = padded ? new Tensor(Int32Array.from(mask.flatMap((r) => [...r, ...new Array<number>(step).fill(1)].slice(over))), [B, T - over]) : undefined;
      const positionIds = pos ? new Tensor(pos, [B, width]) : undefined;
      const last = model.forward(new Tensor(toks, [B, width]), { attentionMask, positionIds, kvCache: cached ? cache : undefined, lastPositionOnly: true }).select(1, 0); // [batch, d_vocab]
      // Copied out of the scope; the log-sum-exp on the backend's vector kernels rather than a JS loop over the vocabulary.
      return { logits: last.toArray() as Float32Array, lse: last.logsumexp(-1).toArray() as Float32Array };
    };
    // The cache's new tensors escape through the return value; every other intermediate is recycled.
    return recycle ? scope(() => ({ r: run(), cache })).r : run();
  };

  const body = (): void => {
    for (let step = 0; step < N; step++) {
      const { logits, lse } = nextLogits(step);
      if (opts.returnLogits) stepLogits.push(logits);
      const chosen = new Array<number>(B);
      for (let b = 0; b < B; b++) {
        if (finished[b]) { chosen[b] = pad; continue; }
        const row = logits.subarray(b * V, (b + 1) * V);
        const tok = sampleToken(row, opts, rng);
        chosen[b] = tok;
        logprobs[b]!.push(row[tok]! - lse[b]!);
        if (stopAtEos && eos.includes(tok)) { finished[b] = true; stopReasons[b] = "eos"; }
      }
      for (let b = 0; b < B; b++) newTokens[b]!.push(chosen[b]!);
      opts.onStep?.({ step: step + 1, maxNewTokens: N, tokens: chosen, finished: [...finished] });
      if (finished.every((f) => f)) break;
    }
  };
  // Outside any caller's scope, so each step's superseded KV cache goes to the GC instead of piling up.
  noGrad(() => (recycle ? unscoped(body) : body()));

  const S = newTokens[0]!.length;
  const seq = new Int32Array(B * (P + S)), seqMask = new Int32Array(B * (P + S));
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < P + S; t++) {
      seq[b * (P + S) + t] = t < P ? rows[b]![t]! : newTokens[b]![t - P]!;
      seqMask[b * (P + S) + t] = t < P ? mask[b]![t]! : 1;
    }
  }
  // Each row's own tokens end where its logprobs do (at its EOS); the filler after that is dropped.
  const kept = newTokens.map((r, b) => r.slice(0, logprobs[b]!.length));
  let logits: Tensor | null = null;
  if (opts.returnLogits) {
    const all = new Float32Array(B * S * V);
    stepLogits.forEach((l, s) => { for (let b = 0; b < B; b++) all.set(l.subarray(b * V, (b + 1) * V), (b * S + s) * V); });
    logits = new Tensor(all, [B, S, V]);
  }
  return {
    tokens: kept.map((r, b) => [...rows[b]!.filter((_, t) => mask[b]![t] === 1), ...r]),
    newTokens: kept,
    logprobs,
    stopReasons,
    sequences: new Tensor(seq, [B, P + S]),
    attentionMask: new Tensor(seqMask, [B, P + S]),
    logits,
  };
}
