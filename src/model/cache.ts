// ActivationCache: the activations of one forward pass by hook name, with the shapes documented
// below (TransformerLens's vocabulary). Tensors are detached copies-by-reference: the cache never
// keeps the autodiff graph alive.
//
//   hook_embed, hook_pos_embed, blocks.L.hook_resid_pre|mid|post, hook_attn_out, hook_mlp_out,
//   ln_final.hook_normalized ................................. [batch, pos, d_model]
//   blocks.L.ln1.hook_scale (and ln2, ln_final) ............... [batch, pos, 1]
//   blocks.L.attn.hook_q|k|v|z|rot_q|rot_k .................... [batch, pos, head_index, d_head]
//   blocks.L.attn.hook_attn_scores|pattern .................... [batch, head_index, query_pos, key_pos]
//   blocks.L.attn.hook_result ................................. [batch, pos, head_index, d_model]
//   blocks.L.mlp.hook_pre|pre_linear|post ..................... [batch, pos, d_mlp]
import type { Tensor } from "../tensor/tensor.js";
import { checkHookName, type HookName } from "./hooks.js";

export class ActivationCache {
  constructor(private readonly acts: Map<HookName, Tensor>, private readonly known: ReadonlySet<string>) {}

  /** The activation at a hook point; a clear error if the name is unknown or was not cached. */
  get(name: HookName): Tensor {
    const t = this.acts.get(name);
    if (t) return t;
    checkHookName(name, this.known);
    throw new Error(`activation "${name}" was not cached (it was filtered out, or the model has no such activation in this run)`);
  }

  has(name: HookName): boolean { return this.acts.has(name); }
  get names(): HookName[] { return [...this.acts.keys()]; }
  get size(): number { return this.acts.size; }
  entries(): IterableIterator<[HookName, Tensor]> { return this.acts.entries(); }
}
