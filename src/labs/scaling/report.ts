// The scaling-law report: one call that fits everything (parametric law, bootstrap, Kaplan-style
// frontier fits) and renders report.md plus SVG figures. Pure: returns strings; the CLI writes files.
import { lineChart, scatter, type Series } from "../../plot/index.js";
import {
  allocation, bootstrapParametric, HUBER_DELTA, LBFGS_SCREEN, SAME_OBJECTIVE, excludeHighestLoss, fitParametric, predictLoss,
  type BootstrapResult, type ParametricFit, type ScalingLaw,
} from "./parametric.js";
import { evalPowerLaw, frontierFits, type FrontierFits } from "./powerlaw.js";

/** Published fits of L(N, D) to the Chinchilla runs. */
export const PUBLISHED: Record<"hoffmann2022" | "besiroglu2024", ScalingLaw & { source: string }> = {
  // Hoffmann et al. 2022, eq. 10 / Appendix D.2.
  hoffmann2022: { E: 1.69, A: 406.4, B: 410.7, alpha: 0.34, beta: 0.28, source: "Hoffmann et al. 2022 (Chinchilla), Approach 3" },
  // Besiroglu et al. 2024, "Chinchilla Scaling: A replication attempt", Table 1 (fit to these extracted points).
  besiroglu2024: { E: 1.82, A: 482.01, B: 2085.43, alpha: 0.3478, beta: 0.3658, source: "Besiroglu et al. 2024 (Epoch AI replication)" },
};

export interface Runs { N: number[]; D: number[]; C: number[]; L: number[] }

export interface AnalysisOptions {
  resamples?: number; // e.g. 200
  seed?: number; // e.g. 0
  /** Drop the k highest-loss runs before fitting (Besiroglu et al. 2024 drop 5 outliers). */
  excludeHighest?: number;
  bucketWidth?: number; // decades of compute per frontier bucket, e.g. 0.25
  onProgress?: (done: number, total: number) => void;
}

export interface ScalingAnalysis {
  runs: number;
  used: number[];
  fit: ParametricFit;
  bootstrap?: BootstrapResult;
  frontier: FrontierFits;
  seconds: { fit: number; bootstrap: number };
}

export function analyzeScaling(run: Runs, opts: AnalysisOptions = {}): ScalingAnalysis {
  const used = excludeHighestLoss(run.L, opts.excludeHighest ?? 0);
  let t = performance.now();
  const fit = fitParametric(run, {}, used);
  const tFit = (performance.now() - t) / 1000;
  t = performance.now();
  const R = opts.resamples ?? 200;
  const bootstrap = R > 0 ? bootstrapParametric(run, fit, { resamples: R, seed: opts.seed ?? 0, onProgress: opts.onProgress }, used) : undefined;
  const tBoot = (performance.now() - t) / 1000;
  return { runs: run.L.length, used, fit, bootstrap, frontier: frontierFits(run, opts.bucketWidth ?? 0.25, used), seconds: { fit: tFit, bootstrap: tBoot } };
}

/** A JSON-friendly summary (no functions, no per-resample laws). */
export function analysisJson(an: ScalingAnalysis) {
  const al = allocation(an.fit.law);
  return {
    runs: an.runs, used: an.used.length,
    law: an.fit.law, objective: an.fit.objective, optimizer: { status: an.fit.status, starts: an.fit.starts, startsAtBest: an.fit.startsAtBest },
    allocation: { G: al.G, a: al.a, b: al.b },
    intervals: an.bootstrap ? { level: an.bootstrap.level, resamples: an.bootstrap.resamples, seed: an.bootstrap.seed, ...an.bootstrap.intervals } : undefined,
    kaplan: { LC: an.frontier.LC, LN: an.frontier.LN, LD: an.frontier.LD, buckets: an.frontier.buckets.length },
    published: PUBLISHED,
    seconds: an.seconds,
  };
}

const COLORS = ["#440154", "#46327e", "#365c8d", "#277f8e", "#1fa187", "#4ac16d", "#a0da39", "#e3c800", "#f28e2b", "#d62728"];
const logspace = (lo: number, hi: number, k: number) => Array.from({ length: k }, (_, i) => Math.exp(Math.log(lo) + (i / (k - 1)) * (Math.log(hi) - Math.log(lo))));
const g = (v: number, p = 4) => (Math.abs(v) >= 1e5 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(p - 1) : String(Number(v.toPrecision(p))));

/** The four figures, as SVG strings keyed by file name. */
export function scalingFigures(run: Runs, an: ScalingAnalysis): Record<string, string> {
  const law = an.fit.law, al = allocation(law);
  const used = an.used;
  const obs = scatter(used.map((i) => ({ x: run.L[i]!, y: predictLoss(law, run.N[i]!, run.D[i]!), label: `N=${g(run.N[i]!)} D=${g(run.D[i]!)}` })),
    { title: "Fitted vs observed loss", xLabel: "observed loss", yLabel: "fitted L(N, D)" });
  // Iso-FLOP panels: buckets with enough runs to show a curve; the fit is drawn at the bucket's mean C.
  const buckets = an.frontier.buckets.filter((b) => b.members.length >= 4);
  const step = Math.max(1, Math.ceil(buckets.length / COLORS.length));
  const iso: Series[] = [];
  buckets.filter((_, k) => k % step === 0).forEach((b, k) => {
    const color = COLORS[k % COLORS.length]!;
    const m = [...b.members].sort((p, q) => run.N[p]! - run.N[q]!);
    iso.push({ name: `runs C≈${b.C.toExponential(1)}`, x: m.map((i) => run.N[i]!), y: m.map((i) => run.L[i]!), color, dashed: true });
    const Ns = logspace(run.N[m[0]!]!, run.N[m[m.length - 1]!]!, 40);
    iso.push({ name: `fit`, x: Ns, y: Ns.map((N) => predictLoss(law, N, b.C / (6 * N))), color });
  });
  const isoSvg = lineChart(iso, { title: "Iso-FLOP curves: loss vs N (dashed runs, solid fit)", xLabel: "parameters N", yLabel: "loss", xLog: true, width: 760, height: 460 });
  const Cs = used.map((i) => run.C[i]!), Cgrid = logspace(Math.min(...Cs), Math.max(...Cs) * 100, 60);
  const fb = an.frontier.buckets;
  const frontier = lineChart([
    { name: "lowest loss per bucket", x: fb.map((b) => run.C[b.best]!), y: fb.map((b) => run.L[b.best]!), color: "#d62728", dashed: true },
    { name: "fit: L(N_opt(C), D_opt(C))", x: Cgrid, y: Cgrid.map(al.Lopt), color: "#1f77b4" },
    { name: "Kaplan L(C) on frontier", x: Cgrid, y: Cgrid.map((c) => evalPowerLaw(an.frontier.LC, c)), color: "#2ca02c" },
  ], { title: "Compute-efficient frontier", xLabel: "training FLOP C", yLabel: "loss", xLog: true, yLog: true });
  const alloc = lineChart([
    { name: "N_opt(C) fit", x: Cgrid, y: Cgrid.map(al.Nopt), color: "#1f77b4" },
    { name: "D_opt(C) fit", x: Cgrid, y: Cgrid.map(al.Dopt), color: "#d62728" },
    { name: "N of frontier runs", x: fb.map((b) => run.C[b.best]!), y: fb.map((b) => run.N[b.best]!), color: "#1f77b4", dashed: true },
    { name: "D of frontier runs", x: fb.map((b) => run.C[b.best]!), y: fb.map((b) => run.D[b.best]!), color: "#d62728", dashed: true },
  ], { title: `Compute-optimal allocation: N ∝ C^${al.a.toFixed(3)}, D ∝ C^${al.b.toFixed(3)}`, xLabel: "training FLOP C", yLabel: "parameters / tokens", xLog: true, yLog: true, width: 700 });
  return { "fitted_vs_observed.svg": obs, "isoflop.svg": isoSvg, "frontier.svg": frontier, "allocation.svg": alloc };
}

/** report.md: parameters with intervals, published comparisons, allocation, Kaplan fits, figures. */
export function scalingMarkdown(an: ScalingAnalysis, source: string, opts: { budgets?: number[]; figures?: string[] } = {}): string {
  const law = an.fit.law, al = allocation(law), iv = an.bootstrap?.intervals;
  const row = (name: string, key: keyof ScalingLaw) => {
    const i = iv?.[key];
    return `| ${name} | ${g(law[key])} | ${i ? `[${g(i.lo)}, ${g(i.hi)}]` : "—"} | ${g(PUBLISHED.hoffmann2022[key])} | ${g(PUBLISHED.besiroglu2024[key])} |`;
  };
  const pubAlloc = (p: ScalingLaw) => allocation(p);
  const lvl = an.bootstrap ? `${Math.round(an.bootstrap.level * 100)}%` : "";
  const k = an.frontier;
  return [
    `# Scaling-law fit`,
    ``,
    `Data: \`${source}\` — ${an.runs} runs, ${an.used.length} used${an.used.length < an.runs ? ` (the ${an.runs - an.used.length} highest-loss runs excluded, as Besiroglu et al. 2024)` : ""}.`,
    ``,
    `## L(N, D) = E + A/N^α + B/D^β`,
    ``,
    `Hoffmann et al. 2022, Approach 3 (Appendix D.2): Huber (δ = ${HUBER_DELTA}) on log L, L-BFGS from the ${an.fit.starts}-point initialisation grid; ` +
      `${an.fit.startsAtBest} starts were within ${SAME_OBJECTIVE} (relative) of the best after a ${LBFGS_SCREEN.maxIter}-iteration screen; the best few were polished to objective ${an.fit.objective.toExponential(6)} (final status: ${an.fit.status}).` +
      (an.bootstrap ? ` Intervals: ${lvl} percentile bootstrap, ${an.bootstrap.resamples} resamples, seed ${an.bootstrap.seed}.` : ""),
    ``,
    `| parameter | fit | ${lvl || "no"} interval | Hoffmann et al. 2022 | Besiroglu et al. 2024 |`,
    `|---|---|---|---|---|`,
    row("E", "E"), row("A", "A"), row("B", "B"), row("α", "alpha"), row("β", "beta"),
    ``,
    `## Compute-optimal allocation (C = 6ND)`,
    ``,
    `N_opt(C) = G (C/6)^a, D_opt(C) = G⁻¹ (C/6)^b, G = (αA/(βB))^{1/(α+β)}, a = β/(α+β), b = α/(α+β) (Hoffmann et al. 2022, eq. 4).`,
    ``,
    `| | fit | ${lvl || "no"} interval | Hoffmann et al. 2022 | Besiroglu et al. 2024 |`,
    `|---|---|---|---|---|`,
    ...(["a", "b", "G"] as const).map((q) => `| ${q} | ${g(al[q])} | ${iv ? `[${g(iv[q].lo)}, ${g(iv[q].hi)}]` : "—"} | ${g(pubAlloc(PUBLISHED.hoffmann2022)[q])} | ${g(pubAlloc(PUBLISHED.besiroglu2024)[q])} |`),
    ``,
    `| C (FLOP) | N_opt | D_opt | D/N | fitted loss |`,
    `|---|---|---|---|---|`,
    ...(opts.budgets ?? [1e21, 1e22, 5.76e23, 1e24, 1e25]).map((C) => `| ${C.toExponential(2)} | ${g(al.Nopt(C), 3)} | ${g(al.Dopt(C), 3)} | ${g(al.Dopt(C) / al.Nopt(C), 3)} | ${g(al.Lopt(C))} |`),
    ``,
    `## Single-variable power laws (Kaplan et al. 2020) on the frontier`,
    ``,
    `Lowest-loss run in each of ${k.buckets.length} compute buckets; L(X) = (X_c/X)^{α_X} by least squares in log space.`,
    ``,
    `| law | X_c | α_X | R² (log–log) |`,
    `|---|---|---|---|`,
    `| L(C) | ${g(k.LC.Xc)} | ${g(k.LC.alpha)} | ${k.LC.r2.toFixed(4)} |`,
    `| L(N) | ${g(k.LN.Xc)} | ${g(k.LN.alpha)} | ${k.LN.r2.toFixed(4)} |`,
    `| L(D) | ${g(k.LD.Xc)} | ${g(k.LD.alpha)} | ${k.LD.r2.toFixed(4)} |`,
    ``,
    `## Figures`,
    ``,
    ...(opts.figures ?? ["fitted_vs_observed.svg", "isoflop.svg", "frontier.svg", "allocation.svg"]).map((f) => `![${f.replace(/\.svg$/, "").replace(/_/g, " ")}](${f})`),
    ``,
    `Fit ${an.seconds.fit.toFixed(1)} s, bootstrap ${an.seconds.bootstrap.toFixed(1)} s.`,
    ``,
  ].join("\n");
}
