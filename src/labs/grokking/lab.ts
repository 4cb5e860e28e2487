// The grokking lab's experiment: analyse the real grokked checkpoint (when given its folder) and/or
// train a model from scratch and measure it over training (Nanda et al. 2023). Returns plain data;
// report.ts renders it and the CLI writes it. Never prints.
import { analyseAllPairs, analyseModel, type ModelAnalysis } from "./analysis.js";
import { loadGrokkingCheckpoint, type LossCurves } from "./checkpoint.js";
import type { HookedTransformer } from "../../model/transformer.js";
import { trainGrokking, type GrokTrainOptions } from "./train.js";

export interface GrokkingLabOptions {
  /** Folder of the grokked checkpoint (model.safetensors, config.json, train_pairs.json, loss_curves.json). */
  checkpoint?: string;
  /** Train from scratch with these options. */
  train?: GrokTrainOptions;
}

export interface TrainingMeasure {
  epoch: number;
  restrictedLoss: number;
  excludedLoss: number;
  testAccuracy: number;
  embedKeyFraction: number;
  logitVarianceExplained: number;
}

export interface TrainingRecord {
  options: Omit<GrokTrainOptions, "onEpoch">;
  epochs: number[];
  trainLoss: number[];
  testLoss: number[];
  /** Progress measures at each snapshot, with the final model's key frequencies (as §5.1). */
  measures: TrainingMeasure[];
  final: ModelAnalysis;
  seconds: number;
  /** The trained model and its split (saveGrokkingCheckpoint writes them). */
  model: HookedTransformer;
  trainSet: Set<number>;
}

export interface GrokkingLabResult {
  checkpoint?: { dir: string; meta: string; analysis: ModelAnalysis; curves: LossCurves | null };
  training?: TrainingRecord;
  seconds: number;
}

export function runGrokkingLab(o: GrokkingLabOptions): GrokkingLabResult {
  const t0 = performance.now();
  const res: GrokkingLabResult = { seconds: 0 };
  if (o.checkpoint) {
    const ck = loadGrokkingCheckpoint(o.checkpoint);
    const src = ck.meta["source"] as { repo?: string; path?: string } | undefined;
    res.checkpoint = {
      dir: o.checkpoint, meta: src ? `${src.repo ?? ""} ${src.path ?? ""}`.trim() : "",
      analysis: analyseModel(ck.model, ck.p, ck.trainSet, { full: true }), curves: ck.curves,
    };
  }
  if (o.train) {
    const { onEpoch: _cb, ...options } = o.train;
    const r = trainGrokking(o.train);
    const final = analyseModel(r.model, options.p, r.trainSet, { full: true });
    const D = options.dModel, M = options.dMlp;
    const measures = r.snapshots.map((s) => {
      const a = analyseAllPairs({ p: options.p, logits: Float64Array.from(s.logits), neurons: new Float64Array(0), embed: s.embed }, D, M, r.trainSet, { keys: final.keyFrequencies });
      return {
        epoch: s.epoch, restrictedLoss: a.progress.restrictedLoss, excludedLoss: a.progress.excludedLoss, testAccuracy: a.accuracy.test,
        embedKeyFraction: a.embedKeyFraction, logitVarianceExplained: a.logitVarianceExplained,
      };
    });
    res.training = { options, epochs: r.epochs, trainLoss: r.trainLoss, testLoss: r.testLoss, measures, final, seconds: r.seconds, model: r.model, trainSet: r.trainSet };
  }
  res.seconds = (performance.now() - t0) / 1000;
  return res;
}
