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
