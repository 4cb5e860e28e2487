// Node entry of circuitscope/plot: registers the native and wasm backends (chosen at the first op).
import "../backend/init.js";
export * from "../plot/index.js";
