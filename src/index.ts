// circuitscope's library entry point. Import from "circuitscope".
export * from "./tensor/index.js";
export * from "./nn/index.js";
export * from "./io/index.js";
export * from "./model/index.js";
export * from "./analysis/index.js";
export * from "./sae/index.js";
export * from "./plot/index.js";
export { setBackend, getBackend, backendStatus, selectBestBackend, registerBackend, type BackendName } from "./backend/registry.js";
export type { Backend, Kernels } from "./backend/kernels.js";
export { useBackend } from "./backend/init.js";

// Registers native and wasm; the first op picks the fastest available (native, else wasm, else ts), not the import.
import "./backend/init.js";
