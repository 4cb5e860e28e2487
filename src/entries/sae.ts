// Node entry of circuitscope/sae: registers the native and wasm backends (chosen at the first op).
import "../backend/init.js";
export * from "../sae/index.js";
