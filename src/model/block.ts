// A transformer block, composed from the config's flags: sequential attention then MLP (GPT-2,
// Llama), parallel attention and MLP off the same residual (GPT-NeoX; GPT-J with one norm for both),
// or attention only. Norms sit before each sublayer ("pre"), also after it ("sandwich": ln1_post and
// ln2_post on the sublayer's output, Gemma 2/3) or only after it ("post", OLMo 2).
import { Module } from "../nn/module.js";
import type { Tensor } from "../tensor/tensor.js";
import type { ModelConfig } from "./config.js";
import type { HookName } from "./hooks.js";
import type { HookRuntime } from "./hook-runtime.js";
import { Attention, MLP, Norm, type ForwardContext } from "./components.js";
import { expand } from "../tensor/ops/movement.js";

export class TransformerBlock extends Module {
  readonly ln1: Norm | null;
  readonly attn: Attention;
  readonly ln2: Norm | null;
  readonly mlp: MLP | null;
  /** Norms of the attention and MLP outputs before they join the residual stream (sandwich / post placement). */
  readonly ln1_post: Norm | null;
  readonly ln2_post: Norm | null;
  private readonly names: Record<"resid_pre" | "resid_mid" | "resid_post" | "attn_out" | "mlp_out" | "q_input" | "k_input" | "v_input" | "mlp_in", HookName>;

  constructor(private readonly cfg: ModelConfig, private readonly rt: HookRuntime, readonly layer: number) {
    super();
    const n = (a: string) => rt.declare(`blocks.${layer}.hook_${a}` as HookName);
    const norm = cfg.normalization_type !== null;
    const pre = norm && cfg.norm_placement !== "post", post = norm && cfg.norm_placement !== "pre";
    const resid_pre = n("resid_pre");
    // TransformerLens's optional hook points, declared only when asked for, so they cost nothing otherwise.
    const split = cfg.use_split_qkv_input === true, mlpIn = cfg.use_hook_mlp_in === true && !cfg.attn_only;
    const q_input = split ? n("q_input") : ("" as HookName), k_input = split ? n("k_input") : ("" as HookName), v_input = split ? n("v_input") : ("" as HookName);
    this.ln1 = pre ? this.child("ln1", new Norm(cfg, rt, `blocks.${layer}.ln1`)) : null;
    this.attn = this.child("attn", new Attention(cfg, rt, layer));
    this.ln1_post = post ? this.child("ln1_post", new Norm(cfg, rt, `blocks.${layer}.ln1_post`)) : null;
    const attn_out = n("attn_out");
    const resid_mid = cfg.attn_only || cfg.parallel_attn_mlp ? ("" as HookName) : n("resid_mid");
    const mlp_in = mlpIn ? n("mlp_in") : ("" as HookName);
    this.ln2 = pre && !cfg.attn_only && !cfg.parallel_shared_norm ? this.child("ln2", new Norm(cfg, rt, `blocks.${layer}.ln2`)) : null;
    this.mlp = cfg.attn_only ? null : this.child("mlp", new MLP(cfg, rt, layer));
    this.ln2_post = post && !cfg.attn_only ? this.child("ln2_post", new Norm(cfg, rt, `blocks.${layer}.ln2_post`)) : null;
    this.names = { resid_pre, resid_mid, attn_out, mlp_out: cfg.attn_only ? ("" as HookName) : n("mlp_out"), resid_post: n("resid_post"), q_input, k_input, v_input, mlp_in };
  }

  /** Attention on the normalised residual stream, or on per-head copies of it (use_split_qkv_input). */
  private attention(resid: Tensor, ctx: ForwardContext): Tensor {
    const ln1 = (x: Tensor) => (this.ln1 ? this.ln1.forward(x, this.layer) : x);
    if (!this.cfg.use_split_qkv_input) return this.attn.forward(ln1(resid), ctx);
    const rt = this.rt, L = this.layer, nm = this.names;
    const [B, T, D] = resid.shape as [number, number, number];
    // One copy per head ([batch, pos, heads, d_model]); the norm acts per copy, so a hook editing one head's copy moves only that head.
    const copies = (name: HookName, heads: number) => ln1(rt.point(name, expand(resid.reshape([B, T, 1, D]), [B, T, heads, D]), L));
    const { n_heads: H, n_key_value_heads: Hkv } = this.cfg;
    return this.attn.forwardSplit(copies(nm.q_input, H), copies(nm.k_input, Hkv), copies(nm.v_input, Hkv), ctx);
  }

  forward(resid: Tensor, ctx: ForwardContext): Tensor {
    const rt = this.rt, L = this.layer, nm = this.names;
    const ln2 = (x: Tensor) => {
      const mlpIn = nm.mlp_in ? rt.point(nm.mlp_in, x, L) : x; // [batch, pos, d_model]
      return this.ln2 ? this.ln2.forward(mlpIn, L) : mlpIn;
    };
    // hook_attn_out / hook_mlp_out are what joins the residual stream, after any post-norm.
    const attnPost = (x: Tensor) => (this.ln1_post ? this.ln1_post.forward(x, L) : x);
    const mlpPost = (x: Tensor) => (this.ln2_post ? this.ln2_post.forward(x, L) : x);
    resid = rt.point(nm.resid_pre, resid, L); // [batch, pos, d_model]
    // GPT-J: one ln1 output feeds both branches, computed once (again only for split inputs or hook_mlp_in).
    const shared = this.cfg.parallel_shared_norm && !this.cfg.use_split_qkv_input && !nm.mlp_in ? this.ln1!.forward(resid, L) : null;
    const attnOut = rt.point(nm.attn_out, attnPost(shared ? this.attn.forward(shared, ctx) : this.attention(resid, ctx)), L);
    if (!this.mlp) return rt.point(nm.resid_post, resid.add(attnOut), L);
    if (this.cfg.parallel_attn_mlp) {
      const mlpIn = !this.cfg.parallel_shared_norm ? ln2(resid) : shared ?? this.ln1!.forward(nm.mlp_in ? rt.point(nm.mlp_in, resid, L) : resid, L);
      const mlpOut = rt.point(nm.mlp_out, mlpPost(this.mlp.forward(mlpIn)), L);
      return rt.point(nm.resid_post, resid.add(attnOut).add(mlpOut), L);
    }
    resid = rt.point(nm.resid_mid, resid.add(attnOut), L);
    const mlpOut = rt.point(nm.mlp_out, mlpPost(this.mlp.forward(ln2(resid))), L);
    return rt.point(nm.resid_post, resid.add(mlpOut), L);
  }
}
