// Hugging Face snapshot folders (what `huggingface-cli download` or save_pretrained leaves): config.json,
// model.safetensors or model.safetensors.index.json with its shards, and optionally tokenizer files.
// loadPretrained builds a frozen HookedTransformer from one (or from a hub id's snapshot in the
// Hugging Face cache, hub-cache.ts); loadPretrainedAsync also downloads it (hub-download.ts); saveHF
// writes a model back as one.
//
// Not handled: pytorch_model.bin (pickled torch; convert it to safetensors first), and model
// families other than those in hf-config.ts.
import fs from "node:fs";
import path from "node:path";
import type { HookedTransformer } from "../model/transformer.js";
import type { ModelConfig } from "../model/config.js";
import { configFromHF, configToHF, HFConfigError, type HFConfigJson } from "./hf-config.js";
import { frozenFromHF, hfStateDict, unembedIsTied } from "./hf-weights.js";
import { saveSafetensors, SafetensorsFile, ShardedSafetensors, writeFileAtomic, type TensorSource } from "./safetensors.js";
import { Tokenizer } from "./tokenizer.js";
import { findLlama2c, loadLlama2c } from "./llama2c.js";
import { hubCacheDir, localModelFolder } from "./hub-cache.js";
import { resolveModel, type HubOptions } from "./hub-download.js";

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
  /** For a hub id: the branch, tag or commit (default "main", or the id's "@rev"). */
  revision?: string;
  /** For a hub id: the cache folder (default HF_HUB_CACHE, else $HF_HOME/hub). */
  cacheDir?: string;
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
    ? " It has pytorch_model.bin, which circuitscope does not read (pickled torch): convert it with `python -c \"from transformers import AutoModelForCausalLM as M; M.from_pretrained('<folder>').save_pretrained('<folder>', safe_serialization=True)\"`."
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
 * A llama2.c checkpoint (a .bin file, or a folder with one beside its tok*.bin) opens too (llama2c.ts).
 * A hub id ("gpt2", "EleutherAI/pythia-70m@step1000") is read from the Hugging Face cache only;
 * loadPretrainedAsync downloads it when it is not there.
 */
export function loadPretrained(folderOrId: string, opts: LoadPretrainedOptions = {}): Pretrained {
  const folder = localModelFolder(folderOrId, opts.revision, opts.cacheDir ?? hubCacheDir());
  const dtype = opts.dtype ?? "float32";
  if (dtype !== "float32" && dtype !== "float64") throw new SnapshotError(`loadPretrained: dtype must be "float32" or "float64", got ${JSON.stringify(dtype)}`);
  const llama2c = findLlama2c(folder);
  if (llama2c) return loadLlama2c(llama2c.binPath, { tokenizerPath: llama2c.tokenizerPath, dtype });
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
  return { model: frozenFromHF(config, source, { checkFinite: opts.checkFinite ?? true }), tokenizer, config, hfConfig };
}

/** loadPretrained of a folder or a hub id, downloading the snapshot into the cache first when needed. */
export async function loadPretrainedAsync(folderOrId: string, opts: LoadPretrainedOptions & HubOptions = {}): Promise<Pretrained> {
  const { revision: _revision, ...rest } = opts; // the revision is resolved into the folder
  return loadPretrained(await resolveModel(folderOrId, opts), rest);
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

