// A transformer block, composed from the config's flags: sequential attention then MLP (GPT-2,
// Llama), parallel attention and MLP off the same residual (GPT-NeoX), or attention only.
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
  private readonly names: Record<"resid_pre" | "resid_mid" | "resid_post" | "attn_out" | "mlp_out" | "q_input" | "k_input" | "v_input" | "mlp_in", HookName>;

  constructor(private readonly cfg: ModelConfig, private readonly rt: HookRuntime, readonly layer: number) {
    super();
    const n = (a: string) => rt.declare(`blocks.${layer}.hook_${a}` as HookName);
    const norm = cfg.normalization_type !== null;
    const resid_pre = n("resid_pre");
    // TransformerLens's optional hook points, declared only when asked for, so they cost nothing otherwise.
    const split = cfg.use_split_qkv_input === true, mlpIn = cfg.use_hook_mlp_in === true && !cfg.attn_only;
    const q_input = split ? n("q_input") : ("" as HookName), k_input = split ? n("k_input") : ("" as HookName), v_input = split ? n("v_input") : ("" as HookName);
    this.ln1 = norm ? this.child("ln1", new Norm(cfg, rt, `blocks.${layer}.ln1`)) : null;
    this.attn = this.child("attn", new Attention(cfg, rt, layer));
    const attn_out = n("attn_out");
    const resid_mid = cfg.attn_only || cfg.parallel_attn_mlp ? ("" as HookName) : n("resid_mid");
    const mlp_in = mlpIn ? n("mlp_in") : ("" as HookName);
    this.ln2 = norm && !cfg.attn_only ? this.child("ln2", new Norm(cfg, rt, `blocks.${layer}.ln2`)) : null;
    this.mlp = cfg.attn_only ? null : this.child("mlp", new MLP(cfg, rt, layer));
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
    resid = rt.point(nm.resid_pre, resid, L); // [batch, pos, d_model]
    const attnOut = rt.point(nm.attn_out, this.attention(resid, ctx), L);
    if (!this.mlp) return rt.point(nm.resid_post, resid.add(attnOut), L);
    if (this.cfg.parallel_attn_mlp) {
      const mlpOut = rt.point(nm.mlp_out, this.mlp.forward(ln2(resid)), L);
      return rt.point(nm.resid_post, resid.add(attnOut).add(mlpOut), L);
    }
    resid = rt.point(nm.resid_mid, resid.add(attnOut), L);
    const mlpOut = rt.point(nm.mlp_out, this.mlp.forward(ln2(resid)), L);
    return rt.point(nm.resid_post, resid.add(mlpOut), L);
  }
}
