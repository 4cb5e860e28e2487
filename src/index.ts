// circuitscope's library entry point. Import from "circuitscope".
export * from "./tensor/index.js";
export { setBackend, getBackend, backendStatus, selectBestBackend, registerBackend, type BackendName } from "./backend/registry.js";
export type { Backend, Kernels } from "./backend/kernels.js";
