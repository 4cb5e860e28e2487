// The computational graph circuit discovery works on (Conmy et al. 2023, ACDC; Syed et al. 2023, EAP;
// Hanna et al. 2024, EAP-IG): the residual stream read as a sum of node outputs, so every node's input
// is the sum of the outputs of the nodes before it. Senders (upstream nodes): the input (embedding +
// positional embedding), every attention head's output (its z W_O, hook_result), every MLP's output.
// Receivers (downstream nodes): every head's query, key and value inputs (with grouped-query
// attention, one key and one value input per key/value head), every MLP's input, and the logits (the
// final residual stream). An edge sender → receiver exists when the sender comes before the receiver.
// A circuit is a subset of edges, held as a 0/1 mask over `edges`. This file is pure bookkeeping:
// running a circuit lives in run.ts, scoring in eap.ts / acdc.ts.
import type { ModelConfig } from "../../model/config.js";

export type Sender =
  | { kind: "input"; name: string; order: number }
  | { kind: "head"; name: string; order: number; layer: number; head: number }
  | { kind: "mlp"; name: string; order: number; layer: number };

export type Receiver =
  | { kind: "head"; name: string; order: number; layer: number; head: number; input: "q" | "k" | "v" }
  | { kind: "mlp"; name: string; order: number; layer: number }
  | { kind: "logits"; name: string; order: number };

export interface Edge {
  /** Index into senders / receivers. */
  from: number;
  to: number;
  /** "a0.h1->a1.h0<k>" (ACDC's names: a = attention head, m = MLP, <q|k|v> = which input). */
  name: string;
}

export interface EdgeGraph {
  senders: Sender[];
  receivers: Receiver[];
  edges: Edge[];
  /** edgeAt[s * receivers.length + r]: the index of edge s → r, or -1 where there is none. */
  edgeAt: Int32Array;
  n_layers: number;
}

/**
 * The edge graph of a model's config. Order: the input is -1, layer l's heads 2l and its MLP 2l + 1
 * (2l when attention and MLP run in parallel, so a layer's heads do not feed its own MLP), logits 2L;
 * sender s feeds receiver r when s.order < r.order.
 */
export function buildGraph(cfg: ModelConfig): EdgeGraph {
  const L = cfg.n_layers, H = cfg.n_heads, Hkv = cfg.n_key_value_heads, mlps = !cfg.attn_only, par = cfg.parallel_attn_mlp;
  const senders: Sender[] = [{ kind: "input", name: "input", order: -1 }];
  const receivers: Receiver[] = [];
  const kvName = Hkv === H ? "h" : "kv";
  for (let l = 0; l < L; l++) {
    for (let h = 0; h < H; h++) senders.push({ kind: "head", name: `a${l}.h${h}`, order: 2 * l, layer: l, head: h });
    for (const input of ["q", "k", "v"] as const) {
      const n = input === "q" ? H : Hkv, tag = input === "q" ? "h" : kvName;
      for (let h = 0; h < n; h++) receivers.push({ kind: "head", name: `a${l}.${tag}${h}<${input}>`, order: 2 * l, layer: l, head: h, input });
    }
    if (mlps) {
      const order = par ? 2 * l : 2 * l + 1;
      senders.push({ kind: "mlp", name: `m${l}`, order, layer: l });
      receivers.push({ kind: "mlp", name: `m${l}<in>`, order, layer: l });
    }
  }
  receivers.push({ kind: "logits", name: "logits", order: 2 * L });
  const edges: Edge[] = [];
  const edgeAt = new Int32Array(senders.length * receivers.length).fill(-1);
  senders.forEach((s, si) => receivers.forEach((r, ri) => {
    if (s.order < r.order) {
      edgeAt[si * receivers.length + ri] = edges.length;
      edges.push({ from: si, to: ri, name: `${s.name}->${r.name}` });
    }
  }));
  return { senders, receivers, edges, edgeAt, n_layers: L };
}

/** The index of the edge named `name` ("a0.h1->a1.h0<k>"), with an error naming near misses. */
export function edgeIndex(g: EdgeGraph, name: string): number {
  const i = g.edges.findIndex((e) => e.name === name);
  if (i < 0) {
    const [from] = name.split("->");
    const near = g.edges.filter((e) => e.name.startsWith(`${from}->`)).slice(0, 4).map((e) => e.name);
    throw new RangeError(`circuit: no edge "${name}" in this model's graph${near.length ? `; edges from ${from} include ${near.join(", ")}` : ""}`);
  }
  return i;
}

/** A circuit: 1 for every edge kept (carrying the clean run's values), 0 for every edge corrupted. */
export type EdgeMask = Uint8Array;

export const fullCircuit = (g: EdgeGraph): EdgeMask => new Uint8Array(g.edges.length).fill(1);
export const emptyCircuit = (g: EdgeGraph): EdgeMask => new Uint8Array(g.edges.length);
export const countEdges = (m: EdgeMask): number => m.reduce((a, b) => a + b, 0);

/** The n edges with the largest |score| (ties broken by edge order, so the result is deterministic). */
export function topNEdges(scores: ArrayLike<number>, n: number): EdgeMask {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`topN: n must be a non-negative integer, got ${n}`);
  const m = new Uint8Array(scores.length);
  for (const i of rankEdges(scores).slice(0, n)) m[i] = 1;
  return m;
}

/** Edges with |score| ≥ threshold. */
export function thresholdEdges(scores: ArrayLike<number>, threshold: number): EdgeMask {
  if (!(threshold >= 0)) throw new RangeError(`threshold must be a number ≥ 0, got ${threshold}`);
  return Uint8Array.from(Array.from(scores, (s) => (Math.abs(s) >= threshold ? 1 : 0)));
}

/** Edge indices by decreasing |score| (NaN last). */
export function rankEdges(scores: ArrayLike<number>): number[] {
  const key = (i: number) => (Number.isNaN(scores[i]!) ? -1 : Math.abs(scores[i]!));
  return Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => key(b) - key(a) || a - b);
}

/**
 * Drop edges that cannot matter, until none is left (ACDC's and Hanna et al.'s dangling-node pruning):
 * edges into a node whose output reaches no kept edge (the logits always count as used), and edges
 * out of a head or MLP none of whose inputs has a kept edge (all its inputs are corrupted, so it
 * outputs its corrupted value and its edges carry exactly what a removed edge would). Both removals
 * leave the circuit's output unchanged.
 */
export function pruneDangling(g: EdgeGraph, mask: EdgeMask): EdgeMask {
  const m = mask.slice();
  // A receiver belongs to a sender node: head (layer, head) for q; for k/v under GQA, every head of the group.
  const H = g.senders.filter((s) => s.kind === "head" && s.layer === 0).length;
  const Hkv = g.receivers.filter((r) => r.kind === "head" && r.layer === 0 && r.input === "k").length;
  const group = H / Math.max(Hkv, 1);
  const ownerSenders = (r: Receiver): number[] => g.senders.flatMap((s, si) => {
    if (r.kind === "mlp") return s.kind === "mlp" && s.layer === r.layer ? [si] : [];
    if (r.kind !== "head" || s.kind !== "head" || s.layer !== r.layer) return [];
    const same = r.input === "q" ? s.head === r.head : Math.floor(s.head / group) === r.head;
    return same ? [si] : [];
  });
  const owners = g.receivers.map(ownerSenders);
  const S = g.senders.length;
  for (let changed = true; changed;) {
    changed = false;
    const outUsed = new Uint8Array(S), inUsed = new Uint8Array(S);
    g.edges.forEach((e, i) => {
      if (!m[i]) return;
      outUsed[e.from] = 1;
      for (const s of owners[e.to]!) inUsed[s] = 1;
    });
    for (let i = 0; i < g.edges.length; i++) {
      if (!m[i]) continue;
      const e = g.edges[i]!, src = g.senders[e.from]!, dst = g.receivers[e.to]!;
      const deadSource = src.kind !== "input" && !inUsed[e.from];
      // A receiver's node is used if any of the senders it feeds has a kept outgoing edge (GQA k/v feed several heads).
      const deadTarget = dst.kind !== "logits" && !owners[e.to]!.some((s) => outUsed[s]);
      if (deadSource || deadTarget) { m[i] = 0; changed = true; }
    }
  }
  return m;
}
