// Saving and loading in SAELens's folder layout: cfg.json beside sae_weights.safetensors holding
// W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_out], b_dec [d_out], threshold [d_sae]
// (JumpReLU) and W_skip [d_in, d_out] (skip transcoders). Both files are written atomically. Loading
// checks the config, then every name, shape and dtype, and says which is wrong.
import fs from "node:fs";
import path from "node:path";
import { loadSafetensors, saveSafetensors, SafetensorsError, writeFileAtomic } from "../io/safetensors.js";
import { noGrad } from "../tensor/autodiff.js";
import type { Tensor } from "../tensor/tensor.js";
import { configFromJson, configToJson, SaeConfigError, type SaeConfig } from "./config.js";
import { SparseAutoencoder } from "./model.js";

export const SAE_CFG_FILE = "cfg.json";
export const SAE_WEIGHTS_FILE = "sae_weights.safetensors";

export class SaeLoadError extends Error {
  override name = "SaeLoadError";
}

/** Write cfg.json and sae_weights.safetensors into folder (created if needed); returns their paths. */
export function saveSae(sae: SparseAutoencoder, folder: string, extraMetadata: Record<string, unknown> = {}): string[] {
  fs.mkdirSync(folder, { recursive: true });
  const cfgFile = path.join(folder, SAE_CFG_FILE), weights = path.join(folder, SAE_WEIGHTS_FILE);
  const doc = configToJson(sae.cfg);
  doc.metadata = { ...(doc.metadata as object), ...extraMetadata };
  saveSafetensors(weights, new Map(sae.namedParameters() as [string, Tensor][]));
  writeFileAtomic(cfgFile, (fd) => fs.writeFileSync(fd, JSON.stringify(doc, null, 2) + "\n"));
  return [cfgFile, weights];
}

/** The config alone (e.g. to check the hook before loading weights). */
export function readSaeConfig(folder: string): SaeConfig {
  const file = path.join(folder, SAE_CFG_FILE);
  if (!fs.existsSync(folder)) throw new SaeLoadError(`no SAE folder at ${folder}`);
  if (!fs.existsSync(file)) throw new SaeLoadError(`${folder} has no ${SAE_CFG_FILE}: not an SAELens-layout SAE folder`);
  let j: unknown;
  try { j = JSON.parse(fs.readFileSync(file, "utf8")); } catch (e) {
    throw new SaeConfigError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  return configFromJson(j, file);
}

/** Load an SAE folder written by saveSae or by SAELens (standard, topk, jumprelu, transcoders). */
export function loadSae(folder: string): SparseAutoencoder {
  const cfg = readSaeConfig(folder);
  const file = path.join(folder, SAE_WEIGHTS_FILE);
  if (!fs.existsSync(file)) throw new SaeLoadError(`${folder} has no ${SAE_WEIGHTS_FILE}`);
  let tensors: Map<string, Tensor>;
  try { tensors = loadSafetensors(file); } catch (e) {
    if (e instanceof SafetensorsError) throw new SaeLoadError(`${file}: ${e.message}`);
    throw e;
  }
  const sae = new SparseAutoencoder(cfg);
  const want = new Map(sae.namedParameters());
  // SAELens trains JumpReLU's threshold as log_threshold; accept either.
  const logT = tensors.get("log_threshold");
  if (logT && !tensors.has("threshold") && want.has("threshold")) tensors.set("threshold", noGrad(() => logT.exp()));
  for (const [name, p] of want) {
    const t = tensors.get(name);
    if (!t) throw new SaeLoadError(`${file}: missing tensor ${name} [${p.shape.join(", ")}] of a ${cfg.activation} ${cfg.hook_name === cfg.hook_name_out ? "SAE" : "transcoder"}`);
    if (!t.shapeEquals(p.shape)) throw new SaeLoadError(`${file}: ${name} is [${t.shape.join(", ")}], cfg.json (d_in ${cfg.d_in}, d_sae ${cfg.d_sae}, d_out ${cfg.d_out}) needs [${p.shape.join(", ")}]`);
    if (t.dtype === "int32") throw new SaeLoadError(`${file}: ${name} is an integer tensor`);
  }
  const unknown = [...tensors.keys()].filter((k) => !want.has(k) && k !== "log_threshold");
  if (unknown.length) throw new SaeLoadError(`${file}: unexpected tensors ${unknown.join(", ")} for architecture with ${[...want.keys()].join(", ")}`);
  noGrad(() => {
    for (const [name, p] of want) {
      const src = tensors.get(name)!.cast(p.dtype).contiguous().toArray();
      p.data.set(src);
      p.version++;
    }
  });
  return sae;
}
