// The scaling sweep on a tiny grid: runs.csv has the documented columns and values that agree with an
// independent parameter count and C = 6ND; a sweep interrupted twice (mid-run, after a checkpoint and
// before one) and rerun gives the same table as an uninterrupted one; fit-scaling reads runs.csv; and
// `circuitscope lab scaling --json` writes the report, one JSON document, and skips finished runs on a rerun.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseCsv, RUN_COLUMNS, runSweep, type RunRow, type SweepOptions } from "../src/labs/scaling/index.js";
import { cli, repo } from "./cli-helpers.js";
import { loadPretrained } from "../src/io/snapshot.js";

const shakespeare = join(repo, "../shared/data/tinyshakespeare.txt");
const skip = existsSync(shakespeare) ? false : `no corpus at ${shakespeare}`;

/** A 3 × 2 grid: six runs (the fewest fit-scaling accepts), 4 or 8 steps of 4 × 16 tokens each. */
function tiny(dir: string, corpus: string, over: Partial<SweepOptions> = {}): SweepOptions {
  return {
    corpus, outDir: dir, sizes: [{ layers: 1, dModel: 16 }, { layers: 2, dModel: 16 }, { layers: 1, dModel: 32 }], tokens: [256, 512],
    batch: 4, ctx: 16, evalIters: 2, checkpointEvery: 3, seed: 3, ...over,
  };
}

const strip = (rows: RunRow[]) => rows.map(({ seconds: _s, ...rest }) => rest);

test("lab scaling sweep: runs.csv columns, values, interrupted-and-resumed equals uninterrupted, fit-scaling reads it", { skip }, () => {
  const root = mkdtempSync(join(tmpdir(), "scaling-sweep-"));
  try {
    const corpus = join(root, "corpus.txt");
    writeFileSync(corpus, readFileSync(shakespeare, "utf8").slice(0, 20000));
    const full = runSweep(tiny(join(root, "full"), corpus));
    assert.equal(full.stopped, false);
    const t = parseCsv(readFileSync(join(root, "full", "runs.csv"), "utf8"));
    assert.deepEqual(t.header, [...RUN_COLUMNS]);
    assert.equal(t.rows.length, 6);
    for (const r of full.rows) {
      // GPT-2 block: 4d² attention + 8d² MLP weights, biases 4d (attn) + 5d (MLP), two LNs 4d; plus ln_final 2d.
      const d = r.d_model;
      assert.equal(r.N, r.layers * (12 * d * d + 13 * d) + 2 * d, `N for ${r.layers}x${d}`);
      assert.equal(r.params - r.N, 2 * full.vocabSize * d + 16 * d, "embeddings W_E, W_U (untied) and W_pos (ctx 16) are the rest");
      assert.equal(r.D, r.steps * 4 * 16);
      assert.equal(r.C, 6 * r.N * r.D);
      assert.ok(Number.isFinite(r.val_loss) && r.val_loss > 0 && r.val_loss < Math.log(full.vocabSize) + 1, `val loss ${r.val_loss}`);
    }
    assert.deepEqual(full.rows.map((r) => r.steps), [4, 8, 4, 8, 4, 8]);
    // Each finished run's model is a snapshot folder that loadPretrained opens, with the corpus's characters as its tokens.
    for (const run of full.runs) {
      const { model } = loadPretrained(join(root, "full", "runs", run.name, "model"));
      assert.deepEqual([model.cfg.n_layers, model.cfg.d_model, model.cfg.d_vocab], [run.layers, run.dModel, full.vocabSize], run.name);
      assert.equal(model.toString(model.toTokens("ROMEO:")), "ROMEO:");
    }

    // Interrupted after 6 steps (run 2 stopped at step 2, before its step-3 checkpoint), then after 5
    // more (run 2 resumed from scratch, stopped at step 7 after its step-6 checkpoint), then finished.
    const dir = join(root, "resumed");
    const a = runSweep(tiny(dir, corpus, { stopAfter: 6 }));
    assert.equal(a.stopped, true);
    assert.equal(a.rows.length, 1);
    const b = runSweep(tiny(dir, corpus, { stopAfter: 7 }));
    assert.equal(b.stopped, true);
    assert.ok(existsSync(join(dir, "runs", "L1_d16_steps8", "ckpt.safetensors")), "the interrupted run left a checkpoint");
    const c = runSweep(tiny(dir, corpus));
    assert.equal(c.stopped, false);
    assert.deepEqual(strip(c.rows).map((r) => ({ ...r, val_loss: 0, train_loss: 0 })), strip(full.rows).map((r) => ({ ...r, val_loss: 0, train_loss: 0 })));
    c.rows.forEach((r, i) => {
      assert.ok(Math.abs(r.val_loss - full.rows[i]!.val_loss) <= 1e-6, `val loss ${r.val_loss} vs ${full.rows[i]!.val_loss}`);
      assert.ok(Math.abs(r.train_loss - full.rows[i]!.train_loss) <= 1e-6, `train loss ${r.train_loss} vs ${full.rows[i]!.train_loss}`);
    });
    // A finished sweep trains nothing more.
    let steps = 0;
    runSweep(tiny(dir, corpus, { onStep: () => steps++ }));
    assert.equal(steps, 0);

    const res = cli("fit-scaling", join(root, "full", "runs.csv"), "--n-col", "N", "--d-col", "D", "--loss-col", "val_loss", "--bootstrap", "5", "--json");
    assert.equal(res.code, 0, res.stderr);
    const doc = JSON.parse(res.stdout) as { runs: number; used: number; law: { E: number; A: number; B: number; alpha: number; beta: number } };
    assert.equal(doc.runs, 6);
    assert.equal(doc.used, 6);
    for (const v of Object.values(doc.law)) assert.ok(Number.isFinite(v), `fitted ${JSON.stringify(doc.law)}`);
  } finally { rmSync(root, { recursive: true, force: true }); }
});

test("circuitscope lab scaling --json on a tiny grid writes runs.csv, the report and one JSON document; a rerun skips every run", { skip }, () => {
  const root = mkdtempSync(join(tmpdir(), "scaling-lab-"));
  try {
    const corpus = join(root, "corpus.txt"), out = join(root, "out");
    writeFileSync(corpus, readFileSync(shakespeare, "utf8").slice(0, 20000));
    const args = ["lab", "scaling", "--corpus", corpus, "--sizes", "1x16,2x16,1x32", "--tokens", "256,512", "--batch", "4", "--ctx", "16", "--eval-iters", "2", "--bootstrap", "5", "--out", out, "--json"];
    const res = cli(...args);
    assert.equal(res.code, 0, res.stderr);
    const doc = JSON.parse(res.stdout) as { out: string; stopped: boolean; runs: RunRow[]; fit: { runs: number; law: Record<string, number>; allocation: { a: number; b: number } } | null; kaplanGrid: unknown };
    assert.equal(doc.out, out);
    assert.equal(doc.stopped, false);
    assert.equal(doc.runs.length, 6);
    assert.ok(doc.fit && doc.fit.runs === 6);
    assert.ok(Math.abs(doc.fit.allocation.a + doc.fit.allocation.b - 1) < 1e-12, "a + b = 1");
    assert.ok(Math.abs(doc.fit.allocation.a - doc.fit.law.beta! / (doc.fit.law.alpha! + doc.fit.law.beta!)) < 1e-12, "a = β/(α+β)");
    assert.ok(doc.kaplanGrid);
    for (const f of ["runs.csv", "report.md", "loss_vs_D.svg", "loss_vs_N.svg", "isoloss.svg", "frontier.svg", "allocation.svg", "fitted_vs_observed.svg"])
      assert.ok(existsSync(join(out, f)), f);
    const md = readFileSync(join(out, "report.md"), "utf8");
    assert.match(md, /\| α \(N term of L\(N, D\)\) \|/);
    assert.match(md, /!\[loss_vs_D\.svg\]\(loss_vs_D\.svg\)/);
    const again = cli(...args);
    assert.equal(again.code, 0, again.stderr);
    const doc2 = JSON.parse(again.stdout) as { runs: RunRow[] };
    assert.deepEqual(doc2.runs, doc.runs, "the rerun reads every run from runs.csv");
    assert.doesNotMatch(again.stderr, /val loss/, "no run was trained again");
  } finally { rmSync(root, { recursive: true, force: true }); }
});
