// Node entry of circuitscope/techniques: registers the native and wasm backends (chosen at the first op).
import "../backend/init.js";
export * from "../techniques/index.js";
