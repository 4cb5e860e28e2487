// Node entry of circuitscope/nn: registers the native and wasm backends (chosen at the first op).
import "../backend/init.js";
export * from "../nn/index.js";
