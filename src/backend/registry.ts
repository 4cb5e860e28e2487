// Which backend runs float32 kernels. Backends are registered explicitly (no discovery by file
// name); the active one supplies the kernels it implements and the reference fills the rest.
// float64 and int32 always run on the reference.
import type { Backend, Kernels } from "./kernels.js";
import { tsBackend, tsKernels } from "./ts.js";

export type BackendName = Backend["name"];

/** A way to make a backend, or a reason it cannot be made on this machine. */
export interface BackendFactory {
  name: BackendName;
  create(): Backend | { unavailable: string };
}

const factories = new Map<BackendName, BackendFactory>([["ts", { name: "ts", create: () => tsBackend }]]);
const made = new Map<BackendName, Backend | { unavailable: string }>();
let active: Backend = tsBackend;
let merged: Kernels = tsKernels;
// Nothing is selected at import: the first op (or getBackend) runs the default picker, once.
let chosen = false;
let picker: (() => void) | null = null;

/** What the first op runs when no backend was set explicitly (backend/init.ts: the best available). */
export function setDefaultPicker(f: () => void): void { picker = f; }

function ensureChosen(): void {
  if (chosen) return;
  chosen = true;
  picker?.();
}

/** The active backend's name, or null while none has been chosen (before the first op). */
export const chosenBackend = (): BackendName | null => (chosen ? active.name : null);

export function registerBackend(f: BackendFactory): void {
  factories.set(f.name, f);
  made.delete(f.name);
}

function make(name: BackendName): Backend | { unavailable: string } {
  let b = made.get(name);
  if (!b) {
    const f = factories.get(name);
    if (!f) b = { unavailable: `backend "${name}" is not registered` };
    else {
      try { b = f.create(); } catch (e) { b = { unavailable: (e as Error).message }; }
    }
    made.set(name, b);
  }
  return b;
}

/** Select the backend for float32 kernels by name or instance; throws if it is unavailable here. */
export function setBackend(which: BackendName | Backend): Backend {
  const b = typeof which === "string" ? make(which) : which;
  if ("unavailable" in b) throw new Error(`backend "${which as string}" is unavailable: ${b.unavailable}`);
  chosen = true;
  active = b;
  merged = { ...tsKernels, ...b.kernels } as Kernels;
  return b;
}

export const getBackend = (): Backend => { ensureChosen(); return active; };

/** Every registered backend and whether it can run here (with the reason when not). */
export function backendStatus(): { name: BackendName; available: boolean; description: string }[] {
  return [...factories.keys()].map((name) => {
    const b = make(name);
    return "unavailable" in b
      ? { name, available: false, description: b.unavailable }
      : { name, available: true, description: b.description };
  });
}

/** Try backends in order of preference and activate the first available one. */
export function selectBestBackend(order: BackendName[] = ["native", "wasm", "ts"]): Backend {
  for (const name of order) {
    const b = make(name);
    if (!("unavailable" in b)) return setBackend(b);
  }
  return setBackend(tsBackend);
}

/** The kernels to run for a dtype: the active backend's for float32, the reference otherwise. */
export const kernelsFor = (dtype: string): Kernels => {
  if (!chosen) ensureChosen();
  return dtype === "float32" ? merged : tsKernels;
};
