// The scaling lab end to end: the sweep (sweep.ts) over model size N × tokens D on a char corpus,
// then the Chinchilla fit L(N, D) = E + A/N^α + B/D^β with bootstrap intervals (Hoffmann et al. 2022,
// Approach 3; parametric.ts), Kaplan et al. 2020 single-variable power laws, and the report: loss vs
// D per N with the fitted curves, iso-loss contours with the compute-optimal frontier, N*(C), D*(C).
// Pure apart from the sweep's files: returns the report as strings; the CLI writes them.
import { lineChart, type Series } from "../../plot/index.js";
import { figureSection, verdict } from "../markdown.js";
import { allocation, predictLoss } from "./parametric.js";
import { fitPowerLaw, type PowerLaw } from "./powerlaw.js";
import { analysisJson, analyzeScaling, PUBLISHED, scalingFigures, scalingMarkdown, type Runs, type ScalingAnalysis } from "./report.js";
import { runSweep, type RunRow, type SweepOptions, type SweepResult } from "./sweep.js";

export interface ScalingLabOptions extends SweepOptions {
  resamples?: number; // bootstrap resamples, e.g. 200
  bootstrapSeed?: number; // e.g. 0
  onBootstrap?: (done: number, total: number) => void;
}

/** Kaplan et al. 2020-style single-variable laws on the sweep's grid. */
export interface KaplanFits {
  /** L(N) on the largest token budget (the nearest to "trained to convergence", Kaplan eq. 1.1). */
  LN: PowerLaw;
  /** L(D) on the largest model (the nearest to "large model", Kaplan eq. 1.2). */
  LD: PowerLaw;
  /** L(C) on the compute frontier (lowest loss per compute bucket, Kaplan eq. 1.3). */
  LC: PowerLaw;
}

export interface ScalingLabResult {
  sweep: SweepResult;
  /** Undefined when the sweep stopped early or has fewer than 6 runs (five parameters to fit). */
  analysis?: ScalingAnalysis;
  kaplan?: KaplanFits;
  seconds: number;
}

/** Hoffmann et al. 2022, Table 2, Approach 3: the published allocation exponents N* ∝ C^a, D* ∝ C^b. */
export const HOFFMANN_2022_TABLE2 = { a: 0.46, b: 0.54 };

/** The best run's reducible loss (L − E) must be at least this fraction of its loss for the grid to count as far above E. */
export const FAR_ABOVE_E = 0.1;

/** Kaplan et al. 2020, eqs. 1.1–1.3 (their α_C^min for the compute frontier). */
export const KAPLAN_2020 = { alphaN: 0.076, alphaD: 0.095, alphaC: 0.05 };

export const toRuns = (rows: readonly RunRow[]): Runs => ({ N: rows.map((r) => r.N), D: rows.map((r) => r.D), C: rows.map((r) => r.C), L: rows.map((r) => r.val_loss) });

const uniq = (xs: number[]) => [...new Set(xs)].sort((a, b) => a - b);

export function kaplanFits(rows: readonly RunRow[], an: ScalingAnalysis): KaplanFits {
  const Ns = uniq(rows.map((r) => r.N)), Ds = uniq(rows.map((r) => r.D));
  const atD = rows.filter((r) => r.D === Ds[Ds.length - 1]).sort((a, b) => a.N - b.N);
  const atN = rows.filter((r) => r.N === Ns[Ns.length - 1]).sort((a, b) => a.D - b.D);
  return { LN: fitPowerLaw(atD.map((r) => r.N), atD.map((r) => r.val_loss)), LD: fitPowerLaw(atN.map((r) => r.D), atN.map((r) => r.val_loss)), LC: an.frontier.LC };
}

export function runScalingLab(opts: ScalingLabOptions): ScalingLabResult {
  const t0 = performance.now();
  const sweep = runSweep(opts);
  const rows = sweep.rows;
  const enough = !sweep.stopped && rows.length >= 6 && uniq(rows.map((r) => r.N)).length >= 2 && uniq(rows.map((r) => r.D)).length >= 2;
  const analysis = enough ? analyzeScaling(toRuns(rows), { resamples: opts.resamples ?? 200, seed: opts.bootstrapSeed ?? 0, onProgress: opts.onBootstrap }) : undefined;
  return { sweep, analysis, kaplan: analysis ? kaplanFits(rows, analysis) : undefined, seconds: (performance.now() - t0) / 1000 };
}

const COLORS = ["#440154", "#3b528b", "#21918c", "#5ec962", "#e3a800", "#d62728", "#8c564b", "#e377c2"];
const logspace = (lo: number, hi: number, k: number) => Array.from({ length: k }, (_, i) => Math.exp(Math.log(lo) + (i / (k - 1)) * (Math.log(hi) - Math.log(lo))));
const g = (v: number, p = 4) => (Math.abs(v) >= 1e5 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(p - 1) : String(Number(v.toPrecision(p))));

const decade = (x: number) => `10^${Math.floor(Math.log10(x))}`;

/** Whether the sweep's losses sit far above the fitted E (then Kaplan's exponents, with no irreducible term, absorb the curvature), with the numbers. */
export function kaplanCaveat(rows: readonly RunRow[], E: number): string {
  const best = Math.min(...rows.map((r) => r.val_loss)), share = (best - E) / best;
  return verdict(share >= FAR_ABOVE_E,
    "Kaplan's laws have no irreducible term, and this grid's losses are far above the fitted E, so their exponents absorb the curvature; the parametric α, β separate the two finite-size terms from E",
    "This grid's best losses come close to the fitted E, so Kaplan's laws (no irreducible term) and the parametric fit describe the same range; the gap between their exponents is not explained by distance from E",
    `lowest validation loss ${best.toFixed(4)}, fitted E ${g(E)}, reducible share (L − E)/L = ${share.toFixed(3)}, bar ${FAR_ABOVE_E}`) + ".";
}

/** Loss against one variable, one curve per value of the other: runs dashed, the fitted law solid. */
function lossCurves(rows: readonly RunRow[], an: ScalingAnalysis, along: "D" | "N"): string {
  const other = along === "D" ? "N" : "D";
  const series: Series[] = [];
  uniq(rows.map((r) => r[other])).forEach((v, k) => {
    const color = COLORS[k % COLORS.length]!;
    const m = rows.filter((r) => r[other] === v).sort((a, b) => a[along] - b[along]);
    series.push({ name: `${other}=${g(v, 3)} runs`, x: m.map((r) => r[along]), y: m.map((r) => r.val_loss), color, dashed: true });
    const xs = logspace(m[0]![along], m[m.length - 1]![along], 30);
    series.push({ name: `fit`, x: xs, y: xs.map((x) => (along === "D" ? predictLoss(an.fit.law, v, x) : predictLoss(an.fit.law, x, v))), color });
  });
  const title = along === "D" ? "Validation loss vs tokens D, per model size N" : "Validation loss vs non-embedding parameters N, per token budget D";
  return lineChart(series, { title: `${title} (dashed runs, solid L(N, D) fit)`, xLabel: along === "D" ? "training tokens D" : "non-embedding parameters N", yLabel: "validation loss (nats/char)", xLog: true, yLog: true, width: 720, height: 440 });
}

/**
 * Iso-loss contours of the fitted law in the (C, N) plane, with the compute-optimal N*(C) through
 * their minima (Hoffmann et al. 2022, Fig. 4 left): on a contour L, D(N) solves B/D^β = L − E − A/N^α.
 */
function isoLoss(rows: readonly RunRow[], an: ScalingAnalysis): string {
  const law = an.fit.law, al = allocation(law);
  const Ns = rows.map((r) => r.N), Nlo = Math.min(...Ns) / 4, Nhi = Math.max(...Ns) * 16;
  const Ls = rows.map((r) => r.val_loss), lo = Math.max(law.E * 1.02, Math.min(...Ls) * 0.92), hi = Math.max(...Ls);
  const series: Series[] = [];
  logspace(lo, hi, 6).forEach((L, k) => {
    const x: number[] = [], y: number[] = [];
    for (const N of logspace(Nlo, Nhi, 80)) {
      const rest = L - law.E - law.A / Math.pow(N, law.alpha);
      if (rest <= 0) continue;
      const D = Math.pow(law.B / rest, 1 / law.beta);
      x.push(6 * N * D); y.push(N);
    }
    if (x.length > 1) series.push({ name: `L = ${L.toFixed(2)}`, x, y, color: COLORS[k % COLORS.length]! });
  });
  const Cs = series.flatMap((s) => s.x), Cg = logspace(Math.max(Math.min(...Cs), 1), Math.min(Math.max(...Cs), Math.min(...Cs) * 1e8), 40);
  series.push({ name: "N*(C) compute-optimal", x: Cg, y: Cg.map(al.Nopt), color: "#000000", dashed: true });
  series.push({ name: "runs (N at their C)", x: [...rows].sort((a, b) => a.C - b.C).map((r) => r.C), y: [...rows].sort((a, b) => a.C - b.C).map((r) => r.N), color: "#999999", dashed: true });
  return lineChart(series, { title: "Iso-loss contours of the fit and the efficient frontier N*(C)", xLabel: "training FLOP C = 6ND", yLabel: "non-embedding parameters N", xLog: true, yLog: true, width: 720, height: 460 });
}

/** The figures: loss vs D and vs N with fits, iso-loss, and scalingFigures' frontier, allocation, fitted vs observed. */
export function scalingLabFigures(r: ScalingLabResult): Record<string, string> {
  const an = r.analysis;
  if (!an) return {};
  const rows = r.sweep.rows, base = scalingFigures(toRuns(rows), an);
  const figs: Record<string, string> = {
    "loss_vs_D.svg": lossCurves(rows, an, "D"), "loss_vs_N.svg": lossCurves(rows, an, "N"), "isoloss.svg": isoLoss(rows, an),
    "frontier.svg": base["frontier.svg"]!, "allocation.svg": base["allocation.svg"]!, "fitted_vs_observed.svg": base["fitted_vs_observed.svg"]!,
  };
  // Iso-FLOP panels need several runs at one compute; a N × D grid rarely has them.
  if (an.frontier.buckets.some((b) => b.members.length >= 4)) figs["isoflop.svg"] = base["isoflop.svg"]!;
  return figs;
}

/** report.md and the SVGs, keyed by file name. */
export function renderScalingReport(r: ScalingLabResult, settings: string): Record<string, string> {
  const s = r.sweep, rows = s.rows, an = r.analysis, k = r.kaplan;
  const figs = scalingLabFigures(r);
  const md = [
    `# Scaling lab: L(N, D) on a char-level sweep`,
    ``,
    `Settings: \`${settings}\`. ${rows.length} runs (${uniq(rows.map((x) => x.N)).length} sizes × ${uniq(rows.map((x) => x.D)).length} token budgets) on ` +
      `${s.trainTokens} training characters (vocabulary ${s.vocabSize}); validation loss on the same held-out windows from the last ${s.valTokens} characters. ` +
      `Each run has its own cosine schedule ending at its last step (Hoffmann et al. 2022). N counts non-embedding parameters (Kaplan et al. 2020); C = 6ND. ` +
      `Sweep ${s.seconds.toFixed(0)} s (runs' own training time ${rows.reduce((t, x) => t + x.seconds, 0).toFixed(0)} s), lab ${r.seconds.toFixed(0)} s.`,
    ``,
    `| layers | d_model | N | params | steps | D | C | val loss | train loss | s |`,
    `|---|---|---|---|---|---|---|---|---|---|`,
    ...rows.map((x) => `| ${x.layers} | ${x.d_model} | ${x.N} | ${x.params} | ${x.steps} | ${x.D} | ${g(x.C, 3)} | ${x.val_loss.toFixed(4)} | ${x.train_loss.toFixed(4)} | ${x.seconds.toFixed(1)} |`),
    ``,
  ];
  if (!an || !k) {
    md.push(s.stopped ? `The sweep stopped early; rerun the same command to continue it.` : `Too few runs to fit five parameters.`, ``);
    return { "report.md": md.join("\n") };
  }
  const al = allocation(an.fit.law);
  md.push(
    `## Against the published exponents`,
    ``,
    `| quantity | this sweep | published |`,
    `|---|---|---|`,
    `| α (N term of L(N, D)) | ${g(an.fit.law.alpha)} | ${PUBLISHED.hoffmann2022.alpha} (Hoffmann et al. 2022) |`,
    `| β (D term of L(N, D)) | ${g(an.fit.law.beta)} | ${PUBLISHED.hoffmann2022.beta} (Hoffmann et al. 2022) |`,
    `| a = β/(α+β), N* ∝ C^a | ${g(al.a)} | ${HOFFMANN_2022_TABLE2.a} (Hoffmann et al. 2022, Table 2, Approach 3) |`,
    `| b = α/(α+β), D* ∝ C^b | ${g(al.b)} | ${HOFFMANN_2022_TABLE2.b} (Table 2) |`,
    `| α_N, L(N) at the largest D | ${g(k.LN.alpha)} (R² ${k.LN.r2.toFixed(3)}) | ${KAPLAN_2020.alphaN} (Kaplan et al. 2020) |`,
    `| α_D, L(D) at the largest N | ${g(k.LD.alpha)} (R² ${k.LD.r2.toFixed(3)}) | ${KAPLAN_2020.alphaD} |`,
    `| α_C, L(C) on the frontier | ${g(k.LC.alpha)} (R² ${k.LC.r2.toFixed(3)}) | ${KAPLAN_2020.alphaC} (α_C^min) |`,
    ``,
    `${kaplanCaveat(rows, an.fit.law.E)} A character-level model is a different task (E, A, B in nats per character) at ${decade(Math.min(...rows.map((x) => x.N)))}–${decade(Math.max(...rows.map((x) => x.N)))} non-embedding parameters, ` +
      `not 10⁷–10¹¹ on web text as in Hoffmann et al. 2022: compare exponents, not constants.`,
    ``,
    scalingMarkdown(an, "runs.csv", { budgets: [1e12, 1e13, 1e14, 1e15], figures: [] }).replace(/^#/gm, "##").replace(/^### Figures\n\n/m, ""),
    ...figureSection(figs),
  );
  return { "report.md": md.join("\n"), ...figs };
}

/** The JSON summary: the table, the fit (intervals, allocation, Kaplan), timing. */
export function scalingLabSummary(r: ScalingLabResult) {
  return {
    seconds: r.seconds, sweepSeconds: r.sweep.seconds, stopped: r.sweep.stopped, csv: r.sweep.csv,
    runs: r.sweep.rows,
    fit: r.analysis ? analysisJson(r.analysis) : null,
    kaplanGrid: r.kaplan ? { LN: r.kaplan.LN, LD: r.kaplan.LD, LC: r.kaplan.LC, published: KAPLAN_2020 } : null,
  };
}
