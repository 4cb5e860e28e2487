// Loads the grokked 1-layer modular-addition transformer of Nanda et al. 2023 (progress-measures-paper,
// saved_runs/wd_10-1_mod_addition_loss_curve.pth, converted to safetensors) into a HookedTransformer.
// The weight layout (the original's [d_out, d_in] with heads in a leading axis) is converted by
// io/grokking-layout.ts, which loadPretrained uses too. This file also reads the training split and
// the stored loss curves, and writes a trained model back in the same folder layout so `--checkpoint` can analyse it. Not the analysis (fourier.ts).
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadSafetensors, saveSafetensors } from "../../io/safetensors.js";
import { GrokkingCheckpointError, modelFromOriginal, toOriginal } from "../../io/grokking-layout.js";
import type { HookedTransformer } from "../../model/transformer.js";
import { noGrad } from "../../tensor/autodiff.js";

export { GrokkingCheckpointError, grokkingConfig, modelFromOriginal, toOriginal } from "../../io/grokking-layout.js";

export interface LossCurves { epochsPerPoint: number; train: number[]; test: number[] }

export interface GrokkingCheckpoint {
  model: HookedTransformer;
  p: number;
  /** Training pairs (a, b) as a set of a * p + b. */
  trainSet: Set<number>;
  curves: LossCurves | null;
  /** The checkpoint's config.json as read (training settings, provenance). */
  meta: Record<string, unknown>;
}

/** Load `dir` = a folder with model.safetensors, config.json and (optionally) train_pairs.json, loss_curves.json. */
export function loadGrokkingCheckpoint(dir: string): GrokkingCheckpoint {
  const file = join(dir, "model.safetensors");
  if (!existsSync(file)) throw new GrokkingCheckpointError(`no model.safetensors in ${dir}`);
  const meta = existsSync(join(dir, "config.json")) ? JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Record<string, unknown> : {};
  const tc = meta["training_config"] as { p?: number } | undefined;
  const weights = loadSafetensors(file);
  const p = tc?.p ?? weights.get("embed.W_E")!.shape[1]! - 1;
  const model = modelFromOriginal(weights, p);
  const trainSet = new Set<number>();
  const pairsFile = join(dir, "train_pairs.json");
  if (existsSync(pairsFile)) {
    const tp = JSON.parse(readFileSync(pairsFile, "utf8")) as { p: number; train_pairs: [number, number][] };
    if (tp.p !== p) throw new GrokkingCheckpointError(`train_pairs.json is for p = ${tp.p}, the model for p = ${p}`);
    for (const [a, b] of tp.train_pairs) trainSet.add(a * p + b);
  }
  let curves: LossCurves | null = null;
  const lc = join(dir, "loss_curves.json");
  if (existsSync(lc)) {
    const j = JSON.parse(readFileSync(lc, "utf8")) as { epochs_per_point: number; train_loss: number[]; test_loss: number[] };
    curves = { epochsPerPoint: j.epochs_per_point, train: j.train_loss, test: j.test_loss };
  }
  return { model, p, trainSet, curves, meta };
}

/**
 * Write a model as a checkpoint folder loadGrokkingCheckpoint reads: model.safetensors (original
 * layouts), config.json, train_pairs.json and, when given, loss_curves.json. Each file is written to a
 * temporary name and renamed, so a folder never holds a half-written file.
 */
export function saveGrokkingCheckpoint(dir: string, model: HookedTransformer, p: number, trainSet: ReadonlySet<number>, curves: LossCurves | null, trainingConfig: Record<string, unknown>): void {
  mkdirSync(dir, { recursive: true });
  const json = (name: string, v: unknown) => { const f = join(dir, name); writeFileSync(f + ".tmp", JSON.stringify(v)); renameSync(f + ".tmp", f); };
  noGrad(() => saveSafetensors(join(dir, "model.safetensors"), toOriginal(model), { source: "circuitscope lab grokking --train" }));
  const c = model.cfg;
  json("config.json", {
    description: `1-layer transformer trained on (a + b) mod ${p} by circuitscope lab grokking`,
    training_config: { ...trainingConfig, p },
    architecture: { n_layers: 1, d_model: c.d_model, n_heads: c.n_heads, d_head: c.d_head, d_mlp: c.d_mlp, d_vocab: c.d_vocab, n_ctx: c.n_ctx, act_fn: c.act_fn, normalization: null },
  });
  const pairs = [...trainSet].sort((a, b) => a - b).map((r) => [Math.floor(r / p), r % p]);
  json("train_pairs.json", { p, n_train: pairs.length, train_pairs: pairs });
  if (curves) json("loss_curves.json", { epochs_per_point: curves.epochsPerPoint, train_loss: curves.train, test_loss: curves.test });
}
