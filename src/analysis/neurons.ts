// Neuron analysis over a token corpus, streamed one batch at a time (each batch inside its own memory
// scope, so no activation tensor outlives its batch and the corpus's activations are never held):
//  - maxActivatingExamples: per neuron the top-k activations, kept in a bounded min-heap of size k,
//    each with where it occurred (sequence index in the corpus, batch, row, position) and the token
//    window around it. Order: value descending, then sequence ascending, then position ascending —
//    a total order, so ties are broken deterministically and the result does not depend on how the
//    corpus is cut into batches.
//  - activationHistogram: per-neuron histogram with fixed bins over the observed [min, max], computed
//    in TWO passes over the corpus (pass 1: min, max, count, mean/variance by Welford, fraction > 0;
//    pass 2: bin counts). The corpus must therefore be re-iterable (an array, or a function returning
//    a fresh iterable); a one-shot generator is rejected.
//  The scanned units are the hook's activation by default, or any function of it (`units`: e.g. an
//  SAE's encode, which is how src/sae/dashboard.ts finds its latents' examples with this same code).
//  - polysemanticity: a HEURISTIC indicator clustering the tokens at the max position of a neuron's
//    top examples (identical ids always together; distinct ids merged greedily by cosine similarity
//    of their W_E rows). See polysemanticity() for the exact definition.
import { noGrad } from "../tensor/autodiff.js";
import { scope } from "../tensor/memory.js";
import { Tensor } from "../tensor/tensor.js";
import type { HookName } from "../model/hooks.js";
import type { HookedTransformer } from "../model/transformer.js";

/** A batch of token ids: an int tensor [batch, pos] or nested arrays (all rows the same length). */
export type NeuronTokenBatch = Tensor | readonly (readonly number[])[];
/** A corpus for the two-pass histogram: re-iterable, or a factory returning a fresh iterable. */
export type Corpus = Iterable<NeuronTokenBatch> | (() => Iterable<NeuronTokenBatch>);

export interface NeuronScanOptions {
  layer: number;
  /** Neuron indices to track (default: all d_mlp neurons of the hook). */
  neurons?: readonly number[];
  /** Hook to read (default `blocks.{layer}.mlp.hook_post`, shape [batch, pos, d_mlp]). */
  hook?: HookName;
  /** Positions [0, skipPositions) of every row are ignored (e.g. 1 for a BOS column, an attention sink); default 0. */
  skipPositions?: number;
  /**
   * The units scanned, as a function of the hook's activation [batch, pos, d] → [batch, pos, units]
   * (e.g. an SAE's encode, to scan its latents); default: the activation itself.
   */
  units?: (activation: Tensor) => Tensor;
}

export interface MaxActOptions extends NeuronScanOptions {
  k: number;
  /** Tokens kept before / after the max position (clipped at the sequence boundaries; default 0). */
  contextBefore?: number;
  contextAfter?: number;
}

export interface ActivatingExample {
  value: number;
  /** Index of the sequence in the whole corpus (rows counted across batches). */
  sequence: number;
  /** Which batch of the stream, and which row inside it. */
  batch: number;
  row: number;
  position: number;
  /** Token ids of positions [windowStart, windowStart + tokens.length), clipped to the sequence. */
  tokens: number[];
  windowStart: number;
  /** Index of `position` within `tokens`. */
  offset: number;
  /** The token id at `position`. */
  token: number;
}

export interface NeuronExamples {
  neuron: number;
  /** Best first (value desc, then sequence asc, then position asc); at most k. */
  examples: ActivatingExample[];
}

/** True when a ranks strictly before b in the top-k order. */
export function ranksBefore(a: Pick<ActivatingExample, "value" | "sequence" | "position">, b: Pick<ActivatingExample, "value" | "sequence" | "position">): boolean {
  if (a.value !== b.value) return a.value > b.value;
  if (a.sequence !== b.sequence) return a.sequence < b.sequence;
  return a.position < b.position;
}

/** Bounded heap whose root is the worst kept example (the first to be evicted). */
class TopK {
  readonly h: ActivatingExample[] = [];
  constructor(readonly k: number) {}
  /** Whether an example with these keys would enter the heap (checked before building its window). */
  admits(value: number, sequence: number, position: number): boolean {
    if (this.k <= 0) return false;
    return this.h.length < this.k || ranksBefore({ value, sequence, position }, this.h[0]!);
  }
  push(e: ActivatingExample): void {
    const h = this.h;
    if (h.length < this.k) {
      h.push(e);
      let i = h.length - 1;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!ranksBefore(h[p]!, h[i]!)) break; // parent is already worse than (or equal to) child
        [h[p], h[i]] = [h[i]!, h[p]!];
        i = p;
      }
      return;
    }
    h[0] = e;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let w = i; // worst of i and its children
      if (l < h.length && ranksBefore(h[w]!, h[l]!)) w = l;
      if (r < h.length && ranksBefore(h[w]!, h[r]!)) w = r;
      if (w === i) break;
      [h[w], h[i]] = [h[i]!, h[w]!];
      i = w;
    }
  }
  sorted(): ActivatingExample[] {
    return [...this.h].sort((a, b) => (ranksBefore(a, b) ? -1 : ranksBefore(b, a) ? 1 : 0));
  }
}

function tokenData(b: NeuronTokenBatch): { ids: Int32Array; rows: number; len: number } {
  if (b instanceof Tensor) {
    if (b.ndim !== 2) throw new RangeError(`neurons: token batch must be [batch, pos], got [${b.shape.join(", ")}]`);
    return { ids: Int32Array.from(b.toArray() as ArrayLike<number>), rows: b.shape[0]!, len: b.shape[1]! };
  }
  const rows = b.length, len = rows ? b[0]!.length : 0;
  const ids = new Int32Array(rows * len);
  b.forEach((r, i) => {
    if (r.length !== len) throw new RangeError("neurons: token rows must all have the same length");
    ids.set(r, i * len);
  });
  return { ids, rows, len };
}

/**
 * Run the model on one batch (no grad, inside a scope) and hand the hook's activation to `visit` as a
 * flat row-major copy [rows, len, d]. Nothing tensor-valued survives the call.
 */
function withActivations(model: HookedTransformer, tokens: NeuronTokenBatch, hook: HookName, visit: (acts: ArrayLike<number>, d: number) => void, units?: (a: Tensor) => Tensor): void {
  scope(() => noGrad(() => {
    let seen = false;
    model.runWithHooks(tokens as Tensor, {
      fwd: [[hook, (act: Tensor) => {
        const a = units ? units(act) : act;
        if (a.ndim !== 3) throw new RangeError(`neurons: ${hook}${units ? " (mapped to units)" : ""} must be [batch, pos, d], got [${a.shape.join(", ")}]`);
        visit(a.toArray() as ArrayLike<number>, a.shape[2]!);
        seen = true;
      }]],
    });
    if (!seen) throw new Error(`neurons: hook ${hook} did not fire`);
  }));
}

function hookOf(model: HookedTransformer, o: NeuronScanOptions): HookName {
  const n = model.cfg.n_layers;
  if (!Number.isInteger(o.layer) || o.layer < 0 || o.layer >= n) throw new RangeError(`neurons: layer ${o.layer} out of range [0, ${n})`);
  return o.hook ?? (`blocks.${o.layer}.mlp.hook_post` as HookName);
}

function skipOf(o: NeuronScanOptions): number {
  const s = o.skipPositions ?? 0;
  if (!Number.isInteger(s) || s < 0) throw new RangeError(`neurons: skipPositions must be a non-negative integer, got ${s}`);
  return s;
}

function neuronList(o: NeuronScanOptions, d: number): number[] {
  const ns = o.neurons ? [...o.neurons] : Array.from({ length: d }, (_, i) => i);
  for (const n of ns) if (!Number.isInteger(n) || n < 0 || n >= d) throw new RangeError(`neurons: neuron ${n} out of range [0, ${d})`);
  return ns;
}

/**
 * Top-k activating examples per neuron, streamed over the corpus one batch at a time. Memory is
 * O(neurons · k · window) plus one batch's activations. NaN activations are skipped.
 */
export function maxActivatingExamples(model: HookedTransformer, batches: Iterable<NeuronTokenBatch>, opts: MaxActOptions): NeuronExamples[] {
  const hook = hookOf(model, opts);
  const k = opts.k, before = opts.contextBefore ?? 0, after = opts.contextAfter ?? 0, skip = skipOf(opts);
  if (!Number.isInteger(k) || k < 0) throw new RangeError(`maxActivatingExamples: k must be a non-negative integer, got ${k}`);
  if (before < 0 || after < 0) throw new RangeError("maxActivatingExamples: context sizes must be non-negative");
  let neurons: number[] | null = null;
  let heaps: TopK[] = [];
  let sequence = 0, batchIndex = 0;
  for (const b of batches) {
    const { ids, rows, len } = tokenData(b);
    if (rows > 0 && len > 0) {
      withActivations(model, b, hook, (acts, d) => {
        if (!neurons) { neurons = neuronList(opts, d); heaps = neurons.map(() => new TopK(k)); }
        for (let j = 0; j < neurons.length; j++) {
          const nIdx = neurons[j]!, heap = heaps[j]!;
          for (let r = 0; r < rows; r++) {
            const seq = sequence + r;
            for (let p = skip; p < len; p++) {
              const v = acts[(r * len + p) * d + nIdx]!;
              if (Number.isNaN(v) || !heap.admits(v, seq, p)) continue;
              const start = Math.max(0, p - before), end = Math.min(len, p + after + 1);
              heap.push({
                value: v, sequence: seq, batch: batchIndex, row: r, position: p,
                tokens: Array.from(ids.subarray(r * len + start, r * len + end)), windowStart: start, offset: p - start,
                token: ids[r * len + p]!,
              });
            }
          }
        }
      }, opts.units);
    }
    sequence += rows;
    batchIndex++;
  }
  const ns: number[] = neurons ?? (opts.neurons ? [...opts.neurons] : []);
  return ns.map((neuron, j) => ({ neuron, examples: heaps[j]?.sorted() ?? [] }));
}

/**
 * The tracked neurons' activations at every position of a few sequences (e.g. to colour the tokens of
 * max-activating examples): [row][pos][j] for neurons[j]. One forward pass over `tokens`.
 */
export function neuronActivations(model: HookedTransformer, tokens: NeuronTokenBatch, opts: NeuronScanOptions): number[][][] {
  const hook = hookOf(model, opts);
  const { rows, len } = tokenData(tokens);
  if (rows === 0 || len === 0) return Array.from({ length: rows }, () => []);
  let out: number[][][] = [];
  withActivations(model, tokens, hook, (acts, d) => {
    const ns = neuronList(opts, d);
    out = Array.from({ length: rows }, (_, r) => Array.from({ length: len }, (_, p) => ns.map((n) => Number(acts[(r * len + p) * d + n]))));
  }, opts.units);
  return out;
}

export interface HistogramOptions extends NeuronScanOptions {
  /** Number of equal-width bins over [min, max] of each neuron (default 50). */
  bins?: number;
}

export interface NeuronHistogram {
  neuron: number;
  /** bins + 1 edges from min to max; value v goes to bin floor((v − min)/(max − min)·bins), max into the last. */
  edges: number[];
  counts: number[];
  count: number;
  min: number;
  max: number;
  mean: number;
  /** Population standard deviation. */
  std: number;
  /** Fraction of activations strictly greater than 0. */
  fractionPositive: number;
}

function freshIterable(corpus: Corpus, pass: number): Iterable<NeuronTokenBatch> {
  if (typeof corpus === "function") return corpus();
  const it = corpus[Symbol.iterator]();
  if (pass === 0 && (it as unknown) === corpus) {
    throw new TypeError("activationHistogram: the corpus is a one-shot iterator; pass an array or a function returning a fresh iterable (two passes are made)");
  }
  return { [Symbol.iterator]: () => (pass === 0 ? it : corpus[Symbol.iterator]()) };
}

/**
 * Per-neuron activation histogram, exact, in two passes over the corpus (see file header). All
 * statistics are accumulated in float64; NaN activations are skipped.
 */
export function activationHistogram(model: HookedTransformer, corpus: Corpus, opts: HistogramOptions): NeuronHistogram[] {
  const hook = hookOf(model, opts);
  const nb = opts.bins ?? 50, skip = skipOf(opts);
  if (!Number.isInteger(nb) || nb < 1) throw new RangeError(`activationHistogram: bins must be a positive integer, got ${nb}`);
  let neurons: number[] | null = null;
  let stats: { count: number; mean: number; m2: number; min: number; max: number; pos: number; counts: number[] }[] = [];
  const each = (pass: number, f: (v: number, j: number) => void) => {
    for (const b of freshIterable(corpus, pass)) {
      const { rows, len } = tokenData(b);
      if (rows === 0 || len === 0) continue;
      withActivations(model, b, hook, (acts, d) => {
        if (!neurons) {
          neurons = neuronList(opts, d);
          stats = neurons.map(() => ({ count: 0, mean: 0, m2: 0, min: Infinity, max: -Infinity, pos: 0, counts: new Array<number>(nb).fill(0) }));
        }
        const n = rows * len;
        for (let j = 0; j < neurons.length; j++) {
          const nIdx = neurons[j]!;
          for (let i = 0; i < n; i++) {
            if (i % len < skip) continue;
            const v = acts[i * d + nIdx]!;
            if (!Number.isNaN(v)) f(v, j);
          }
        }
      }, opts.units);
    }
  };
  each(0, (v, j) => {
    const s = stats[j]!;
    s.count++;
    const delta = v - s.mean;
    s.mean += delta / s.count;
    s.m2 += delta * (v - s.mean);
    if (v < s.min) s.min = v;
    if (v > s.max) s.max = v;
    if (v > 0) s.pos++;
  });
  each(1, (v, j) => {
    const s = stats[j]!, w = s.max - s.min;
    const i = w > 0 ? Math.min(nb - 1, Math.max(0, Math.floor(((v - s.min) / w) * nb))) : 0;
    s.counts[i]!++;
  });
  const ns: number[] = neurons ?? [];
  return ns.map((neuron, j) => {
    const s = stats[j]!, empty = s.count === 0;
    const min = empty ? 0 : s.min, max = empty ? 0 : s.max;
    return {
      neuron, counts: s.counts, count: s.count, min, max,
      edges: Array.from({ length: nb + 1 }, (_, i) => (i === nb ? max : min + ((max - min) * i) / nb)),
      mean: empty ? NaN : s.mean, std: empty ? NaN : Math.sqrt(s.m2 / s.count), fractionPositive: empty ? NaN : s.pos / s.count,
    };
  });
}

export interface TokenCluster {
  /** The seed token whose embedding the others were compared against. */
  representative: number;
  /** Distinct token ids in the cluster, by mass descending. */
  tokens: number[];
  examples: number;
  /** Sum of max(value, 0) over the cluster's examples. */
  mass: number;
  /** mass / total mass (example-count share when the total mass is 0). */
  share: number;
}

export interface Polysemanticity {
  /** Number of clusters (1 = the examples look monosemantic by this heuristic). */
  clusters: number;
  /** Distinct token ids at the max positions. */
  distinctTokens: number;
  /** Inverse Simpson index 1 / Σ share² — the "effective" number of clusters. */
  effectiveClusters: number;
  /** Share of the largest cluster. */
  topShare: number;
  groups: TokenCluster[];
}

export interface PolysemanticityOptions {
  /** Cosine similarity (of W_E rows) at or above which a token joins a cluster (default 0.5). */
  threshold?: number;
}

/**
 * A heuristic polysemanticity indicator for one neuron's top examples — not a ground-truth measure.
 * Definition: take the token at the max position of each example; group examples by token id; order
 * the distinct tokens by their activation mass Σ max(value, 0) (desc, ties by token id); then greedily
 * put each token into the first existing cluster whose representative's embedding row (W_E) has
 * cosine ≥ threshold with its own, else open a new cluster represented by it. Report the number of
 * clusters, each cluster's share of the mass, and the inverse Simpson index of those shares.
 * `embed` is the model (its embed.W_E is used) or a [d_vocab, d_model] matrix.
 */
export function polysemanticity(examples: readonly Pick<ActivatingExample, "value" | "token">[], embed: HookedTransformer | Tensor, opts: PolysemanticityOptions = {}): Polysemanticity {
  const threshold = opts.threshold ?? 0.5;
  const W = embed instanceof Tensor ? embed : embed.embed.W_E;
  if (W.ndim !== 2) throw new RangeError("polysemanticity: the embedding must be [d_vocab, d_model]");
  const [V, D] = [W.shape[0]!, W.shape[1]!];
  const w = noGrad(() => W.toArray()) as ArrayLike<number>;
  const byToken = new Map<number, { mass: number; n: number }>();
  for (const e of examples) {
    if (!Number.isInteger(e.token) || e.token < 0 || e.token >= V) throw new RangeError(`polysemanticity: token ${e.token} out of range [0, ${V})`);
    const g = byToken.get(e.token) ?? { mass: 0, n: 0 };
    g.mass += Math.max(e.value, 0); g.n++;
    byToken.set(e.token, g);
  }
  const tokens = [...byToken.entries()].sort((a, b) => b[1].mass - a[1].mass || a[0] - b[0]);
  const row = (t: number) => Array.from({ length: D }, (_, i) => Number(w[t * D + i]));
  const cosine = (a: number[], b: number[]) => {
    let ab = 0, aa = 0, bb = 0;
    for (let i = 0; i < D; i++) { ab += a[i]! * b[i]!; aa += a[i]! * a[i]!; bb += b[i]! * b[i]!; }
    return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : 0;
  };
  const clusters: { rep: number; vec: number[]; tokens: number[]; n: number; mass: number }[] = [];
  for (const [t, g] of tokens) {
    const v = row(t);
    const c = clusters.find((c) => cosine(c.vec, v) >= threshold);
    if (c) { c.tokens.push(t); c.n += g.n; c.mass += g.mass; }
    else clusters.push({ rep: t, vec: v, tokens: [t], n: g.n, mass: g.mass });
  }
  const totalMass = clusters.reduce((s, c) => s + c.mass, 0), totalN = examples.length;
  const groups: TokenCluster[] = clusters.map((c) => ({
    representative: c.rep, tokens: c.tokens, examples: c.n, mass: c.mass,
    share: totalMass > 0 ? c.mass / totalMass : totalN > 0 ? c.n / totalN : 0,
  }));
  const sumSq = groups.reduce((s, g) => s + g.share * g.share, 0);
  return {
    clusters: groups.length, distinctTokens: byToken.size,
    effectiveClusters: sumSq > 0 ? 1 / sumSq : 0,
    topShare: groups.reduce((m, g) => Math.max(m, g.share), 0),
    groups,
  };
}
