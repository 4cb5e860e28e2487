// ACDC, Automatic Circuit DisCovery (Conmy et al. 2023): start from the full graph and visit the
// receivers from the logits backwards (reverse topological order; within a receiver, its senders
// latest first). For each incoming edge, remove it tentatively (it then carries the corrupted value,
// see run.ts); if the circuit's distance from the clean model grows by less than τ, keep it removed.
// The distance is KL(clean model ‖ circuit) of the next-token distributions (ACDC's default), or with
// criterion "metric" the normalised metric, |Δ| < τ. A receiver whose node already feeds nothing
// loses its incoming edges without a test, and dangling nodes are pruned at the end. One forward pass
// per edge tested.
import { pruneDangling, fullCircuit, type EdgeMask } from "./graph.js";
import type { CircuitRunner } from "./run.js";
import { scope } from "../../tensor/memory.js";
import { noGrad } from "../../tensor/autodiff.js";

export type AcdcCriterion = "kl" | "metric";

export interface AcdcOptions {
  /** τ: an edge is removed when it changes the criterion by less than this. */
  threshold: number;
  /** "kl" (default): KL(clean ‖ circuit) may grow by < τ; "metric": |Δ normalised metric| < τ. */
  criterion?: AcdcCriterion;
  /** Called after every edge tested (progress). */
  onEdge?: (tested: number, total: number) => void;
}

export interface AcdcResult {
  /** The circuit found (after pruning dangling nodes). */
  mask: EdgeMask;
  /** For every edge tested: the change of the criterion when it was removed (KL increase, or Δ normalised metric); 0 if never tested. */
  scores: Float64Array;
  /** 1 for every edge tested (the others were pruned without a test). */
  testedEdges: Uint8Array;
  /** Edges tested (forward passes). */
  tested: number;
}

export function acdc(runner: CircuitRunner, opts: AcdcOptions): AcdcResult {
  const tau = opts.threshold, criterion = opts.criterion ?? "kl";
  if (!(tau >= 0) || !Number.isFinite(tau)) throw new RangeError(`acdc: threshold must be a finite number ≥ 0, got ${tau}`);
  if (criterion !== "kl" && criterion !== "metric") throw new RangeError(`acdc: criterion must be "kl" or "metric", got "${String(criterion)}"`);
  const g = runner.graph, R = g.receivers.length;
  const value = (m: EdgeMask) => scope(() => noGrad(() => {
    const logits = runner.logits(m);
    return criterion === "kl" ? runner.klToClean(logits) : runner.normalize(runner.metricOn(logits).item());
  }));
  const mask = fullCircuit(g), scores = new Float64Array(g.edges.length), testedEdges = new Uint8Array(g.edges.length);
  let cur = value(mask), tested = 0;
  const total = g.edges.length;
  // Receivers latest first; a stable sort keeps graph order within a layer.
  const order = g.receivers.map((_, i) => i).sort((a, b) => g.receivers[b]!.order - g.receivers[a]!.order || b - a);
  for (const r of order) {
    const incoming: number[] = [];
    for (let s = g.senders.length - 1; s >= 0; s--) { const e = g.edgeAt[s * R + r]!; if (e >= 0 && mask[e]) incoming.push(e); }
    if (incoming.length === 0) continue;
    // Edges that provably cannot matter (nothing downstream reads this node, or the sender's own inputs are all corrupted) go untested.
    const pruned = pruneDangling(g, mask);
    for (const e of incoming) {
      if (!pruned[e]) { mask[e] = 0; continue; }
      mask[e] = 0;
      const v = value(mask);
      tested++; testedEdges[e] = 1;
      const delta = v - cur;
      scores[e] = delta;
      if (criterion === "kl" ? delta < tau : Math.abs(delta) < tau) cur = v;
      else mask[e] = 1;
      opts.onEdge?.(tested, total);
    }
  }
  return { mask: pruneDangling(g, mask), scores, testedEdges, tested };
}
