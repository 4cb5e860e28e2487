// Hugging Face snapshot folders (what `huggingface-cli download` or save_pretrained leaves): config.json,
// model.safetensors or model.safetensors.index.json with its shards, and optionally tokenizer files.
// loadPretrained builds a frozen HookedTransformer from one; saveHF writes a model back as one.
//
// Not handled: pytorch_model.bin (pickled torch; convert it to safetensors first), downloading, and
// model families other than those in hf-config.ts.
import fs from "node:fs";
import path from "node:path";
import { HookedTransformer } from "../model/transformer.js";
import type { ModelConfig } from "../model/config.js";
import { configFromHF, configToHF, HFConfigError, type HFConfigJson } from "./hf-config.js";
import { hfStateDict, loadHFWeights, unembedIsTied } from "./hf-weights.js";
import { saveSafetensors, SafetensorsFile, ShardedSafetensors, writeFileAtomic, type TensorSource } from "./safetensors.js";
import { Tokenizer } from "./tokenizer.js";

export class SnapshotError extends Error {
  override name = "SnapshotError";
}

export interface LoadPretrainedOptions {
  /** Parameter dtype: "float32" (default) or "float64" (for reference comparisons). Half-precision weights are converted on load. */
  dtype?: "float32" | "float64";
  /**
   * Check every weight for NaN/Inf as it loads (NonFiniteError naming the tensor) and set the model's
   * checkFinite, which checks the logits of every forward. Default true; false skips both.
   */
  checkFinite?: boolean;
}

export interface Pretrained {
  model: HookedTransformer;
  /** null when the folder has no tokenizer.json. */
  tokenizer: Tokenizer | null;
  config: ModelConfig;
  /** config.json as read, so saveHF can keep the fields circuitscope does not model (eos_token_id, …). */
  hfConfig: HFConfigJson;
}

function listing(folder: string): string {
  const files = fs.readdirSync(folder);
  return files.length ? files.join(", ") : "nothing";
}

/** The folder's weights: model.safetensors, else the sharded index. */
export function openWeights(folder: string): TensorSource {
  const single = path.join(folder, "model.safetensors"), index = path.join(folder, "model.safetensors.index.json");
  if (fs.existsSync(single)) return SafetensorsFile.open(single);
  if (fs.existsSync(index)) return new ShardedSafetensors(index);
  const hint = fs.existsSync(path.join(folder, "pytorch_model.bin"))
    ? " It has pytorch_model.bin only: reading pickled torch checkpoints is out of scope for circuitscope; convert it to safetensors with `python -c \"from transformers import AutoModelForCausalLM as M; M.from_pretrained('<folder>').save_pretrained('<folder>', safe_serialization=True)\"`."
    : "";
  throw new SnapshotError(`${folder}: no model.safetensors or model.safetensors.index.json (the folder has ${listing(folder)}).${hint}`);
}

/** Read a snapshot folder's config.json. */
export function readHFConfig(folder: string): HFConfigJson {
  if (!fs.existsSync(folder) || !fs.statSync(folder).isDirectory()) throw new SnapshotError(`${folder}: not a folder (expected a Hugging Face snapshot folder with config.json and model.safetensors)`);
  const file = path.join(folder, "config.json");
  if (!fs.existsSync(file)) throw new SnapshotError(`${folder}: no config.json (the folder has ${listing(folder)}); a Hugging Face snapshot folder needs config.json and model.safetensors`);
  let json: unknown;
  try { json = JSON.parse(fs.readFileSync(file, "utf8")); } catch (e) {
    throw new SnapshotError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) throw new SnapshotError(`${file}: expected a JSON object`);
  return json as HFConfigJson;
}

/**
 * A HookedTransformer with a snapshot folder's weights, frozen for analysis (requiresGrad = false on
 * every parameter; call p.requireGrad() to fine-tune), and its tokenizer if the folder has one.
 */
export function loadPretrained(folder: string, opts: LoadPretrainedOptions = {}): Pretrained {
  const dtype = opts.dtype ?? "float32";
  if (dtype !== "float32" && dtype !== "float64") throw new SnapshotError(`loadPretrained: dtype must be "float32" or "float64", got ${JSON.stringify(dtype)}`);
  const hfConfig = readHFConfig(folder);
  let config: ModelConfig;
  try { config = configFromHF(hfConfig); } catch (e) {
    if (e instanceof HFConfigError) throw new HFConfigError(`${path.join(folder, "config.json")}: ${e.message}`);
    throw e;
  }
  const source = openWeights(folder);
  const tokenizer = Tokenizer.fromFolder(folder);
  config = { ...config, dtype };
  if (config.bos_token_id === null && tokenizer?.bosTokenId != null) config = { ...config, bos_token_id: tokenizer.bosTokenId };
  const model = new HookedTransformer(config);
  const checkFinite = opts.checkFinite ?? true;
  model.checkFinite = checkFinite;
  loadHFWeights(model, source, { checkFinite });
  for (const p of model.parameters()) p.requiresGrad = false;
  model.packWeights(); // weights packed once, at load, for the active backend's matrix kernels
  model.eval();
  return { model, tokenizer, config, hfConfig };
}

export interface SaveHFOptions {
  /** config.json fields to keep where circuitscope's config does not decide them (e.g. Pretrained.hfConfig). */
  baseConfig?: HFConfigJson;
}

/**
 * Write model as a Hugging Face snapshot folder: config.json and model.safetensors in its family's
 * names and layouts, each written atomically (temporary file, then rename). The embeddings are saved
 * tied only if W_U is exactly W_E^T; otherwise tie_word_embeddings is written as false and the
 * unembedding is saved, so nothing is lost.
 */
export function saveHF(model: HookedTransformer, folder: string, opts: SaveHFOptions = {}): void {
  const tied = model.cfg.tie_word_embeddings && unembedIsTied(model);
  const cfg: ModelConfig = { ...model.cfg, tie_word_embeddings: tied };
  const json = configToHF(cfg, opts.baseConfig);
  const tensors = hfStateDict(model, { tied });
  fs.mkdirSync(folder, { recursive: true });
  saveSafetensors(path.join(folder, "model.safetensors"), tensors, { format: "pt" });
  writeFileAtomic(path.join(folder, "config.json"), (fd) => fs.writeFileSync(fd, JSON.stringify(json, null, 2) + "\n"));
}

