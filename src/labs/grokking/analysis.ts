// One call that measures a modular-addition model the way Nanda et al. 2023 do: accuracy and loss on
// the training and held-out pairs, the embedding's Fourier spectrum and key frequencies (§4.1), the
// logits explained by cos(w_k(a+b−c)) (§4.2), the restricted and excluded losses (§5.1) and, when
// asked, the neuron-frequency clusters (§4.3) and the logits' 2D Fourier spectrum for plotting.
import type { HookedTransformer } from "../../model/transformer.js";
import { accuracyOn, evaluateAllPairs, type AllPairs } from "./evaluate.js";
import {
  crossEntropyOn, fitLogits, outputBiasShare, fourierBasis, frequencyNorms, keyFrequencies, logitFourierNorms, neuronFrequencies,
  normFraction, progressMeasures, type ProgressMeasures,
} from "./fourier.js";

/** A neuron counts as "one frequency" when that frequency holds ≥ 85% of its non-constant variance (§4.3 finds most neurons are well approximated by one). */
export const NEURON_CLUSTER_THRESHOLD = 0.85;

export interface ModelAnalysis {
  p: number;
  accuracy: { all: number; train: number; test: number };
  loss: { train: number; test: number };
  /** ‖W_E on frequency k‖², k = 0..(p−1)/2 (0 = constant). */
  embedNorms: number[];
  keyFrequencies: number[];
  /** Share of the embedding's squared norm on the key frequencies. */
  embedKeyFraction: number;
  /** Fraction of the centred logits' variance explained by Σ_k α_k cos(w_k(a+b−c)) over the key frequencies. */
  logitVarianceExplained: number;
  /** Share of the centred logits' variance in a per-output bias shared by all (a, b) (outputBiasShare). */
  logitOutputBiasShare: number;
  /** α_k per key frequency. */
  alpha: [number, number][];
  /** Per frequency k (index k ≥ 1): fraction of logit variance its cos(w_k(a+b−c)) term explains. */
  logitVarianceByFrequency: number[];
  progress: ProgressMeasures;
  /** Live neurons ≥ the threshold, per best frequency; meanFraction averages the best frequency's share over live neurons. */
  neurons?: { clustered: number; total: number; perFrequency: Record<number, number>; dead: number; meanFraction: number };
  /** [p, p] row-major: ‖2D Fourier coefficient‖ of the centred logits over outputs (rows: a basis, cols: b basis). */
  logitSpectrum?: Float64Array;
}

export interface AnalyseOptions {
  /** Key frequencies to use (e.g. the final model's, when measuring a training run); found from the embedding if absent. */
  keys?: readonly number[];
  /** Also compute neuron clusters and the logit spectrum (a few seconds at p = 113). */
  full?: boolean;
}

export function analyseAllPairs(ev: AllPairs, dModel: number, dMlp: number, trainSet: ReadonlySet<number>, opts: AnalyseOptions = {}): ModelAnalysis {
  const { p } = ev;
  const isTrain = (r: number) => trainSet.has(r), isTest = (r: number) => !trainSet.has(r);
  const F = fourierBasis(p);
  const embedNorms = frequencyNorms(F, ev.embed, dModel);
  const keys = opts.keys ? [...opts.keys] : keyFrequencies(embedNorms);
  const fit = fitLogits(ev.logits, p, keys);
  const out: ModelAnalysis = {
    p,
    accuracy: { all: accuracyOn(ev.logits, p, () => true), train: accuracyOn(ev.logits, p, isTrain), test: accuracyOn(ev.logits, p, isTest) },
    loss: { train: crossEntropyOn(ev.logits, p, isTrain), test: crossEntropyOn(ev.logits, p, isTest) },
    embedNorms, keyFrequencies: keys, embedKeyFraction: normFraction(embedNorms, keys),
    logitVarianceExplained: fit.varianceExplained, logitOutputBiasShare: outputBiasShare(ev.logits, p), alpha: [...fit.alpha], logitVarianceByFrequency: fit.perFrequency,
    progress: progressMeasures(ev.logits, p, keys, trainSet),
  };
  if (opts.full) {
    const nc = neuronFrequencies(F, ev.neurons, dMlp);
    const perFrequency: Record<number, number> = {};
    let clustered = 0, dead = 0, sum = 0;
    for (let n = 0; n < dMlp; n++) {
      let mx = 0;
      for (let r = 0; r < p * p; r++) mx = Math.max(mx, Math.abs(ev.neurons[r * dMlp + n]!));
      // A neuron that never fires (ReLU output 0 everywhere) has no frequency to speak of.
      if (mx === 0) { dead++; continue; }
      sum += nc.fraction[n]!;
      if (nc.fraction[n]! >= NEURON_CLUSTER_THRESHOLD) { clustered++; perFrequency[nc.freq[n]!] = (perFrequency[nc.freq[n]!] ?? 0) + 1; }
    }
    out.neurons = { clustered, total: dMlp, perFrequency, dead, meanFraction: sum / Math.max(1, dMlp - dead) };
    out.logitSpectrum = logitFourierNorms(F, ev.logits);
  }
  return out;
}

export function analyseModel(model: HookedTransformer, p: number, trainSet: ReadonlySet<number>, opts: AnalyseOptions = {}): ModelAnalysis {
  return analyseAllPairs(evaluateAllPairs(model, p), model.cfg.d_model, model.cfg.d_mlp, trainSet, opts);
}
