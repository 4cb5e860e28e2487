// Node entry of circuitscope/analysis: registers the native and wasm backends (chosen at the first op).
import "../backend/init.js";
export * from "../analysis/index.js";
