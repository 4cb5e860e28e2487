// Node entry of circuitscope/io: registers the native and wasm backends (chosen at the first op).
import "../backend/init.js";
export * from "../io/index.js";
