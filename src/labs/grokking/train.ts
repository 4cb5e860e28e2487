// Trains a 1-layer modular-addition transformer from scratch with the paper's recipe (Nanda et al.
// 2023, §3 and Appendix A: full-batch AdamW, lr 1e-3 with a 10-step linear warmup, weight decay 1,
// betas (0.9, 0.98), 30% of the pairs for training) and records train/test loss every epoch and the
// progress measures (§5.1) at intervals. With outDir it checkpoints every checkpointEvery epochs
// (weights, AdamW state and the curves in one file; each logit snapshot in a file of its own, written
// once) and resume continues a killed run to bitwise the same result. Library code: progress goes
// through a callback.
import fs from "node:fs";
import path from "node:path";
import { loadSafetensors, saveSafetensors } from "../../io/safetensors.js";
import { CheckpointError, loadCheckpointFile, readCheckpointJson, saveCheckpointFile, type CheckpointCore } from "../../train/checkpoint.js";
import { AdamW } from "../../nn/optim.js";
import { backward, noGrad } from "../../tensor/autodiff.js";
import { randn } from "../../tensor/create.js";
import { scope } from "../../tensor/memory.js";
import { crossEntropy } from "../../tensor/ops/nn.js";
import { slice } from "../../tensor/ops/movement.js";
import { Rng } from "../../tensor/rng.js";
import { Tensor } from "../../tensor/tensor.js";
import { HookedTransformer } from "../../model/transformer.js";
import { grokkingConfig } from "./checkpoint.js";
import { evaluateAllPairs } from "./evaluate.js";

export interface GrokTrainOptions {
  p: number; // e.g. 113 (the paper), 53 (the quick default)
  dModel: number; // e.g. 128
  nHeads: number; // e.g. 4
  dMlp: number; // e.g. 512
  fracTrain: number; // e.g. 0.3
  epochs: number; // e.g. 40000 at p = 113
  lr: number; // e.g. 1e-3
  weightDecay: number; // e.g. 1
  seed: number;
  /** Record the test loss every this many epochs (e.g. 10, as the paper's stored curves). */
  logEvery: number;
  /** Snapshot the logits on all pairs every this many epochs (for the progress measures). */
  evalEvery: number;
  /** Called every logEvery epochs with the losses before that epoch's update. */
  onEpoch?: (epoch: number, trainLoss: number, testLoss: number) => void;
  /** Folder for the checkpoint (ckpt.safetensors) and snapshots/; nothing is written without it. */
  outDir?: string;
  /** Checkpoint every this many epochs (e.g. 500; default 500); the last epoch always checkpoints. */
  checkpointEvery?: number;
  /** Continue from outDir's checkpoint when there is one (same settings required). */
  resume?: boolean;
  /** Stop (as if killed) once this many epochs are done, without a final checkpoint; for tests and time limits. */
  stopAfter?: number;
}

/** The settings a resumed run must share with its checkpoint (everything that changes the result). */
const SAME = ["p", "dModel", "nHeads", "dMlp", "fracTrain", "epochs", "lr", "weightDecay", "seed", "logEvery", "evalEvery"] as const;
export const GROK_CHECKPOINT_FILE = "ckpt.safetensors";
const STATE_KEY = "circuitscope.grokking", VERSION = 1;

interface GrokCheckpointState extends CheckpointCore {
  epoch: number; // updates done
  options: Pick<GrokTrainOptions, (typeof SAME)[number]>;
  curves: { epochs: number[]; trainLoss: number[]; testLoss: number[]; trainAcc: number[]; testAcc: number[] };
  snapshots: number[]; // epochs whose snapshot file exists
  seconds: number; // training time before this checkpoint
}

/** The epoch a checkpoint folder's run reached, or null when it has none (e.g. to start a progress bar there). */
export function grokCheckpointEpoch(dir: string): number | null {
  const file = path.join(dir, GROK_CHECKPOINT_FILE);
  return fs.existsSync(file) ? readCheckpointJson<GrokCheckpointState>(file, STATE_KEY, VERSION).epoch : null;
}

const snapshotFile = (dir: string, epoch: number) => path.join(dir, "snapshots", `epoch-${String(epoch).padStart(7, "0")}.safetensors`);

export interface GrokTrainResult {
  model: HookedTransformer;
  trainSet: Set<number>;
  /** Every logEvery epochs: the epoch (updates done before it) and both losses at those weights. */
  epochs: number[];
  trainLoss: number[];
  testLoss: number[];
  /** Accuracies at the same epochs and weights (argmax over the p residues). */
  trainAcc: number[];
  testAcc: number[];
  /** Epochs at which logits were snapshot, and the [p², p] logits then (float32 to save memory). */
  snapshots: { epoch: number; logits: Float32Array; embed: Float64Array }[];
  /** Training time, including the time before a resumed checkpoint. */
  seconds: number;
  /** The epoch a resumed run continued from (0 for a fresh run). */
  resumedFrom: number;
  /** true when stopAfter ended the run early. */
  stopped: boolean;
}

/** A random fracTrain share of the p² pairs (a·p+b), as the paper's seeded shuffle-and-cut. */
export function splitPairs(p: number, fracTrain: number, seed: number): Set<number> {
  const rng = new Rng(seed), idx = Array.from({ length: p * p }, (_, i) => i);
  for (let i = idx.length - 1; i > 0; i--) { const j = Math.floor(rng.uniform() * (i + 1)); [idx[i], idx[j]] = [idx[j]!, idx[i]!]; }
  return new Set(idx.slice(0, Math.round(fracTrain * p * p)));
}

function pairBatch(p: number, pairs: readonly number[]): { tokens: Tensor; labels: Tensor } {
  const t = new Int32Array(pairs.length * 3), l = new Int32Array(pairs.length);
  pairs.forEach((r, i) => { const a = Math.floor(r / p), b = r % p; t.set([a, b, p], i * 3); l[i] = (a + b) % p; });
  return { tokens: new Tensor(t, [pairs.length, 3]), labels: new Tensor(l, [pairs.length, 1]) };
}

/**
 * The residue logits at "=" [batch, 1, p]: model.forward(tokens, { lastPositionOnly: true }) without the
 * "=" logit, computed with the model's own components. In this 1-layer, LayerNorm-free model the MLP
 * acts per position, so only the last position's MLP reaches these logits; running it there alone
 * skips two thirds of the MLP, the bulk of a step's arithmetic (the test pins equality with forward).
 */
export function lastPositionLogits(model: HookedTransformer, tokens: Tensor, p: number): Tensor {
  const { cfg } = model, blk = model.blocks.items[0]!;
  if (cfg.n_layers !== 1 || cfg.normalization_type !== null || !blk.mlp || !model.pos_embed) throw new RangeError("lastPositionLogits: needs the 1-layer, LayerNorm-free grokking model with an MLP and learned positions");
  const [B, T] = tokens.shape as [number, number];
  const positions = Int32Array.from({ length: B * T }, (_, i) => i % T);
  const resid = model.embed.forward(tokens).add(model.pos_embed.forward(positions, B)); // [batch, pos, d_model]
  const mid = slice(resid.add(blk.attn.forward(resid, { positions, keyMask: null, kvCache: null })), 1, T - 1, T).contiguous(); // [batch, 1, d_model]
  return slice(model.unembed.forward(mid.add(blk.mlp.forward(mid))), 2, 0, p).contiguous(); // [batch, 1, p]
}

/** Cross-entropy at "=" over the p residues (the "=" logit dropped, as the paper's code), and those logits. */
function pairLoss(model: HookedTransformer, p: number, b: { tokens: Tensor; labels: Tensor }): { loss: Tensor; logits: Tensor } {
  const logits = lastPositionLogits(model, b.tokens, p);
  return { loss: crossEntropy(logits, b.labels), logits }; // [batch, 1, p] vs [batch, 1]
}

/** Share of rows of logits [batch, 1, p] whose argmax is the label. */
function accuracy(logits: Tensor, labels: Tensor, p: number): number {
  const L = logits.toArray(), y = labels.toArray(), n = y.length;
  let right = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < p; c++) if (L[i * p + c]! > L[i * p + best]!) best = c;
    if (best === y[i]) right++;
  }
  return right / n;
}

export function trainGrokking(o: GrokTrainOptions): GrokTrainResult {
  const t0 = performance.now();
  const model = new HookedTransformer(grokkingConfig(o.p, o.dModel, o.nHeads, o.dMlp));
  // The paper's init (Appendix A code): every weight ~ N(0, 1/d_model), W_U ~ N(0, 1/d_vocab), biases 0.
  const rng = new Rng(o.seed);
  noGrad(() => {
    for (const [name, prm] of model.namedParameters()) {
      const leaf = name.split(".").pop()!;
      if (leaf.startsWith("b_")) continue;
      const std = leaf === "W_U" ? 1 / Math.sqrt(model.cfg.d_vocab) : 1 / Math.sqrt(o.dModel);
      prm.data.set(randn(prm.shape, { rng, std }).data);
      prm.version++;
    }
  });
  const trainSet = splitPairs(o.p, o.fracTrain, o.seed);
  const all = Array.from({ length: o.p * o.p }, (_, i) => i);
  const train = pairBatch(o.p, all.filter((r) => trainSet.has(r))), test = pairBatch(o.p, all.filter((r) => !trainSet.has(r)));
  const opt = new AdamW(model.parameters(), { lr: o.lr, weightDecay: o.weightDecay, beta1: 0.9, beta2: 0.98 });
  const res: GrokTrainResult = { model, trainSet, epochs: [], trainLoss: [], testLoss: [], trainAcc: [], testAcc: [], snapshots: [], seconds: 0, resumedFrom: 0, stopped: false };
  const names = model.namedParameters().map(([n]) => n), params = model.parameters();
  const ckpt = o.outDir ? path.join(o.outDir, GROK_CHECKPOINT_FILE) : null;
  const every = o.checkpointEvery ?? 500;
  if (!(Number.isInteger(every) && every > 0)) throw new RangeError(`trainGrokking: checkpointEvery must be a positive integer, got ${every}`);
  let start = 0, before = 0;
  if (o.outDir) fs.mkdirSync(path.join(o.outDir, "snapshots"), { recursive: true });
  if (o.resume && ckpt && fs.existsSync(ckpt)) {
    const { state } = loadCheckpointFile<GrokCheckpointState>(ckpt, STATE_KEY, VERSION, params, names, opt);
    for (const k of SAME) if (state.options[k] !== o[k]) throw new CheckpointError(`${ckpt}: checkpoint was trained with ${k} = ${state.options[k]}, this run has ${o[k]}; resume with the same settings`);
    start = res.resumedFrom = state.epoch; before = state.seconds;
    Object.assign(res, { epochs: state.curves.epochs, trainLoss: state.curves.trainLoss, testLoss: state.curves.testLoss, trainAcc: state.curves.trainAcc, testAcc: state.curves.testAcc });
    for (const e of state.snapshots) {
      const t = loadSafetensors(snapshotFile(o.outDir!, e));
      res.snapshots.push({ epoch: e, logits: t.get("logits")!.toArray() as Float32Array, embed: t.get("embed")!.toArray() as Float64Array });
    }
  }
  const save = (epoch: number) => {
    if (!ckpt) return;
    saveCheckpointFile<Omit<GrokCheckpointState, keyof CheckpointCore>>(ckpt, STATE_KEY, {
      flatParams: params, names, opt, version: VERSION,
      state: {
        epoch, options: Object.fromEntries(SAME.map((k) => [k, o[k]])) as GrokCheckpointState["options"],
        curves: { epochs: res.epochs, trainLoss: res.trainLoss, testLoss: res.testLoss, trainAcc: res.trainAcc, testAcc: res.testAcc },
        snapshots: res.snapshots.map((x) => x.epoch), seconds: before + (performance.now() - t0) / 1000,
      },
    });
  };
  for (let epoch = start; epoch < o.epochs; epoch++) {
    if (o.stopAfter !== undefined && epoch >= o.stopAfter) { res.stopped = true; break; }
    opt.setLr(o.lr * Math.min((epoch + 1) / 10, 1)); // the paper's LambdaLR warmup: min(step/10, 1)
    // One scope per step: activations and graph return to the pool when it ends.
    const log = epoch % o.logEvery === 0;
    const [tr, te, tra, tea] = scope(() => {
      // Losses and accuracies before the update, as the paper's loop (same weights for train and test).
      const tel = log ? noGrad(() => { const r = pairLoss(model, o.p, test); return [r.loss.item(), accuracy(r.logits, test.labels, o.p)]; }) : [NaN, NaN];
      const { loss, logits } = pairLoss(model, o.p, train);
      const acc = log ? accuracy(logits, train.labels, o.p) : NaN; // this step's logits, before the update
      opt.zeroGrad();
      backward(loss);
      opt.step();
      return [loss.item(), tel[0]!, acc, tel[1]!] as const;
    });
    if (log) { res.epochs.push(epoch); res.trainLoss.push(tr); res.testLoss.push(te); res.trainAcc.push(tra); res.testAcc.push(tea); o.onEpoch?.(epoch, tr, te); }
    if ((epoch + 1) % o.evalEvery === 0 || epoch + 1 === o.epochs) {
      const ev = scope(() => evaluateAllPairs(model, o.p));
      const snap = { epoch: epoch + 1, logits: Float32Array.from(ev.logits), embed: ev.embed };
      res.snapshots.push(snap);
      if (o.outDir) saveSafetensors(snapshotFile(o.outDir, snap.epoch), new Map([["logits", new Tensor(snap.logits, [o.p * o.p, o.p])], ["embed", new Tensor(snap.embed, [o.p, o.dModel])]]));
    }
    if ((epoch + 1) % every === 0 || epoch + 1 === o.epochs) save(epoch + 1);
  }
  res.seconds = before + (performance.now() - t0) / 1000;
  return res;
}
