// Training for the emergence lab (Wei et al. 2022, "Emergent Abilities of Large Language Models" vs
// Schaeffer et al. 2023, "Are Emergent Abilities of Large Language Models a Mirage?"): tiny decoder-only
// transformers of several widths learn 2-digit addition "a+b=" → the sum's digits, written
// least-significant digit first (reversed: each answer digit then depends only on digits already seen
// and the carry, which small models learn faster). Loss only on the answer tokens. Every evalEvery steps
// a fixed held-out set is scored with the smooth metrics (answer-token cross-entropy, per-digit accuracy,
// p(full answer)) and the discontinuous one (exact match). Not the analysis (analysis.ts) nor the report.
import { makeConfig } from "../../model/config.js";
import { HookedTransformer } from "../../model/transformer.js";
import { AdamW } from "../../nn/optim.js";
import { backward, noGrad } from "../../tensor/autodiff.js";
import { scope } from "../../tensor/memory.js";
import { crossEntropy } from "../../tensor/ops/nn.js";
import { Rng } from "../../tensor/rng.js";
import { Tensor } from "../../tensor/tensor.js";

export const PLUS = 10, EQUALS = 11, VOCAB = 12;
/** The tokens as characters, id order: digits, "+", "=" (so "12+34=" is a prompt; answers come least significant digit first). */
export const ADDITION_CHARS: readonly string[] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "+", "="];
/** Operand digits, answer digits (a sum of two n-digit numbers has at most n + 1 digits). */
export const layout = (digits: number) => ({ prompt: 2 * digits + 2, answer: digits + 1, length: 3 * digits + 3 });

/** Tokens of "a+b=" followed by the sum's digits, least significant first, zero-padded (operands most significant first, zero-padded). */
export function encodeProblem(a: number, b: number, digits: number): number[] {
  const ds = (v: number, n: number) => Array.from({ length: n }, (_, i) => Math.floor(v / 10 ** (n - 1 - i)) % 10);
  const sum = a + b, ans = Array.from({ length: digits + 1 }, (_, i) => Math.floor(sum / 10 ** i) % 10);
  return [...ds(a, digits), PLUS, ...ds(b, digits), EQUALS, ...ans];
}

/** Reads back the sum from a token row (answer digits reversed). */
export function decodeAnswer(row: readonly number[], digits: number): number {
  const { prompt, answer } = layout(digits);
  let v = 0;
  for (let i = answer - 1; i >= 0; i--) v = 10 * v + row[prompt + i]!;
  return v;
}

export interface AdditionBatch {
  problems: [number, number][];
  tokens: Tensor; // [batch, length - 1] (the last answer digit is only a target)
  targets: Tensor; // [batch, length - 1] next token at answer-predicting positions, -1 elsewhere
}

export function additionBatch(rng: Rng, batch: number, digits: number): AdditionBatch {
  const hi = 10 ** digits, problems: [number, number][] = [];
  for (let i = 0; i < batch; i++) problems.push([rng.int(0, hi), rng.int(0, hi)]);
  return batchOf(problems, digits);
}

export function batchOf(problems: [number, number][], digits: number): AdditionBatch {
  const { prompt, length } = layout(digits), T = length - 1, n = problems.length;
  const toks = new Int32Array(n * T), tg = new Int32Array(n * T).fill(-1);
  problems.forEach(([a, b], r) => {
    const row = encodeProblem(a, b, digits);
    for (let p = 0; p < T; p++) { toks[r * T + p] = row[p]!; if (p >= prompt - 1) tg[r * T + p] = row[p + 1]!; }
  });
  return { problems, tokens: new Tensor(toks, [n, T]), targets: new Tensor(tg, [n, T]) };
}

export interface AnswerMetrics {
  /** Mean cross-entropy per answer token (nats): smooth. */
  loss: number;
  /** Fraction of answer digits whose argmax is right: smooth-ish (linear in per-token accuracy). */
  digitAccuracy: number;
  /** Mean over problems of exp(−Σ answer-token losses) = p(the whole correct answer): continuous. */
  pAnswer: number;
  /** Fraction of problems with every answer digit right (= greedy decoding exact match): discontinuous. */
  exactMatch: number;
}

/**
 * Metrics from answer-position logits: `logits[problem][answer digit][vocab]`, `targets[problem][answer digit]`.
 * Teacher-forced argmax correct at every position ⇔ greedy decoding produces the whole answer.
 */
export function answerMetrics(logits: readonly (readonly (readonly number[])[])[], targets: readonly (readonly number[])[]): AnswerMetrics {
  let loss = 0, right = 0, tokens = 0, p = 0, exact = 0;
  logits.forEach((rows, i) => {
    let sum = 0, all = true;
    rows.forEach((z, k) => {
      const t = targets[i]![k]!, m = Math.max(...z);
      const lse = m + Math.log(z.reduce((s, v) => s + Math.exp(v - m), 0));
      const nll = lse - z[t]!;
      sum += nll; tokens++;
      const arg = z.indexOf(m);
      if (arg === t) right++; else all = false;
    });
    loss += sum; p += Math.exp(-sum); if (all) exact++;
  });
  const n = Math.max(1, logits.length);
  return { loss: loss / Math.max(1, tokens), digitAccuracy: right / Math.max(1, tokens), pAnswer: p / n, exactMatch: exact / n };
}

/** Scores `model` on a batch (no gradients). */
export function evaluate(model: HookedTransformer, b: AdditionBatch, digits: number): AnswerMetrics {
  const { prompt, answer } = layout(digits);
  return noGrad(() => scope(() => {
    const z = model.forward(b.tokens).toList(), [n, T, V] = [b.problems.length, layout(digits).length - 1, VOCAB];
    const tg = b.targets.toList(), L: number[][][] = [], Y: number[][] = [];
    for (let r = 0; r < n; r++) {
      const rows: number[][] = [], ys: number[] = [];
      for (let k = 0; k < answer; k++) {
        const p = prompt - 1 + k, o = (r * T + p) * V;
        rows.push(z.slice(o, o + V)); ys.push(tg[r * T + p]!);
      }
      L.push(rows); Y.push(ys);
    }
    return answerMetrics(L, Y);
  }));
}

/** Heads per layer of every addition model (d_head = d_model / heads). */
export const ADDITION_HEADS = 4;

export function additionModel(dModel: number, nLayers: number, digits: number, seed: number): HookedTransformer {
  const cfg = makeConfig({
    d_model: dModel, n_layers: nLayers, n_heads: ADDITION_HEADS, d_head: dModel / ADDITION_HEADS, d_vocab: VOCAB, n_ctx: layout(digits).length,
    tie_word_embeddings: false, positional_embedding_type: "standard",
  });
  return new HookedTransformer(cfg).initWeights(seed);
}

export interface EmergenceTrainOptions {
  seed?: number; // e.g. 0
  steps?: number; // e.g. 1500
  sizes?: number[]; // d_model per model, e.g. [16, 32, 64]
  digits?: number; // e.g. 2
  nLayers?: number; // e.g. 2
  batch?: number; // e.g. 64
  lr?: number; // e.g. 3e-3
  weightDecay?: number; // e.g. 0.01
  evalEvery?: number; // e.g. 25
  evalSize?: number; // held-out problems, e.g. 512
  onStep?: (size: number, step: number, loss: number) => void;
}

export interface SizeRun {
  dModel: number;
  /** The trained model (saveLabModel writes it with additionChars as its tokenizer). */
  model: HookedTransformer;
  params: number;
  /** Training loss (answer tokens) per step. */
  trainLoss: number[];
  /** Eval log: steps and metrics at each (before that step's update; the last after training). */
  steps: number[];
  evals: AnswerMetrics[];
  seconds: number;
}

export interface EmergenceTraining {
  options: Required<Omit<EmergenceTrainOptions, "onStep">>;
  runs: SizeRun[];
  seconds: number;
}

/** The fixed held-out problems every size is scored on. */
export const evalSetOf = (o: { seed: number; evalSize: number; digits: number }): AdditionBatch => additionBatch(new Rng(o.seed + 1000), o.evalSize, o.digits);

export function trainEmergence(opts: EmergenceTrainOptions = {}): EmergenceTraining {
  const o = {
    seed: opts.seed ?? 0, steps: opts.steps ?? 1500, sizes: opts.sizes ?? [16, 32, 64], digits: opts.digits ?? 2, nLayers: opts.nLayers ?? 2,
    batch: opts.batch ?? 64, lr: opts.lr ?? 3e-3, weightDecay: opts.weightDecay ?? 0.01, evalEvery: opts.evalEvery ?? 25, evalSize: opts.evalSize ?? 512,
  };
  for (const d of o.sizes) if (!(Number.isInteger(d) && d > 0 && d % ADDITION_HEADS === 0)) throw new Error(`model size ${d}: d_model must be a positive multiple of ${ADDITION_HEADS}`);
  const t0 = performance.now();
  const evalSet = evalSetOf(o);
  const runs = o.sizes.map((dModel) => {
    const t1 = performance.now();
    const model = additionModel(dModel, o.nLayers, o.digits, o.seed);
    const params = model.parameters().reduce((s, p) => s + p.size, 0);
    const opt = new AdamW(model.parameters(), { lr: o.lr, weightDecay: o.weightDecay });
    const rng = new Rng(o.seed + 7); // the same problem stream for every size
    const run: SizeRun = { dModel, model, params, trainLoss: [], steps: [], evals: [], seconds: 0 };
    const log = (step: number) => { run.steps.push(step); run.evals.push(evaluate(model, evalSet, o.digits)); };
    for (let step = 0; step < o.steps; step++) {
      if (step % o.evalEvery === 0) log(step);
      const l = scope(() => {
        const b = additionBatch(rng, o.batch, o.digits);
        const loss = crossEntropy(model.forward(b.tokens), b.targets, { ignoreIndex: -1 });
        opt.zeroGrad(); backward(loss); opt.step();
        return loss.item();
      });
      run.trainLoss.push(l);
      opts.onStep?.(dModel, step, l);
    }
    log(o.steps);
    run.seconds = (performance.now() - t1) / 1000;
    return run;
  });
  return { options: o, runs, seconds: (performance.now() - t0) / 1000 };
}
