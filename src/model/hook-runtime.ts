// The per-model state hook points consult during a forward pass: the known names and the hooks of
// the current call. When no hooks are active, a hook point costs one null check.
import { alias } from "../tensor/ops/movement.js";
import type { Tensor } from "../tensor/tensor.js";
import { fmt } from "../tensor/shape.js";
import { checkHookName, HookNameError, type HookName, type HookRegistry } from "./hooks.js";

export class HookRuntime {
  /** Every hook point this model has, in forward order. */
  readonly names: HookName[] = [];
  readonly known = new Set<string>();
  /** Hooks of the call in progress (null outside runWithHooks). */
  registry: HookRegistry | null = null;
  /** Sees every hook point's value after its hooks (set only while locating a non-finite value). */
  probe: ((name: HookName, x: Tensor) => void) | null = null;

  declare(name: HookName): HookName {
    if (!this.known.has(name)) { this.known.add(name); this.names.push(name); }
    return name;
  }

  check(name: string): asserts name is HookName { checkHookName(name, this.known); }

  /** True when a hook is registered at `name` (so optional activations are worth computing). */
  wants(name: HookName): boolean {
    const r = this.registry;
    return this.probe !== null || (r !== null && (r.fwd.has(name) || r.bwd.has(name)));
  }

  /** Pass x through the hook point `name`: forward hooks may replace it; backward hooks see its grad. */
  point(name: HookName, x: Tensor, layer?: number): Tensor {
    const r = this.registry;
    if (r === null) { this.probe?.(name, x); return x; }
    const f = r.fwd.get(name), b = r.bwd.get(name);
    if (!f && !b) { this.probe?.(name, x); return x; }
    const ctx = { name, layer };
    let y = x;
    if (f) for (const fn of f) {
      const out = fn(y, ctx);
      if (out) {
        if (!out.shapeEquals(y.shape)) throw new HookNameError(`hook at "${name}" returned shape ${fmt(out.shape)}, expected ${fmt(y.shape)}`);
        y = out.dtype === y.dtype ? out : out.cast(y.dtype);
      }
    }
    if (b) {
      // A distinct graph node, so the gradient seen is exactly d(metric)/d(this activation).
      y = alias(y);
      y.gradHooks = b.map((fn) => (g: Tensor) => fn(g, ctx));
    }
    this.probe?.(name, y);
    return y;
  }
}
