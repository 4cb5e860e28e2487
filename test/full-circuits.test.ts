// Token- and position-restricted full QK/OV circuits and the eigenvalue copying score: against the
// materialised d_vocab × d_vocab circuits of small random models (dense eigenvalues by
// eigenvaluesGeneral), and hand-built heads whose OV circuit is +identity (score 1) or −identity (−1).
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyingScore, copyingScores, positionalQK, tokenCircuit } from "../src/analysis/full-circuits.js";
import { eigenvaluesGeneral, FactoredMatrix, fullOVCircuit, fullQKCircuit } from "../src/analysis/index.js";
import { slices } from "../src/analysis/factored-matrix.js";
import { noGrad } from "../src/tensor/autodiff.js";
import { Tensor } from "../src/tensor/tensor.js";
import { randomModel } from "./model-fixtures.js";

const close = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

/** Σλ/Σ|λ| of a dense matrix by brute force. */
function denseScore(m: { rows: number; cols: number; data: Float64Array }): number {
  const { re, im } = eigenvaluesGeneral(m);
  let s = 0, a = 0;
  for (let i = 0; i < re.length; i++) { s += re[i]!; a += Math.hypot(re[i]!, im[i]!); }
  return s / a;
}

test("copyingScores equals Σλ/Σ|λ| of the materialised W_E W_V W_O W_U (float64, every head of every layer)", () => {
  for (const [arch, seed] of [["gpt2", 1], ["llama", 2]] as const) {
    const model = randomModel(arch, { seed, dtype: "float64" });
    const scores = copyingScores(model);
    assert.equal(scores.length, model.cfg.n_layers);
    for (let l = 0; l < model.cfg.n_layers; l++) {
      const dense = slices(noGrad(() => fullOVCircuit(model, l).AB)); // [n_heads] of d_vocab × d_vocab
      assert.equal(dense.length, model.cfg.n_heads);
      dense.forEach((m, h) => close(scores[l]![h]!, denseScore(m), 1e-9, `${arch} L${l}H${h}`));
    }
    // Random heads neither copy nor anti-copy perfectly: the test can tell scores apart.
    assert.ok(scores.flat().some((s) => Math.abs(s) < 0.9), JSON.stringify(scores));
  }
});

test("copyingScore: OV = +identity gives 1, −identity gives −1, a rotation by 90° (pure imaginary pair) 0", () => {
  const d = 16;
  const model = randomModel("attn-only", { seed: 3, dtype: "float64", cfg: { n_heads: 1, d_head: d, n_layers: 2 } });
  noGrad(() => {
    // W_U = W_Eᵀ makes the full OV circuit W_E (W_V W_O) W_Eᵀ: positive semidefinite when W_V W_O = I.
    const E = model.embed.W_E, U = model.unembed.W_U, V = d;
    for (let t = 0; t < model.cfg.d_vocab; t++) for (let i = 0; i < d; i++) U.data[i * model.cfg.d_vocab + t] = E.data[t * d + i]!;
    const set = (W: typeof E, f: (i: number, j: number) => number) => { for (let i = 0; i < V; i++) for (let j = 0; j < V; j++) W.data[i * V + j] = f(i, j); };
    set(model.blocks.at(0).attn.W_V, (i, j) => +(i === j)); set(model.blocks.at(0).attn.W_O, (i, j) => +(i === j));
    set(model.blocks.at(1).attn.W_V, (i, j) => +(i === j)); set(model.blocks.at(1).attn.W_O, (i, j) => -(i === j));
  });
  const s = copyingScores(model);
  close(s[0]![0]!, 1, 1e-12, "OV = I");
  close(s[1]![0]!, -1, 1e-12, "OV = −I");
  const dense = slices(noGrad(() => fullOVCircuit(model, 1).AB));
  close(denseScore(dense[0]!), -1, 1e-9, "brute force agrees on −I");
  // [[0, 1], [−1, 0]] has eigenvalues ±i: Σλ = 0.
  const rot = new FactoredMatrix(new Tensor(Float64Array.from([1, 0, 0, 1]), [1, 2, 2]), new Tensor(Float64Array.from([0, 1, -1, 0]), [1, 2, 2]));
  close(copyingScore(rot)[0]!, 0, 1e-12, "rotation");
  assert.deepEqual(copyingScore(new FactoredMatrix(new Tensor(new Float64Array(4), [2, 2]), new Tensor(new Float64Array(4), [2, 2]))), [0], "a zero circuit scores 0, not NaN");
});

test("tokenCircuit and positionalQK equal the matching rows and columns of the materialised full circuits", () => {
  const model = randomModel("gpt2", { seed: 4 });
  const rows = [3, 0, 17, 28], cols = [5, 3, 11];
  for (let l = 0; l < model.cfg.n_layers; l++) {
    for (const kind of ["ov", "qk"] as const) {
      const full = noGrad(() => (kind === "ov" ? fullOVCircuit(model, l) : fullQKCircuit(model, l)).AB); // [H, V, V]
      const sub = noGrad(() => tokenCircuit(model, l, kind, rows, cols).AB);
      assert.deepEqual(sub.shape, [model.cfg.n_heads, rows.length, cols.length]);
      for (let h = 0; h < model.cfg.n_heads; h++) rows.forEach((r, i) => cols.forEach((c, j) => close(sub.get(h, i, j), full.get(h, r, c), 1e-4, `${kind} L${l}H${h} [${r}, ${c}]`)));
    }
    const fullPos = noGrad(() => fullQKCircuit(model, l, { query: "pos", key: "pos" }).AB), n = 5;
    const pos = noGrad(() => positionalQK(model, l, n).AB);
    assert.deepEqual(pos.shape, [model.cfg.n_heads, n, n]);
    for (let h = 0; h < model.cfg.n_heads; h++) for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) close(pos.get(h, i, j), fullPos.get(h, i, j), 1e-4, `pos L${l}H${h} [${i}, ${j}]`);
  }
  assert.throws(() => positionalQK(model, 0, model.cfg.n_ctx + 1), /outside \[1, n_ctx/);
  assert.throws(() => positionalQK(randomModel("llama"), 0, 4), /no learned positions/);
});
