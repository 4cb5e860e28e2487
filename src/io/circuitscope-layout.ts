// circuitscope's own snapshot layout, for models no Hugging Face class expresses (attention-only
// models, models without LayerNorm, such as the labs' 2-layer attention-only transformer): config.json
// with model_type "circuitscope" and the ModelConfig under "circuitscope_config" (TransformerLens's
// field names), and model.safetensors holding the state dict under circuitscope's parameter names
// (TransformerLens's names: embed.W_E, blocks.0.attn.W_Q, …; matrices [d_in, d_out], heads side by
// side, as circuitscope stores them). saveHF writes it when configToHF cannot; loadPretrained reads it.
import { makeConfig, type ModelConfig } from "../model/config.js";
import { NonFiniteError, nonFiniteAt } from "../model/finite.js";
import { HookedTransformer } from "../model/transformer.js";
import { noGrad } from "../tensor/autodiff.js";
import type { Tensor } from "../tensor/tensor.js";
import { HFConfigError, type HFConfigJson } from "./hf-config.js";
import type { TensorSource } from "./safetensors.js";

export const CIRCUITSCOPE_MODEL_TYPE = "circuitscope";

export function isCircuitscopeLayout(json: HFConfigJson): boolean {
  return json.model_type === CIRCUITSCOPE_MODEL_TYPE;
}

/** config.json for cfg in this layout; fields of base that the layout does not decide are kept. */
export function circuitscopeConfigJson(cfg: ModelConfig, base: HFConfigJson = {}): HFConfigJson {
  const { architectures: _a, ...rest } = base;
  return { ...rest, architectures: ["HookedTransformer"], model_type: CIRCUITSCOPE_MODEL_TYPE, circuitscope_config: cfg, bos_token_id: cfg.bos_token_id, torch_dtype: cfg.dtype ?? "float32" };
}

/** The ModelConfig of such a config.json, filled and validated by makeConfig. */
export function circuitscopeConfigFromJson(json: HFConfigJson): ModelConfig {
  const c = json.circuitscope_config;
  if (typeof c !== "object" || c === null || Array.isArray(c)) throw new HFConfigError(`config.json: model_type "${CIRCUITSCOPE_MODEL_TYPE}" needs an object "circuitscope_config", got ${JSON.stringify(c)}`);
  const cfg = c as Partial<ModelConfig>;
  for (const k of ["d_model", "n_layers", "n_heads", "d_vocab"] as const) if (typeof cfg[k] !== "number") throw new HFConfigError(`config.json: circuitscope_config.${k} must be a number, got ${JSON.stringify(cfg[k])}`);
  return makeConfig(cfg as Parameters<typeof makeConfig>[0]);
}

/**
 * Copy the weights of source into model, checking every name and shape (loadStateDict, strict) and,
 * unless checkFinite is false, that no tensor holds NaN or ±Infinity.
 */
export function loadCircuitscopeWeights(model: HookedTransformer, source: TensorSource, opts: { checkFinite?: boolean } = {}): void {
  const params = model.stateDict(), dict = new Map<string, Tensor>();
  for (const name of source.names()) {
    const t = source.load(name, { dtype: params.get(name)?.dtype ?? "float32" });
    const at = (opts.checkFinite ?? true) ? nonFiniteAt(t) : null;
    if (at !== null) throw new NonFiniteError(`${source.location}: tensor "${name}" holds ${at} (load with checkFinite: false to skip this check)`, name);
    dict.set(name, t);
  }
  noGrad(() => model.loadStateDict(dict));
}

/** The model's state dict, contiguous, as this layout saves it. */
export function circuitscopeStateDict(model: HookedTransformer): Map<string, Tensor> {
  return noGrad(() => new Map([...model.stateDict()].map(([k, t]) => [k, t.contiguous()] as const)));
}
