// Ways to make tensors: from JS data, filled, ranges, and seeded random draws.
import { allocate, type DType } from "./dtype.js";
import { fmt, numel, ShapeError, type Shape } from "./shape.js";
import { Tensor } from "./tensor.js";
import { defaultRng, type Rng } from "./rng.js";

type Nested = number | Nested[];

function inferNested(x: Nested): number[] {
  const shape: number[] = [];
  let cur: Nested = x;
  while (Array.isArray(cur)) { shape.push(cur.length); cur = cur[0] as Nested; }
  return shape;
}

/**
 * A tensor from nested arrays, a flat array with a shape, or a typed array (used without copying
 * when its type matches the dtype).
 */
export function tensor(data: Nested | ArrayLike<number>, shape?: Shape, dtype?: DType): Tensor {
  if (typeof data === "number") {
    const t = allocate(dtype ?? "float32", 1); t[0] = data; return new Tensor(t, shape ?? []);
  }
  const typed = ArrayBuffer.isView(data);
  const s = shape ?? (typed ? [(data as ArrayLike<number>).length] : inferNested(data as Nested));
  const flat: ArrayLike<number> = typed ? (data as ArrayLike<number>) : (data as Nested[]).flat(Infinity as 1) as number[];
  if (flat.length !== numel(s)) throw new ShapeError(`tensor: ${flat.length} values do not fill shape ${fmt(s)} (ragged nested arrays?)`);
  const dt: DType = dtype ?? (data instanceof Float64Array ? "float64" : data instanceof Int32Array ? "int32" : "float32");
  if ((dt === "float32" && data instanceof Float32Array) || (dt === "float64" && data instanceof Float64Array) || (dt === "int32" && data instanceof Int32Array))
    return new Tensor(data, s);
  const out = allocate(dt, flat.length);
  for (let i = 0; i < flat.length; i++) out[i] = flat[i]!;
  return new Tensor(out, s);
}

export const zeros = (shape: Shape, dtype: DType = "float32"): Tensor => new Tensor(allocate(dtype, numel(shape)), shape);

export function full(shape: Shape, value: number, dtype: DType = "float32"): Tensor {
  const t = zeros(shape, dtype); t.data.fill(value); return t;
}

export const ones = (shape: Shape, dtype: DType = "float32"): Tensor => full(shape, 1, dtype);

/** [start, end) in steps; one argument means [0, end). */
export function arange(start: number, end?: number, step = 1, dtype: DType = "int32"): Tensor {
  if (end === undefined) { end = start; start = 0; }
  const n = Math.max(0, Math.ceil((end - start) / step));
  const t = zeros([n], dtype);
  for (let i = 0; i < n; i++) t.data[i] = start + i * step;
  return t;
}

export function eye(n: number, dtype: DType = "float32"): Tensor {
  const t = zeros([n, n], dtype);
  for (let i = 0; i < n; i++) t.data[i * n + i] = 1;
  return t;
}

export interface RandOptions { rng?: Rng; dtype?: DType }

/** Standard normal draws (times std, plus mean). */
export function randn(shape: Shape, opts: RandOptions & { mean?: number; std?: number } = {}): Tensor {
  const rng = opts.rng ?? defaultRng(), t = zeros(shape, opts.dtype ?? "float32");
  const m = opts.mean ?? 0, s = opts.std ?? 1;
  for (let i = 0; i < t.data.length; i++) t.data[i] = m + s * rng.normal();
  return t;
}

/** Uniform draws in [low, high). */
export function rand(shape: Shape, opts: RandOptions & { low?: number; high?: number } = {}): Tensor {
  const rng = opts.rng ?? defaultRng(), t = zeros(shape, opts.dtype ?? "float32");
  const lo = opts.low ?? 0, hi = opts.high ?? 1;
  for (let i = 0; i < t.data.length; i++) t.data[i] = lo + (hi - lo) * rng.uniform();
  return t;
}

/** Uniform integers in [low, high) as int32. */
export function randint(low: number, high: number, shape: Shape, rng: Rng = defaultRng()): Tensor {
  const t = zeros(shape, "int32");
  for (let i = 0; i < t.data.length; i++) t.data[i] = rng.int(low, high);
  return t;
}

/** One categorical draw per row of probs [..., n] (rows need not be normalised). */
export function multinomial(probs: Tensor, rng: Rng = defaultRng()): Tensor {
  const n = probs.shape[probs.ndim - 1]!;
  const p = probs.contiguous().toArray();
  const rows = p.length / n;
  const out = zeros(probs.shape.slice(0, -1), "int32");
  for (let r = 0; r < rows; r++) out.data[r] = rng.categorical(p.subarray(r * n, r * n + n));
  return out;
}
