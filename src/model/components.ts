// The pieces a transformer is built from, each a Module with TransformerLens's parameter names and
// hook points: Embed, PosEmbed, Norm (LayerNorm / RMSNorm), Attention, MLP, Unembed. Weights that
// feed matmuls are stored in the layout the kernels want ([d_in, d_out], heads side by side) and
// exposed in TransformerLens's per-head shapes as views (W_Q is [n_heads, d_model, d_head]).
import { Module } from "../nn/module.js";
import { linear, matmul } from "../tensor/ops/linalg.js";
import { causalSoftmax, embedding, layerNorm, rmsNorm } from "../tensor/ops/nn.js";
import { causalAttention, fastAttention } from "../tensor/ops/attention.js";
import { concat, expand, indexSelect } from "../tensor/ops/movement.js";
import { einsum } from "../tensor/ops/einsum.js";
import { zeros } from "../tensor/create.js";
import { Tensor } from "../tensor/tensor.js";
import { unscoped } from "../tensor/memory.js";
import type { UnaryOp } from "../backend/kernels.js";
import { isLocalLayer, type ActFn, type ModelConfig } from "./config.js";
import type { HookName } from "./hooks.js";
import type { HookRuntime } from "./hook-runtime.js";
import { RotaryTables } from "./rotary.js";
import { appendPositions } from "./kv-cache.js";
import { isGradEnabled } from "../tensor/autodiff.js";

/** Per-call inputs every block needs besides the residual stream. */
export interface ForwardContext {
  /** Position of each token [batch * pos] (row-major), after left padding and KV-cache offsets. */
  positions: Int32Array;
  /** Additive key mask [batch, 1, 1, key_pos]: 0 for real tokens, a large negative for padding. */
  keyMask: Tensor | null;
  /** Per-layer key/value cache for generation (read and extended in place), or null. */
  kvCache: KVCache | null;
}

/** Keys and values of the tokens seen so far, per layer: [batch, key_pos, n_key_value_heads, d_head]. */
export interface KVCache {
  keys: (Tensor | null)[];
  values: (Tensor | null)[];
}

let fusedAttention = true;
/**
 * Whether attention runs the fused kernel when no hook (nor the cache) asks for hook_attn_scores or
 * hook_pattern and the backend has one (native; wasm keeps the unfused path on its own matmuls);
 * returns the previous setting. Off runs the unfused path always (for comparisons).
 */
export function setFusedAttention(enabled: boolean): boolean {
  const prev = fusedAttention;
  fusedAttention = enabled;
  return prev;
}

const ACT: Record<ActFn, UnaryOp> = { gelu_new: "gelu_tanh", gelu: "gelu_erf", relu: "relu", silu: "silu" };

export class Embed extends Module {
  readonly W_E: Tensor; // [d_vocab, d_model]
  constructor(private readonly cfg: ModelConfig, private readonly rt: HookRuntime) {
    super();
    this.W_E = this.param("W_E", zeros([cfg.d_vocab, cfg.d_model], cfg.dtype));
    rt.declare("hook_embed");
  }
  /** tokens [batch, pos] → [batch, pos, d_model] (times embed_scale, e.g. Gemma's sqrt(d_model), before the hook) */
  forward(tokens: Tensor): Tensor {
    const e = embedding(this.W_E, tokens);
    return this.rt.point("hook_embed", this.cfg.embed_scale === 1 ? e : e.mul(this.cfg.embed_scale));
  }
}

export class PosEmbed extends Module {
  readonly W_pos: Tensor; // [n_ctx, d_model]
  constructor(private readonly cfg: ModelConfig, private readonly rt: HookRuntime) {
    super();
    this.W_pos = this.param("W_pos", zeros([cfg.n_ctx, cfg.d_model], cfg.dtype));
    rt.declare("hook_pos_embed");
  }
  /** positions [batch * pos] → [batch, pos, d_model] */
  forward(positions: Int32Array, batch: number): Tensor {
    for (const p of positions) if (p >= this.cfg.n_ctx) throw new RangeError(`position ${p} exceeds n_ctx = ${this.cfg.n_ctx}`);
    const pe = indexSelect(this.W_pos, 0, new Tensor(positions, [batch, positions.length / batch]));
    return this.rt.point("hook_pos_embed", pe);
  }
}

/**
 * LayerNorm or RMSNorm over the last axis, with hook_scale [..., 1] and hook_normalized [..., length]
 * (length d_model, or d_head for per-head query/key norms, which are always RMS).
 */
export class Norm extends Module {
  readonly w: Tensor;
  readonly b: Tensor | null;
  private readonly scaleName: HookName;
  private readonly normName: HookName;
  private readonly rms: boolean;
  constructor(private readonly cfg: ModelConfig, private readonly rt: HookRuntime, prefix: string, opts: { length?: number; rms?: boolean } = {}) {
    super();
    const length = opts.length ?? cfg.d_model;
    this.rms = opts.rms ?? cfg.normalization_type === "RMS";
    this.w = this.param("w", zeros([length], cfg.dtype).add(1).detach());
    this.b = this.rms ? null : this.param("b", zeros([length], cfg.dtype));
    this.scaleName = rt.declare(`${prefix}.hook_scale` as HookName);
    this.normName = rt.declare(`${prefix}.hook_normalized` as HookName);
  }
  forward(x: Tensor, layer?: number): Tensor {
    const rms = this.rms, eps = this.cfg.eps;
    // The fused kernel unless a hook wants the intermediate scale or normalized activations.
    if (!this.rt.wants(this.scaleName) && !this.rt.wants(this.normName)) {
      return rms ? rmsNorm(x, this.w, eps) : layerNorm(x, this.w, this.b, eps);
    }
    const centred = rms ? x : x.sub(x.mean(-1, true));
    const scale = this.rt.point(this.scaleName, centred.square().mean(-1, true).add(eps).sqrt(), layer);
    const normalized = this.rt.point(this.normName, centred.div(scale), layer);
    const y = normalized.mul(this.w);
    return this.b ? y.add(this.b) : y;
  }
}

export class Attention extends Module {
  // Stored [d_model, n_heads * d_head] (heads side by side) so Q = x @ W_Q is one matmul.
  readonly Wq: Tensor; readonly Wk: Tensor; readonly Wv: Tensor;
  readonly Wo: Tensor; // [n_heads * d_head, d_model]
  readonly bq: Tensor | null; readonly bk: Tensor | null; readonly bv: Tensor | null; readonly bo: Tensor | null;
  /** RMSNorm of queries and keys before RoPE (Qwen3, Gemma 3: per head; OLMo 2: over all heads), or null. */
  readonly q_norm: Norm | null; readonly k_norm: Norm | null;
  private readonly rotary: RotaryTables | null;
  /** Keys visible to each query on a sliding-window ("local") layer, or null for full causal attention. */
  readonly window: number | null;
  /** Scores are divided by this: attn_scale, times layer + 1 with scale_attn_by_inverse_layer_idx. */
  private readonly scale: number;
  private readonly names: Record<"q" | "k" | "v" | "rot_q" | "rot_k" | "attn_scores" | "pattern" | "z" | "result", HookName>;

  constructor(private readonly cfg: ModelConfig, private readonly rt: HookRuntime, readonly layer: number) {
    super();
    const { d_model: D, n_heads: H, d_head: dh, n_key_value_heads: Hkv } = cfg;
    this.Wq = this.param("W_Q", zeros([D, H * dh], cfg.dtype));
    this.Wk = this.param("W_K", zeros([D, Hkv * dh], cfg.dtype));
    this.Wv = this.param("W_V", zeros([D, Hkv * dh], cfg.dtype));
    this.Wo = this.param("W_O", zeros([H * dh, D], cfg.dtype));
    const bias = cfg.attn_bias;
    this.bq = bias ? this.param("b_Q", zeros([H * dh], cfg.dtype)) : null;
    this.bk = bias ? this.param("b_K", zeros([Hkv * dh], cfg.dtype)) : null;
    this.bv = bias ? this.param("b_V", zeros([Hkv * dh], cfg.dtype)) : null;
    this.bo = bias ? this.param("b_O", zeros([D], cfg.dtype)) : null;
    const local = isLocalLayer(cfg, layer);
    this.window = local ? cfg.window_size : null;
    const n = (a: string) => rt.declare(`blocks.${layer}.attn.hook_${a}` as HookName);
    const qkLen = (heads: number) => (cfg.qk_norm === "head" ? dh : heads * dh);
    const q = n("q"), k = n("k"), v = n("v");
    this.q_norm = cfg.qk_norm ? this.child("q_norm", new Norm(cfg, rt, `blocks.${layer}.attn.q_norm`, { length: qkLen(H), rms: true })) : null;
    this.k_norm = cfg.qk_norm ? this.child("k_norm", new Norm(cfg, rt, `blocks.${layer}.attn.k_norm`, { length: qkLen(Hkv), rms: true })) : null;
    // Gemma 3's local layers rotate with their own base and without the global layers' scaling.
    const localBase = local && cfg.rotary_base_local !== null;
    // GPT-2's scale_attn_by_inverse_layer_idx: scores also divided by layer + 1.
    this.scale = cfg.attn_scale * (cfg.scale_attn_by_inverse_layer_idx ? layer + 1 : 1);
    this.rotary = cfg.positional_embedding_type === "rotary"
      ? new RotaryTables(cfg.rotary_dim, localBase ? cfg.rotary_base_local! : cfg.rotary_base, localBase ? 1 : cfg.rotary_scaling,
        { adjacentPairs: cfg.rotary_adjacent_pairs, ropeScaling: localBase ? null : cfg.rope_scaling })
      : null;
    this.names = {
      q, k, v,
      rot_q: this.rotary ? n("rot_q") : ("" as HookName), rot_k: this.rotary ? n("rot_k") : ("" as HookName),
      attn_scores: n("attn_scores"), pattern: n("pattern"), z: n("z"), result: n("result"),
    };
  }

  /** TransformerLens-shaped views: W_Q, W_K, W_V [n_heads, d_model, d_head], W_O [n_heads, d_head, d_model]. */
  get W_Q(): Tensor { return this.headsIn(this.Wq, this.cfg.n_heads); }
  get W_K(): Tensor { return this.headsIn(this.Wk, this.cfg.n_key_value_heads); }
  get W_V(): Tensor { return this.headsIn(this.Wv, this.cfg.n_key_value_heads); }
  get W_O(): Tensor { return this.Wo.reshape([this.cfg.n_heads, this.cfg.d_head, this.cfg.d_model]); }
  private headsIn(W: Tensor, heads: number): Tensor {
    return W.reshape([this.cfg.d_model, heads, this.cfg.d_head]).permute(1, 0, 2);
  }

  /** x [batch, pos, d_model] (already normalised) → attention output [batch, pos, d_model]. */
  forward(x: Tensor, ctx: ForwardContext): Tensor {
    const { n_heads: H, d_head: dh, n_key_value_heads: Hkv } = this.cfg;
    const [B, T] = x.shape as [number, number, number];
    const q = linear(x, this.Wq, this.bq).reshape([B, T, H, dh]);
    const k = linear(x, this.Wk, this.bk).reshape([B, T, Hkv, dh]);
    const v = linear(x, this.Wv, this.bv).reshape([B, T, Hkv, dh]);
    return this.attend(q, k, v, ctx);
  }

  /**
   * Split inputs (use_split_qkv_input): a separate, already normalised input per head, q [batch, pos,
   * n_heads, d_model] and k, v [batch, pos, n_key_value_heads, d_model]; each head reads only its own.
   */
  forwardSplit(xq: Tensor, xk: Tensor, xv: Tensor, ctx: ForwardContext): Tensor {
    const { n_heads: H, d_head: dh, n_key_value_heads: Hkv } = this.cfg;
    const proj = (x: Tensor, W: Tensor, b: Tensor | null, heads: number) => {
      const y = einsum("bphm,hmd->bphd", x, W);
      return b ? y.add(b.reshape([heads, dh])) : y;
    };
    return this.attend(proj(xq, this.W_Q, this.bq, H), proj(xk, this.W_K, this.bk, Hkv), proj(xv, this.W_V, this.bv, Hkv), ctx);
  }

  /** q [batch, pos, n_heads, d_head], k and v [batch, pos, n_key_value_heads, d_head] → [batch, pos, d_model]. */
  private attend(q: Tensor, k: Tensor, v: Tensor, ctx: ForwardContext): Tensor {
    const { n_heads: H, d_head: dh, n_key_value_heads: Hkv } = this.cfg;
    const [B, T] = q.shape as [number, number, number, number];
    const rt = this.rt, L = this.layer, nm = this.names;
    q = rt.point(nm.q, q, L);
    k = rt.point(nm.k, k, L);
    v = rt.point(nm.v, v, L);
    if (this.q_norm && this.k_norm) {
      // Per head over d_head, or (OLMo 2) over the whole projection [batch, pos, heads · d_head].
      const whole = this.cfg.qk_norm === "full";
      const qk = (x: Tensor, norm: Norm, heads: number) => (whole ? norm.forward(x.reshape([B, T, heads * dh]), L).reshape([B, T, heads, dh]) : norm.forward(x, L));
      q = qk(q, this.q_norm, H);
      k = qk(k, this.k_norm, Hkv);
    }
    if (this.rotary) {
      q = rt.point(nm.rot_q, this.rotary.apply(q, ctx.positions), L);
      k = rt.point(nm.rot_k, this.rotary.apply(k, ctx.positions), L);
    }
    if (ctx.kvCache && !isGradEnabled()) {
      // Inference: append into buffers with spare room, so a generation step does not copy the past.
      k = ctx.kvCache.keys[L] = appendPositions(ctx.kvCache.keys[L] ?? null, k);
      v = ctx.kvCache.values[L] = appendPositions(ctx.kvCache.values[L] ?? null, v);
    } else if (ctx.kvCache) {
      const pk = ctx.kvCache.keys[L], pv = ctx.kvCache.values[L];
      if (pk && pv) { k = concat([pk, k], 1); v = concat([pv, v], 1); }
      ctx.kvCache.keys[L] = k.detach(); ctx.kvCache.values[L] = v.detach();
    }
    // The kernel does plain causal attention: sliding windows and soft-capped scores take the unfused path.
    const plain = this.window === null && this.cfg.attn_scores_soft_cap === null;
    if (plain && fusedAttention && fastAttention(q.dtype) && !rt.wants(nm.attn_scores) && !rt.wants(nm.pattern)) {
      // One kernel for scores, mask, softmax and the weighted sum; GQA is handled inside, without expanding k and v.
      const z = causalAttention(q, k, v, { scale: 1 / this.scale, keyMask: ctx.keyMask });
      return this.output(rt.point(nm.z, z, L), B, T); // z [batch, pos, head_index, d_head]
    }
    const Tk = k.shape[1]!;
    if (Hkv !== H) {
      // Grouped-query attention: each key/value head serves H / Hkv query heads.
      const g = H / Hkv;
      k = expand(k.reshape([B, Tk, Hkv, 1, dh]), [B, Tk, Hkv, g, dh]).reshape([B, Tk, H, dh]);
      v = expand(v.reshape([B, Tk, Hkv, 1, dh]), [B, Tk, Hkv, g, dh]).reshape([B, Tk, H, dh]);
    }
    // With several prompts, [batch, head_index] views do not collapse to one matrix stride, so lay them out
    // contiguously first: one kernel call over batch*heads instead of one per prompt.
    const heads = (t: Tensor) => (B > 1 ? t.contiguous() : t);
    let scores = matmul(heads(q.permute(0, 2, 1, 3)), heads(k.permute(0, 2, 3, 1))); // [batch, head_index, query_pos, key_pos]
    let divisor = this.scale;
    const cap = this.cfg.attn_scores_soft_cap;
    // Gemma 2's soft cap acts on the scaled scores before any mask (a capped -1e9 would no longer mask).
    if (cap !== null) { scores = scores.div(divisor * cap).tanh().mul(cap); divisor = 1; }
    if (ctx.keyMask) scores = scores.add(ctx.keyMask);
    // Sliding window on key slots (with left padding or a KV cache, slot distance = token distance).
    if (this.window !== null) scores = scores.add(maskBias(T, Tk, this.window, false));
    let pattern: Tensor;
    if (rt.wants(nm.attn_scores)) {
      // Materialise scaled, causally masked scores only when a hook asks for them (as TransformerLens shows them).
      const masked = causalMaskFill(divisor === 1 ? scores : scores.div(divisor));
      pattern = causalSoftmax(rt.point(nm.attn_scores, masked, L), 1);
    } else {
      pattern = causalSoftmax(scores, 1 / divisor);
    }
    pattern = rt.point(nm.pattern, pattern, L); // [batch, head_index, query_pos, key_pos]
    const z = rt.point(nm.z, matmul(pattern, heads(v.permute(0, 2, 1, 3))).permute(0, 2, 1, 3), L); // [batch, pos, head_index, d_head]
    return this.output(z, B, T);
  }

  /** z [batch, pos, head_index, d_head] → attention output [batch, pos, d_model], through hook_result when wanted. */
  private output(z: Tensor, B: number, T: number): Tensor {
    const { n_heads: H, d_head: dh } = this.cfg;
    const rt = this.rt, L = this.layer, nm = this.names;
    if (rt.wants(nm.result)) {
      const result = rt.point(nm.result, einsum("bphd,hdm->bphm", z, this.W_O), L); // [batch, pos, head_index, d_model]
      const out = result.sum(2);
      return this.bo ? out.add(this.bo) : out;
    }
    return linear(z.reshape([B, T, H * dh]), this.Wo, this.bo);
  }
}

/** Scores with future keys set to -Infinity, as TransformerLens's hook_attn_scores shows them. */
function causalMaskFill(scores: Tensor): Tensor {
  const Tq = scores.shape[scores.ndim - 2]!, Tk = scores.shape[scores.ndim - 1]!;
  // An additive 0 / -Infinity mask: a broadcast add runs on the fast backend (where does not).
  return scores.add(maskBias(Tq, Tk, null, true));
}

const maskCache = new Map<string, Tensor>();
/**
 * [query_pos, key_pos] with -Infinity where key j is hidden from query i (the last Tq of Tk slots):
 * future keys when `causal`, and keys `window` or more slots back when window is set; 0 elsewhere.
 */
function maskBias(Tq: number, Tk: number, window: number | null, causal: boolean): Tensor {
  const key = `${Tq}x${Tk}:${window}:${causal}`;
  let m = maskCache.get(key);
  if (!m) {
    // GC-owned, so no scope() recycles it while it sits in the cache.
    m = unscoped(() => {
      const bias = new Float32Array(Tq * Tk), off = Tk - Tq;
      for (let i = 0; i < Tq; i++) for (let j = 0; j < Tk; j++) {
        if ((causal && j > i + off) || (window !== null && i + off - j >= window)) bias[i * Tk + j] = -Infinity;
      }
      return new Tensor(bias, [Tq, Tk]);
    });
    if (maskCache.size > 64) maskCache.clear();
    maskCache.set(key, m);
  }
  return m;
}

export class MLP extends Module {
  readonly W_in: Tensor; // [d_model, d_mlp]
  readonly W_gate: Tensor | null; // [d_model, d_mlp], gated MLPs only
  readonly W_out: Tensor; // [d_mlp, d_model]
  readonly b_in: Tensor | null; readonly b_out: Tensor | null;
  readonly b_gate: Tensor | null; // gated MLPs with mlp_bias (Llama's gate_proj.bias)
  private readonly act: UnaryOp;
  private readonly names: Record<"pre" | "pre_linear" | "post", HookName>;
  constructor(cfg: ModelConfig, private readonly rt: HookRuntime, readonly layer: number) {
    super();
    this.W_in = this.param("W_in", zeros([cfg.d_model, cfg.d_mlp], cfg.dtype));
    this.W_gate = cfg.gated_mlp ? this.param("W_gate", zeros([cfg.d_model, cfg.d_mlp], cfg.dtype)) : null;
    this.W_out = this.param("W_out", zeros([cfg.d_mlp, cfg.d_model], cfg.dtype));
    this.b_in = cfg.mlp_bias ? this.param("b_in", zeros([cfg.d_mlp], cfg.dtype)) : null;
    this.b_out = cfg.mlp_bias ? this.param("b_out", zeros([cfg.d_model], cfg.dtype)) : null;
    this.b_gate = cfg.mlp_bias && cfg.gated_mlp ? this.param("b_gate", zeros([cfg.d_mlp], cfg.dtype)) : null;
    this.act = ACT[cfg.act_fn];
    const n = (a: string) => rt.declare(`blocks.${layer}.mlp.hook_${a}` as HookName);
    this.names = { pre: n("pre"), pre_linear: cfg.gated_mlp ? n("pre_linear") : ("" as HookName), post: n("post") };
  }
  /** x [batch, pos, d_model] → [batch, pos, d_model] */
  forward(x: Tensor): Tensor {
    const rt = this.rt, L = this.layer, nm = this.names;
    let post: Tensor;
    if (this.W_gate) {
      // SwiGLU (Shazeer 2020), as Llama: W_out (act(x W_gate) * (x W_in)).
      const pre = rt.point(nm.pre, linear(x, this.W_gate, this.b_gate), L);
      const preLinear = rt.point(nm.pre_linear, linear(x, this.W_in, this.b_in), L);
      post = rt.point(nm.post, pre.unary(this.act).mul(preLinear), L);
    } else {
      const pre = rt.point(nm.pre, linear(x, this.W_in, this.b_in), L); // [batch, pos, d_mlp]
      post = rt.point(nm.post, pre.unary(this.act), L);
    }
    return linear(post, this.W_out, this.b_out);
  }
}

export class Unembed extends Module {
  readonly W_U: Tensor; // [d_model, d_vocab]
  b_U: Tensor | null;
  constructor(private readonly cfg: ModelConfig) {
    super();
    this.W_U = this.param("W_U", zeros([cfg.d_model, cfg.d_vocab], cfg.dtype));
    this.b_U = cfg.unembed_bias ? this.param("b_U", zeros([cfg.d_vocab], cfg.dtype)) : null;
  }
  /** Give the unembedding a zero bias (weight processing folds ln_final.b into it, as TransformerLens's GPT-2 has). */
  addBias(): Tensor {
    if (!this.b_U) { this.b_U = this.param("b_U", zeros([this.cfg.d_vocab], this.cfg.dtype)); this.cfg.unembed_bias = true; }
    return this.b_U;
  }
  forward(x: Tensor): Tensor { return linear(x, this.W_U, this.b_U); }
}
