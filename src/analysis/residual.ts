// Residual-stream readouts: the logit lens (nostalgebraist 2020) and direct logit attribution per
// head, per MLP layer and per neuron. The logit lens reads each layer's resid_pre (and the final
// resid_post) through the model's own ln_final — its scale recomputed from that residual, the
// standard lens — or, with lnScale: "cached", through the scale of the real final residual
// (ActivationCache.applyLnToStack). Direct logit attribution always uses the cached final scale,
// so components are linear in the residual and add up (see fullLogitAttribution for the convention).
import { noGrad } from "../tensor/autodiff.js";
import { Tensor } from "../tensor/tensor.js";
import { concat, select, stack as stackOp } from "../tensor/ops/movement.js";
import type { ActivationCache, ResidStack } from "../model/cache.js";
import type { HookedTransformer } from "../model/transformer.js";
import { topKIndices } from "../tensor/ops/sparse.js";
import type { LabelledAxis } from "./patching.js";

export interface LogitLensOptions {
  /** Positions to read (default all); negative counts from the end. */
  positions?: readonly number[];
  /** Top tokens kept per cell (default 5). */
  topK?: number;
  /** A token id per cell to track (a number for all cells, or [batch][pos] ids); gives rank and prob. */
  target?: number | readonly (readonly number[])[];
  /** "recomputed" (default): ln_final applied to each residual; "cached": the real run's final scale. */
  lnScale?: "recomputed" | "cached";
}

export interface LogitLensResult {
  /** [layer, batch, pos, d_vocab]: layer axis is "0_pre", …, "{n-1}_pre", "final_post". */
  logits: Tensor;
  probs: Tensor;
  axes: LabelledAxis[];
  /** topK[layer][batch][pos] = tokens by descending prob. */
  topK: { token: number; prob: number }[][][][];
  /** With a target: rank (0 = top) and prob [layer, batch, pos]. */
  targetRank?: Tensor;
  targetProb?: Tensor;
}

/** The logit lens over cache (from model.runWithCache; "cached" also needs ln_final.hook_scale). */
export function logitLens(model: HookedTransformer, cache: ActivationCache, opts: LogitLensOptions = {}): LogitLensResult {
  return noGrad(() => {
    const acc = cache.accumulatedResid(); // components [layer, batch, pos, d_model]
    const T = acc.components.shape[2]!;
    const positions = (opts.positions ?? Array.from({ length: T }, (_, i) => i)).map((p) => {
      const q = p < 0 ? p + T : p;
      if (!Number.isInteger(q) || q < 0 || q >= T) throw new RangeError(`logitLens: position ${p} out of range for ${T} positions`);
      return q;
    });
    let normed: Tensor;
    if ((opts.lnScale ?? "recomputed") === "cached") {
      // Linear in the residual: the real final scale, w, then b (which applyLnToStack leaves out).
      normed = cache.applyLnToStack(acc).components;
      if (model.ln_final?.b) normed = normed.add(model.ln_final.b.cast(normed.dtype));
    } else {
      // Exactly what the model does after its last block, applied to every layer's residual.
      const parts = acc.labels.map((_, i) => { const r = select(acc.components, 0, i); return model.ln_final ? model.ln_final.forward(r) : r; });
      normed = stackOp(parts, 0);
    }
    normed = concat(positions.map((p) => normed.slice(2, p, p + 1)), 2); // [layer, batch, n_pos, d_model]
    const logits = model.unembed.forward(normed); // [layer, batch, n_pos, d_vocab]
    const probs = logits.softmax(-1);
    const [Lr, B, P, V] = logits.shape as [number, number, number, number];
    const pd = probs.contiguous().toArray();
    const k = Math.min(opts.topK ?? 5, V);
    const topK: { token: number; prob: number }[][][][] = [];
    const rank = new Float64Array(Lr * B * P), tprob = new Float64Array(Lr * B * P);
    for (let l = 0; l < Lr; l++) {
      const perB: { token: number; prob: number }[][][] = [];
      for (let b = 0; b < B; b++) {
        const perP: { token: number; prob: number }[][] = [];
        for (let p = 0; p < P; p++) {
          const o = ((l * B + b) * P + p) * V;
          const row = pd.subarray(o, o + V);
          perP.push(topKIndices(row, k).map((t) => ({ token: t, prob: row[t]! })));
          if (opts.target !== undefined) {
            const t = typeof opts.target === "number" ? opts.target : opts.target[b]![positions[p]!]!;
            const c = (l * B + b) * P + p;
            tprob[c] = row[t]!;
            rank[c] = row.filter((v, i) => v > row[t]! || (v === row[t]! && i < t)).length;
          }
        }
        perB.push(perP);
      }
      topK.push(perB);
    }
    const res: LogitLensResult = {
      logits, probs, topK,
      axes: [{ name: "layer", labels: acc.labels }, { name: "batch", labels: Array.from({ length: B }, (_, i) => String(i)) },
        { name: "pos", labels: positions.map(String) }],
    };
    if (opts.target !== undefined) { res.targetRank = new Tensor(rank, [Lr, B, P]); res.targetProb = new Tensor(tprob, [Lr, B, P]); }
    return res;
  });
}

/** A token, or a logit difference token − incorrect. */
export interface DlaTarget { token: number; incorrect?: number }

/** W_U[:, token] − W_U[:, incorrect]: [d_model]. */
function unembedDir(model: HookedTransformer, t: DlaTarget): Tensor {
  const W_U = model.unembed.W_U; // [d_model, d_vocab]
  const col = select(W_U, 1, t.token);
  return t.incorrect === undefined ? col : col.sub(select(W_U, 1, t.incorrect));
}

/** Per-head DLA: components [n_layers * n_heads, batch, pos], labels "L{l}H{h}" (cached final ln scale). */
export function headLogitAttribution(cache: ActivationCache, target: DlaTarget): ResidStack {
  return noGrad(() => cache.logitAttrs(cache.applyLnToStack(cache.stackHeadResults()), target));
}

/** Per-MLP-layer DLA of hook_mlp_out: components [n_layers, batch, pos], labels "{l}_mlp_out". */
export function mlpLogitAttribution(cache: ActivationCache, target: DlaTarget): ResidStack {
  return noGrad(() => {
    const full = cache.decomposeResid(undefined, { inclEmbeds: false });
    const idx = full.labels.flatMap((lab, i) => (lab.endsWith("_mlp_out") ? [i] : []));
    if (idx.length === 0) throw new Error("mlpLogitAttribution: the model has no MLPs");
    const st = { components: stackOp(idx.map((i) => select(full.components, 0, i)), 0), labels: idx.map((i) => full.labels[i]!) };
    return cache.logitAttrs(cache.applyLnToStack(st), target);
  });
}

/**
 * Per-neuron DLA of block `layer`'s MLP: hook_post[n] × (W_out[n] through the cached final ln) ·
 * direction, as components [d_mlp, batch, pos] labelled "L{l}N{n}". They sum to the layer's
 * mlp_out DLA minus b_out's share (returned as bias, [batch, pos]).
 */
export function neuronLogitAttribution(model: HookedTransformer, cache: ActivationCache, layer: number, target: DlaTarget): ResidStack & { bias: Tensor } {
  return noGrad(() => {
    const mlp = model.blocks.at(layer).mlp;
    if (!mlp) throw new Error("neuronLogitAttribution: the model has no MLPs");
    const post = cache.at(layer, "mlp.hook_post"); // [batch, pos, d_mlp]
    const dir = unembedDir(model, target).cast(post.dtype); // [d_model]
    // The final norm is linear given its cached scale: centre (LN), times w, divided by the scale.
    const through = (x: Tensor): Tensor => {
      let y = x.cast(post.dtype);
      if (model.ln_final && model.cfg.normalization_type !== null) {
        if (model.cfg.normalization_type === "LN") y = y.sub(y.mean(-1, true));
        y = y.mul(model.ln_final.w.cast(post.dtype));
      }
      return y;
    };
    const v = through(mlp.W_out).matmul(dir.reshape([-1, 1])).reshape([-1]); // [d_mlp]
    let contrib = post.mul(v); // [batch, pos, d_mlp]
    const B = post.shape[0]!, T = post.shape[1]!;
    let bias = mlp.b_out ? through(mlp.b_out.reshape([1, -1])).matmul(dir.reshape([-1, 1])).reshape([1, 1]).expand([B, T]) : new Tensor(new (post.dtype === "float64" ? Float64Array : Float32Array)(B * T), [B, T]);
    if (model.ln_final && model.cfg.normalization_type !== null) {
      const scale = cache.get("ln_final.hook_scale").cast(post.dtype); // [batch, pos, 1]
      contrib = contrib.div(scale);
      bias = bias.div(scale.reshape([B, T]));
    }
    const n = post.shape[2]!;
    return { components: contrib.permute(2, 0, 1).contiguous(), labels: Array.from({ length: n }, (_, i) => `L${layer}N${i}`), bias };
  });
}

/**
 * Every term of the final residual, through the cached final ln and onto the direction:
 * "embed", "pos_embed" (standard positions), "L{l}H{h}" per head, "{l}_b_O" (attention bias),
 * "{l}_mlp_out". Convention (as ActivationCache.logitAttrs): the components sum to
 * logit[token] − logit[incorrect] minus `constant` = ln_final.b · dir + b_U[token] − b_U[incorrect],
 * the two terms no component owns; components [n_components, batch, pos].
 */
export function fullLogitAttribution(model: HookedTransformer, cache: ActivationCache, target: DlaTarget): ResidStack & { constant: number } {
  return noGrad(() => {
    const parts: Tensor[] = [], labels: string[] = [];
    const resid = cache.decomposeResid(); // [component, batch, pos, d_model]
    const heads = cache.stackHeadResults();
    const like = resid.components;
    const shape = like.shape.slice(1); // [batch, pos, d_model]
    resid.labels.forEach((lab, i) => {
      const c = select(resid.components, 0, i);
      if (!lab.endsWith("_attn_out")) { parts.push(c); labels.push(lab); return; }
      const l = Number(lab.split("_")[0]);
      for (let h = 0; h < model.cfg.n_heads; h++) { parts.push(select(heads.components, 0, l * model.cfg.n_heads + h).cast(like.dtype)); labels.push(`L${l}H${h}`); }
      const bo = model.blocks.at(l).attn.bo;
      if (bo) { parts.push(bo.cast(like.dtype).reshape([1, 1, -1]).expand(shape).contiguous()); labels.push(`${l}_b_O`); }
    });
    const st = cache.logitAttrs(cache.applyLnToStack({ components: stackOp(parts, 0), labels }), target);
    const dir = unembedDir(model, target);
    let constant = 0;
    if (model.ln_final?.b) constant += model.ln_final.b.mul(dir).sum().item();
    const bU = model.unembed.b_U;
    if (bU) constant += bU.get(target.token) - (target.incorrect === undefined ? 0 : bU.get(target.incorrect));
    return { ...st, constant };
  });
}
