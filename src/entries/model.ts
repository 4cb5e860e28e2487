// Node entry of circuitscope/model: registers the native and wasm backends (chosen at the first op).
import "../backend/init.js";
export * from "../model/index.js";
