// circuitscope's browser entry point: the tensor engine, autodiff, nn, the model runtime and the
// WebAssembly backend, without anything that needs Node (files, the native addon, the CLI).
// Bundle it with any bundler (scripts/build-browser.mjs uses esbuild).
export * from "./tensor/index.js";
export * from "./nn/index.js";
export * from "./model/index.js";
export { setBackend, getBackend, backendStatus, selectBestBackend, registerBackend, type BackendName } from "./backend/registry.js";
export type { Backend, Kernels } from "./backend/kernels.js";
export { createWasmBackend, type WasmBackend } from "./backend/wasm.js";
import { registerBackend, selectBestBackend, setDefaultPicker } from "./backend/registry.js";
import { createWasmBackend } from "./backend/wasm.js";

registerBackend({ name: "wasm", create: () => createWasmBackend() });
setDefaultPicker(() => { selectBestBackend(["wasm", "ts"]); });
