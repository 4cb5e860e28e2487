// Node entry of circuitscope/tensor: registers the native and wasm backends (chosen at the first op).
import "../backend/init.js";
export * from "../tensor/index.js";
