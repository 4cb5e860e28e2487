// What defines a sparse autoencoder or transcoder: its activation, widths, and which hook points it
// reads and reconstructs. The JSON form is SAELens's cfg.json (d_in, d_sae, dtype, apply_b_dec_to_input,
// normalize_activations, architecture, k, metadata{model_name, hook_name, …}); transcoders add d_out
// and metadata.hook_name_out. Parsing checks every field and names the bad one.

/** The sparsifying nonlinearity: ReLU with an L1 penalty, TopK, or JumpReLU with an L0 penalty. */
export type SaeActivation = "relu" | "topk" | "jumprelu";
export const SAE_ACTIVATIONS: readonly SaeActivation[] = ["relu", "topk", "jumprelu"];

export interface SaeConfig {
  activation: SaeActivation;
  d_in: number;             // width of the hook read, e.g. 64 (d_model)
  d_sae: number;            // number of latents, e.g. 512
  d_out: number;            // width reconstructed: d_in for an SAE, the output hook's for a transcoder
  k: number | null;         // TopK: latents kept per token, e.g. 8; null otherwise
  /** Subtract b_dec from the input before encoding (SAELens's default for SAEs; off for transcoders). */
  apply_b_dec_to_input: boolean;
  /** Transcoders only: a linear skip path x W_skip [d_in, d_out] added to the output. */
  skip: boolean;
  hook_name: string;        // e.g. blocks.0.hook_resid_post
  hook_name_out: string;    // = hook_name for an SAE; e.g. blocks.0.hook_mlp_out for a transcoder
  dtype: "float32" | "float64";
  model_name: string | null;
  context_size: number | null;
  prepend_bos: boolean | null;
  dataset_path: string | null;
}

export class SaeConfigError extends Error {
  override name = "SaeConfigError";
}

export const isTranscoder = (c: Pick<SaeConfig, "hook_name" | "hook_name_out">): boolean => c.hook_name !== c.hook_name_out;

/** Fill defaults and check a config; throws SaeConfigError naming the field. */
export function makeSaeConfig(c: Partial<SaeConfig> & Pick<SaeConfig, "d_in" | "d_sae" | "hook_name">): SaeConfig {
  const hookOut = c.hook_name_out ?? c.hook_name;
  const transcoder = hookOut !== c.hook_name;
  const cfg: SaeConfig = {
    activation: c.activation ?? "relu", d_in: c.d_in, d_sae: c.d_sae, d_out: c.d_out ?? c.d_in, k: c.k ?? null,
    apply_b_dec_to_input: c.apply_b_dec_to_input ?? !transcoder, skip: c.skip ?? false,
    hook_name: c.hook_name, hook_name_out: hookOut, dtype: c.dtype ?? "float32",
    model_name: c.model_name ?? null, context_size: c.context_size ?? null, prepend_bos: c.prepend_bos ?? null, dataset_path: c.dataset_path ?? null,
  };
  const posInt = (name: keyof SaeConfig, v: unknown) => {
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1) throw new SaeConfigError(`${name} must be a positive integer, got ${JSON.stringify(v)}`);
  };
  posInt("d_in", cfg.d_in); posInt("d_sae", cfg.d_sae); posInt("d_out", cfg.d_out);
  if (!SAE_ACTIVATIONS.includes(cfg.activation)) throw new SaeConfigError(`activation must be one of ${SAE_ACTIVATIONS.join(", ")}, got ${JSON.stringify(cfg.activation)}`);
  if (cfg.activation === "topk") {
    posInt("k", cfg.k);
    if (cfg.k! > cfg.d_sae) throw new SaeConfigError(`k = ${cfg.k} exceeds d_sae = ${cfg.d_sae}`);
  } else if (cfg.k !== null) throw new SaeConfigError(`k is only for topk, got k = ${cfg.k} with ${cfg.activation}`);
  if (typeof cfg.hook_name !== "string" || !cfg.hook_name) throw new SaeConfigError("hook_name must be a hook point name");
  if (!transcoder && cfg.d_out !== cfg.d_in) throw new SaeConfigError(`an SAE reconstructs its input: d_out ${cfg.d_out} must equal d_in ${cfg.d_in}`);
  if (cfg.apply_b_dec_to_input && cfg.d_out !== cfg.d_in) throw new SaeConfigError(`apply_b_dec_to_input needs d_out = d_in (${cfg.d_out} vs ${cfg.d_in})`);
  if (cfg.skip && !transcoder) throw new SaeConfigError("skip is for transcoders (hook_name_out different from hook_name)");
  if (cfg.dtype !== "float32" && cfg.dtype !== "float64") throw new SaeConfigError(`dtype must be float32 or float64, got ${JSON.stringify(cfg.dtype)}`);
  return cfg;
}

/** SAELens's architecture string: standard | topk | jumprelu, or transcoder | skip_transcoder | jumprelu_transcoder | … */
export function architectureOf(c: SaeConfig): string {
  if (!isTranscoder(c)) return c.activation === "relu" ? "standard" : c.activation;
  const act = c.activation === "relu" ? "" : `${c.activation}_`;
  return `${act}${c.skip ? "skip_" : ""}transcoder`;
}

const ARCHITECTURES: Record<string, { activation: SaeActivation; transcoder: boolean; skip: boolean }> = {
  standard: { activation: "relu", transcoder: false, skip: false },
  topk: { activation: "topk", transcoder: false, skip: false },
  jumprelu: { activation: "jumprelu", transcoder: false, skip: false },
  ...Object.fromEntries(SAE_ACTIVATIONS.flatMap((a) => [false, true].map((skip) => [
    `${a === "relu" ? "" : `${a}_`}${skip ? "skip_" : ""}transcoder`, { activation: a, transcoder: true, skip },
  ]))),
};

/** The cfg.json document (SAELens v6 layout, transcoders as its Transcoder config). */
export function configToJson(c: SaeConfig): Record<string, unknown> {
  return {
    architecture: architectureOf(c), d_in: c.d_in, d_sae: c.d_sae, ...(isTranscoder(c) ? { d_out: c.d_out } : {}),
    ...(c.activation === "topk" ? { k: c.k } : {}),
    dtype: c.dtype, device: "cpu", apply_b_dec_to_input: c.apply_b_dec_to_input, normalize_activations: "none", reshape_activations: "none",
    metadata: {
      model_name: c.model_name, hook_name: c.hook_name, ...(isTranscoder(c) ? { hook_name_out: c.hook_name_out } : {}),
      hook_head_index: null, prepend_bos: c.prepend_bos, context_size: c.context_size, dataset_path: c.dataset_path,
    },
  };
}

/** Parse a cfg.json document; unknown architecture, missing or malformed fields are SaeConfigErrors. */
export function configFromJson(j: unknown, where = "cfg.json"): SaeConfig {
  if (typeof j !== "object" || j === null || Array.isArray(j)) throw new SaeConfigError(`${where}: expected a JSON object`);
  const o = j as Record<string, unknown>;
  const arch = o.architecture ?? "standard";
  const a = typeof arch === "string" ? ARCHITECTURES[arch] : undefined;
  if (!a) throw new SaeConfigError(`${where}: unknown architecture ${JSON.stringify(arch)}; circuitscope reads ${Object.keys(ARCHITECTURES).join(", ")}`);
  // SAELens v6 nests model and hook under "metadata" (earlier "meta"); v5 put them at the top level.
  const meta = (o.metadata ?? o.meta ?? o) as Record<string, unknown>;
  const norm = o.normalize_activations ?? "none";
  if (norm !== "none") throw new SaeConfigError(`${where}: normalize_activations ${JSON.stringify(norm)} is not supported (only "none")`);
  const hook = meta.hook_name;
  if (typeof hook !== "string") throw new SaeConfigError(`${where}: metadata.hook_name is missing`);
  const hookOut = a.transcoder ? meta.hook_name_out : hook;
  if (typeof hookOut !== "string") throw new SaeConfigError(`${where}: a ${arch} needs metadata.hook_name_out`);
  if (a.transcoder && hookOut === hook) throw new SaeConfigError(`${where}: a transcoder's hook_name_out must differ from hook_name`);
  const str = (v: unknown) => (typeof v === "string" ? v : null);
  try {
    return makeSaeConfig({
      activation: a.activation, skip: a.skip,
      d_in: o.d_in as number, d_sae: o.d_sae as number, d_out: (a.transcoder ? o.d_out : o.d_in) as number,
      k: a.activation === "topk" ? (o.k ?? (o.activation_fn_kwargs as { k?: number } | undefined)?.k) as number : null,
      apply_b_dec_to_input: (o.apply_b_dec_to_input ?? !a.transcoder) as boolean,
      hook_name: hook, hook_name_out: hookOut, dtype: (o.dtype ?? "float32") as "float32",
      model_name: str(meta.model_name), dataset_path: str(meta.dataset_path),
      context_size: typeof meta.context_size === "number" ? meta.context_size : null,
      prepend_bos: typeof meta.prepend_bos === "boolean" ? meta.prepend_bos : null,
    });
  } catch (e) {
    if (e instanceof SaeConfigError) throw new SaeConfigError(`${where}: ${e.message}`);
    throw e;
  }
}
