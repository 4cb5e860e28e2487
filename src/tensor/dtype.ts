// Element types and their storage arrays. float32 is the default everywhere; float64 exists for
// reference paths (gradient checks); int32 holds token ids and indices.
import { allocFloat32 } from "./memory.js";

export type DType = "float32" | "float64" | "int32";
export type Storage = Float32Array | Float64Array | Int32Array;

/** Zero-filled storage (pooled inside a scope(), see memory.ts). */
export function allocate(dtype: DType, n: number): Storage {
  switch (dtype) {
    case "float32": return allocFloat32(n, true);
    case "float64": return new Float64Array(n);
    case "int32": return new Int32Array(n);
    default: return dtype satisfies never;
  }
}

/** Storage a kernel will overwrite completely: skips zeroing when it comes from the pool. */
export function allocateOutput(dtype: DType, n: number): Storage {
  return dtype === "float32" ? allocFloat32(n, false) : allocate(dtype, n);
}

export function dtypeOf(data: Storage): DType {
  if (data instanceof Float32Array) return "float32";
  if (data instanceof Float64Array) return "float64";
  return "int32";
}

export const isFloat = (d: DType): d is "float32" | "float64" => d !== "int32";

/** The dtype two operands are computed in: the wider float wins; int32 only with int32. */
export function promote(a: DType, b: DType): DType {
  if (a === b) return a;
  if (a === "float64" || b === "float64") return "float64";
  return "float32";
}
