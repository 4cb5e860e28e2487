// The scaling sweep: a grid of small char-level GPTs (model size N) × token budgets D, each trained
// from scratch on one corpus with a cosine schedule as long as its budget (Hoffmann et al. 2022 train
// one model per D rather than reading intermediate checkpoints of a long run, whose learning rate has
// not decayed yet), its validation loss measured at the end on the same held-out windows for every run.
// N counts non-embedding parameters (Kaplan et al. 2020, §2.1: token and position embeddings and the
// unembedding excluded). C = 6ND (Kaplan et al. 2020, eq. 2.1).
//
// Resumable: each run trains in its own folder with the trainer's atomic checkpoints; the results
// table runs.csv is rewritten atomically after every finished run, so rerunning the same sweep skips
// finished runs and continues an interrupted one from its checkpoint, with the same losses. Each
// finished run's model is saved as a snapshot folder, runs/<name>/model.
// Library code: nothing here prints; progress goes to callbacks.
import fs from "node:fs";
import path from "node:path";
import { writeFileAtomic } from "../../io/safetensors.js";
import { makeConfig } from "../../model/config.js";
import { HookedTransformer } from "../../model/transformer.js";
import { saveLabModel } from "../save-model.js";
import { prepareCorpus, TokenFile } from "../../train/data.js";
import { CHECKPOINT_FILE, lmObjective, readCheckpointState, train, type TrainConfig } from "../../train/trainer.js";
import { parseCsv } from "./csv.js";

/** One model shape; heads = d_model / d_head. */
export interface SweepSize { layers: number; dModel: number } // e.g. { layers: 2, dModel: 32 }

export interface SweepOptions {
  corpus: string; // e.g. ../shared/data/tinyshakespeare.txt
  outDir: string; // runs.csv, tokens/ and runs/<name>/ go here
  sizes: SweepSize[];
  /** Token budgets D; each is rounded to whole steps of batch × ctx tokens. */
  tokens: number[]; // e.g. [65536, 131072, 262144, 524288, 1048576]
  batch?: number; // e.g. 16 windows per step
  ctx?: number; // e.g. 64 predicted positions per window
  dHead?: number; // e.g. 16
  lr?: number; // e.g. 2e-3 peak; the cosine decays to lr/10 at the run's last step (Hoffmann et al. 2022, §3)
  seed?: number; // e.g. 0: the same initialisation seed and batch order for every run
  evalIters?: number; // e.g. 40 held-out batches (the same windows for every run)
  checkpointEvery?: number; // e.g. 100 steps
  /** Stop (as if killed) once this many optimizer steps have run in this call; for tests. */
  stopAfter?: number;
  /** Called after every optimizer step of every run. */
  onStep?: (run: SweepRun, step: number, loss: number) => void;
  /** Called when a run finishes (or is found finished in runs.csv). */
  onRun?: (row: RunRow, skipped: boolean) => void;
}

/** One planned run of the grid. */
export interface SweepRun { name: string; layers: number; dModel: number; heads: number; steps: number; D: number }

/** One row of runs.csv. */
export interface RunRow {
  N: number; // non-embedding parameters
  D: number; // training tokens (steps × batch × ctx)
  C: number; // 6ND
  params: number; // all parameters
  layers: number;
  d_model: number;
  steps: number;
  val_loss: number;
  train_loss: number; // the last step's
  seconds: number; // wall time of the run's training (summed over resumes)
}

export const RUN_COLUMNS: readonly (keyof RunRow)[] = ["N", "D", "C", "params", "layers", "d_model", "steps", "val_loss", "train_loss", "seconds"];

export interface SweepResult { rows: RunRow[]; runs: SweepRun[]; stopped: boolean; csv: string; vocabSize: number; valTokens: number; trainTokens: number; seconds: number }

const DEFAULTS = { batch: 16, ctx: 64, dHead: 16, lr: 2e-3, seed: 0, evalIters: 40, checkpointEvery: 100 };

/** The runs of a grid, in the order they train: by size, then by budget. */
export function planSweep(opts: Pick<SweepOptions, "sizes" | "tokens" | "batch" | "ctx" | "dHead">): SweepRun[] {
  const batch = opts.batch ?? DEFAULTS.batch, ctx = opts.ctx ?? DEFAULTS.ctx, dHead = opts.dHead ?? DEFAULTS.dHead;
  if (opts.sizes.length === 0 || opts.tokens.length === 0) throw new RangeError("planSweep: need at least one size and one token budget");
  const runs: SweepRun[] = [];
  for (const s of opts.sizes) {
    if (!(Number.isInteger(s.layers) && s.layers > 0 && Number.isInteger(s.dModel) && s.dModel > 0))
      throw new RangeError(`planSweep: layers and d_model must be positive integers, got ${s.layers}, ${s.dModel}`);
    if (s.dModel % dHead !== 0) throw new RangeError(`planSweep: d_model ${s.dModel} is not a multiple of d_head ${dHead}`);
    for (const d of opts.tokens) {
      if (!(d > 0)) throw new RangeError(`planSweep: token budgets must be positive, got ${d}`);
      const steps = Math.max(1, Math.round(d / (batch * ctx)));
      runs.push({ name: `L${s.layers}_d${s.dModel}_steps${steps}`, layers: s.layers, dModel: s.dModel, heads: s.dModel / dHead, steps, D: steps * batch * ctx });
    }
  }
  const names = new Set(runs.map((r) => r.name));
  if (names.size !== runs.length) throw new RangeError("planSweep: two runs coincide (repeated size, or budgets that round to the same number of steps)");
  return runs;
}

/** Non-embedding (blocks and final norm) and total parameter counts; a tied matrix is counted once. */
export function countParams(model: HookedTransformer): { N: number; params: number } {
  const seen = new Set<unknown>();
  let N = 0, params = 0;
  for (const [name, p] of model.namedParameters()) {
    if (seen.has(p)) continue;
    seen.add(p);
    params += p.size;
    if (!/^(embed|pos_embed|unembed)\./.test(name)) N += p.size;
  }
  return { N, params };
}

/** runs.csv text for rows (fixed column order). */
export function runsCsv(rows: readonly RunRow[]): string {
  return [RUN_COLUMNS.join(","), ...rows.map((r) => RUN_COLUMNS.map((k) => String(r[k])).join(","))].join("\n") + "\n";
}

/** Rows of an existing runs.csv (none if the file is missing); throws on a malformed table. */
export function readRunsCsv(file: string): RunRow[] {
  if (!fs.existsSync(file)) return [];
  const t = parseCsv(fs.readFileSync(file, "utf8"));
  const missing = RUN_COLUMNS.filter((c) => !t.header.includes(c));
  if (missing.length) throw new Error(`${file}: not a sweep table (missing columns ${missing.join(", ")}); move it away or choose another --out`);
  return t.rows.map((r, i) => {
    const row = {} as RunRow;
    for (const c of RUN_COLUMNS) {
      const v = Number(r[t.header.indexOf(c)]);
      if (!Number.isFinite(v)) throw new Error(`${file}: line ${t.lines[i]}: column ${c} is not a number`);
      row[c] = v;
    }
    return row;
  });
}

const sameRun = (r: RunRow, s: SweepRun) => r.layers === s.layers && r.d_model === s.dModel && r.steps === s.steps;

/** Train every run of the grid not yet in outDir/runs.csv; see the file header. */
export function runSweep(opts: SweepOptions): SweepResult {
  const t0 = performance.now();
  const o = { ...DEFAULTS, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) } as Required<SweepOptions>;
  const runs = planSweep(o);
  fs.mkdirSync(o.outDir, { recursive: true });
  const data = prepareCorpus(o.corpus, path.join(o.outDir, "tokens"));
  const csv = path.join(o.outDir, "runs.csv");
  // Rows of other grids stay in the table (a sweep can be extended); this grid's rows are kept as found.
  const rows = readRunsCsv(csv);
  const trainFile = TokenFile.open(data.trainFile), valFile = TokenFile.open(data.valFile);
  let budget = opts.stopAfter ?? Infinity, stopped = false;
  try {
    for (const run of runs) {
      const done = rows.find((r) => sameRun(r, run));
      if (done) { opts.onRun?.(done, true); continue; }
      if (budget <= 0) { stopped = true; break; }
      const modelCfg = makeConfig({ architecture: "gpt2", n_layers: run.layers, n_heads: run.heads, d_model: run.dModel, d_vocab: data.vocabSize, n_ctx: o.ctx });
      const model = new HookedTransformer(modelCfg).initWeights(o.seed);
      const config: Partial<TrainConfig> = {
        iters: run.steps, batch: o.batch, ctx: o.ctx, lr: o.lr, minLr: o.lr / 10, decayIters: run.steps,
        warmupIters: Math.min(100, Math.floor(run.steps / 10)), seed: o.seed,
        // Evaluate only at the end (the trainer also evaluates step 0 of a fresh run; cheap at this size).
        evalEvery: run.steps, evalIters: o.evalIters, checkpointEvery: o.checkpointEvery,
      };
      const dir = path.join(o.outDir, "runs", run.name);
      // Seconds already spent on this run before an interruption, so the table reports the whole run.
      const timeFile = path.join(dir, "seconds.json");
      const before = fs.existsSync(timeFile) ? (JSON.parse(fs.readFileSync(timeFile, "utf8")) as { seconds: number }).seconds : 0;
      const res = train({
        model: lmObjective(model), train: trainFile, val: valFile, config, outDir: dir, resume: true, meta: { model: modelCfg },
        stopAfter: Number.isFinite(budget) ? Math.min(run.steps, checkpointStep(dir) + budget) : undefined,
        onProgress: (p) => opts.onStep?.(run, p.step, p.loss),
      });
      budget -= res.steps - res.resumedFrom;
      const seconds = before + res.elapsedMs / 1000;
      writeFileAtomic(timeFile, (fd) => fs.writeFileSync(fd, JSON.stringify({ seconds }) + "\n"));
      if (res.stopped) { stopped = true; break; }
      // The finished model as a snapshot folder with the corpus's character tokenizer, which loadPretrained and every tool open.
      if (data.tokenizer.kind === "char") saveLabModel(model, path.join(dir, "model"), { chars: data.tokenizer.tokenizer });
      const { N, params } = countParams(model);
      const row: RunRow = {
        N, D: run.D, C: 6 * N * run.D, params, layers: run.layers, d_model: run.dModel, steps: run.steps,
        val_loss: res.finalValLoss ?? NaN, train_loss: res.finalLoss, seconds: Math.round(seconds * 100) / 100,
      };
      rows.push(row);
      writeFileAtomic(csv, (fd) => fs.writeFileSync(fd, runsCsv(rows)));
      opts.onRun?.(row, false);
    }
  } finally {
    trainFile.close(); valFile.close();
  }
  const mine = runs.map((r) => rows.find((x) => sameRun(x, r))).filter((r): r is RunRow => r !== undefined);
  return { rows: mine, runs, stopped, csv, vocabSize: data.vocabSize, trainTokens: data.trainTokens, valTokens: data.valTokens, seconds: (performance.now() - t0) / 1000 };
}

/** The step of a run folder's checkpoint (0 when there is none). */
function checkpointStep(dir: string): number {
  const f = path.join(dir, CHECKPOINT_FILE);
  return fs.existsSync(f) ? readCheckpointState(f).step : 0;
}
