// The grokking lab's experiment: analyse the real grokked checkpoint (when given its folder) and/or
// train a model from scratch and measure it over training (Nanda et al. 2023). Returns plain data;
// report.ts renders it and the CLI writes it. Never prints.
import { analyseAllPairs, analyseModel, type ModelAnalysis } from "./analysis.js";
import { loadGrokkingCheckpoint, type LossCurves } from "./checkpoint.js";
import type { HookedTransformer } from "../../model/transformer.js";
import { trainGrokking, type GrokTrainOptions } from "./train.js";
import { accuracySeparation, grokkingCriteria, lossSeparation, type Criterion, type Separation } from "./criteria.js";

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
  options: Omit<GrokTrainOptions, "onEpoch" | "outDir" | "resume" | "stopAfter" | "checkpointEvery">;
  epochs: number[];
  trainLoss: number[];
  testLoss: number[];
  trainAcc: number[];
  testAcc: number[];
  /** First epochs at accuracy ≥ 99% (train, test) and their ratio; the same from the loss curves. */
  separation: { accuracy: Separation; loss: Separation };
  /** Issue #5's acceptance criteria for this run. */
  criteria: Criterion[];
  /** Progress measures at each snapshot, with the final model's key frequencies (as §5.1). */
  measures: TrainingMeasure[];
  final: ModelAnalysis;
  seconds: number;
  /** The trained model and its split (saveGrokkingCheckpoint writes them). */
  model: HookedTransformer;
  trainSet: Set<number>;
}

export interface GrokkingLabResult {
  /** separation and criteria from the stored loss curves (the checkpoint has no accuracy curves). */
  checkpoint?: { dir: string; meta: string; analysis: ModelAnalysis; curves: LossCurves | null; separation: Separation | null; criteria: Criterion[] };
  training?: TrainingRecord;
  seconds: number;
}

export function runGrokkingLab(o: GrokkingLabOptions): GrokkingLabResult {
  const t0 = performance.now();
  const res: GrokkingLabResult = { seconds: 0 };
  if (o.checkpoint) {
    const ck = loadGrokkingCheckpoint(o.checkpoint);
    const src = ck.meta["source"] as { repo?: string; path?: string } | undefined;
    const analysis = analyseModel(ck.model, ck.p, ck.trainSet, { full: true }), c = ck.curves;
    const separation = c ? lossSeparation(c.train.map((_, i) => i * c.epochsPerPoint), c.train, c.test) : null;
    res.checkpoint = {
      dir: o.checkpoint, meta: src ? `${src.repo ?? ""} ${src.path ?? ""}`.trim() : "",
      analysis, curves: c, separation, criteria: grokkingCriteria(analysis, separation),
    };
  }
  if (o.train) {
    const { onEpoch: _cb, outDir: _d, resume: _r, stopAfter: _s, checkpointEvery: _c, ...options } = o.train;
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
    const separation = { accuracy: accuracySeparation(r.epochs, r.trainAcc, r.testAcc), loss: lossSeparation(r.epochs, r.trainLoss, r.testLoss) };
    res.training = {
      options, epochs: r.epochs, trainLoss: r.trainLoss, testLoss: r.testLoss, trainAcc: r.trainAcc, testAcc: r.testAcc, separation,
      criteria: grokkingCriteria(final, separation.accuracy), measures, final, seconds: r.seconds, model: r.model, trainSet: r.trainSet,
    };
  }
  res.seconds = (performance.now() - t0) / 1000;
  return res;
}
