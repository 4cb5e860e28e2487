// Layer-wise relevance propagation for transformers in the style of AttnLRP (Achtibat et al. 2024,
// "AttnLRP: Attention-Aware Layer-Wise Relevance Propagation for Transformers"), computed as
// gradient × input through a forward pass whose backward is modified so that, op by op,
// input · gradient equals the rule's relevance (the trick their LXT library uses). The modified
// backward comes from forward hooks that return value-identical activations with rescaled or
// detached gradients:
//   linear layers (q, k, v, mlp pre, attn_out, mlp_out, unembed)  ε-rule: gradient × z / (z + ε sign z)
//   elementwise nonlinearities (the MLP activation)              identity rule: relevance passes unchanged
//   LayerNorm / RMSNorm                                          linear, with the normalisation scale detached
//   softmax                                                      plain gradient × input (AttnLRP Prop. 3.1)
//   bilinear q·k and pattern·v                                   uniform rule: each factor gets half
// It is not a general LRP framework (no z⁺/γ rules), and relevance absorbed by biases and the softmax
// is not conserved: the conservation check reports how much.
import { grad, noGrad } from "../tensor/autodiff.js";
import { Tensor } from "../tensor/tensor.js";
import { allocate } from "../tensor/dtype.js";
import type { HookedTransformer } from "../model/transformer.js";
import type { ForwardHook, HookName } from "../model/hooks.js";
import type { ActFn } from "../model/config.js";
import type { UnaryOp } from "../backend/kernels.js";
import { sumOf, type LogitScore, type ScoreFn } from "./attribution.js";

/** A tensor equal to z whose gradient is the incoming one times c (c detached, broadcastable to z). */
function scaleGrad(z: Tensor, c: Tensor): Tensor {
  const zd = z.detach();
  return zd.add(z.sub(zd).mul(c));
}

/** Elementwise f over one or two tensors' values, as a detached tensor of a's shape and dtype. */
function mapValues(a: Tensor, b: Tensor | null, f: (x: number, y: number) => number): Tensor {
  const av = a.contiguous().toArray(), bv = b ? b.contiguous().toArray() : null;
  const out = allocate(a.dtype, av.length);
  for (let i = 0; i < av.length; i++) out[i] = f(av[i]!, bv ? bv[i]! : 0);
  return new Tensor(out, a.shape);
}

/** ε-rule for the output z of a linear map: R_i = Σ_j x_i w_ij R_j / (z_j + ε sign z_j) (Bach et al. 2015). */
export function lrpEpsilon(z: Tensor, eps = 1e-6, share = 1): Tensor {
  const c = noGrad(() => mapValues(z, null, (v) => (share * v) / (v + (v >= 0 ? eps : -eps))));
  return scaleGrad(z, c);
}

/** Identity rule through an elementwise nonlinearity post = act(pre): relevance passes unchanged (AttnLRP §3.3). */
export function lrpIdentity(pre: Tensor, post: Tensor): Tensor {
  // pre · g_pre = post · g_post needs g_pre = g_post · post / pre (0 where pre is 0: then post · g carries no relevance either way).
  const r = noGrad(() => mapValues(post, pre, (y, x) => (x === 0 ? 0 : y / x)));
  return post.detach().add(pre.sub(pre.detach()).mul(r));
}

/** Uniform rule for one factor of a product of two activations: this factor receives `share` (½) of the relevance (AttnLRP Prop. 3.3). */
export function lrpUniform(x: Tensor, share = 0.5): Tensor {
  const xd = x.detach();
  return xd.add(x.sub(xd).mul(share));
}

export interface Conservation {
  /** The score whose relevance is propagated (relevance at the output). */
  output: number;
  /** Σ relevance at the input(s). */
  inputSum: number;
  /** |output − inputSum|. */
  gap: number;
  /** gap / |output|. */
  relativeGap: number;
}

function conservation(output: number, inputSum: number): Conservation {
  const gap = Math.abs(output - inputSum);
  return { output, inputSum, gap, relativeGap: output !== 0 ? gap / Math.abs(output) : gap === 0 ? 0 : Infinity };
}

/**
 * LRP relevance of x for a score f built with the rules above (f: [1, ...] → [1]): x ⊙ ∂f/∂x with the
 * modified backward, and the conservation check Σ R vs f(x) (exact for bias-free linear/ReLU networks as ε → 0).
 */
export function lrp(f: ScoreFn, x: Tensor): { relevance: Tensor; conservation: Conservation } {
  const leaf = x.detach().unsqueeze(0).requireGrad();
  const s = f(leaf);
  if (s.size !== 1) throw new Error(`lrp: the score function must return one value for one input, got ${s.size}`);
  const g = grad(s.sum(), [leaf])[0]!;
  const relevance = noGrad(() => leaf.detach().mul(g).squeeze(0));
  return { relevance, conservation: conservation(s.item(), sumOf(relevance)) };
}

const ACT: Record<ActFn, UnaryOp> = { gelu_new: "gelu_tanh", gelu: "gelu_erf", relu: "relu", silu: "silu" };

export interface TransformerLRP {
  /** Relevance of each token's embedding [pos, d_model] (hook_embed). */
  embed: Tensor;
  /** Relevance of the positional embeddings [pos, d_model] (hook_pos_embed), or null for rotary/none. */
  posEmbed: Tensor | null;
  /** Per token: Σ over d_model of embed + posEmbed relevance. */
  perPosition: number[];
  /** Output score vs Σ relevance at hook_embed and hook_pos_embed. */
  conservation: Conservation;
  /**
   * Relevance absorbed by each bias (b · its modified gradient), by parameter name: LRP's rules send a
   * bias's share there rather than to the input, so output ≈ inputSum + Σ biases, up to the softmax
   * (whose gradient × input rule is not conservative) and ε.
   */
  biases: Map<string, number>;
  /** output vs inputSum + Σ biases: what is left unaccounted for by the softmax and ε. */
  conservationWithBiases: Conservation;
}

export interface TransformerLRPOptions {
  /** ε of the ε-rule, e.g. 1e-6. */
  eps?: number;
  /**
   * "attnlrp" (default): the uniform rule on pattern·v and the softmax rule into q, k (Achtibat et al. 2024).
   * "cp": the attention pattern held constant so v gets all the relevance (CP-LRP, Ali et al. 2022,
   * "XAI for Transformers: Better Explanations through Conservative Propagation"): conservative, but blind to q and k.
   */
  attention?: "attnlrp" | "cp";
}

/**
 * AttnLRP relevance of a transformer's input embeddings for score(logits) on tokens (batch 1), via
 * forward hooks that implement the rules in the header; eps is the ε of the ε-rule.
 */
export function transformerLRP(model: HookedTransformer, tokens: readonly number[], score: LogitScore, opts: TransformerLRPOptions = {}): TransformerLRP {
  const eps = opts.eps ?? 1e-6;
  const cp = opts.attention === "cp";
  const names = new Set<string>(model.hookNames());
  const act = ACT[model.cfg.act_fn];
  const leaves: { embed: Tensor | null; pos: Tensor | null } = { embed: null, pos: null };
  // MLP pre-activations per layer, kept for the identity rule at hook_post.
  const pre = new Map<number, Tensor>(), preLinear = new Map<number, Tensor>();
  const fwd: [HookName, ForwardHook][] = [];
  const on = (name: string, h: ForwardHook) => { if (names.has(name)) fwd.push([name as HookName, h]); };
  on("hook_embed", (a) => (leaves.embed = a.detach().requireGrad()));
  on("hook_pos_embed", (a) => (leaves.pos = a.detach().requireGrad()));
  on("ln_final.hook_scale", (a) => a.detach());
  for (let L = 0; L < model.cfg.n_layers; L++) {
    const b = `blocks.${L}`;
    on(`${b}.ln1.hook_scale`, (a) => a.detach());
    on(`${b}.ln2.hook_scale`, (a) => a.detach());
    // q, k, v are linear outputs and factors of the bilinear q·k and pattern·v.
    for (const x of ["q", "k", "v"]) on(`${b}.attn.hook_${x}`, (a) => lrpEpsilon(a, eps, cp && x === "v" ? 1 : 0.5));
    on(`${b}.attn.hook_pattern`, (a) => (cp ? a.detach() : lrpUniform(a)));
    on(`${b}.hook_attn_out`, (a) => lrpEpsilon(a, eps));
    on(`${b}.mlp.hook_pre`, (a) => { const z = lrpEpsilon(a, eps); pre.set(L, z); return z; });
    on(`${b}.mlp.hook_pre_linear`, (a) => { const z = lrpEpsilon(a, eps); preLinear.set(L, z); return z; });
    on(`${b}.mlp.hook_post`, (a) => {
      const p = pre.get(L)!;
      const gated = preLinear.get(L);
      if (!gated) return lrpIdentity(p, a);
      // SwiGLU: act(gate) · linear, the identity rule through act, then the uniform rule on the product.
      const actOut = lrpIdentity(p, noGrad(() => p.detach().unary(act)));
      return lrpUniform(actOut).mul(lrpUniform(gated));
    });
    on(`${b}.hook_mlp_out`, (a) => lrpEpsilon(a, eps));
  }
  const logits = model.runWithHooks([tokens], { fwd });
  // The unembedding is a linear layer too.
  const s = score(lrpEpsilon(logits, eps));
  if (s.size !== 1) throw new Error(`transformerLRP: the score must give one value per row, got shape [${s.shape}]`);
  if (!leaves.embed) throw new Error("transformerLRP: hook_embed was not reached");
  const wrt = leaves.pos ? [leaves.embed, leaves.pos] : [leaves.embed];
  // Biases: TransformerLens names them b_* (and b for LayerNorm).
  const biasParams = model.namedParameters().filter(([n, p]) => /(^|\.)b(_\w+)?$/.test(n) && p.requiresGrad);
  const gs = grad(s.sum(), [...wrt, ...biasParams.map(([, p]) => p)]);
  const biases = new Map<string, number>();
  biasParams.forEach(([n, p], i) => biases.set(n, sumOf(noGrad(() => p.mul(gs[wrt.length + i]!)))));
  let biasSum = 0;
  for (const v of biases.values()) biasSum += v;
  const rel = (t: Tensor, g: Tensor) => noGrad(() => t.detach().mul(g).squeeze(0)); // [pos, d_model]
  const embed = rel(leaves.embed, gs[0]!), posEmbed = leaves.pos ? rel(leaves.pos, gs[1]!) : null;
  const total = noGrad(() => (posEmbed ? embed.add(posEmbed) : embed));
  const perPosition = noGrad(() => total.sum(1)).toList();
  const inputSum = sumOf(embed) + (posEmbed ? sumOf(posEmbed) : 0);
  return { embed, posEmbed, perPosition, conservation: conservation(s.item(), inputSum), biases, conservationWithBiases: conservation(s.item(), inputSum + biasSum) };
}
