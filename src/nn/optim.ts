// Optimizers over parameter groups (SGD with momentum, AdamW) and gradient-norm clipping, with the
// semantics of torch.optim so results can be checked against it. Updates write parameter storage in
// place and bump `version`, which is how linear()'s packed-weight cache learns a weight changed.
//
// Gradients are only ever read, never written: backward can hand two leaves the same gradient
// tensor (the rule for a + b returns g for both), so an in-place write to one .grad could change
// another. clipGradNorm therefore replaces .grad with a scaled copy.
import { scope } from "../tensor/memory.js";
import { Tensor } from "../tensor/tensor.js";
import { noGrad } from "../tensor/autodiff.js";
import { fmt } from "../tensor/shape.js";
import { kernelsFor } from "../backend/registry.js";

type FloatArray = Float32Array | Float64Array;
export type Hyper = Record<string, number | boolean>;

/** Parameters sharing hyperparameters; fields left out take the optimizer's defaults. */
export type ParamGroupInput<H extends Hyper> = { params: Tensor[] } & Partial<H>;
export type ParamGroup<H extends Hyper> = { params: Tensor[] } & H;

/** Per-parameter state: its own step count (a parameter without a grad does not advance) and buffers. */
export interface ParamState {
  step: number;
  buffers: Record<string, FloatArray>;
}

/**
 * Everything needed to resume exactly: hyperparameters per group, and per parameter (flat index in
 * group order, as torch numbers them) its step and buffers. Buffers are copies.
 */
export interface OptimizerStateDict<H extends Hyper = Hyper> {
  kind: string; // "AdamW" | "SGD"
  steps: number; // step() calls so far
  groups: { hyper: H; size: number }[];
  state: (ParamState | null)[];
}

export abstract class Optimizer<H extends Hyper & { lr: number }> {
  readonly groups: ParamGroup<H>[];
  /** step() calls so far; handy as the argument of an LR schedule. */
  steps = 0;
  protected readonly state = new Map<Tensor, ParamState>();
  abstract readonly kind: string;
  /** What is wrong with a group's hyperparameters ("beta1 = 1 must be in [0, 1)"), or null. */
  protected abstract hyperProblem(h: H): string | null;

  constructor(params: Tensor[] | ParamGroupInput<H>[], defaults: H) {
    if (params.length === 0) throw new Error("optimizer: got an empty parameter list");
    const inputs: ParamGroupInput<H>[] = params[0] instanceof Tensor
      ? [{ params: params as Tensor[] } as ParamGroupInput<H>]
      : (params as ParamGroupInput<H>[]);
    const seen = new Set<Tensor>();
    this.groups = inputs.map((g, gi) => {
      for (const p of g.params) {
        if (seen.has(p)) throw new Error(`optimizer: a parameter${p.name ? ` ("${p.name}")` : ""} appears twice (group ${gi})`);
        seen.add(p);
        if (p.node) throw new Error(`optimizer: parameter${p.name ? ` "${p.name}"` : ""} is not a leaf tensor`);
        if (p.dtype === "int32") throw new TypeError(`optimizer: parameter${p.name ? ` "${p.name}"` : ""} is int32; only float32 and float64 can be optimized`);
        // In-place updates write p.data from p.offset on, which needs gap-free storage.
        if (!p.isContiguous) throw new Error(`optimizer: parameter${p.name ? ` "${p.name}"` : ""} ${fmt(p.shape)} is not contiguous`);
      }
      // A field given as undefined takes the default rather than erasing it.
      const given = Object.fromEntries(Object.entries(g).filter(([k, v]) => k !== "params" && v !== undefined));
      return { ...defaults, ...given, params: [...g.params] } as ParamGroup<H>;
    });
  }

  /** Set every group's learning rate (call before step() with a schedule's value). */
  setLr(lr: number): void {
    for (const g of this.groups) (g as { lr: number }).lr = lr;
  }

  /** Drop the gradients of every parameter this optimizer updates. */
  zeroGrad(): void {
    for (const g of this.groups) for (const p of g.params) p.grad = null;
  }

  /** Update every parameter that has a gradient, in place. */
  step(): void {
    this.steps++;
    for (const g of this.groups) {
      for (const p of g.params) {
        if (!p.grad) continue;
        const grad = gradData(p);
        let st = this.state.get(p);
        if (!st) { st = { step: 0, buffers: {} }; this.state.set(p, st); }
        st.step++;
        this.update(paramData(p), grad, st, g);
        p.version++;
      }
    }
  }

  /** Apply one update to p (contiguous, this parameter's dtype) from its gradient g. */
  protected abstract update(p: FloatArray, g: FloatArray, st: ParamState, group: ParamGroup<H>): void;

  stateDict(): OptimizerStateDict<H> {
    const state: (ParamState | null)[] = [];
    for (const g of this.groups) for (const p of g.params) {
      const st = this.state.get(p);
      state.push(st ? { step: st.step, buffers: copyBuffers(st.buffers) } : null);
    }
    const groups = this.groups.map(({ params, ...hyper }) => ({ hyper: { ...hyper } as unknown as H, size: params.length }));
    return { kind: this.kind, steps: this.steps, groups, state };
  }

  /** Restore from stateDict() of an optimizer built over the same parameters in the same order. */
  loadStateDict(sd: OptimizerStateDict<H>): void {
    if (sd.kind !== this.kind) throw new Error(`loadStateDict: state is for ${sd.kind}, this optimizer is ${this.kind}`);
    if (sd.groups.length !== this.groups.length) throw new Error(`loadStateDict: state has ${sd.groups.length} parameter groups, optimizer has ${this.groups.length}`);
    sd.groups.forEach((sg, i) => {
      const n = this.groups[i]!.params.length;
      if (sg.size !== n) throw new Error(`loadStateDict: group ${i} has ${sg.size} parameters in the state, ${n} in the optimizer`);
      const bad = this.hyperProblem({ ...this.groups[i]!, ...sg.hyper });
      if (bad) throw new Error(`loadStateDict: group ${i}: ${bad}`);
    });
    if (!isCount(sd.steps)) throw new Error(`loadStateDict: steps = ${sd.steps} must be an integer >= 0`);
    const flat = this.groups.flatMap((g) => g.params);
    if (sd.state.length !== flat.length) throw new Error(`loadStateDict: state covers ${sd.state.length} parameters, optimizer has ${flat.length}`);
    // Check everything before changing anything, so a bad state leaves the optimizer as it was.
    sd.state.forEach((st, i) => {
      if (!st) return;
      const who = `parameter ${i}${flat[i]!.name ? ` ("${flat[i]!.name}")` : ""}`;
      if (!isCount(st.step)) throw new Error(`loadStateDict: ${who} has step ${st.step}; it must be an integer >= 0`);
      for (const [name, buf] of Object.entries(st.buffers)) {
        if (buf.length !== flat[i]!.size) throw new Error(`loadStateDict: ${who} buffer "${name}" has ${buf.length} elements, expected ${flat[i]!.size}`);
        const j = buf.findIndex((v) => !Number.isFinite(v));
        if (j >= 0) throw new Error(`loadStateDict: ${who} buffer "${name}" holds ${buf[j]} at element ${j}`);
      }
    });
    this.state.clear();
    sd.state.forEach((st, i) => {
      if (!st) return;
      const p = flat[i]!;
      const buffers: Record<string, FloatArray> = {};
      // Buffers live in the parameter's dtype, whatever the saved one.
      for (const [name, buf] of Object.entries(st.buffers)) buffers[name] = p.dtype === "float64" ? Float64Array.from(buf) : Float32Array.from(buf);
      this.state.set(p, { step: st.step, buffers });
    });
    sd.groups.forEach((sg, i) => Object.assign(this.groups[i]!, sg.hyper));
    this.steps = sd.steps;
  }
}

const isCount = (n: unknown): boolean => typeof n === "number" && Number.isInteger(n) && n >= 0;
const finite = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

/** The first of checks that fails, as "name = value must be …", or null. */
function firstProblem(h: Hyper, checks: readonly [string, (v: number) => boolean, string][]): string | null {
  for (const [k, ok, rule] of checks) { const v = h[k]; if (!finite(v) || !ok(v)) return `${k} = ${String(v)} must be ${rule}`; }
  return null;
}

const copyBuffers = (b: Record<string, FloatArray>): Record<string, FloatArray> =>
  Object.fromEntries(Object.entries(b).map(([k, v]) => [k, v.slice()]));

/** p's elements, a view of its storage (contiguity checked at construction). */
function paramData(p: Tensor): FloatArray {
  return p.data.subarray(p.offset, p.offset + p.size) as FloatArray;
}

/** p.grad's elements as a contiguous array of p's dtype (a view when possible). */
function gradData(p: Tensor): FloatArray {
  const g = p.grad!;
  if (!g.shapeEquals(p.shape)) throw new Error(`optimizer: gradient of${p.name ? ` "${p.name}"` : " a parameter"} has shape ${fmt(g.shape)}, parameter has ${fmt(p.shape)}`);
  const gc = noGrad(() => (g.dtype === p.dtype ? g : g.cast(p.dtype)).contiguous());
  return gc.data.subarray(gc.offset, gc.offset + gc.size) as FloatArray;
}

function buffer(st: ParamState, name: string, like: FloatArray): FloatArray {
  return (st.buffers[name] ??= like instanceof Float64Array ? new Float64Array(like.length) : new Float32Array(like.length));
}

// ---- SGD ----------------------------------------------------------------------------------------

export type SGDHyper = { lr: number; momentum: number; dampening: number; weightDecay: number; nesterov: boolean };

/**
 * torch.optim.SGD: d = g + wd·p; with momentum, buf = d on the first step and
 * buf = μ·buf + (1 − dampening)·d after; d = nesterov ? d + μ·buf : buf; p ← p − lr·d.
 */
export class SGD extends Optimizer<SGDHyper> {
  readonly kind = "SGD";

  constructor(params: Tensor[] | ParamGroupInput<SGDHyper>[], opts: Partial<SGDHyper> & { lr: number }) {
    super(params, { momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, ...opts });
    for (const g of this.groups) if (g.nesterov && (g.momentum <= 0 || g.dampening !== 0))
      throw new Error("SGD: nesterov needs momentum > 0 and dampening 0");
    this.groups.forEach((g, i) => { const bad = this.hyperProblem(g); if (bad) throw new Error(`SGD: group ${i}: ${bad}`); });
  }

  protected hyperProblem(h: SGDHyper): string | null {
    return firstProblem(h, [["lr", (v) => v >= 0, "finite and >= 0"], ["momentum", (v) => v >= 0, "finite and >= 0"], ["dampening", () => true, "finite"], ["weightDecay", () => true, "finite"]]);
  }

  protected update(p: FloatArray, g: FloatArray, st: ParamState, { lr, momentum: mu, dampening, weightDecay: wd, nesterov }: SGDHyper): void {
    const first = st.buffers.momentum_buffer === undefined;
    const buf = mu !== 0 ? buffer(st, "momentum_buffer", p) : null;
    for (let i = 0; i < p.length; i++) {
      let d = g[i]! + wd * p[i]!;
      if (buf) {
        buf[i] = first ? d : mu * buf[i]! + (1 - dampening) * d;
        d = nesterov ? d + mu * buf[i]! : buf[i]!;
      }
      p[i] = p[i]! - lr * d;
    }
  }
}

// ---- AdamW --------------------------------------------------------------------------------------

export type AdamWHyper = { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number };

/**
 * AdamW (Loshchilov & Hutter 2019) as torch.optim.AdamW: p ← p − lr·wd·p, then
 * m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g², p ← p − lr·(m/(1−β1^t)) / (sqrt(v/(1−β2^t)) + eps),
 * with t this parameter's step. Defaults are torch's (lr 1e-3, betas 0.9/0.999, eps 1e-8, wd 0.01);
 * put biases and norm weights in a group with weightDecay 0.
 */
export class AdamW extends Optimizer<AdamWHyper> {
  readonly kind = "AdamW";

  constructor(params: Tensor[] | ParamGroupInput<AdamWHyper>[], opts: Partial<AdamWHyper> = {}) {
    super(params, { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, ...opts });
    this.groups.forEach((g, i) => { const bad = this.hyperProblem(g); if (bad) throw new Error(`AdamW: group ${i}: ${bad}`); });
  }

  /** As torch.optim.AdamW checks them, with eps > 0 (eps = 0 divides 0 by 0 where v and m are 0). */
  protected hyperProblem(h: AdamWHyper): string | null {
    const beta = (v: number) => v >= 0 && v < 1;
    return firstProblem(h, [
      ["lr", (v) => v >= 0, "finite and >= 0"], ["beta1", beta, "in [0, 1)"], ["beta2", beta, "in [0, 1)"],
      ["eps", (v) => v > 0, "finite and > 0"], ["weightDecay", () => true, "finite"],
    ]);
  }

  protected update(p: FloatArray, g: FloatArray, st: ParamState, { lr, beta1, beta2, eps, weightDecay }: AdamWHyper): void {
    const m = buffer(st, "exp_avg", p), v = buffer(st, "exp_avg_sq", p);
    if (p instanceof Float32Array) {
      // float32 runs on the active backend's fused kernel.
      kernelsFor("float32").adamw(p, g as Float32Array, m as Float32Array, v as Float32Array, p.length, lr, beta1, beta2, eps, weightDecay, st.step);
      return;
    }
    // float64: the same update as the kernel contract (backend/kernels.ts), in plain TypeScript.
    const bc1 = 1 - Math.pow(beta1, st.step), bc2 = 1 - Math.pow(beta2, st.step);
    for (let i = 0; i < p.length; i++) {
      const gi = g[i]!;
      const mi = (m[i] = beta1 * m[i]! + (1 - beta1) * gi);
      const vi = (v[i] = beta2 * v[i]! + (1 - beta2) * gi * gi);
      p[i] = p[i]! - lr * (mi / bc1 / (Math.sqrt(vi / bc2) + eps) + weightDecay * p[i]!);
    }
  }
}

// ---- clipping -----------------------------------------------------------------------------------

/**
 * Scale all gradients together so their joint norm is at most maxNorm, as
 * torch.nn.utils.clip_grad_norm_: coef = maxNorm / (total + 1e-6), applied when below 1. Returns the
 * total norm before clipping (normType 2 by default; Infinity for the max-abs norm). Parameters
 * without a gradient are skipped. A non-finite norm is returned as is and makes the grads non-finite,
 * as in torch with error_if_nonfinite=False.
 */
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number, normType = 2): number {
  const ps = [...params].filter((p) => p.grad);
  let acc = 0;
  for (const p of ps) {
    // The L2 case (the common one) runs as backend kernels; other norms loop in JS.
    if (normType === 2) { acc += noGrad(() => scope(() => p.grad!.square().sum().item())); continue; }
    const g = noGrad(() => p.grad!.contiguous()).toArray();
    if (normType === Infinity) for (let i = 0; i < g.length; i++) acc = Math.max(acc, Math.abs(g[i]!));
    else for (let i = 0; i < g.length; i++) acc += Math.pow(Math.abs(g[i]!), normType);
  }
  const total = normType === Infinity ? acc : normType === 2 ? Math.sqrt(acc) : Math.pow(acc, 1 / normType);
  const coef = maxNorm / (total + 1e-6);
  // Replace rather than scale in place: .grad tensors may be shared between parameters (see header).
  if (!(coef >= 1)) noGrad(() => { for (const p of ps) p.grad = p.grad!.mul(coef); });
  return total;
}
