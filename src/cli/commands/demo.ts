// `circuitscope demo`: a one-minute tour on this machine: which backend runs, how fast its matrix
// product is, a small network trained from scratch with autodiff, and then the workbench's purpose in
// miniature: a 2-layer transformer trained until an induction head forms, found again with hooks, and
// saved as a snapshot folder that the printed `serve` command opens in the workbench.
import { getBackend } from "../../backend/registry.js";
import { Rng } from "../../tensor/rng.js";
import { randn, tensor, zeros } from "../../tensor/create.js";
import { backward, noGrad } from "../../tensor/autodiff.js";
import { scope } from "../../tensor/memory.js";
import { crossEntropy } from "../../tensor/ops/nn.js";
import type { Tensor } from "../../tensor/tensor.js";
import type { Command } from "../command.js";
import { progress } from "../io.js";
import { detectorTokens, runInductionLab } from "../../labs/induction/index.js";
import { saveLabModel } from "../../labs/save-model.js";
import { randomTokenWords } from "../../io/word-tokenizer.js";

/** Two interleaved spirals: a classic task a linear model cannot solve. */
function spirals(n: number, rng: Rng): { x: Tensor; y: Tensor } {
  const xs = new Float32Array(2 * n), ys = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const cls = i % 2, t = 0.5 + 3.5 * rng.uniform();
    const a = t * 2.2 + cls * Math.PI;
    xs[2 * i] = (t / 4) * Math.cos(a) + 0.02 * rng.normal();
    xs[2 * i + 1] = (t / 4) * Math.sin(a) + 0.02 * rng.normal();
    ys[i] = cls;
  }
  return { x: tensor(xs, [n, 2]), y: tensor(ys, [n], "int32") };
}

const sparkline = (v: number[]) => {
  const lo = Math.min(...v), hi = Math.max(...v), bars = "▁▂▃▄▅▆▇█";
  return v.map((x) => bars[Math.min(7, Math.floor(((x - lo) / (hi - lo || 1)) * 7.999))]).join("");
};

export const demo: Command = {
  name: "demo",
  summary: "a one-minute tour: matmul speed, autodiff training, and an induction head found in a trained transformer",
  usage: "circuitscope demo [--steps 400] [--induction-steps 400] [--seed 0] [--save induction-model] [--json]",
  run(_pos, flags, out) {
    const steps = flags.num("steps", 400), seed = flags.num("seed", 0), indSteps = flags.num("induction-steps", 400);
    const save = flags.str("save", "induction-model");
    flags.checkUnknown();
    const rng = new Rng(seed), start = performance.now();

    // 1. Matrix product speed at a GPT-2-small MLP shape.
    const a = randn([128, 768], { rng }), b = randn([768, 3072], { rng });
    // Each product in a scope, so its output's storage is recycled rather than allocated afresh.
    scope(() => { a.matmul(b); });
    let reps = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < 500) { scope(() => { a.matmul(b); }); reps++; }
    const gflops = (2 * 128 * 768 * 3072 * reps) / ((performance.now() - t0) / 1000) / 1e9;
    out.info(`matmul [128,768]x[768,3072]: ${gflops.toFixed(1)} GFLOP/s on ${getBackend().description}`);

    // 2. A 2-layer MLP (2 → 64 → 64 → 2) on two spirals, trained with Adam, written with raw ops.
    const { x, y } = spirals(512, rng);
    const init = (din: number, dout: number) => randn([din, dout], { rng, std: Math.sqrt(2 / din) }).requireGrad();
    const params = [init(2, 64), zeros([64]).requireGrad(), init(64, 64), zeros([64]).requireGrad(), init(64, 2), zeros([2]).requireGrad()];
    const m = params.map((p) => zeros(p.shape)), v = params.map((p) => zeros(p.shape));
    const forward = (inp: Tensor) => {
      const [W1, b1, W2, b2, W3, b3] = params as [Tensor, Tensor, Tensor, Tensor, Tensor, Tensor];
      return inp.matmul(W1).add(b1).relu().matmul(W2).add(b2).relu().matmul(W3).add(b3);
    };
    const losses: number[] = [];
    const bar = progress("training", steps);
    for (let step = 1; step <= steps; step++) {
      const loss = crossEntropy(forward(x), y);
      params.forEach((p) => { p.grad = null; });
      backward(loss);
      noGrad(() => params.forEach((p, i) => {
        // Adam (Kingma & Ba 2015), lr 1e-2.
        const g = p.grad!.data, P = p.data, M = m[i]!.data, V = v[i]!.data;
        for (let j = 0; j < P.length; j++) {
          M[j] = 0.9 * M[j]! + 0.1 * g[j]!; V[j] = 0.999 * V[j]! + 0.001 * g[j]! * g[j]!;
          P[j] = P[j]! - 1e-2 * (M[j]! / (1 - 0.9 ** step)) / (Math.sqrt(V[j]! / (1 - 0.999 ** step)) + 1e-8);
        }
        p.version++;
      }));
      losses.push(loss.item());
      bar.tick(1, `loss ${loss.item().toFixed(4)}`);
    }
    bar.done();
    const pred = noGrad(() => forward(x).argmax(-1));
    let correct = 0;
    for (let i = 0; i < y.size; i++) if (pred.data[i] === y.data[i]) correct++;
    const accuracy = correct / y.size;
    const curve = losses.filter((_, i) => i % Math.max(1, Math.floor(steps / 60)) === 0);

    // 3. Induction heads (Olsson et al. 2022): train, watch the phase change, find the heads with hooks.
    const indBar = progress("induction heads", indSteps);
    const ind = runInductionLab({ steps: indSteps, seed, onStep: (_s, loss) => indBar.tick(1, `loss ${loss.toFixed(3)}`) });
    indBar.done();
    const ia = ind.analysis, pc = ia.phaseChange, o = ind.training.options;
    // Saved with a tokenizer whose words are "t0" … "t{V-1}", so the workbench takes text prompts.
    saveLabModel(ind.training.model, save, { words: randomTokenWords(o.dVocab, o.bos), ...(o.bos ? { bos: "<bos>" } : {}) });
    const serve = `npx circuitscope serve ${/^[\w./-]+$/.test(save) ? save : JSON.stringify(save)} --port 8080`;
    // A repeated segment from the detectors' own tokens, so the induction head has something to copy.
    const row = Array.from(detectorTokens(o.dVocab, o.seed, o.bos).toArray()).slice(o.bos ? 1 : 0);
    const seg = row.slice(0, 4).map((t) => `t${t}`);
    const prompt = [...seg, ...seg.slice(0, 3)].join(" ");
    const induction = {
      seconds: ind.seconds, model: save, serve, prompt, phaseChangeStep: pc.step, repeatedLossBefore: pc.repeatedBefore, repeatedLossAfter: pc.repeatedAfter,
      previousTokenHead: ia.previousTokenHead, inductionHead: ia.inductionHead, kComposition: ia.kPair, baseline: ia.baseline,
    };
    const seconds = (performance.now() - start) / 1000;
    out.result(
      { seconds, backend: getBackend().name, matmulGflops: gflops, steps, finalLoss: losses[losses.length - 1], accuracy, lossCurve: curve, induction },
      () => [
        `backend: ${getBackend().description}`,
        `matmul [128,768]x[768,3072]: ${gflops.toFixed(1)} GFLOP/s`,
        `MLP on two spirals, ${steps} Adam steps: loss ${losses[0]!.toFixed(3)} → ${losses[losses.length - 1]!.toFixed(4)}, accuracy ${(accuracy * 100).toFixed(1)}%`,
        `loss curve: ${sparkline(curve)}`,
        ``,
        `2-layer attention-only transformer on repeated random tokens (${ind.seconds.toFixed(1)} s):`,
        `  phase change at step ${pc.step}: loss on repeated tokens ${pc.repeatedBefore.toFixed(2)} → ${pc.repeatedAfter.toFixed(2)} nats`,
        `  previous-token head L${ia.previousTokenHead.layer}H${ia.previousTokenHead.head} (score ${ia.previousTokenHead.score.toFixed(2)}), ` +
          `induction head L${ia.inductionHead.layer}H${ia.inductionHead.head} (score ${ia.inductionHead.score.toFixed(2)})`,
        `  K-composition between them ${ia.kPair.toFixed(3)} vs random ${ia.baseline.mean.toFixed(3)} ± ${ia.baseline.std.toFixed(3)}`,
        `  (full report with figures: npx circuitscope lab induction --out induction-report)`,
        ``,
        `the trained model is in ${save}/; open it in the workbench (its tokens are t0 … t${o.dVocab - 1}):`,
        `  ${serve}`,
        `  then http://127.0.0.1:8080/#prompt=${encodeURIComponent(prompt)}`,
        ``,
        `demo done in ${seconds.toFixed(1)} s`,
      ].join("\n"),
    );
  },
};
