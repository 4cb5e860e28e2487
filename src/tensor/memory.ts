// Who owns memory (the one place this is decided; test/memory.test.ts and test/scope.test.ts pin it):
//
// 1. By default the JS garbage collector owns every tensor's storage. Nothing needs disposing; an
//    autodiff graph lives exactly as long as the output that holds it (see autodiff.ts).
// 2. Inside scope(fn), float32 storage comes from a pool, and when fn returns, every storage the
//    scope allocated goes back to the pool except what escapes: the tensors in fn's return value
//    (searched through arrays, Maps and object fields), everything their autodiff graphs reach,
//    tensors passed to keep(), and storage pinned by pin() (gradients written by backward, module
//    parameters, optimizer state). This is what makes a tight loop of small ops cost a pool pop
//    instead of a fresh allocation (which V8 zero-fills and page-faults: ~8 µs for 48 KB here).
// 3. A tensor whose storage went back to the pool is invalidated: touching its data throws an error
//    that says how to keep it. So misuse fails loudly instead of reading recycled numbers.
// Escaping tensors of a nested scope are handed to the enclosing scope; of the outermost, to the GC.
import type { Storage } from "./dtype.js";
import type { Tensor } from "./tensor.js";

interface Scope {
  storages: Float32Array[];
  tensors: Tensor[];
  kept: Tensor[];
}

const stack: Scope[] = [];
const pool = new Map<number, Float32Array[]>();
const pinned = new WeakSet<object>();
let pooledBytes = 0;
let maxPooledBytes = 512 * 1024 * 1024; // beyond this, released storage is left to the GC
/** Storage of a released tensor: zero length, so any kernel that slipped past the check reads nothing. */
export const RELEASED = new Float32Array(0);

export const inScope = (): boolean => stack.length > 0;

/** float32 storage of n elements: pooled inside a scope, fresh otherwise. Zeroed unless zero = false. */
export function allocFloat32(n: number, zero: boolean): Float32Array {
  const s = stack[stack.length - 1];
  if (!s || n === 0) return new Float32Array(n);
  let arr = pool.get(n)?.pop();
  if (arr) {
    pooledBytes -= n * 4;
    if (zero) arr.fill(0);
  } else arr = new Float32Array(n);
  s.storages.push(arr);
  return arr;
}

/** Called by the Tensor constructor: remember tensors made inside a scope so they can be invalidated. */
export function track(t: Tensor): void {
  const s = stack[stack.length - 1];
  if (s) s.tensors.push(t);
}

/** Exclude a tensor's storage from pooling for good (it becomes GC-owned). */
export function pin(t: Tensor | Storage): void {
  pinned.add(ArrayBuffer.isView(t) ? t : t.rawData);
}

/** Let t (and its graph) outlive the current scope. Returns t. */
export function keep<T extends Tensor>(t: T): T {
  const s = stack[stack.length - 1];
  if (s) s.kept.push(t);
  return t;
}

/** Run fn with no scope active, so what it allocates is GC-owned (for long-lived state). */
export function unscoped<T>(fn: () => T): T {
  const saved = stack.splice(0, stack.length);
  try { return fn(); } finally { stack.push(...saved); }
}

/** Cap the bytes the pool may hold (default 512 MiB); 0 disables pooling of released storage. */
export function setPoolLimit(bytes: number): void {
  maxPooledBytes = bytes;
  if (pooledBytes > bytes) { pool.clear(); pooledBytes = 0; }
}

export function poolStats(): { pooledBytes: number; sizes: number; depth: number } {
  return { pooledBytes, sizes: pool.size, depth: stack.length };
}

/**
 * Run fn in a memory scope: storage allocated inside is recycled when fn returns, except what
 * escapes through the return value or keep()/pin(). Tensors that did not escape are invalidated.
 */
export function scope<T>(fn: () => T): T {
  const s: Scope = { storages: [], tensors: [], kept: [] };
  stack.push(s);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    stack.pop();
    close(s, undefined);
    throw e;
  }
  stack.pop();
  close(s, result);
  return result;
}

function close(s: Scope, result: unknown): void {
  const parent = stack[stack.length - 1];
  // What escapes: the return value and keep()s, with everything their graphs will need.
  let keepStore: Set<object> | null = null, keepTensor: Set<Tensor> | null = null;
  if ((result !== null && typeof result === "object") || s.kept.length > 0) {
    const ks = (keepStore = new Set<object>()), kt = (keepTensor = new Set<Tensor>());
    const seen = new Set<object>();
    const visit = (v: unknown): void => {
      if (v === null || typeof v !== "object" || seen.has(v)) return;
      seen.add(v);
      if (ArrayBuffer.isView(v)) { ks.add(v); return; }
      if (isTensor(v)) {
        kt.add(v);
        ks.add(v.rawData);
        if (v.grad) visit(v.grad);
        // Everything backward will read: the inputs and what the rule saved (tensors and arrays).
        if (v.node) { v.node.inputs.forEach(visit); visit(v.node.saved); }
        return;
      }
      if (v instanceof Map) { v.forEach(visit); return; }
      if (v instanceof Set) { v.forEach(visit); return; }
      if (Array.isArray(v)) { v.forEach(visit); return; }
      for (const k of Object.keys(v)) visit((v as Record<string, unknown>)[k]);
    };
    visit(result);
    s.kept.forEach(visit);
  }
  const released: Float32Array[] = [];
  for (const arr of s.storages) {
    if ((keepStore !== null && keepStore.has(arr)) || pinned.has(arr)) { parent?.storages.push(arr); continue; }
    released.push(arr);
    if (pooledBytes + arr.length * 4 <= maxPooledBytes) {
      let list = pool.get(arr.length);
      if (!list) pool.set(arr.length, (list = []));
      list.push(arr);
      pooledBytes += arr.length * 4;
    }
  }
  // A linear scan beats building a Set for the few storages of a typical small scope.
  const relSet = released.length > 8 ? new Set<object>(released) : null;
  for (const t of s.tensors) {
    const d = t.rawData;
    const isReleased = released.length > 0 && (relSet ? relSet.has(d) : released.includes(d as Float32Array));
    if (isReleased && !(keepTensor !== null && keepTensor.has(t))) t.release();
    else if (parent) parent.tensors.push(t);
  }
}

function isTensor(v: object): v is Tensor {
  return typeof (v as Tensor).release === "function" && "rawData" in v;
}
