// Reverse-mode autodiff over a define-by-run graph.
//
// Ownership (the one memory rule): tensors are plain JS objects over GC-owned typed arrays, so
// nothing needs disposing. An op that takes a tensor requiring grad records a Node on its output,
// and that node keeps its inputs (and what its backward rule saved) alive. The graph therefore lives
// exactly as long as the output you hold, and backward() frees every node's saved values as it goes
// (pass retainGraph to keep them). Outside noGrad(), do not keep outputs of a finished step around:
// a long-lived reference keeps that step's graph alive. test/memory.test.ts pins this down.
import { Tensor } from "./tensor.js";
import { pin } from "./memory.js";
import { vjpRules, type Prim, type Saved } from "./vjp.js";

export interface Node<P extends Prim = Prim> {
  prim: P;
  inputs: Tensor[];
  saved: Saved[P];
  freed: boolean; // set by backward unless retainGraph
}

let gradEnabled = true;

export const isGradEnabled = (): boolean => gradEnabled;

/** Run fn without recording the graph (inference, optimizer steps, backward rules). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try { return fn(); } finally { gradEnabled = prev; }
}

/** Run fn with recording forced on or off. */
export function withGrad<T>(enabled: boolean, fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = enabled;
  try { return fn(); } finally { gradEnabled = prev; }
}

/** Attach a node to `out` if grad mode is on and some input requires grad. Returns out. */
export function record<P extends Prim>(prim: P, out: Tensor, inputs: Tensor[], saved: Saved[P]): Tensor {
  if (!gradEnabled) return out;
  let any = false;
  for (const t of inputs) if (t.requiresGrad) { any = true; break; }
  if (!any) return out;
  out.requiresGrad = true;
  out.node = { prim, inputs, saved, freed: false } as Node;
  return out;
}

/** Tensors reachable from root through nodes, in topological order (inputs before outputs). */
function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // Iterative DFS so a deep graph (long training loops of small ops) cannot overflow the stack.
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const [t, i] = top;
    const inputs = t.node?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const c = inputs[i]!;
      if (c.requiresGrad && !seen.has(c)) { seen.add(c); stack.push([c, 0]); }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order;
}

export interface BackwardOptions {
  /** Gradient of the root; defaults to ones (the root is usually a scalar). */
  gradOutput?: Tensor;
  /** Keep the graph's saved values so backward can run through it again. */
  retainGraph?: boolean;
}

function run(root: Tensor, want: Set<Tensor> | null, opts: BackwardOptions): Map<Tensor, Tensor> {
  if (!root.requiresGrad) throw new Error("backward: the output does not require grad (no input requires grad, or it was computed under noGrad)");
  const order = topoOrder(root);
  const grads = new Map<Tensor, Tensor>();
  const g0 = opts.gradOutput ?? root.onesLike();
  if (!g0.shapeEquals(root.shape)) throw new Error(`backward: gradOutput shape [${g0.shape}] differs from output [${root.shape}]`);
  grads.set(root, g0);
  noGrad(() => {
    for (let k = order.length - 1; k >= 0; k--) {
      const t = order[k]!;
      let g = grads.get(t);
      if (!g) continue;
      if (t.gradHooks) {
        for (const h of t.gradHooks) g = h(g) ?? g;
        grads.set(t, g);
      }
      const node = t.node;
      if (!node) continue;
      if (node.freed) throw new Error(`backward: the graph through "${node.prim}" was already freed; pass retainGraph: true to backward twice`);
      const rule = vjpRules[node.prim] as (g: Tensor, inputs: Tensor[], out: Tensor, saved: unknown) => (Tensor | null)[];
      const gs = rule(g, node.inputs, t, node.saved);
      for (let i = 0; i < node.inputs.length; i++) {
        const inp = node.inputs[i]!;
        let gi = gs[i];
        if (!gi || !inp.requiresGrad) continue;
        // Mixed-dtype ops (float32 leaf op float64) give float64 rules; a gradient keeps its tensor's dtype.
        if (gi.dtype !== inp.dtype) gi = gi.cast(inp.dtype);
        const prev = grads.get(inp);
        grads.set(inp, prev ? prev.add(gi) : gi);
      }
      // Intermediates' grads are no longer needed once propagated, unless asked for.
      if (!(want?.has(t) || t.retainsGrad)) grads.delete(t);
      if (!opts.retainGraph) { node.freed = true; node.saved = null as never; }
    }
  });
  return grads;
}

/**
 * Accumulate d(root)/d(t) into t.grad for every leaf t that requires grad (and every intermediate
 * that called retainGrad()).
 */
export function backward(root: Tensor, opts: BackwardOptions = {}): void {
  const grads = run(root, null, opts);
  const used = new Set<object>();
  for (const [t, g] of grads) {
    if (t.node && !t.retainsGrad) continue;
    // Each leaf gets its own contiguous gradient storage (a rule may hand the same tensor to two
    // inputs, as add does), so optimizers can read .data and nobody's in-place edit leaks.
    let gc = g.contiguous();
    if (used.has(gc.rawData) || gc.offset !== 0 || gc.rawData.length !== gc.size) gc = new Tensor(gc.data.slice(gc.offset, gc.offset + gc.size), gc.shape);
    used.add(gc.rawData);
    t.grad = t.grad ? noGrad(() => t.grad!.add(gc)) : gc;
    pin(t.grad); // a leaf's gradient outlives any scope() it was computed in
  }
}

/**
 * Gradients of root with respect to any tensors on its graph, leaves or intermediates (an
 * activation, say). Does not touch .grad. A tensor root does not depend on gets zeros.
 */
export function grad(root: Tensor, wrt: Tensor[], opts: BackwardOptions = {}): Tensor[] {
  const grads = run(root, new Set(wrt), opts);
  return wrt.map((t) => grads.get(t) ?? t.zerosLike());
}
