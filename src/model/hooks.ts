// Hook points: a named identity in the forward pass where a hook may read, replace or edit the
// activation (TransformerLens's HookPoint). Names are TransformerLens's, typed as template literals
// so a misspelt name fails to compile; at run time an unknown name is an error listing near matches.
import type { Tensor } from "../tensor/tensor.js";

/** Hook points inside one block, relative to `blocks.{layer}.`. */
export type BlockHookName =
  | "hook_resid_pre" | "hook_resid_mid" | "hook_resid_post" | "hook_attn_out" | "hook_mlp_out"
  | "ln1.hook_scale" | "ln1.hook_normalized" | "ln2.hook_scale" | "ln2.hook_normalized"
  | "ln1_post.hook_scale" | "ln1_post.hook_normalized" | "ln2_post.hook_scale" | "ln2_post.hook_normalized"
  | "attn.q_norm.hook_scale" | "attn.q_norm.hook_normalized" | "attn.k_norm.hook_scale" | "attn.k_norm.hook_normalized"
  | "attn.hook_q" | "attn.hook_k" | "attn.hook_v" | "attn.hook_rot_q" | "attn.hook_rot_k"
  | "attn.hook_attn_scores" | "attn.hook_pattern" | "attn.hook_z" | "attn.hook_result"
  | "mlp.hook_pre" | "mlp.hook_pre_linear" | "mlp.hook_post"
  | "hook_q_input" | "hook_k_input" | "hook_v_input" | "hook_mlp_in";

export type HookName =
  | "hook_embed" | "hook_pos_embed" | "ln_final.hook_scale" | "ln_final.hook_normalized"
  | `blocks.${number}.${BlockHookName}`;

/** Build `blocks.{layer}.{name}` with its type. */
export const blockHook = <N extends BlockHookName>(layer: number, name: N) => `blocks.${layer}.${name}` as `blocks.${number}.${N}`;
export type AttnAct = "q" | "k" | "v" | "rot_q" | "rot_k" | "attn_scores" | "pattern" | "z" | "result";
export const attnHook = (layer: number, act: AttnAct) => `blocks.${layer}.attn.hook_${act}` as const;
export const residHook = (layer: number, where: "pre" | "mid" | "post") => `blocks.${layer}.hook_resid_${where}` as const;
export const mlpHook = (layer: number, act: "pre" | "pre_linear" | "post") => `blocks.${layer}.mlp.hook_${act}` as const;

export interface HookContext {
  /** The hook point's full name. */
  name: HookName;
  /** The block index for `blocks.*` hook points. */
  layer: number | undefined;
}

/** A forward hook: return a tensor to replace the activation (same shape), or nothing to keep it. */
export type ForwardHook = (activation: Tensor, ctx: HookContext) => Tensor | void;
/** A backward hook: sees d(output)/d(activation); may return a replacement gradient. */
export type BackwardHook = (grad: Tensor, ctx: HookContext) => Tensor | void;

/** Which hook points a hook or cache applies to: one name, several, or a predicate. */
export type NamesFilter = HookName | readonly HookName[] | ((name: HookName) => boolean);

export class HookNameError extends Error {
  override name = "HookNameError";
}

export function matchesFilter(filter: NamesFilter | undefined, name: HookName): boolean {
  if (filter === undefined) return true;
  if (typeof filter === "function") return filter(name);
  if (typeof filter === "string") return filter === name;
  return filter.includes(name);
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]!;
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length]!;
}

/** Throw a HookNameError naming up to three known names closest to an unknown one. */
export function checkHookName(name: string, known: ReadonlySet<string>): asserts name is HookName {
  if (known.has(name)) return;
  const near = [...known].map((k) => [k, editDistance(name, k)] as const).sort((x, y) => x[1] - y[1]).slice(0, 3).map(([k]) => `"${k}"`);
  throw new HookNameError(`unknown hook point "${name}"; did you mean ${near.join(", ")}?`);
}

/**
 * The hooks active during one call. Held by the model only for the duration of runWithHooks (and
 * always cleared in finally), so hooks never leak into later calls.
 */
export class HookRegistry {
  readonly fwd = new Map<string, ForwardHook[]>();
  readonly bwd = new Map<string, BackwardHook[]>();

  get empty(): boolean { return this.fwd.size === 0 && this.bwd.size === 0; }

  addForward(name: HookName, fn: ForwardHook): void { push(this.fwd, name, fn); }
  addBackward(name: HookName, fn: BackwardHook): void { push(this.bwd, name, fn); }
}

function push<T>(m: Map<string, T[]>, k: string, v: T): void {
  const l = m.get(k);
  if (l) l.push(v); else m.set(k, [v]);
}

/** TransformerLens's short layer types (utils.get_act_name's layer_type_alias). */
const LAYER_TYPE_ALIAS: Record<string, string> = { a: "attn", m: "mlp", b: "", block: "", blocks: "", attention: "attn" };
/** TransformerLens's short activation names (utils.get_act_name's act_name_alias). */
const ACT_NAME_ALIAS: Record<string, string> = {
  attn: "pattern", attn_logits: "attn_scores", key: "k", query: "q", value: "v", mlp_pre: "pre", mlp_mid: "mid", mlp_post: "post",
};
const ATTN_ACTS = new Set(["k", "v", "q", "z", "rot_k", "rot_q", "result", "pattern", "attn_scores"]);
const MLP_ACTS = new Set(["pre", "post", "mid", "pre_linear"]);

/**
 * A full hook name from TransformerLens's shorthand, as utils.get_act_name: getActName("pattern", 1)
 * is "blocks.1.attn.hook_pattern", ("resid_pre", 3) "blocks.3.hook_resid_pre", ("pre", 2)
 * "blocks.2.mlp.hook_pre", ("scale", 0, "ln1") "blocks.0.ln1.hook_scale", ("scale") "ln_final.hook_scale",
 * ("embed") "hook_embed", and the compact forms "k6" / "scale4ln1". A full name is returned as given.
 * The result is not checked against a model here; the cache and hooks check it where it is used.
 */
export function getActName(name: string, layer?: number, layerType?: string): HookName {
  if ((name.includes(".") || name.startsWith("hook_")) && layer === undefined && layerType === undefined) return name as HookName;
  const m = /^([a-z]+)(\d+)([a-z]?.*)$/.exec(name);
  if (m) { name = m[1]!; layer = Number(m[2]); layerType = m[3] || undefined; }
  if (layer !== undefined && !(Number.isInteger(layer) && layer >= 0)) throw new HookNameError(`getActName: layer must be a non-negative integer, got ${layer}`);
  name = ACT_NAME_ALIAS[name] ?? name;
  let type = layerType;
  if (ATTN_ACTS.has(name)) type = "attn";
  else if (MLP_ACTS.has(name)) type = "mlp";
  else if (type !== undefined && type in LAYER_TYPE_ALIAS) type = LAYER_TYPE_ALIAS[type];
  let full = (layer !== undefined ? `blocks.${layer}.` : "") + (type ? `${type}.` : "") + `hook_${name}`;
  if ((name === "scale" || name === "normalized") && layer === undefined) full = `ln_final.${full}`;
  return full as HookName;
}
