// Automated circuit discovery over the edge graph of graph.ts: score every edge (EAP, EAP-IG) or
// search edge by edge (ACDC), keep a circuit (top-n edges, |score| ≥ threshold, ACDC's τ, or by
// default the smallest top-n on the faithfulness curve that keeps `target` of the metric), prune
// dangling nodes, and measure the circuit alone (faithfulness.ts). discoverCircuit is the one call;
// the pieces are exported for finer use.
import type { HookedTransformer } from "../../model/transformer.js";
import { acdc, type AcdcCriterion } from "./acdc.js";
import { eapIgScores, eapScores } from "./eap.js";
import { curveCounts, faithfulness, faithfulnessCurve, type CurvePoint, type Faithfulness } from "./faithfulness.js";
import { pruneDangling, rankEdges, thresholdEdges, topNEdges, type EdgeGraph, type EdgeMask } from "./graph.js";
import { CircuitRunner, type CircuitTask } from "./run.js";
import { describeIllConditioned, type Conditioning } from "../conditioning.js";

export * from "./graph.js";
export { CircuitRunner, withSplitInputs, type CircuitTask } from "./run.js";
export { eapScores, eapIgScores } from "./eap.js";
export { acdc, type AcdcOptions, type AcdcResult, type AcdcCriterion } from "./acdc.js";
export { faithfulness, faithfulnessCurve, curveCounts, type Faithfulness, type CurvePoint } from "./faithfulness.js";

export type DiscoveryMethod = "eap" | "eap-ig" | "acdc";
export const DISCOVERY_METHODS: readonly DiscoveryMethod[] = ["eap", "eap-ig", "acdc"];

export interface DiscoverOptions extends CircuitTask {
  method: DiscoveryMethod;
  /** Keep the n edges with the largest |score| (EAP, EAP-IG). */
  topN?: number;
  /** EAP, EAP-IG: keep edges with |score| ≥ threshold. ACDC: τ (default 0.01 for KL, 0.02 for the metric criterion). */
  threshold?: number;
  /** EAP-IG's points on the input path (default 10). */
  steps?: number;
  /** ACDC's criterion (default "kl"). */
  criterion?: AcdcCriterion;
  /** Without topN or threshold, EAP and EAP-IG keep the smallest top-n on the curve whose faithfulness reaches this (default 0.8). */
  target?: number;
  /** Points on the faithfulness curve (default 16; 0 for none). */
  curvePoints?: number;
  onProgress?: (message: string) => void;
}

export interface CircuitEdge {
  name: string;
  from: string;
  to: string;
  score: number;
}

export interface DiscoveryResult {
  method: DiscoveryMethod;
  graph: EdgeGraph;
  /** One per edge of graph.edges: EAP / EAP-IG scores (metric units, estimated Δ metric when the edge is corrupted), or ACDC's observed Δ criterion. */
  scores: Float64Array;
  /** The circuit (1 = edge kept), after pruning dangling nodes. */
  mask: EdgeMask;
  /** The circuit's edges by decreasing |score|. */
  edges: CircuitEdge[];
  /** How the circuit was chosen, e.g. "top 12 edges" or "ACDC τ = 0.01 (kl)". */
  selection: string;
  faithfulness: Faithfulness;
  /** Faithfulness of the top-n edges by |score|, over n. */
  curve: CurvePoint[];
  cleanMetric: number;
  corruptedMetric: number;
  /** Whether clean − corrupted is ~0 (conditioning.ts): then faithfulness, the curve and a target-based selection are noise. */
  conditioning: Conditioning;
  /** Forward passes spent by ACDC (0 for EAP methods). */
  acdcTested: number;
  seconds: { scoring: number; total: number };
}

export function discoverCircuit(model: HookedTransformer, o: DiscoverOptions): DiscoveryResult {
  const t0 = performance.now();
  if (!DISCOVERY_METHODS.includes(o.method)) throw new RangeError(`discoverCircuit: method must be one of ${DISCOVERY_METHODS.join(", ")}, got "${String(o.method)}"`);
  if (o.topN !== undefined && o.threshold !== undefined) throw new RangeError("discoverCircuit: give topN or threshold, not both");
  if (o.method === "acdc" && o.topN !== undefined) throw new RangeError("discoverCircuit: ACDC chooses its own edges; give threshold (τ), not topN");
  const say = o.onProgress ?? (() => {});
  const runner = new CircuitRunner(model, o);
  const g = runner.graph, E = g.edges.length;
  if (o.topN !== undefined && (!Number.isInteger(o.topN) || o.topN < 0 || o.topN > E)) throw new RangeError(`discoverCircuit: topN must be an integer in [0, ${E}], got ${o.topN}`);
  say(`${g.senders.length} senders, ${g.receivers.length} receivers, ${E} edges; clean metric ${fmt(runner.cleanMetric)}, corrupted ${fmt(runner.corruptedMetric)}${runner.conditioning.illConditioned ? `; ${describeIllConditioned(runner.conditioning)}, so faithfulness is not meaningful` : ""}`);
  let scores: Float64Array, mask: EdgeMask | null = null, selection = "", acdcTested = 0;
  if (o.method === "acdc") {
    const criterion = o.criterion ?? "kl", tau = o.threshold ?? (criterion === "kl" ? 0.01 : 0.02);
    const r = acdc(runner, { threshold: tau, criterion, onEdge: (n, total) => { if (n % 50 === 0) say(`ACDC: ${n} edges tested of at most ${total}`); } });
    scores = r.scores; mask = r.mask; acdcTested = r.tested;
    selection = `ACDC τ = ${tau} (${criterion})`;
  } else {
    scores = o.method === "eap" ? eapScores(runner) : eapIgScores(runner, o.steps ?? 10);
    if (o.topN !== undefined) { mask = pruneDangling(g, topNEdges(scores, o.topN)); selection = `top ${o.topN} edges by |score|`; }
    else if (o.threshold !== undefined) { mask = pruneDangling(g, thresholdEdges(scores, o.threshold)); selection = `|score| ≥ ${o.threshold}`; }
  }
  const tScored = performance.now();
  const points = o.curvePoints ?? 16;
  const counts = points > 0 ? curveCounts(E, points) : [];
  const curve = faithfulnessCurve(runner, scores, counts);
  if (!mask) {
    // The smallest curve point keeping the target, refined by bisection between it and the point before it.
    const target = o.target ?? 0.8;
    let hi = curve.find((p) => p.normalized >= target)?.topN ?? E;
    let lo = curve.filter((p) => p.topN < hi).pop()?.topN ?? 0;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (faithfulness(runner, pruneDangling(g, topNEdges(scores, mid))).normalized >= target) hi = mid; else lo = mid;
    }
    const n = hi;
    mask = pruneDangling(g, topNEdges(scores, n));
    selection = `top ${n} edges by |score|: the fewest keeping ${target} of the metric`;
  }
  const f = faithfulness(runner, mask);
  say(`${selection}: ${f.edges} edges after pruning, faithfulness ${fmt(f.normalized)}`);
  const edges = rankEdges(scores).filter((i) => mask![i]).map((i) => {
    const e = g.edges[i]!;
    return { name: e.name, from: g.senders[e.from]!.name, to: g.receivers[e.to]!.name, score: scores[i]! };
  });
  const t1 = performance.now();
  return {
    method: o.method, graph: g, scores, mask, edges, selection, faithfulness: f, curve,
    cleanMetric: runner.cleanMetric, corruptedMetric: runner.corruptedMetric, conditioning: runner.conditioning, acdcTested,
    seconds: { scoring: (tScored - t0) / 1000, total: (t1 - t0) / 1000 },
  };
}

const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(4) : String(x));
