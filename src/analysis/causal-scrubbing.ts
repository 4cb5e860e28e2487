// Causal scrubbing (Chan, Garriga-Alonso, Goldowsky-Dill, Greenblatt, Nitishinskaya, Radhakrishnan,
// Shlegeris, Thomas 2022, Redwood Research, "Causal Scrubbing: a method for rigorously testing
// interpretability hypotheses"). A hypothesis says, for chosen nodes of the model's treeified
// computational graph, which inputs may be swapped without changing what the node computes: a
// feature of the input (inputs with equal feature values are equivalent). Scrubbing evaluates the
// model with every node computed on an input resampled under its hypothesis, and reports how much
// of the loss the hypothesis keeps:
//   recovered = (L_random − L_scrubbed) / (L_random − L_model)
// where L_random is the fully resampled model (the empty hypothesis). 1 = the hypothesis explains
// all the loss the model achieves; 0 = no more than a random input does.
//
// The treeified graph. The output (logits) and every named component read a residual stream that is
// a sum: embedding + the outputs of earlier heads and MLPs (+ the constant attention biases b_O).
// This is exact for the models scrubbed here (attention-only and GPT-2-style, with or without
// LayerNorm, which is applied to the sum). Each input of a node — a head's q, k and v inputs, an
// MLP's input, the output's final residual — is a separate subtree, so different paths into the same
// component see different inputs: a head is recomputed from its own q, k and v inputs here rather than
// read from one forward pass.
//
// Positions. Inputs are token sequences and a node's activation at position t is a function of the
// sequence and t, so features are functions of (sequence, position) ("the token at t − 1") and
// resampling is per position: to compute a node at (x, t), draw x' with f(x', t) = f(x, t) from the
// dataset and compute the node at position t of x'. Its parents are then needed at (x', s) for the
// positions s ≤ t it reads (a head's keys and values), each resampled again under its own feature.
// Positions stay aligned (a resampled sequence is read at the same position), as in the paper's
// induction experiments.
//
// The algorithm (the paper's run_scrub, per reference input (x, t)): eval(n, (x, t)) draws x' from
// {x' in D : f_n(x', t) = f_n(x, t)} and computes n at (x', t) from its inputs; an input of n is the
// sum of its named parents p, each eval(p, (x', s)), and of every unnamed ("unimportant") component,
// which together are one node of the treeified graph with no hypothesis: computed at (r, s) on one
// random r ∈ D, i.e. read from an ordinary forward pass on r. The output node is evaluated on the
// reference itself and scored against the reference's next token.
//
// Not handled: rotary positional embeddings, parallel attention/MLP blocks and gated MLPs (NeoX,
// Llama) — the head recomputation would need them; the model is rejected with a clear error.
import { noGrad } from "../tensor/autodiff.js";
import { scope } from "../tensor/memory.js";
import { Rng } from "../tensor/rng.js";
import { tensor } from "../tensor/create.js";
import type { Tensor } from "../tensor/tensor.js";
import type { UnaryOp } from "../backend/kernels.js";
import type { HookedTransformer } from "../model/transformer.js";
import type { ActFn } from "../model/config.js";
import type { HookName } from "../model/hooks.js";

/** An equivalence relation on (sequence, position): inputs with the same feature value may be swapped. */
export type Feature =
  /** The whole sequence: only the reference itself (no resampling). */
  | { kind: "whole" }
  /** Every input is equivalent (the node is resampled at random, but its named parents still follow their own features). */
  | { kind: "any" }
  /** The tokens at the given positions: relative to the node's position (pos + offset) or absolute (at). Out of range reads as "none". */
  | { kind: "tokens"; offsets?: readonly number[]; at?: readonly number[] }
  /** Any other function of (sequence, position) (library use only; not expressible in JSON). */
  | { kind: "custom"; name: string; fn: (tokens: ArrayLike<number>, pos: number) => string | number };

export type ScrubComponent =
  | { node: "embed" } // token + positional embedding
  | { node: "head"; layer: number; head: number } // one attention head's output z W_O
  | { node: "mlp"; layer: number };

/** A node of the hypothesis: a component, its feature, and its important parents per input. */
export type HypothesisNode = ScrubComponent & {
  feature: Feature;
  /** For heads: the important parents of the query, key and value inputs. */
  q?: readonly HypothesisNode[];
  k?: readonly HypothesisNode[];
  v?: readonly HypothesisNode[];
  /** For MLPs: the important parents of the input. */
  in?: readonly HypothesisNode[];
};

/** A hypothesis: the important parents of the output (the final residual stream read by the unembedding). */
export interface Hypothesis {
  name?: string;
  output: readonly HypothesisNode[];
}

export interface ScrubData {
  /** The dataset D the inputs are resampled from: [n_sequences][pos], all of one length. */
  sequences: readonly (readonly number[])[];
  /** Positions t whose next-token loss is scored (default every position but the last). */
  positions?: readonly number[];
}

export interface ScrubOptions {
  /** Reference inputs (sequence, position) drawn from D × positions without replacement (default 200, at most all). */
  samples?: number;
  seed?: number; // e.g. 0
  /** Record which input each path of the treeified graph saw (for tests and inspection). */
  trace?: boolean;
}

/** One evaluation of a hypothesis node: the path from the output, the references asked for and the inputs drawn. */
export interface TraceEntry {
  path: string;
  /** [sequence, position] the node was asked to compute. */
  refs: [number, number][];
  /** The sequence drawn for each reference (agreeing with it on the node's feature). */
  drawn: number[];
}

export interface ScrubResult {
  hypothesis: string;
  samples: number;
  /** Mean next-token cross-entropy over the references: the model, the scrubbed model, the empty hypothesis. */
  modelLoss: number;
  scrubbedLoss: number;
  randomLoss: number;
  /** (randomLoss − scrubbedLoss) / (randomLoss − modelLoss); NaN if the baselines are equal. */
  recovered: number;
  /** Standard error of recovered (delta method for a ratio of paired means). */
  recoveredStderr: number;
  scrubbedStderr: number;
  /** Per reference: [sequence, position] and the three losses. */
  refs: [number, number][];
  perRef: { model: number; scrubbed: number; random: number }[];
  trace?: TraceEntry[];
}

export class HypothesisError extends Error {
  override name = "HypothesisError";
}

const ACT: Record<ActFn, UnaryOp> = { gelu_new: "gelu_tanh", gelu: "gelu_erf", relu: "relu", silu: "silu" };

export const componentName = (c: ScrubComponent): string =>
  c.node === "embed" ? "embed" : c.node === "head" ? `L${c.layer}H${c.head}` : `MLP${c.layer}`;

export function featureName(f: Feature): string {
  switch (f.kind) {
    case "whole": return "whole";
    case "any": return "any";
    case "custom": return f.name;
    case "tokens": {
      const rel = (f.offsets ?? []).map((o) => `token[pos${o === 0 ? "" : o > 0 ? `+${o}` : o}]`);
      const abs = (f.at ?? []).map((a) => `token[${a}]`);
      return [...rel, ...abs].join(",") || "any";
    }
    default: return f satisfies never;
  }
}

/** The feature's value at (tokens, pos), as a key: equal keys = equivalent inputs. */
function featureKey(f: Feature, toks: readonly number[], pos: number): string {
  const tok = (p: number) => (p >= 0 && p < toks.length ? String(toks[p]) : "none");
  switch (f.kind) {
    case "whole": return toks.join(",");
    case "any": return "";
    case "custom": return String(f.fn(toks, pos));
    case "tokens": return [...(f.offsets ?? []).map((o) => tok(pos + o)), "|", ...(f.at ?? []).map(tok)].join(",");
    default: return f satisfies never;
  }
}

/** Which components feed a reader: the output (layer = n_layers), a head's input at layer, or an MLP's input at layer. */
function upstream(layer: number, reader: "head" | "mlp" | "output", nHeads: number, hasMlp: boolean): ScrubComponent[] {
  const cs: ScrubComponent[] = [{ node: "embed" }];
  for (let l = 0; l < layer || (reader === "mlp" && l === layer); l++) {
    for (let h = 0; h < nHeads; h++) cs.push({ node: "head", layer: l, head: h });
    if (hasMlp && l < layer) cs.push({ node: "mlp", layer: l });
  }
  return cs;
}

const sameComponent = (a: ScrubComponent, b: ScrubComponent) =>
  a.node === b.node && (a.node !== "head" || (b.node === "head" && a.layer === b.layer && a.head === b.head)) && (a.node !== "mlp" || (b.node === "mlp" && a.layer === b.layer));

/**
 * The hypothesis that everything matters: every component named at every input, each with the feature "whole" (so
 * each node sees the reference itself). Scrubbing it reproduces the model exactly. Its tree has (3 n_heads + 2)^n_layers
 * nodes or so: for small models and tests.
 */
export function identityHypothesis(model: HookedTransformer): Hypothesis {
  const { n_layers: L, n_heads: H, attn_only } = model.cfg;
  const whole: Feature = { kind: "whole" };
  const nodes = (layer: number, reader: "head" | "mlp" | "output"): HypothesisNode[] =>
    upstream(layer, reader, H, !attn_only).map((c): HypothesisNode => {
      if (c.node === "embed") return { ...c, feature: whole };
      if (c.node === "mlp") return { ...c, feature: whole, in: nodes(c.layer, "mlp") };
      const ins = nodes(c.layer, "head");
      return { ...c, feature: whole, q: ins, k: ins, v: ins };
    });
  return { name: "identity", output: nodes(L, "output") };
}

/** Check a hypothesis against the model: components exist, inputs only name upstream components, once each. */
export function checkHypothesis(model: HookedTransformer, hyp: Hypothesis): void {
  const { n_layers: L, n_heads: H, attn_only } = model.cfg;
  const visit = (nodes: readonly HypothesisNode[] | undefined, allowed: ScrubComponent[], where: string) => {
    const seen: ScrubComponent[] = [];
    for (const n of nodes ?? []) {
      const name = componentName(n);
      if (n.node === "head" && !(Number.isInteger(n.layer) && n.layer >= 0 && n.layer < L && Number.isInteger(n.head) && n.head >= 0 && n.head < H))
        throw new HypothesisError(`${where}: ${name} is not a head of this model (${L} layers × ${H} heads)`);
      if (n.node === "mlp" && (attn_only || !(Number.isInteger(n.layer) && n.layer >= 0 && n.layer < L)))
        throw new HypothesisError(`${where}: ${name} is not an MLP of this model${attn_only ? " (it is attention-only)" : ""}`);
      if (!allowed.some((a) => sameComponent(a, n))) throw new HypothesisError(`${where}: ${name} does not feed this input (only earlier components do)`);
      if (seen.some((s) => sameComponent(s, n))) throw new HypothesisError(`${where}: ${name} is named twice in one input`);
      seen.push(n);
      const here = `${where} ← ${name}`;
      const inputs = { q: n.q, k: n.k, v: n.v, in: n.in };
      for (const [key, list] of Object.entries(inputs)) {
        if (list === undefined) continue;
        if (n.node === "embed") throw new HypothesisError(`${here}: the embedding is an input node and has no "${key}" parents`);
        if (n.node === "head" && key === "in") throw new HypothesisError(`${here}: a head's inputs are "q", "k" and "v", not "in"`);
        if (n.node === "mlp" && key !== "in") throw new HypothesisError(`${here}: an MLP's input is "in", not "${key}"`);
        visit(list, upstream(n.layer, n.node, H, !attn_only), `${here}.${key}`);
      }
    }
  };
  visit(hyp.output, upstream(L, "output", H, !attn_only), "output");
}

/** Float64 copies of the weights the recomputation reads. */
interface Weights {
  ln1: (Norm64 | null)[]; ln2: (Norm64 | null)[]; lnFinal: Norm64 | null;
  WQ: Tensor[][]; WK: Tensor[][]; WV: Tensor[][]; WO: Tensor[][]; // per layer, per head: [d_model, d_head] / [d_head, d_model]
  bQ: (Float64Array | null)[][]; bK: (Float64Array | null)[][]; bV: (Float64Array | null)[][];
  bO: (Float64Array | null)[];
  mlpIn: Tensor[]; mlpBIn: (Tensor | null)[]; mlpOut: Tensor[]; mlpBOut: (Tensor | null)[];
  WU: Tensor; bU: Tensor | null;
}
interface Norm64 { w: Float64Array; b: Float64Array | null; rms: boolean; eps: number }

const f64 = (t: Tensor) => Float64Array.from(t.contiguous().toArray());

function weights(model: HookedTransformer): Weights {
  const cfg = model.cfg, H = cfg.n_heads;
  const norm = (n: { w: Tensor; b: Tensor | null } | null): Norm64 | null =>
    n ? { w: f64(n.w), b: n.b ? f64(n.b) : null, rms: cfg.normalization_type === "RMS", eps: cfg.eps } : null;
  const perHead = <T>(fn: (l: number, h: number) => T) => Array.from({ length: cfg.n_layers }, (_, l) => Array.from({ length: H }, (_, h) => fn(l, h)));
  const bias = (b: Tensor | null, h: number) => (b ? f64(b).subarray(h * cfg.d_head, (h + 1) * cfg.d_head) : null);
  const blk = (l: number) => model.blocks.items[l]!;
  const w64 = (t: Tensor) => t.cast("float64").contiguous();
  return {
    ln1: model.blocks.items.map((b) => norm(b.ln1)), ln2: model.blocks.items.map((b) => norm(b.ln2)), lnFinal: norm(model.ln_final),
    WQ: perHead((l, h) => w64(blk(l).attn.W_Q.select(0, h))), WK: perHead((l, h) => w64(blk(l).attn.W_K.select(0, h))),
    WV: perHead((l, h) => w64(blk(l).attn.W_V.select(0, h))), WO: perHead((l, h) => w64(blk(l).attn.W_O.select(0, h))),
    bQ: perHead((l, h) => bias(blk(l).attn.bq, h)), bK: perHead((l, h) => bias(blk(l).attn.bk, h)), bV: perHead((l, h) => bias(blk(l).attn.bv, h)),
    bO: model.blocks.items.map((b) => (b.attn.bo ? f64(b.attn.bo) : null)),
    mlpIn: model.blocks.items.map((b) => (b.mlp ? w64(b.mlp.W_in) : null)!), mlpBIn: model.blocks.items.map((b) => (b.mlp?.b_in ? w64(b.mlp.b_in) : null)),
    mlpOut: model.blocks.items.map((b) => (b.mlp ? w64(b.mlp.W_out) : null)!), mlpBOut: model.blocks.items.map((b) => (b.mlp?.b_out ? w64(b.mlp.b_out) : null)),
    WU: w64(model.unembed.W_U), bU: model.unembed.b_U ? w64(model.unembed.b_U) : null,
  };
}

/** rows [n, d] normalised in place of a copy. */
function applyNorm(x: Float64Array, d: number, n: Norm64 | null): Float64Array {
  if (!n) return x;
  const y = new Float64Array(x.length);
  for (let r = 0; r < x.length / d; r++) {
    const o = r * d;
    let mean = 0;
    if (!n.rms) { for (let i = 0; i < d; i++) mean += x[o + i]!; mean /= d; }
    let v = 0;
    for (let i = 0; i < d; i++) v += (x[o + i]! - mean) ** 2;
    const s = Math.sqrt(v / d + n.eps);
    for (let i = 0; i < d; i++) y[o + i] = ((x[o + i]! - mean) / s) * n.w[i]! + (n.b ? n.b[i]! : 0);
  }
  return y;
}

/** x [n, d_in] @ W [d_in, d_out] (+ b), in float64. */
function lin(x: Float64Array, n: number, W: Tensor, b: Float64Array | Tensor | null = null, act?: UnaryOp): Float64Array {
  return scope(() => {
    let y = tensor(x, [n, W.shape[0]!], "float64").matmul(W);
    if (b) y = y.add(b instanceof Float64Array ? tensor(b, [b.length], "float64") : b);
    if (act) y = y.unary(act);
    return f64(y);
  });
}

/** Activations of every component on every dataset sequence, from ordinary forward passes: [seq][pos][d_model] flattened. */
interface Cache {
  T: number; d: number;
  embed: Float64Array;
  heads: Float64Array[][]; // [layer][head]
  mlps: (Float64Array | null)[];
  logits: (seq: number, pos: number) => Float64Array; // the model's own logits (for L_model)
}

function buildCache(model: HookedTransformer, seqs: readonly (readonly number[])[], w: Weights): Cache {
  const cfg = model.cfg, T = seqs[0]!.length, d = cfg.d_model, M = seqs.length, H = cfg.n_heads;
  const embed = new Float64Array(M * T * d);
  const heads = Array.from({ length: cfg.n_layers }, () => Array.from({ length: H }, () => new Float64Array(M * T * d)));
  const mlps = Array.from({ length: cfg.n_layers }, () => (cfg.attn_only ? null : new Float64Array(M * T * d)));
  const final = new Float64Array(M * T * d);
  const names: HookName[] = ["hook_embed", ...(model.pos_embed ? ["hook_pos_embed" as HookName] : [])];
  for (let l = 0; l < cfg.n_layers; l++) names.push(`blocks.${l}.attn.hook_z`, ...(cfg.attn_only ? [] : [`blocks.${l}.hook_mlp_out` as HookName]));
  // Final residual (before ln_final) from the last block's resid_post, so the model's logits are reproduced without storing [seq, pos, d_vocab].
  names.push(`blocks.${cfg.n_layers - 1}.hook_resid_post`);
  const B = 16;
  for (let b0 = 0; b0 < M; b0 += B) {
    const rows = seqs.slice(b0, b0 + B), nb = rows.length, off = b0 * T * d;
    scope(() => {
      const { cache } = model.runWithCache(rows.map((r) => [...r]), { names });
      const e = f64(cache.get("hook_embed"));
      if (model.pos_embed) { const p = f64(cache.get("hook_pos_embed")); for (let i = 0; i < e.length; i++) e[i]! += p[i]!; }
      embed.set(e, off);
      for (let l = 0; l < cfg.n_layers; l++) {
        const z = f64(cache.get(`blocks.${l}.attn.hook_z`)); // [batch, pos, head_index, d_head]
        const dh = cfg.d_head;
        for (let h = 0; h < H; h++) {
          const zh = new Float64Array(nb * T * dh);
          for (let r = 0; r < nb * T; r++) zh.set(z.subarray((r * H + h) * dh, (r * H + h + 1) * dh), r * dh);
          heads[l]![h]!.set(lin(zh, nb * T, w.WO[l]![h]!), off);
        }
        if (!cfg.attn_only) mlps[l]!.set(f64(cache.get(`blocks.${l}.hook_mlp_out`)), off);
      }
      final.set(f64(cache.get(`blocks.${cfg.n_layers - 1}.hook_resid_post`)), off);
    });
  }
  const logits = (seq: number, pos: number) => unembed(final.subarray((seq * T + pos) * d, (seq * T + pos + 1) * d), 1, w, d);
  return { T, d, embed, heads, mlps, logits };
}

function unembed(x: Float64Array, n: number, w: Weights, d: number): Float64Array {
  return lin(applyNorm(x, d, w.lnFinal), n, w.WU, w.bU);
}

/** −log softmax(logits)[target] for each row of logits [n, d_vocab]. */
function nll(logits: Float64Array, n: number, targets: readonly number[]): number[] {
  const V = logits.length / n;
  return targets.map((t, r) => {
    const row = logits.subarray(r * V, (r + 1) * V);
    let m = -Infinity;
    for (const v of row) m = Math.max(m, v);
    let s = 0;
    for (const v of row) s += Math.exp(v - m);
    return m + Math.log(s) - row[t]!;
  });
}

type Ref = readonly [number, number]; // [sequence, position]

/** The recursive evaluation of the treeified graph for one hypothesis. */
class Scrubber {
  private readonly classes = new Map<string, Map<string, number[]>>();
  readonly trace: TraceEntry[] | null;
  private readonly d: number;

  constructor(private readonly model: HookedTransformer, private readonly seqs: readonly (readonly number[])[], private readonly cache: Cache,
    private readonly w: Weights, private readonly rng: Rng, trace: boolean) {
    this.trace = trace ? [] : null;
    this.d = model.cfg.d_model;
  }

  /** Draw, for each reference, a sequence agreeing with it on the feature at its position. */
  private draw(f: Feature, refs: readonly Ref[]): number[] {
    if (f.kind === "whole") return refs.map(([s]) => s);
    if (f.kind === "any") return refs.map(() => this.rng.int(0, this.seqs.length));
    return refs.map(([s, t]) => {
      const id = `${featureName(f)}@${t}`;
      let byKey = this.classes.get(id);
      if (!byKey) {
        byKey = new Map();
        this.seqs.forEach((q, j) => { const k = featureKey(f, q, t); const l = byKey!.get(k); if (l) l.push(j); else byKey!.set(k, [j]); });
        this.classes.set(id, byKey);
      }
      const cls = byKey.get(featureKey(f, this.seqs[s]!, t))!; // contains s itself
      return cls[this.rng.int(0, cls.length)]!;
    });
  }

  /** A component's activation at each (sequence, position) from the ordinary forward passes: [n, d_model]. */
  private cached(c: ScrubComponent, refs: readonly Ref[]): Float64Array {
    const { T, d } = this.cache;
    const src = c.node === "embed" ? this.cache.embed : c.node === "head" ? this.cache.heads[c.layer]![c.head]! : this.cache.mlps[c.layer]!;
    const out = new Float64Array(refs.length * d);
    refs.forEach(([s, t], i) => out.set(src.subarray((s * T + t) * d, (s * T + t + 1) * d), i * d));
    return out;
  }

  /** The residual stream read by a node's input at each reference: named parents scrubbed, the rest on one random sequence per reference. */
  input(layer: number, reader: "head" | "mlp" | "output", named: readonly HypothesisNode[], refs: readonly Ref[], path: string): Float64Array {
    const cfg = this.model.cfg, d = this.d;
    const sum = new Float64Array(refs.length * d);
    const add = (x: Float64Array) => { for (let i = 0; i < sum.length; i++) sum[i]! += x[i]!; };
    for (const p of named) add(this.node(p, refs, `${path} ← ${componentName(p)}`));
    const rest = upstream(layer, reader, cfg.n_heads, !cfg.attn_only).filter((c) => !named.some((p) => sameComponent(p, c)));
    if (rest.length > 0) {
      // The unimportant components form one node with no hypothesis: a forward pass on one random input.
      const random: Ref[] = refs.map(([, t]) => [this.rng.int(0, this.seqs.length), t]);
      for (const c of rest) add(this.cached(c, random));
    }
    // b_O of every attention layer the stream has passed (constants, not per-head).
    for (let l = 0; l < layer || (reader === "mlp" && l === layer); l++) {
      const b = this.w.bO[l];
      if (b) for (let i = 0; i < refs.length; i++) for (let j = 0; j < d; j++) sum[i * d + j]! += b[j]!;
    }
    return sum;
  }

  /** A hypothesis node's activation at each reference: [n, d_model]. */
  node(n: HypothesisNode, refs: readonly Ref[], path: string): Float64Array {
    const drawn = this.draw(n.feature, refs);
    this.trace?.push({ path, refs: refs.map(([s, t]) => [s, t]), drawn });
    const mine: Ref[] = refs.map(([, t], i) => [drawn[i]!, t]);
    switch (n.node) {
      case "embed": return this.cached(n, mine);
      case "mlp": {
        const x = applyNorm(this.input(n.layer, "mlp", n.in ?? [], mine, `${path}.in`), this.d, this.w.ln2[n.layer] ?? null);
        const act = ACT[this.model.cfg.act_fn];
        const post = lin(x, refs.length, this.w.mlpIn[n.layer]!, this.w.mlpBIn[n.layer]!, act);
        return lin(post, refs.length, this.w.mlpOut[n.layer]!, this.w.mlpBOut[n.layer]!);
      }
      case "head": return this.head(n, mine, path);
      default: return n satisfies never;
    }
  }

  /** Recompute one head at each reference from its own scrubbed q, k and v inputs. */
  private head(n: HypothesisNode & { node: "head" }, refs: readonly Ref[], path: string): Float64Array {
    const { layer: l, head: h } = n, d = this.d, dh = this.model.cfg.d_head, N = refs.length, w = this.w;
    // Keys and values are read at every position s ≤ t of the head's input sequence.
    const keyRefs: Ref[] = [], start: number[] = [];
    for (const [s, t] of refs) { start.push(keyRefs.length); for (let p = 0; p <= t; p++) keyRefs.push([s, p]); }
    const ln = w.ln1[l] ?? null;
    const proj = (x: Float64Array, rows: number, W: Tensor, b: Float64Array | null) => lin(applyNorm(x, d, ln), rows, W, b);
    const q = proj(this.input(l, "head", n.q ?? [], refs, `${path}.q`), N, w.WQ[l]![h]!, w.bQ[l]![h]!);
    const k = proj(this.input(l, "head", n.k ?? [], keyRefs, `${path}.k`), keyRefs.length, w.WK[l]![h]!, w.bK[l]![h]!);
    const v = proj(this.input(l, "head", n.v ?? [], keyRefs, `${path}.v`), keyRefs.length, w.WV[l]![h]!, w.bV[l]![h]!);
    const z = new Float64Array(N * dh), scale = this.model.cfg.attn_scale;
    for (let i = 0; i < N; i++) {
      const nk = refs[i]![1] + 1, k0 = start[i]!;
      const scores = new Float64Array(nk);
      let m = -Infinity;
      for (let p = 0; p < nk; p++) {
        let s = 0;
        for (let j = 0; j < dh; j++) s += q[i * dh + j]! * k[(k0 + p) * dh + j]!;
        scores[p] = s / scale;
        m = Math.max(m, scores[p]!);
      }
      let tot = 0;
      for (let p = 0; p < nk; p++) { scores[p] = Math.exp(scores[p]! - m); tot += scores[p]!; }
      for (let p = 0; p < nk; p++) for (let j = 0; j < dh; j++) z[i * dh + j]! += (scores[p]! / tot) * v[(k0 + p) * dh + j]!;
    }
    return lin(z, N, w.WO[l]![h]!);
  }

  /** Per-reference loss of the output under the hypothesis. */
  outputLoss(hyp: Hypothesis, refs: readonly Ref[]): number[] {
    const x = this.input(this.model.cfg.n_layers, "output", hyp.output, refs, "output");
    return nll(unembed(x, refs.length, this.w, this.d), refs.length, refs.map(([s, t]) => this.seqs[s]![t + 1]!));
  }
}

function checkData(model: HookedTransformer, data: ScrubData): { seqs: readonly (readonly number[])[]; positions: number[] } {
  const seqs = data.sequences;
  if (seqs.length < 2) throw new RangeError(`causalScrub: need at least 2 sequences to resample from, got ${seqs.length}`);
  const T = seqs[0]!.length;
  if (T < 2) throw new RangeError("causalScrub: sequences need at least 2 tokens (a position and its next token)");
  if (T > model.cfg.n_ctx) throw new RangeError(`causalScrub: sequences of ${T} tokens exceed n_ctx = ${model.cfg.n_ctx}`);
  seqs.forEach((s, i) => {
    if (s.length !== T) throw new RangeError(`causalScrub: sequence ${i} has ${s.length} tokens, sequence 0 has ${T}; all must have the same length`);
    s.forEach((v, j) => { if (!Number.isInteger(v) || v < 0 || v >= model.cfg.d_vocab) throw new RangeError(`causalScrub: token ${v} at [${i}, ${j}] is outside the vocabulary [0, ${model.cfg.d_vocab})`); });
  });
  const positions = data.positions ? [...data.positions] : Array.from({ length: T - 1 }, (_, t) => t);
  for (const p of positions) if (!Number.isInteger(p) || p < 0 || p >= T - 1) throw new RangeError(`causalScrub: scored position ${p} must be in [0, ${T - 2}] (it needs a next token)`);
  if (positions.length === 0) throw new RangeError("causalScrub: no positions to score");
  return { seqs, positions };
}

function checkModel(model: HookedTransformer): void {
  const c = model.cfg;
  if (c.positional_embedding_type === "rotary") throw new HypothesisError("causalScrub: rotary positional embeddings are not supported (heads are recomputed from their inputs with standard or no positional embeddings)");
  if (c.parallel_attn_mlp) throw new HypothesisError("causalScrub: parallel attention/MLP blocks are not supported");
  if (c.gated_mlp) throw new HypothesisError("causalScrub: gated MLPs are not supported");
  if (c.n_key_value_heads !== c.n_heads) throw new HypothesisError("causalScrub: grouped-query attention is not supported");
  // Its own forward knows plain causal attention with pre-norms only.
  if (c.attn_types?.includes("local")) throw new HypothesisError("causalScrub: sliding-window (local) attention layers are not supported");
  if (c.attn_scores_soft_cap !== null || c.output_logits_soft_cap !== null) throw new HypothesisError("causalScrub: soft-capped scores or logits are not supported");
  if (c.norm_placement !== "pre" || c.qk_norm !== null) throw new HypothesisError("causalScrub: post-norms and query/key norms are not supported");
  if (c.scale_attn_by_inverse_layer_idx || c.embed_scale !== 1) throw new HypothesisError("causalScrub: scale_attn_by_inverse_layer_idx and embedding scaling are not supported");
}

/** Evaluate several hypotheses on the same references (one forward-pass cache); the empty hypothesis gives L_random. */
export function causalScrubMany(model: HookedTransformer, hyps: readonly Hypothesis[], data: ScrubData, opts: ScrubOptions = {}): ScrubResult[] {
  checkModel(model);
  for (const h of hyps) checkHypothesis(model, h);
  const { seqs, positions } = checkData(model, data);
  const seed = opts.seed ?? 0, rng = new Rng(seed);
  const all: Ref[] = [];
  for (let s = 0; s < seqs.length; s++) for (const t of positions) all.push([s, t]);
  const N = Math.min(opts.samples ?? 200, all.length);
  if (!(N >= 1)) throw new RangeError(`causalScrub: samples must be >= 1, got ${opts.samples}`);
  const refs = rng.shuffle(all).slice(0, N);
  return noGrad(() => {
    const w = weights(model);
    const cache = buildCache(model, seqs, w);
    const targets = refs.map(([s, t]) => seqs[s]![t + 1]!);
    const model1 = refs.map(([s, t], i) => nll(cache.logits(s, t), 1, [targets[i]!])[0]!);
    // Every hypothesis, and the random baseline, starts from the same seeded stream (common random numbers): adding a
    // hypothesis changes no other's result, and the empty hypothesis reproduces the baseline exactly.
    const run = (h: Hypothesis, trace: boolean) => {
      const sc = new Scrubber(model, seqs, cache, w, new Rng(seed + 1), trace);
      return { losses: sc.outputLoss(h, refs), trace: sc.trace };
    };
    const random = run({ name: "random", output: [] }, false).losses;
    return hyps.map((h, i) => {
      const { losses, trace } = run(h, opts.trace ?? false);
      return summarize(h.name ?? `hypothesis ${i}`, refs, model1, losses, random, trace);
    });
  });
}

/** Causal scrubbing of one hypothesis: its scrubbed loss, the model and random baselines, the fraction of loss recovered. */
export function causalScrub(model: HookedTransformer, hyp: Hypothesis, data: ScrubData, opts: ScrubOptions = {}): ScrubResult {
  return causalScrubMany(model, [hyp], data, opts)[0]!;
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function summarize(name: string, refs: readonly Ref[], model: number[], scrubbed: number[], random: number[], trace: TraceEntry[] | null): ScrubResult {
  const N = refs.length, M = mean(model), S = mean(scrubbed), R = mean(random);
  const recovered = R === M ? NaN : (R - S) / (R - M);
  // Ratio of paired means f = ā / b̄ with a = random − scrubbed, b = random − model: Var f ≈ Var(a − f b) / (N b̄²).
  let vr = 0, vs = 0;
  for (let i = 0; i < N; i++) {
    const a = random[i]! - scrubbed[i]!, b = random[i]! - model[i]!;
    vr += (a - recovered * b) ** 2; vs += (scrubbed[i]! - S) ** 2;
  }
  const denom = N > 1 ? N - 1 : 1;
  return {
    hypothesis: name, samples: N, modelLoss: M, scrubbedLoss: S, randomLoss: R, recovered,
    recoveredStderr: Math.sqrt(vr / denom / N) / Math.abs(R - M), scrubbedStderr: Math.sqrt(vs / denom / N),
    refs: refs.map(([s, t]) => [s, t]), perRef: refs.map((_, i) => ({ model: model[i]!, scrubbed: scrubbed[i]!, random: random[i]! })),
    ...(trace ? { trace } : {}),
  };
}
