// ActivationCache: the activations of one forward pass by hook name, with the shapes documented
// below (TransformerLens's vocabulary), plus TransformerLens's residual-stream decompositions
// (transformer_lens/ActivationCache.py): per-head results, per-component and accumulated residual
// stacks, applying the cached LayerNorm scale to a stack, and direct logit attribution.
// Tensors are detached: the cache never keeps the autodiff graph alive. It is not a loader or a
// file format; toMap()/fromMap() hand plain name → tensor maps to the io layer.
//
//   hook_embed, hook_pos_embed, blocks.L.hook_resid_pre|mid|post, hook_attn_out, hook_mlp_out,
//   ln_final.hook_normalized ................................. [batch, pos, d_model]
//   blocks.L.ln1.hook_scale (and ln2, ln_final) ............... [batch, pos, 1]
//   blocks.L.attn.hook_q|k|v|z|rot_q|rot_k .................... [batch, pos, head_index, d_head]
//     (hook_k|v|rot_k have n_key_value_heads heads under grouped-query attention)
//   blocks.L.attn.hook_attn_scores|pattern .................... [batch, head_index, query_pos, key_pos]
//   blocks.L.attn.hook_result ................................. [batch, pos, head_index, d_model]
//   blocks.L.mlp.hook_pre|pre_linear|post ..................... [batch, pos, d_mlp]
//   blocks.L.hook_q_input|k_input|v_input (use_split_qkv_input) [batch, pos, head_index, d_model]
//     (ln1.hook_scale|normalized then carry the head axis too, and hold the last of the three: v)
//   blocks.L.hook_mlp_in (use_hook_mlp_in) .................... [batch, pos, d_model]
//
// A stack is `{ components, labels }` with components [n_components, batch, pos, d_model] (or
// [n_components, batch, d_model] when a single `pos` was picked) and one label per component.
// Methods that need weights (W_O, b_O, the norms' w, W_U) read them from the model the cache was
// made with, at call time: process weights before caching, not after.
import { einsum } from "../tensor/ops/einsum.js";
import { concat, indexSelect, select, stack as stackOp } from "../tensor/ops/movement.js";
import { noGrad } from "../tensor/autodiff.js";
import { fmt, ShapeError } from "../tensor/shape.js";
import type { Tensor } from "../tensor/tensor.js";
import { blockHook, checkHookName, getActName, type BlockHookName, type HookName } from "./hooks.js";
import type { HookedTransformer } from "./transformer.js";

/** The parts of a model the cache reads: its config and weights (a HookedTransformer fits). */
export type CacheModel = Pick<HookedTransformer, "cfg" | "blocks" | "ln_final" | "unembed">;

/** Components [n_components, batch, pos, d_model] (or [n_components, batch, d_model]) with their labels. */
export interface ResidStack {
  components: Tensor;
  labels: string[];
}

/** Options shared by the stack builders: pick one position (the axis is dropped, as TransformerLens's int pos_slice). */
export interface PosOption {
  pos?: number;
}

/**
 * What logitAttrs projects onto: the unembedding column of a token (minus an incorrect token's, for
 * a logit difference), or any residual direction. Tokens are a number or an int tensor shaped like
 * the stack's [batch, pos] (or [batch] when a position was picked); a direction is [d_model] or
 * broadcastable to [batch, pos, d_model].
 */
export type LogitTarget =
  | { token: number | Tensor; incorrect?: number | Tensor }
  | { direction: Tensor };

export class CacheError extends Error {
  override name = "CacheError";
}

export class ActivationCache {
  constructor(
    private readonly acts: Map<HookName, Tensor>,
    private readonly known: ReadonlySet<string>,
    /** The model that produced the activations; needed by stackHeadResults, applyLnToStack and logitAttrs. */
    readonly model: CacheModel | null = null,
  ) {}

  /**
   * The activation at a hook point; a clear error if the name is unknown or was not cached. With a
   * layer, the name is TransformerLens's shorthand (cache["pattern", 1]): get("pattern", 1) is
   * get("blocks.1.attn.hook_pattern"), get("scale", 0, "ln1") is get("blocks.0.ln1.hook_scale"); see
   * getActName. Negative layers count from the end.
   */
  get(name: HookName): Tensor;
  get(name: string, layer?: number, layerType?: string): Tensor;
  get(short: string, layer?: number, layerType?: string): Tensor {
    const name = getActName(short, layer === undefined ? undefined : this.layerIndex(layer), layerType);
    const t = this.acts.get(name);
    if (t) return t;
    checkHookName(name, this.known);
    throw new CacheError(`activation "${name}" was not cached (it was filtered out, or the model has no such activation in this run)`);
  }

  /** The activation `blocks.{layer}.{name}`, e.g. at(3, "attn.hook_z"); negative layers count from the end. */
  at(layer: number, name: BlockHookName): Tensor {
    return this.get(blockHook(this.layerIndex(layer), name));
  }

  has(name: HookName): boolean { return this.acts.has(name); }
  get names(): HookName[] { return [...this.acts.keys()]; }
  get size(): number { return this.acts.size; }
  entries(): IterableIterator<[HookName, Tensor]> { return this.acts.entries(); }

  /** The activations as a plain name → tensor map (e.g. for a safetensors writer). Shares storage. */
  toMap(): Map<string, Tensor> {
    return new Map(this.acts);
  }

  /**
   * A cache from a name → tensor map (e.g. read from safetensors). With a model, every name must be
   * one of its hook points and the decomposition methods work; without, only lookups do.
   */
  static fromMap(map: ReadonlyMap<string, Tensor>, model?: CacheModel & Pick<HookedTransformer, "hookNames">): ActivationCache {
    const known = new Set<string>(model ? model.hookNames() : map.keys());
    const acts = new Map<HookName, Tensor>();
    for (const [name, t] of map) {
      checkHookName(name, known);
      acts.set(name, t.detach());
    }
    return new ActivationCache(acts, known, model ?? null);
  }

  /**
   * One activation of every block [0, layer) (all by default, as TransformerLens's layer = -1) stacked
   * on a new leading axis: stackActivation("pattern") is [n_layers, batch, head_index, query_pos,
   * key_pos], TransformerLens's stack_activation. Names are getActName's shorthand; layerType as there.
   */
  stackActivation(name: string, layer?: number, layerType?: string): Tensor {
    const end = this.layerEnd(layer);
    if (end === 0) throw new CacheError("stackActivation: layer 0 leaves no blocks to stack");
    const parts = Array.from({ length: end }, (_, l) => this.get(getActName(name, l, layerType)));
    return noGrad(() => stackOp(parts, 0));
  }

  // ---- residual-stream decompositions ------------------------------------------------------

  /**
   * Each head's output written into the residual stream, z_h @ W_O[h], for every head of layers
   * [0, layer) (all layers by default), labelled "L{l}H{h}". Uses hook_result when it was cached,
   * otherwise hook_z and the model's W_O. The sum over heads of one layer plus b_O is its attn_out.
   */
  stackHeadResults(layer?: number, opts: PosOption = {}): ResidStack {
    const m = this.needModel("stackHeadResults");
    // A norm after attention (Gemma 2/3, OLMo 2) is not linear in the heads: their outputs do not sum to attn_out.
    if (m.cfg.norm_placement !== "pre") throw new CacheError(`stackHeadResults: with norm_placement "${m.cfg.norm_placement}" (ln1_post after attention) per-head outputs do not add up to hook_attn_out`);
    const end = this.layerEnd(layer);
    const parts: Tensor[] = [], labels: string[] = [];
    noGrad(() => {
      for (let l = 0; l < end; l++) {
        const resName = blockHook(l, "attn.hook_result");
        const perHead = this.acts.has(resName)
          ? this.get(resName).permute(2, 0, 1, 3) // [head_index, batch, pos, d_model]
          : einsum("bphd,hdm->hbpm", this.at(l, "attn.hook_z"), castTo(m.blocks.at(l).attn.W_O, this.at(l, "attn.hook_z")));
        parts.push(perHead);
        for (let h = 0; h < m.cfg.n_heads; h++) labels.push(`L${l}H${h}`);
      }
    });
    return this.finish(parts, labels, opts, "stackHeadResults");
  }

  /**
   * The residual stream entering block `layer` (default: the final residual, after the last block)
   * split into what wrote it: "embed", "pos_embed" (if inclEmbeds, the default), then
   * "{l}_attn_out" and "{l}_mlp_out" per block. With mlpInput, the stream entering block `layer`'s
   * MLP instead: adds "{layer}_attn_out" (nothing for parallel attention+MLP, whose MLP reads
   * resid_pre). The components sum to that residual stream.
   */
  decomposeResid(layer?: number, opts: PosOption & { mlpInput?: boolean; inclEmbeds?: boolean } = {}): ResidStack {
    const end = this.layerEnd(layer);
    const cfg = this.model?.cfg;
    const parts: Tensor[] = [], labels: string[] = [];
    const add = (name: HookName, label: string) => { parts.push(this.get(name)); labels.push(label); };
    if (opts.inclEmbeds ?? true) {
      add("hook_embed", "embed");
      if (this.acts.has("hook_pos_embed") || (cfg && cfg.positional_embedding_type === "standard")) add("hook_pos_embed", "pos_embed");
    }
    for (let l = 0; l < end; l++) {
      add(blockHook(l, "hook_attn_out"), `${l}_attn_out`);
      if (this.hasMlp()) add(blockHook(l, "hook_mlp_out"), `${l}_mlp_out`);
    }
    if (opts.mlpInput) {
      if (end >= this.nLayers()) throw new CacheError(`decomposeResid: mlpInput needs a block index below n_layers = ${this.nLayers()}, got ${end}`);
      if (!this.hasMlp()) throw new CacheError("decomposeResid: mlpInput on a model without MLPs");
      if (!this.parallel()) add(blockHook(end, "hook_attn_out"), `${end}_attn_out`);
    }
    return this.finish(parts, labels, opts, "decomposeResid");
  }

  /**
   * The residual stream as it accumulates: "{l}_pre" for each block l <= layer (and "{l}_mid" with
   * inclMid), with "final_post" standing for the stream after the last block when layer is
   * n_layers (the default). With mlpInput, ends at block `layer`'s MLP input ("{layer}_mid").
   */
  accumulatedResid(layer?: number, opts: PosOption & { inclMid?: boolean; mlpInput?: boolean } = {}): ResidStack {
    const end = this.layerEnd(layer), n = this.nLayers();
    if (opts.inclMid && !this.hasMid()) throw new CacheError("accumulatedResid: this architecture has no hook_resid_mid (attention-only, or parallel attention+MLP)");
    const parts: Tensor[] = [], labels: string[] = [];
    for (let l = 0; l <= end; l++) {
      if (l === n) { parts.push(this.get(blockHook(n - 1, "hook_resid_post"))); labels.push("final_post"); continue; }
      parts.push(this.get(blockHook(l, "hook_resid_pre"))); labels.push(`${l}_pre`);
      // Parallel blocks' MLP reads resid_pre, so their "MLP input" is already the last entry.
      const mid = (opts.inclMid && l < end) || (opts.mlpInput && l === end && this.hasMid());
      if (mid) { parts.push(this.get(blockHook(l, "hook_resid_mid"))); labels.push(`${l}_mid`); }
    }
    return this.finish(parts, labels, opts, "accumulatedResid");
  }

  /**
   * What each component contributes after the norm that reads the stream: centred over d_model
   * (LayerNorm only), divided by the scale cached in the real forward pass (hook_scale of
   * ln_final by default, of block `layer`'s ln1 — ln2 with mlpInput — otherwise), times the norm's
   * weight w. The bias b is not a per-component term and is left out, so the results sum to the
   * norm's output minus b. After weight processing w = 1 and b = 0, and this is exactly
   * TransformerLens's apply_ln_to_stack. Models without normalisation return the stack unchanged.
   */
  applyLnToStack(stack: ResidStack, layer?: number, opts: PosOption & { mlpInput?: boolean } = {}): ResidStack {
    const m = this.needModel("applyLnToStack");
    const end = this.layerEnd(layer), n = this.nLayers();
    const norm = end === n ? m.ln_final : opts.mlpInput ? m.blocks.at(end).ln2 : m.blocks.at(end).ln1;
    if (!norm || m.cfg.normalization_type === null) return stack;
    const scaleName: HookName = end === n ? "ln_final.hook_scale" : blockHook(end, opts.mlpInput ? "ln2.hook_scale" : "ln1.hook_scale");
    if (!this.acts.has(scaleName)) throw new CacheError(`applyLnToStack: "${scaleName}" was not cached; run runWithCache with it included`);
    let scale = this.get(scaleName); // [batch, pos, 1]
    const x = stack.components;
    const want = opts.pos === undefined ? 4 : 3;
    if (x.ndim !== want) throw new ShapeError(`applyLnToStack: stack ${fmt(x.shape)} should be ${opts.pos === undefined ? "[n_components, batch, pos, d_model]" : "[n_components, batch, d_model] (pos was given)"}; pass the same pos the stack was built with`);
    if (opts.pos !== undefined) {
      checkPos(scale.shape[1]!, opts.pos, "applyLnToStack");
      scale = select(scale, 1, opts.pos); // [batch, 1]
    }
    const components = noGrad(() => {
      const centred = m.cfg.normalization_type === "LN" ? x.sub(x.mean(-1, true)) : x;
      return centred.div(castTo(scale, x)).mul(castTo(norm.w, x));
    });
    return { components, labels: stack.labels };
  }

  /**
   * Direct logit attribution: each component of a stack (usually already through applyLnToStack)
   * dotted with the unembedding direction of a token, W_U[:, token] (minus W_U[:, incorrect] for a
   * logit difference), or with a given direction. Returns components [n_components, batch, pos]
   * (or [n_components, batch]). For a full decomposition through applyLnToStack they sum to the
   * logit minus (ln_final.b · W_U[:, token] + b_U[token]): the two constant terms no component owns.
   * Unlike TransformerLens's logit_attrs, this does not apply the final norm itself: pass
   * applyLnToStack(stack) for logits (explicit, and a raw stack works for directions, e.g. probes).
   */
  logitAttrs(stack: ResidStack, target: LogitTarget, opts: PosOption = {}): ResidStack {
    const x = stack.components;
    const lead = x.shape.slice(1, -1); // [batch, pos] or [batch]
    const components = noGrad(() => {
      let dir: Tensor;
      if ("direction" in target) dir = castTo(target.direction, x);
      else {
        const W_U = this.needModel("logitAttrs").unembed.W_U; // [d_model, d_vocab]
        const col = (t: number | Tensor) => castTo(this.unembedColumns(W_U, t, lead, opts.pos), x);
        dir = col(target.token);
        if (target.incorrect !== undefined) dir = dir.sub(col(target.incorrect));
      }
      return x.mul(dir).sum(-1);
    });
    return { components, labels: stack.labels };
  }

  // ---- helpers -----------------------------------------------------------------------------

  /** W_U columns for tokens: [d_model] for one id, [...tokens.shape, d_model] for a tensor. */
  private unembedColumns(W_U: Tensor, t: number | Tensor, lead: number[], pos: number | undefined): Tensor {
    if (typeof t === "number") return select(W_U, 1, t);
    let ids = t;
    // Tokens given per position with a picked pos: take that position's token.
    if (pos !== undefined && ids.ndim === lead.length + 1) ids = select(ids, 1, pos);
    if (ids.ndim > lead.length || ids.shape.some((d, i) => d !== 1 && d !== lead[i]))
      throw new ShapeError(`logitAttrs: tokens ${fmt(ids.shape)} do not fit the stack's ${pos === undefined ? "[batch, pos]" : "[batch]"} = ${fmt(lead)}`);
    return indexSelect(W_U.T, 0, ids); // [...tokens, d_model]
  }

  private finish(parts: Tensor[], labels: string[], opts: PosOption, op: string): ResidStack {
    if (parts.length === 0) throw new CacheError(`${op}: no components (layer 0 with inclEmbeds: false?)`);
    const components = noGrad(() => {
      // Head results already carry a leading component axis; residual activations get one.
      const stacked = op === "stackHeadResults" ? concat(parts, 0) : stackOp(parts, 0); // [n_components, batch, pos, d_model]
      if (opts.pos === undefined) return stacked;
      checkPos(stacked.shape[2]!, opts.pos, op);
      return select(stacked, 2, opts.pos); // [n_components, batch, d_model]
    });
    return { components, labels };
  }

  private needModel(op: string): CacheModel {
    if (!this.model) throw new CacheError(`${op} needs the model's weights; this cache has none (pass the model to ActivationCache.fromMap)`);
    return this.model;
  }

  private nLayers(): number {
    if (this.model) return this.model.cfg.n_layers;
    let n = 0;
    for (const name of this.acts.keys()) {
      const m = /^blocks\.(\d+)\./.exec(name);
      if (m) n = Math.max(n, Number(m[1]) + 1);
    }
    return n;
  }

  private hasMlp(): boolean {
    return this.model ? !this.model.cfg.attn_only : this.acts.has(blockHook(0, "hook_mlp_out"));
  }

  private parallel(): boolean {
    return this.model ? this.model.cfg.parallel_attn_mlp : !this.acts.has(blockHook(0, "hook_resid_mid"));
  }

  private hasMid(): boolean { return this.hasMlp() && !this.parallel(); }

  private layerIndex(layer: number): number {
    const n = this.nLayers();
    const l = layer < 0 ? layer + n : layer;
    if (!Number.isInteger(l) || l < 0 || l >= n) throw new RangeError(`layer ${layer} out of range for n_layers = ${n}`);
    return l;
  }

  /** TransformerLens's `layer` argument: blocks [0, layer) take part; undefined or -1 means all (n_layers). */
  private layerEnd(layer: number | undefined): number {
    const n = this.nLayers();
    if (layer === undefined || layer === -1) return n;
    if (!Number.isInteger(layer) || layer < 0 || layer > n) throw new RangeError(`layer ${layer} out of range [0, n_layers = ${n}]`);
    return layer;
  }
}

function checkPos(T: number, pos: number, op: string): void {
  if (!Number.isInteger(pos) || pos < -T || pos >= T) throw new RangeError(`${op}: pos ${pos} out of range for ${T} positions`);
}

/** t in the dtype of like (weights may be float32 while a stack was made float64, or vice versa). */
function castTo(t: Tensor, like: Tensor): Tensor {
  return t.dtype === like.dtype ? t : t.cast(like.dtype);
}
