// Activation caches on disk: one safetensors file whose tensor names are the hook names, so any
// safetensors reader (Python included) can open it; metadata records what produced it.
import { ActivationCache, type CacheModel } from "../model/cache.js";
import type { HookedTransformer } from "../model/transformer.js";
import { loadSafetensors, saveSafetensors } from "./safetensors.js";

/** Write a cache atomically (temp file, then rename). */
export function saveCache(cache: ActivationCache, file: string, metadata: Record<string, string> = {}): void {
  saveSafetensors(file, cache.toMap(), { format: "circuitscope-activation-cache", ...metadata });
}

/** Read a cache; with the model, names are checked against its hook points and decompositions work. */
export function loadCache(file: string, model?: CacheModel & Pick<HookedTransformer, "hookNames">): ActivationCache {
  return ActivationCache.fromMap(loadSafetensors(file), model);
}
