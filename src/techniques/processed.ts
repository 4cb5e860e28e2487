// TransformerLens's weight processing for the techniques that read circuits off the weights
// (circuits, qk-ov). processWeights rewrites a model in place, and a subject's model is shared (the
// server answers every request with one), so the processing is done on a copy, once per model.
import { noGrad } from "../tensor/autodiff.js";
import { HookedTransformer } from "../model/transformer.js";
import { processWeights, type WeightProcessingStep } from "../model/weight-processing.js";
import type { Subject } from "./technique.js";

export interface Processed { model: HookedTransformer; steps: WeightProcessingStep[] }

const copies = new WeakMap<HookedTransformer, Processed>();

/** A frozen copy of a model with the same weights (same dtype, packed for the active backend). */
export function copyModel(m: HookedTransformer): HookedTransformer {
  // Its own config: processing may give the copy an unembedding bias (addBias sets cfg.unembed_bias).
  const c = new HookedTransformer({ ...m.cfg });
  const from = new Map(m.namedParameters());
  if (from.has("unembed.b_U") && !c.unembed.b_U) c.unembed.addBias();
  noGrad(() => {
    for (const [name, p] of c.namedParameters()) {
      const src = from.get(name);
      if (!src || src.size !== p.size) throw new Error(`copyModel: ${name} has no counterpart of ${p.size} values in the model copied`);
      p.data.set(src.contiguous().toArray());
      p.version++;
      p.requiresGrad = false;
    }
  });
  c.checkFinite = m.checkFinite;
  c.packWeights();
  c.eval();
  return c;
}

/** The subject's model with processed weights (a cached copy), or the model itself when process is false. */
export function processedModel(s: Subject, process: boolean): Processed {
  if (!process) return { model: s.model, steps: [] };
  let p = copies.get(s.model);
  if (!p) {
    const model = copyModel(s.model);
    p = { model, steps: processWeights(model) };
    copies.set(s.model, p);
  }
  return p;
}
