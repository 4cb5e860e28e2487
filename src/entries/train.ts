// Node entry of circuitscope/train: registers the native and wasm backends (chosen at the first op).
import "../backend/init.js";
export * from "../train/index.js";
