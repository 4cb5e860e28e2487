// `node dist/bench/ablation-sweep.js`: batched ablation sweeps (ablationSweep, the default fast
// path through patching's runCells) against one ablate() call — one full forward — per target, in
// the same run, on a small random GPT-2-style model (4 layers, 8 heads, d_model 128, d_mlp 512,
// 32 tokens, 8 reference prompts). Prints time per sweep, the ratio, and the largest difference
// between the two paths (0 expected). Not part of the test suite: timings depend on the machine.
import * as cs from "../src/index.js";
import { ablationSweep, type AblationKind, type SweepOver } from "../src/analysis/ablation.js";
import { logitDiffMetric } from "../src/analysis/patching-metrics.js";

const cfg = cs.makeConfig({ d_model: 128, n_layers: 4, n_heads: 8, d_vocab: 1000, n_ctx: 64, d_mlp: 512, architecture: "gpt2" });
const model = new cs.HookedTransformer(cfg).initWeights(0);
const rng = new cs.Rng(1);
const row = () => Array.from({ length: 32 }, () => rng.int(0, cfg.d_vocab));
const tokens = [row()], reference = Array.from({ length: 8 }, row);
const metric = logitDiffMetric([3, 7]);
const sweeps: [SweepOver, { layer?: number }][] = [["heads", {}], ["positions", {}], ["neurons", { layer: 2 }]];
const time = <T>(f: () => T): [T, number] => { const t = performance.now(); const r = f(); return [r, performance.now() - t]; };
// Warm-up, so neither path pays for JIT compilation.
ablationSweep(model, tokens, { kind: "zero", metric, over: "mlps" });
ablationSweep(model, tokens, { kind: "zero", metric, over: "mlps", fast: false });
for (const [over, extra] of sweeps) for (const kind of ["zero", "mean"] as AblationKind[]) {
  const o = { kind, metric, over, reference, ...extra };
  const [fast, tf] = time(() => ablationSweep(model, tokens, o));
  const [slow, ts] = time(() => ablationSweep(model, tokens, { ...o, fast: false }));
  const f = fast.values.toList(), s = slow.values.toList();
  const diff = Math.max(...f.map((v, i) => Math.abs(v - s[i]!)));
  console.log(`${over.padEnd(9)} ${kind.padEnd(4)} ${String(f.length).padStart(4)} targets: batched ${tf.toFixed(0).padStart(6)} ms, one ablate() per target ${ts.toFixed(0).padStart(6)} ms, ratio ${(ts / tf).toFixed(1)}x, max |diff| ${diff}`);
}
