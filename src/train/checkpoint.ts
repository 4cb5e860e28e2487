// A training checkpoint as ONE safetensors file: the parameters, the optimizer's buffers and step
// counts, and a caller's JSON state under one metadata key. saveSafetensors writes a temporary file
// and renames it, so a checkpoint is never half-written. The trainer and the labs with their own loops
// (grokking) share it, so every resumable run saves and checks its state the same way.
import { loadSafetensors, saveSafetensors, SafetensorsFile } from "../io/safetensors.js";
import type { AdamWHyper, OptimizerStateDict, ParamState } from "../nn/index.js";
import type { Optimizer } from "../nn/optim.js";
import { noGrad } from "../tensor/autodiff.js";
import { Tensor } from "../tensor/tensor.js";
import { nonFiniteAt } from "../model/finite.js";

export class CheckpointError extends Error {
  override name = "CheckpointError";
}

/** How the optimizer is recorded in the JSON state (its buffers are tensors opt.<i>.<name>). */
export interface SavedOptimizer {
  kind: string;
  steps: number;
  groups: { hyper: AdamWHyper; size: number }[];
  state: ({ step: number; buffers: string[] } | null)[];
}

/** What every checkpoint's JSON holds besides the caller's fields. */
export interface CheckpointCore {
  version: number;
  parameterNames: string[] | null;
  optimizer: SavedOptimizer;
}

/**
 * Write params (param.<i>, in the optimizer's order), the optimizer state and `state` (JSON, under
 * `key`) to `file`. extra tensors ride along under their own names (e.g. a lab's snapshots).
 */
export function saveCheckpointFile<S extends object>(file: string, key: string, s: {
  flatParams: readonly Tensor[]; names: string[] | null; opt: Optimizer<AdamWHyper>; version: number; state: S; extra?: ReadonlyMap<string, Tensor>;
}): S & CheckpointCore {
  const sd = s.opt.stateDict();
  const tensors = new Map<string, Tensor>(s.extra ?? []);
  s.flatParams.forEach((p, i) => tensors.set(`param.${i}`, p));
  sd.state.forEach((st, i) => {
    if (!st) return;
    for (const [b, arr] of Object.entries(st.buffers)) tensors.set(`opt.${i}.${b}`, new Tensor(arr, [arr.length]));
  });
  const full: S & CheckpointCore = {
    version: s.version, parameterNames: s.names, ...s.state,
    optimizer: { kind: sd.kind, steps: sd.steps, groups: sd.groups, state: sd.state.map((st) => (st ? { step: st.step, buffers: Object.keys(st.buffers) } : null)) },
  };
  saveSafetensors(file, tensors, { [key]: JSON.stringify(full) });
  return full;
}

/** The JSON state of a checkpoint written under `key`, without loading tensors; checks the version. */
export function readCheckpointJson<S extends CheckpointCore>(file: string, key: string, version: number): S {
  const raw = SafetensorsFile.open(file).metadata[key];
  if (raw === undefined) throw new CheckpointError(`${file}: not a circuitscope training checkpoint (no "${key}" metadata)`);
  let st: S;
  try { st = JSON.parse(raw) as S; } catch (e) {
    throw new CheckpointError(`${file}: trainer state is not valid JSON (${(e as Error).message})`);
  }
  if (st.version !== version) throw new CheckpointError(`${file}: checkpoint version ${st.version}; this build reads ${version}`);
  return st;
}

/**
 * Load a checkpoint's parameters and optimizer state into flat (the optimizer's parameter order) and
 * opt, after checking names, every shape and dtype and every buffer, so a bad checkpoint leaves the
 * model and optimizer as they were. Returns the JSON state and the file's tensors (for extras).
 */
export function loadCheckpointFile<S extends CheckpointCore>(file: string, key: string, version: number, flat: readonly Tensor[], names: string[] | null, opt: Optimizer<AdamWHyper>): { state: S; tensors: Map<string, Tensor> } {
  const st = readCheckpointJson<S>(file, key, version);
  if (names && st.parameterNames && names.join("\n") !== st.parameterNames.join("\n"))
    throw new CheckpointError(`${file}: checkpoint parameters (${st.parameterNames.length}) do not match the model's (${names.length}) by name`);
  const tensors = loadSafetensors(file);
  const label = (i: number) => `param.${i}${names ? ` (${names[i]})` : ""}`;
  flat.forEach((p, i) => {
    const t = tensors.get(`param.${i}`);
    if (!t) throw new CheckpointError(`${file}: missing ${label(i)}`);
    if (!t.shapeEquals(p.shape) || t.dtype !== p.dtype) throw new CheckpointError(`${file}: ${label(i)} is ${t.dtype} [${t.shape}], the model's is ${p.dtype} [${p.shape}]`);
    const bad = nonFiniteAt(t);
    if (bad !== null) throw new CheckpointError(`${file}: ${label(i)} holds ${bad}`);
  });
  const optState: (ParamState | null)[] = st.optimizer.state.map((s, i) => {
    if (!s) return null;
    const buffers: Record<string, Float32Array | Float64Array> = {};
    for (const b of s.buffers) {
      const t = tensors.get(`opt.${i}.${b}`);
      if (!t) throw new CheckpointError(`${file}: missing optimizer buffer opt.${i}.${b}`);
      buffers[b] = t.toArray() as Float32Array | Float64Array;
    }
    return { step: s.step, buffers };
  });
  const sd: OptimizerStateDict<AdamWHyper> = { kind: st.optimizer.kind, steps: st.optimizer.steps, groups: st.optimizer.groups, state: optState };
  try { opt.loadStateDict(sd); } catch (e) { throw new CheckpointError(`${file}: ${(e as Error).message}`); }
  noGrad(() => flat.forEach((p, i) => {
    p.data.set(tensors.get(`param.${i}`)!.toArray() as Float32Array, p.offset);
    p.version++; // tells linear()'s packed-weight cache the weight changed
  }));
  return { state: st, tensors };
}
