// Running a circuit: the model on the clean prompts, where every receiver's input is rebuilt as
//   input_r = Σ_{s → r kept} a_s + Σ_{s → r removed} c_s (+ the biases, which clean and corrupted share)
// computed as  input_r − Σ_{s → r removed} (a_s − c_s), with a_s the sender's output *in this run* and
// c_s its output in the corrupted run (cached once). This is ACDC's semantics (Conmy et al. 2023): a
// kept edge carries what its sender computes from its own, possibly corrupted, inputs, not the clean
// model's value, so a circuit is a model of its own. All edges kept is the clean run, none the
// corrupted run (exactly up to rounding: every correction is then zero, or cancels every clean output).
// Receivers are read and written through the split-input hook points (hook_q_input / k / v, one copy
// of resid_pre per head before ln1; hook_mlp_in before ln2) and the final resid_post (before
// ln_final), so one head's input changes without touching the residual stream others read; senders
// are read from hook_result (per head), hook_mlp_out and blocks.0.hook_resid_pre (the input).
// Padded prompts (attentionMask, positionIds) run masked everywhere; the metric is read through
// metricOn and the KL over real positions only, so padding on either side changes no score.
import { backward, noGrad, withGrad } from "../../tensor/autodiff.js";
import { concat, indexSelect, slice } from "../../tensor/ops/movement.js";
import { einsum } from "../../tensor/ops/einsum.js";
import { logSoftmax } from "../../tensor/ops/nn.js";
import { fmt, ShapeError } from "../../tensor/shape.js";
import { Tensor } from "../../tensor/tensor.js";
import { HookedTransformer, type Tokens } from "../../model/transformer.js";
import type { BackwardHook, ForwardHook, HookName } from "../../model/hooks.js";
import type { Metric } from "../patching-metrics.js";
import { buildGraph, type EdgeGraph, type EdgeMask } from "./graph.js";
import { spanConditioning, type Conditioning } from "../conditioning.js";
import { metricOn, paddingOf, padRuns, type Padding } from "../padding.js";

export interface CircuitTask {
  /** Prompts [batch, pos]; clean and corrupted must have the same shape. */
  clean: Tokens;
  corrupted: Tokens;
  /** A differentiable scalar of the logits (e.g. logitDiffMetric, or minus lossMetric's loss). */
  metric: Metric;
  /** Positions whose next-token distributions the KL to the clean model averages (default: the last if the metric reads only the last, else all); real ones only when padded. */
  klPositions?: readonly number[];
  /** Padded prompts: [batch, pos], 1 for real tokens, shared by clean and corrupted (padding on either side). */
  attentionMask?: Tensor;
  /** Explicit positions [batch, pos] for every run (see ForwardOptions.positionIds). */
  positionIds?: Tensor;
}

/** One hook point whose receivers are rebuilt together: n receivers (heads, or 1) of graph indices `receivers`. */
interface ReceiverGroup {
  hook: HookName;
  receivers: number[];
  /** Senders [0, prefix) come before these receivers. */
  prefix: number;
  /** True for [batch, pos, heads, d_model] split inputs, false for [batch, pos, d_model]. */
  split: boolean;
}

const inputHook = "blocks.0.hook_resid_pre" as HookName;
const resultHook = (l: number) => `blocks.${l}.attn.hook_result` as HookName;
const mlpOutHook = (l: number) => `blocks.${l}.hook_mlp_out` as HookName;

/**
 * A copy of model with TransformerLens's split q/k/v inputs and hook_mlp_in turned on (the same
 * weights), or model itself when they already are.
 */
export function withSplitInputs(model: HookedTransformer): HookedTransformer {
  const c = model.cfg;
  if (c.use_split_qkv_input && (c.use_hook_mlp_in || c.attn_only)) return model;
  const copy = new HookedTransformer({ ...c, use_split_qkv_input: true, use_hook_mlp_in: true });
  copy.loadStateDict(model.stateDict());
  copy.packWeights();
  return copy;
}

export class CircuitRunner {
  readonly graph: EdgeGraph;
  readonly model: HookedTransformer;
  readonly clean: Tensor;
  readonly corrupted: Tensor;
  readonly metric: Metric;
  readonly klPositions: readonly number[] | undefined;
  readonly cleanLogits: Tensor;
  readonly corruptedLogits: Tensor;
  readonly cleanMetric: number;
  readonly corruptedMetric: number;
  /** Whether cleanMetric − corruptedMetric is ~0 (conditioning.ts), so normalize() and faithfulness are noise; an ill-conditioned normalised metric stays flagged. */
  readonly conditioning: Conditioning;
  readonly groups: ReceiverGroup[];
  /** The corrupted run's sender outputs, [batch, pos, senders, d_model] in graph order. */
  readonly corruptedSenders: Tensor;
  /** The clean run's, likewise. */
  readonly cleanSenders: Tensor;
  /** Padding of the prompts, applied to every run. */
  readonly padding: Padding | undefined;
  private readonly fwd: { attentionMask?: Tensor; positionIds?: Tensor };

  constructor(model: HookedTransformer, task: CircuitTask) {
    this.model = withSplitInputs(model);
    this.graph = buildGraph(this.model.cfg);
    this.metric = task.metric;
    this.klPositions = task.klPositions;
    this.clean = this.model.toTokenTensor(task.clean);
    this.corrupted = this.model.toTokenTensor(task.corrupted);
    if (!this.clean.shapeEquals(this.corrupted.shape)) throw new ShapeError(`circuit: clean ${fmt(this.clean.shape)} and corrupted ${fmt(this.corrupted.shape)} prompts must have the same [batch, pos]`);
    this.groups = receiverGroups(this.model, this.graph);
    this.padding = paddingOf(task, this.clean.shape[0]!, this.clean.shape[1]!, "circuit");
    this.fwd = padRuns(this.padding, 1);
    const c = noGrad(() => this.senderRun(this.clean)), k = noGrad(() => this.senderRun(this.corrupted));
    this.cleanLogits = c.logits; this.corruptedLogits = k.logits;
    this.cleanSenders = c.senders; this.corruptedSenders = k.senders;
    this.cleanMetric = noGrad(() => this.metricOn(c.logits).item());
    this.corruptedMetric = noGrad(() => this.metricOn(k.logits).item());
    this.conditioning = task.metric.conditioning?.illConditioned ? task.metric.conditioning : spanConditioning(this.cleanMetric, this.corruptedMetric);
  }

  /** The hooks recording every sender's output, in graph order, into `out` (a list of [batch, pos, k, d_model]). */
  senderHooks(out: Tensor[]): [HookName, ForwardHook][] {
    const L = this.model.cfg.n_layers, mlps = !this.model.cfg.attn_only;
    const hooks: [HookName, ForwardHook][] = [[inputHook, (a) => { out.push(unsqueeze2(a)); }]];
    for (let l = 0; l < L; l++) {
      hooks.push([resultHook(l), (a) => { out.push(a); }]);
      if (mlps) hooks.push([mlpOutHook(l), (a) => { out.push(unsqueeze2(a)); }]);
    }
    return hooks;
  }

  private senderRun(tokens: Tensor): { logits: Tensor; senders: Tensor } {
    const acts: Tensor[] = [];
    const logits = this.model.runWithHooks(tokens, { fwd: this.senderHooks(acts) }, this.fwd);
    return { logits, senders: concat(acts, 2) };
  }

  /**
   * Logits of the circuit `mask` (1 = edge kept) on the clean prompts, non-circuit edges carrying the
   * corrupted run's sender outputs. Differentiable when run with grad on. `extra` hooks run after the
   * circuit's own (e.g. to read a receiver's rebuilt input).
   */
  logits(mask: EdgeMask, extra: readonly [HookName, ForwardHook][] = []): Tensor {
    const g = this.graph;
    if (mask.length !== g.edges.length) throw new ShapeError(`circuit: mask of ${mask.length} edges for a graph of ${g.edges.length}`);
    const live: Tensor[] = [];
    const fwd = this.senderHooks(live);
    // Hooks fire in forward order, so every sender before a receiver group has been recorded when it fires.
    for (const grp of this.groups) {
      const w = removedWeights(g, grp, mask, this.model.cfg.dtype ?? "float32");
      if (!w) continue;
      fwd.push([grp.hook, (x) => {
        // a_s − c_s for the senders before this group: [batch, pos, prefix, d_model].
        const d = firstSenders(concat(live, 2), grp.prefix).sub(firstSenders(this.corruptedSenders, grp.prefix));
        const corr = einsum("btsd,sj->btjd", d, w); // [batch, pos, receivers, d_model]
        return x.sub(grp.split ? corr : corr.reshape(x.shape));
      }]);
    }
    return this.model.runWithHooks(this.clean, { fwd: [...fwd, ...extra] }, this.fwd);
  }

  /** The metric (a scalar tensor) on logits of the prompts, read at real tokens when they are padded. */
  metricOn(logits: Tensor): Tensor {
    return metricOn(this.metric, logits, this.padding);
  }

  /** The metric of the circuit. */
  metricOf(mask: EdgeMask): number {
    return noGrad(() => this.metricOn(this.logits(mask)).item());
  }

  /** (metric(circuit) − corrupted) / (clean − corrupted): 1 = the clean model, 0 = the corrupted one. */
  normalize(value: number): number {
    const span = this.cleanMetric - this.corruptedMetric;
    return span === 0 ? NaN : (value - this.corruptedMetric) / span;
  }

  /** Mean over prompts (and positions the metric reads) of KL(clean model ‖ circuit) of the next-token distributions. */
  klToClean(logits: Tensor): number {
    if (this.padding?.attentionMask) return this.klToCleanPadded(logits, this.padding.attentionMask);
    return noGrad(() => {
      const ps = this.klPositions;
      const pick = (t: Tensor) => (ps ? indexSelect(t, 1, ps) : this.metric.positions === "last" ? t.select(1, t.shape[1]! - 1) : t);
      const lp = logSoftmax(pick(this.cleanLogits), -1), lq = logSoftmax(pick(logits), -1);
      const rows = lp.size / lp.shape[lp.ndim - 1]!;
      return lp.exp().mul(lp.sub(lq)).sum().item() / rows;
    });
  }

  /** klToClean on padded prompts: the mean over real (row, position) pairs of the chosen positions; a "last" metric's at each row's last real token. */
  private klToCleanPadded(logits: Tensor, mask: Tensor): number {
    return noGrad(() => {
      const [B, T] = this.clean.shape as [number, number], md = mask.toArray();
      const lp = logSoftmax(this.cleanLogits, -1), lq = logSoftmax(logits, -1);
      const kl = lp.exp().mul(lp.sub(lq)).sum(-1).toArray(); // [batch, pos]
      const ps = this.klPositions, last = this.padding?.lastReal;
      for (const p of ps ?? []) if (!Number.isInteger(p) || p < 0 || p >= T) throw new RangeError(`circuit: klPositions entry ${p} is outside [0, ${T})`);
      let sum = 0, n = 0;
      for (let b = 0; b < B; b++) {
        const cols = ps ?? (this.metric.positions === "last" ? [last ? last[b]! : T - 1] : Array.from({ length: T }, (_, t) => t));
        for (const t of cols) if (md[b * T + t] !== 0) { sum += kl[b * T + t]!; n++; }
      }
      if (n === 0) throw new RangeError("circuit: klPositions are all padding in every row of the attentionMask");
      return sum / n;
    });
  }

  /**
   * d(metric)/d(every receiver's input) on the clean prompts, with the input (embedding + positional
   * embedding) replaced by `input` when given (EAP-IG's interpolation points). Returns, per receiver
   * group, the gradient [batch, pos, receivers, d_model].
   */
  receiverGrads(input?: Tensor): Tensor[] {
    const grads = new Map<string, Tensor>();
    const bwd: [HookName, BackwardHook][] = this.groups.map((grp) => [grp.hook, (gr, ctx) => { grads.set(ctx.name, gr.detach()); }]);
    // Only the metric's gradient: parameters stay out of the graph, which starts at the input instead.
    const params = this.model.parameters(), saved = params.map((p) => p.requiresGrad);
    try {
      params.forEach((p) => p.requireGrad(false));
      withGrad(true, () => {
        const leaf: ForwardHook = (a) => (input ?? a).detach().requireGrad(true);
        const m = this.metricOn(this.model.runWithHooks(this.clean, { fwd: [[inputHook, leaf]], bwd }, this.fwd));
        backward(m);
      });
    } finally { params.forEach((p, i) => p.requireGrad(saved[i]!)); }
    return this.groups.map((grp) => {
      const gr = grads.get(grp.hook);
      if (!gr) return zerosLikeGroup(this.cleanSenders, grp);
      return grp.split ? gr : unsqueeze2(gr);
    });
  }
}

/** [batch, pos, d_model] → [batch, pos, 1, d_model]. */
function unsqueeze2(a: Tensor): Tensor {
  const [B, T, D] = a.shape as [number, number, number];
  return a.reshape([B, T, 1, D]);
}

/** The first k senders of [batch, pos, senders, d_model]. */
function firstSenders(x: Tensor, k: number): Tensor {
  return k === x.shape[2] ? x : slice(x, 2, 0, k);
}

function zerosLikeGroup(senders: Tensor, grp: ReceiverGroup): Tensor {
  const [B, T, , D] = senders.shape as [number, number, number, number];
  return new Tensor(new Float64Array(B * T * grp.receivers.length * D), [B, T, grp.receivers.length, D]).cast(senders.dtype);
}

/** [prefix, receivers] with 1 where the edge sender → receiver is removed, or null when none is. */
function removedWeights(g: EdgeGraph, grp: ReceiverGroup, mask: EdgeMask, dtype: "float32" | "float64"): Tensor | null {
  const n = grp.receivers.length, R = g.receivers.length;
  const w = new (dtype === "float64" ? Float64Array : Float32Array)(grp.prefix * n);
  let any = false;
  for (let s = 0; s < grp.prefix; s++) grp.receivers.forEach((r, j) => {
    const e = g.edgeAt[s * R + r]!;
    if (e >= 0 && !mask[e]) { w[s * n + j] = 1; any = true; }
  });
  return any ? new Tensor(w, [grp.prefix, n]) : null;
}

/** The receivers grouped by the hook point that carries them, in forward order. */
function receiverGroups(model: HookedTransformer, g: EdgeGraph): ReceiverGroup[] {
  const groups: ReceiverGroup[] = [];
  const prefixOf = (order: number) => g.senders.filter((s) => s.order < order).length;
  const L = model.cfg.n_layers;
  for (let l = 0; l < L; l++) {
    for (const input of ["q", "k", "v"] as const) {
      const rs = g.receivers.flatMap((r, i) => (r.kind === "head" && r.layer === l && r.input === input ? [i] : []));
      groups.push({ hook: `blocks.${l}.hook_${input}_input` as HookName, receivers: rs, prefix: prefixOf(g.receivers[rs[0]!]!.order), split: true });
    }
    const m = g.receivers.findIndex((r) => r.kind === "mlp" && r.layer === l);
    if (m >= 0) groups.push({ hook: `blocks.${l}.hook_mlp_in` as HookName, receivers: [m], prefix: prefixOf(g.receivers[m]!.order), split: false });
  }
  const logits = g.receivers.findIndex((r) => r.kind === "logits");
  groups.push({ hook: `blocks.${L - 1}.hook_resid_post` as HookName, receivers: [logits], prefix: g.senders.length, split: false });
  return groups;
}
