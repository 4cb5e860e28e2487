// `circuitscope fit-scaling <csv>`: fit L(N, D) = E + A/N^α + B/D^β (Hoffmann et al. 2022, Approach 3)
// with bootstrap intervals, plus Kaplan et al. 2020 power laws on the compute frontier, to any CSV of
// training runs; writes report.md and SVG figures. Progress on stderr; --json prints one document.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { analysisJson, analyzeScaling, runsFromCsv, scalingFigures, scalingMarkdown } from "../../labs/scaling/index.js";
import { allocation } from "../../labs/scaling/parametric.js";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";
import { progress } from "../io.js";

const USAGE = `circuitscope fit-scaling <csv> [--n-col "Model Size"] [--flops-col "Training FLOP"] [--d-col COL] [--loss-col loss]
                          [--bootstrap 200] [--seed 0] [--exclude-highest 0] [--bucket-width 0.25] [--out DIR] [--json]
  --n-col COL          parameters N (default "Model Size")
  --flops-col COL      training FLOP C; tokens are D = C/(6N) unless --d-col is given (default "Training FLOP")
  --d-col COL          training tokens D
  --loss-col COL       final loss (default "loss")
  --bootstrap R        bootstrap resamples for the intervals (default 200; 0 skips them)
  --seed S             bootstrap seed (default 0)
  --exclude-highest K  drop the K highest-loss runs first (Besiroglu et al. 2024 drop 5 on Chinchilla)
  --bucket-width W     compute-bucket width in decades for the frontier (default 0.25)
  --out DIR            write report.md and figures to DIR (default: no files)`;

const intFlag = (name: string, v: number, min = 0) => {
  if (!Number.isInteger(v) || v < min) throw new UsageError(`--${name} must be an integer >= ${min}, got ${v}`);
  return v;
};

/** Write via a temp file and rename, so a crash never leaves a half-written report. */
const writeAtomic = (path: string, text: string) => { writeFileSync(path + ".tmp", text); renameSync(path + ".tmp", path); };

export const fitScaling: Command = {
  name: "fit-scaling",
  summary: "fit Chinchilla/Kaplan scaling laws to a CSV of training runs",
  usage: USAGE,
  run(pos, flags, out) {
    const file = pos[0];
    const cols = { n: flags.str("n-col", "Model Size"), flops: flags.str("flops-col", "Training FLOP"), d: flags.str("d-col"), loss: flags.str("loss-col", "loss") };
    const resamples = intFlag("bootstrap", flags.num("bootstrap", 200));
    const seed = intFlag("seed", flags.num("seed", 0));
    const excludeHighest = intFlag("exclude-highest", flags.num("exclude-highest", 0));
    const bucketWidth = flags.num("bucket-width", 0.25);
    if (!(bucketWidth > 0)) throw new UsageError(`--bucket-width must be > 0, got ${bucketWidth}`);
    const dir = flags.str("out");
    flags.checkUnknown();
    if (!file || pos.length > 1) throw new UsageError("expected exactly one CSV path");
    let text: string;
    try { text = readFileSync(file, "utf8"); } catch (e) { throw new Error(`cannot read ${file}: ${(e as Error).message}`); }
    const runs = runsFromCsv(text, cols);
    if (excludeHighest >= runs.L.length - 5) throw new UsageError(`--exclude-highest ${excludeHighest} leaves fewer than 5 of ${runs.L.length} runs`);
    const t0 = performance.now();
    out.info(`fit-scaling: ${runs.L.length} runs from ${file}; L-BFGS from the 4,500-point Hoffmann grid…`);
    // The bar starts at the first resample so its rate and ETA exclude the grid fit.
    let bar: ReturnType<typeof progress> | undefined;
    const an = analyzeScaling(runs, { resamples, seed, excludeHighest, bucketWidth, onProgress: () => (bar ??= progress("bootstrap", resamples)).tick() });
    bar?.done();
    const doc = { file, ...analysisJson(an), out: dir ?? null, wallSeconds: (performance.now() - t0) / 1000 };
    if (dir) {
      mkdirSync(dir, { recursive: true });
      for (const [name, svg] of Object.entries(scalingFigures(runs, an))) writeAtomic(join(dir, name), svg);
      writeAtomic(join(dir, "report.md"), scalingMarkdown(an, file));
      out.info(`wrote ${join(dir, "report.md")} and 4 figures`);
    }
    const l = an.fit.law, al = allocation(l), iv = an.bootstrap?.intervals;
    const ci = (k: keyof NonNullable<typeof iv>) => (iv ? `  [${iv[k].lo.toPrecision(4)}, ${iv[k].hi.toPrecision(4)}]` : "");
    out.result(doc, () => [
      `L(N, D) = E + A/N^α + B/D^β on ${an.used.length} runs${iv ? ` (${Math.round(an.bootstrap!.level * 100)}% bootstrap intervals, ${resamples} resamples)` : ""}`,
      `  E = ${l.E.toPrecision(4)}${ci("E")}`,
      `  A = ${l.A.toPrecision(5)}${ci("A")}`,
      `  B = ${l.B.toPrecision(5)}${ci("B")}`,
      `  α = ${l.alpha.toPrecision(4)}${ci("alpha")}`,
      `  β = ${l.beta.toPrecision(4)}${ci("beta")}`,
      `compute-optimal: N_opt ∝ C^${al.a.toFixed(4)}${ci("a")}, D_opt ∝ C^${al.b.toFixed(4)}${ci("b")}`,
      `Kaplan L(C) on the frontier: C_c = ${an.frontier.LC.Xc.toExponential(3)}, α_C = ${an.frontier.LC.alpha.toFixed(4)}`,
      `wall time ${doc.wallSeconds.toFixed(1)} s`,
    ].join("\n"));
  },
};
