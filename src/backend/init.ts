// Registers the accelerated backends (Node) and picks one: native when the addon is built, else
// WebAssembly, else the reference. Importing this module selects nothing; the first op or useBackend() does.
import { loadNativeBackend, nativeLoadError } from "./native.js";
import { createWasmBackend } from "./wasm.js";
import { getBackend, registerBackend, selectBestBackend, setBackend, setDefaultPicker, type BackendName } from "./registry.js";
import type { Backend } from "./kernels.js";

registerBackend({
  name: "native",
  create: () => loadNativeBackend() ?? { unavailable: nativeLoadError() ?? "the native addon is not built" },
});
registerBackend({ name: "wasm", create: () => createWasmBackend() });
// The first op (not the import) picks the fastest backend available here.
setDefaultPicker(() => { selectBestBackend(); });

/**
 * Activate a backend (the named one, or the best available) and return a one-line message saying
 * which is active and, when native is missing, why and how to build it.
 */
export function useBackend(name?: BackendName): { backend: Backend; message: string } {
  const backend = name ? setBackend(name) : getBackend();
  let message = `circuitscope: backend ${backend.description}`;
  if (backend.name !== "native" && !name) {
    message += `; native addon unavailable (${nativeLoadError() ?? "not built"}); build it with \`npm run build:native\` in the circuitscope package folder`;
  }
  return { backend, message };
}
