// Scaling-law fitter: analytic gradient vs finite differences, L-BFGS on Rosenbrock and a quadratic,
// recovery of a known law inside its bootstrap intervals, the real Chinchilla points against the
// published fits (Hoffmann et al. 2022; Besiroglu et al. 2024), Kaplan power laws, and CSV errors.
import { Rng } from "../src/tensor/rng.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  allocation, bootstrapParametric, coarseGrid, excludeHighestLoss, fitParametric, fitPowerLaw, lbfgs, makeObjective,
  parseCsv, predictLoss, runsFromCsv, thetaFromLaw, frontierFits, PUBLISHED, CsvError, type ScalingLaw,
} from "../src/labs/scaling/index.js";

const TRUE: ScalingLaw = { E: 1.69, A: 406.4, B: 410.7, alpha: 0.34, beta: 0.28 };

/** A Chinchilla-like sweep: 8 compute budgets × 12 model sizes, loss × exp(σ·z) with z ~ N(0, 1). */
function synthetic(law: ScalingLaw, sigma: number, seed: number) {
  const rng = new Rng(seed);
  const gauss = () => rng.normal();
  const N: number[] = [], D: number[] = [], L: number[] = [], C: number[] = [];
  for (let c = 18; c <= 22; c += 0.5) {
    const Cv = 10 ** c, Nc = allocation(law).Nopt(Cv);
    for (let k = -6; k < 6; k++) {
      const n = Nc * 10 ** (k / 5), d = Cv / (6 * n);
      N.push(n); D.push(d); C.push(Cv); L.push(predictLoss(law, n, d) * Math.exp(sigma * gauss()));
    }
  }
  return { N, D, C, L };
}

test("objective gradient matches central finite differences", () => {
  const data = synthetic(TRUE, 0.01, 1);
  const fn = makeObjective(data);
  // Perturbed from the truth so residuals fall in both Huber regimes (|r| above and below δ).
  for (const theta of [thetaFromLaw(TRUE).map((v, i) => v + [0.3, -0.2, 0.05, 0.02, -0.01][i]!), [5, 8, 0.3, 0.5, 0.4]]) {
    const x = Float64Array.from(theta), g = new Float64Array(5), gp = new Float64Array(5);
    fn(x, g);
    for (let i = 0; i < 5; i++) {
      const h = 1e-6, xp = Float64Array.from(x), xm = Float64Array.from(x);
      xp[i]! += h; xm[i]! -= h;
      const fd = (fn(xp, gp) - fn(xm, gp)) / (2 * h);
      assert.ok(Math.abs(fd - g[i]!) <= 1e-6 * Math.max(1e-3, Math.abs(g[i]!)) + 1e-10, `∂f/∂θ${i}: analytic ${g[i]} vs finite difference ${fd}`);
    }
  }
});

test("L-BFGS minimises Rosenbrock and an ill-conditioned quadratic to tight tolerance", () => {
  const rosen = (x: Float64Array, g: Float64Array) => {
    const a = 1 - x[0]!, b = x[1]! - x[0]! * x[0]!;
    g[0] = -2 * a - 400 * x[0]! * b; g[1] = 200 * b;
    return a * a + 100 * b * b;
  };
  const r = lbfgs(rosen, [-1.2, 1]);
  assert.ok(Math.abs(r.x[0]! - 1) < 1e-7 && Math.abs(r.x[1]! - 1) < 1e-7, `Rosenbrock minimum ${Array.from(r.x)} (${r.status}, ${r.iterations} iterations)`);
  assert.ok(r.f < 1e-14);
  // f = ½ Σ λ_i (x_i − c_i)², λ from 1 to 1e3 (condition number 1000), minimum at c.
  const n = 20, lam = Array.from({ length: n }, (_, i) => 10 ** (3 * i / (n - 1))), c = Array.from({ length: n }, (_, i) => Math.sin(i + 1));
  const quad = (x: Float64Array, g: Float64Array) => {
    let f = 0;
    for (let i = 0; i < n; i++) { const d = x[i]! - c[i]!; f += 0.5 * lam[i]! * d * d; g[i] = lam[i]! * d; }
    return f;
  };
  const q = lbfgs(quad, new Array(n).fill(0));
  assert.equal(q.status, "gtol");
  for (let i = 0; i < n; i++) assert.ok(Math.abs(q.x[i]! - c[i]!) < 1e-12 * 1e3, `x[${i}] = ${q.x[i]} vs ${c[i]}`);
});

test("compute-optimal allocation spends C = 6ND and minimises L along the iso-FLOP curve", () => {
  const al = allocation(TRUE);
  for (const C of [1e20, 5.76e23]) {
    const N = al.Nopt(C), D = al.Dopt(C);
    assert.ok(Math.abs(6 * N * D / C - 1) < 1e-12);
    const Liso = (n: number) => predictLoss(TRUE, n, C / (6 * n));
    assert.ok(Liso(N) < Liso(N * 1.01) && Liso(N) < Liso(N / 1.01));
  }
  assert.ok(Math.abs(al.a - 0.28 / 0.62) < 1e-12 && Math.abs(al.b - 0.34 / 0.62) < 1e-12);
});

test("a known law with 1% multiplicative noise is recovered inside its 95% bootstrap intervals", () => {
  const data = synthetic(TRUE, 0.01, 7);
  const fit = fitParametric(data, { inits: coarseGrid() });
  const boot = bootstrapParametric(data, fit, { resamples: 60, seed: 3 });
  for (const k of ["E", "A", "B", "alpha", "beta"] as const) {
    const iv = boot.intervals[k];
    assert.ok(iv.lo <= TRUE[k] && TRUE[k] <= iv.hi, `${k}: true ${TRUE[k]} outside [${iv.lo}, ${iv.hi}] (fit ${fit.law[k]})`);
    assert.ok(iv.lo <= fit.law[k] && fit.law[k] <= iv.hi);
  }
  // Noise-free data must be fitted essentially exactly.
  const exact = fitParametric(synthetic(TRUE, 0, 7), { inits: coarseGrid() });
  for (const k of ["E", "alpha", "beta"] as const) assert.ok(Math.abs(exact.law[k] - TRUE[k]) < 1e-5, `${k}: ${exact.law[k]}`);
});

const CHINCHILLA = fileURLToPath(new URL("../../../shared/data/chinchilla_svg_extracted_data.csv", import.meta.url));

test("Chinchilla points: the fit reproduces Epoch AI's replication and not Hoffmann et al.'s β", { skip: !existsSync(CHINCHILLA) && "data absent" }, () => {
  const runs = runsFromCsv(readFileSync(CHINCHILLA, "utf8"), { n: "Model Size", flops: "Training FLOP", loss: "loss" });
  assert.equal(runs.L.length, 245);
  // Besiroglu et al. 2024 fit these 245 points less the 5 highest-loss outliers, from the full grid.
  const fit = fitParametric(runs, {}, excludeHighestLoss(runs.L, 5));
  const l = fit.law, ep = PUBLISHED.besiroglu2024, ho = PUBLISHED.hoffmann2022;
  // Tolerances: Epoch print 3–4 significant figures and used scipy's BFGS; the objective is flat along
  // B (its 95% interval spans ~5×), so B gets 10% in log space, A 3%, E 0.01, α and β 0.005.
  assert.ok(Math.abs(l.E - ep.E) < 0.01, `E ${l.E} vs ${ep.E}`);
  assert.ok(Math.abs(Math.log(l.A / ep.A)) < 0.03, `A ${l.A} vs ${ep.A}`);
  assert.ok(Math.abs(Math.log(l.B / ep.B)) < 0.1, `B ${l.B} vs ${ep.B}`);
  assert.ok(Math.abs(l.alpha - ep.alpha) < 0.005, `α ${l.alpha} vs ${ep.alpha}`);
  assert.ok(Math.abs(l.beta - ep.beta) < 0.005, `β ${l.beta} vs ${ep.beta}`);
  // Hoffmann et al.'s β = 0.28 is far outside what these points support (Epoch's central finding).
  assert.ok(l.beta - ho.beta > 0.07, `β ${l.beta} vs Hoffmann ${ho.beta}`);
  // Exponents: N_opt ∝ C^a with a ≈ 0.51 (Epoch: 0.513), Hoffmann's published law gives 0.45.
  assert.ok(Math.abs(allocation(l).a - allocation(ep).a) < 0.01);
});

test("Kaplan power laws recover exact exponents; frontier picks the lowest loss per bucket", () => {
  const x = [1e6, 1e7, 1e8, 1e9], y = x.map((v) => (8.8e13 / v) ** 0.076); // Kaplan et al. 2020 eq. 1.1 constants
  const p = fitPowerLaw(x, y);
  assert.ok(Math.abs(p.alpha - 0.076) < 1e-12 && Math.abs(p.Xc / 8.8e13 - 1) < 1e-9 && Math.abs(p.r2 - 1) < 1e-12);
  const data = synthetic(TRUE, 0, 2);
  const fr = frontierFits(data, 0.5);
  assert.equal(fr.buckets.length, 9);
  const al = allocation(TRUE);
  for (const b of fr.buckets) {
    for (const i of b.members) assert.ok(data.L[b.best]! <= data.L[i]!);
    // The sweep steps N by 10^0.2, so the best run sits within 1% above the true frontier L(N_opt, D_opt).
    assert.ok(data.L[b.best]! >= al.Lopt(b.C) - 1e-12 && data.L[b.best]! <= 1.01 * al.Lopt(b.C), `bucket C=${b.C}`);
  }
  // L(C) has the offset E, so a pure power law bends away from it: good but not perfect in log–log.
  assert.ok(fr.LC.alpha > 0.03 && fr.LC.alpha < 0.08 && fr.LC.r2 > 0.97 && fr.LC.r2 < 0.999, JSON.stringify(fr.LC));
});

test("CSV: quoted fields, CRLF, and errors that name the column and line", () => {
  const t = parseCsv('"Model, Size",tokens,"lo""ss"\r\n1e6,2e7,"3.5"\r\n\n2e6,4e7,3.1\n');
  assert.deepEqual(t.header, ["Model, Size", "tokens", 'lo"ss']);
  assert.deepEqual(t.rows, [["1e6", "2e7", "3.5"], ["2e6", "4e7", "3.1"]]);
  assert.deepEqual(t.lines, [2, 4]);
  const r = runsFromCsv("N,C,loss\n1e6,6e13,3\n", { n: "N", flops: "C", loss: "loss" });
  assert.deepEqual(r.D, [1e7]);
  assert.throws(() => runsFromCsv("N,C,loss\n1e6,6e13,3\n", { n: "N", flops: "FLOP", loss: "loss" }), (e: Error) =>
    e instanceof CsvError && /no column "FLOP" \(columns: "N", "C", "loss"\)/.test(e.message));
  assert.throws(() => runsFromCsv("N,C,loss\n1e6,6e13,3\n2e6,6e13,abc\n", { n: "N", flops: "C", loss: "loss" }), (e: Error) =>
    e instanceof CsvError && e.message === 'line 3: column "loss" must be a positive number, got "abc"');
  assert.throws(() => runsFromCsv("N,C,loss\n-1,6e13,3\n", { n: "N", flops: "C", loss: "loss" }), /line 2: column "N"/);
  assert.throws(() => parseCsv('a,b\n1,"2\n'), /line 2: unterminated quoted field/);
  assert.throws(() => parseCsv("a,b\n1,2,3\n"), /line 2: expected 2 fields/);
});
