// The WebAssembly SIMD128 backend: float32 matmul, packMatrix and matmulPacked on a packed, blocked
// GEMM compiled from wasm/src/gemm.c (embedded in wasm-module.ts), optionally sharing the work with
// worker threads over one shared WebAssembly.Memory; plus the transcendental unary ops, their
// backward and softmax (wasm/src/elementwise.c, single-threaded), which beat JS's Math.exp/Math.tanh
// loops 7-20x even after copying the operands in and out. Runs in Node and in browsers.
//
// What it is not: a backend for cheap elementwise ops (add, relu, layer norm, ...): copying operands
// into linear memory costs about as much as those ops, so they and every float64 call stay on the
// reference.
//
// Memory ownership (all inside one WebAssembly.Memory, managed by `Heap` below):
// - Operands of a call are copied into one scratch arena, reused and grown (never shrunk) across calls.
// - A PackedMatrix from packMatrix owns its block of linear memory. The block is freed when the JS
//   handle is garbage-collected (FinalizationRegistry), so holding the handle is what keeps it alive;
//   there is no explicit free.
// - dispose() stops the worker threads; the backend falls back to one thread afterwards.
//
// Browsers: createWasmBackendAsync() on the main thread (synchronous compilation of modules over 4 KiB
// is forbidden there); workers are used only inside a cross-origin-isolated Web Worker, because the
// main thread may not block in Atomics.wait.
//
// Threads: the worker script is an inline string (eval worker in Node, Blob URL in a browser) rather
// than a separate wasm-worker.js, so bundlers and `dist/` layouts need not ship or resolve a second
// file, and its code is a dozen lines. Workers spin briefly, then block in Atomics.wait; the calling
// thread runs share 0 itself, runs the shares of workers that are not started yet, then spins and
// waits for the rest. The static partition (gemm_run in C) makes results bit-identical run to run
// and across thread counts.
import type { Backend, FloatArray, Kernels, MatOperand, PackedMatrix, UnaryGradOp, UnaryOp } from "./kernels.js";
import { referenceKernels } from "./ts.js";
import { checkedKernels } from "./check.js";
import { WASM_SHARED_BASE64, WASM_SINGLE_BASE64 } from "./wasm-module.js";

/** The wasm backend plus its lifecycle controls. */
export interface WasmBackend extends Backend {
  /** Logical threads a large matmul is split into (1 = no workers). */
  readonly threads: number;
  /** Bytes of linear memory reserved so far (it grows, never shrinks; freed blocks are reused). */
  readonly memoryBytes: number;
  /** Stops the worker threads; later calls run single-threaded. Idempotent. */
  dispose(): void;
}

const MAX_THREADS = 16; // the size of Job.scratch in gemm.c
const PAGE = 65536;
const MAX_PAGES = 65536; // 4 GiB; must not exceed the maximum wasm/build.sh links with
const ALIGN = 64; // cache-line alignment for every block
const THREAD_MIN_WORK = 1 << 22; // batch*M*N*K below which a wake-up (~10-50 µs) would not pay off
const JOB_INTS = 17 + MAX_THREADS; // the int32 fields of Job in gemm.c
/** Unary ops with a SIMD kernel in elementwise.c (its OP_* codes); the others stay on the reference. */
const UNARY_CODES: Partial<Record<UnaryOp, number>> = { exp: 0, tanh: 1, sigmoid: 2, silu: 3, gelu_tanh: 4 };
const GRAD_CODES: Partial<Record<UnaryGradOp, number>> = { tanh: 1, sigmoid: 2, silu: 3, gelu_tanh: 4 };
const EW_MIN = 64; // elements below which the copies and the call cost more than the JS loop
// Control block (int32 slots): job pointer, done counter, quit flag, error flag, then per worker w a
// ready flag at READY + w and a go generation at GO + w (each worker waits on its own slot).
const CTL_JOB = 0, CTL_DONE = 1, CTL_QUIT = 2, CTL_ERROR = 3, CTL_READY = 4, CTL_GO = 4 + MAX_THREADS;
const CTL_INTS = 4 + 2 * MAX_THREADS;

interface GemmExports {
  gemm_scratch_floats(m: number, n: number, k: number): number;
  gemm_packed_floats(k: number, n: number): number;
  gemm_pack_b(k: number, n: number, b: number, rs: number, cs: number, dst: number): void;
  gemm_run(job: number, tid: number): void;
  ew_unary(op: number, x: number, out: number, n: number): void;
  ew_unary_grad(op: number, x: number, gy: number, gx: number, n: number): void;
  ew_softmax(x: number, rows: number, cols: number, scale: number, causalRows: number, causalOffset: number, out: number): void;
  __heap_base: WebAssembly.Global;
}

function decodeBase64(s: string): Uint8Array {
  const B = (globalThis as { Buffer?: { from(s: string, enc: string): Uint8Array } }).Buffer;
  if (B) return new Uint8Array(B.from(s, "base64"));
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// Compiled once per process and shared by every backend instance (and sent to workers).
let sharedModule: WebAssembly.Module | undefined;
let singleModule: WebAssembly.Module | undefined;

/** First-fit allocator over [heapBase, memory end), growing the memory when nothing fits. */
class Heap {
  private readonly freeList: { start: number; size: number }[] = []; // sorted by start, coalesced
  private readonly sizes = new Map<number, number>();
  private top: number;
  constructor(private readonly memory: WebAssembly.Memory, heapBase: number) {
    this.top = roundUp(heapBase, ALIGN);
  }
  alloc(bytes: number): number {
    const size = roundUp(Math.max(bytes, 1), ALIGN);
    for (let i = 0; i < this.freeList.length; i++) {
      const f = this.freeList[i]!;
      if (f.size < size) continue;
      const ptr = f.start;
      if (f.size === size) this.freeList.splice(i, 1);
      else { f.start += size; f.size -= size; }
      this.sizes.set(ptr, size);
      return ptr;
    }
    const ptr = this.top, end = ptr + size;
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      const pages = Math.ceil((end - have) / PAGE);
      if (have / PAGE + pages > MAX_PAGES) throw new RangeError(`wasm backend: out of memory (${end} bytes of linear memory needed, 4 GiB max)`);
      this.memory.grow(pages);
    }
    this.top = end;
    this.sizes.set(ptr, size);
    return ptr;
  }
  release(ptr: number): void {
    const size = this.sizes.get(ptr);
    if (size === undefined) return;
    this.sizes.delete(ptr);
    if (ptr + size === this.top) { // give the tail back, then any free block that now touches it
      this.top = ptr;
      const last = this.freeList[this.freeList.length - 1];
      if (last && last.start + last.size === this.top) { this.top = last.start; this.freeList.pop(); }
      return;
    }
    let i = 0;
    while (i < this.freeList.length && this.freeList[i]!.start < ptr) i++;
    this.freeList.splice(i, 0, { start: ptr, size });
    const next = this.freeList[i + 1];
    if (next && ptr + size === next.start) { this.freeList[i]!.size += next.size; this.freeList.splice(i + 1, 1); }
    const prev = this.freeList[i - 1];
    if (prev && prev.start + prev.size === ptr) { prev.size += this.freeList[i]!.size; this.freeList.splice(i, 1); }
  }
}

function roundUp(x: number, m: number): number { return Math.ceil(x / m) * m; }

const B_BLOCK_FLOATS = 256 * 2048; // KC * NC in gemm.c: one thread's packed B block
/**
 * Throws a named RangeError when a call needs more floats than linear memory (4 GiB) holds, computed
 * in doubles: past that the int32 size arithmetic in gemm.c (scratch and packed sizes) would wrap.
 */
function fits(kernel: string, floats: number): void {
  if (floats * 4 > MAX_PAGES * PAGE) throw new RangeError(`${kernel}: needs about ${floats * 4} bytes of wasm linear memory, more than its 4 GiB`);
}

/** The element range [lo, hi] a [batch, rows, cols] strided operand touches. */
function extent(batch: number, rows: number, cols: number, op: MatOperand): { lo: number; hi: number } {
  let lo = op.offset, hi = op.offset;
  for (const [n, s] of [[batch, op.batchStride], [rows, op.rowStride], [cols, op.colStride]] as const) {
    if (n <= 1) continue;
    if (s < 0) lo += (n - 1) * s; else hi += (n - 1) * s;
  }
  return { lo, hi };
}

// The body of every worker, serialised with toString(): it must not reference anything outside itself.
interface WorkerInit { module: WebAssembly.Module; memory: WebAssembly.Memory; ctl: number; w: number; spin: number }
function workerLoop(d: WorkerInit): void {
  const inst = new WebAssembly.Instance(d.module, { env: { memory: d.memory } });
  const run = inst.exports["gemm_run"] as (job: number, tid: number) => void;
  // The control block sits below the initial memory size, so this view stays valid after growth.
  const ctl = new Int32Array(d.memory.buffer, d.ctl, 4 + 2 * 16);
  const go = 4 + 16 + d.w;
  let seen = Atomics.load(ctl, go);
  Atomics.store(ctl, 4 + d.w, 1); // ready
  for (;;) {
    let spins = 0;
    while (Atomics.load(ctl, go) === seen) {
      if (++spins > d.spin) Atomics.wait(ctl, go, seen);
    }
    seen = Atomics.load(ctl, go);
    if (Atomics.load(ctl, 2) !== 0) return; // quit
    try {
      run(Atomics.load(ctl, 0), d.w + 1);
    } catch {
      Atomics.store(ctl, 3, 1); // the caller throws once it has collected every share
    }
    Atomics.add(ctl, 1, 1);
    Atomics.notify(ctl, 1);
  }
}

interface WorkerHandle { terminate(): unknown }

type Env = { kind: "node"; Worker: new (src: string, opts: object) => WorkerHandle & { unref(): void; on(e: string, f: (x: unknown) => void): void } }
  | { kind: "node-async" } | { kind: "browser" } | { kind: "none"; why: string };

/** How this host can run worker threads, without importing Node-only modules at the top level. */
function threadEnv(): Env {
  const g = globalThis as Record<string, unknown>;
  if (typeof SharedArrayBuffer === "undefined") return { kind: "none", why: "no SharedArrayBuffer" };
  const proc = g["process"] as { versions?: { node?: string }; getBuiltinModule?: (id: string) => unknown } | undefined;
  if (proc?.versions?.node) {
    // Node >= 20.16 has getBuiltinModule; older Node 20 gets workers after an async import (see below).
    const wt = proc.getBuiltinModule?.("node:worker_threads") as { Worker: never } | undefined;
    return wt ? { kind: "node", Worker: wt.Worker } : { kind: "node-async" };
  }
  // Atomics.wait is only allowed off the main thread, and shared memory needs cross-origin isolation.
  const inWorker = typeof g["WorkerGlobalScope"] === "function" && g["self"] instanceof (g["WorkerGlobalScope"] as new () => object);
  if (!g["crossOriginIsolated"]) return { kind: "none", why: "not cross-origin isolated" };
  if (!inWorker) return { kind: "none", why: "browser main thread cannot block" };
  if (typeof g["Worker"] !== "function") return { kind: "none", why: "no nested Worker" };
  return { kind: "browser" };
}

function defaultThreads(): number {
  const g = globalThis as Record<string, unknown>;
  const nav = g["navigator"] as { hardwareConcurrency?: number } | undefined;
  if (nav?.hardwareConcurrency) return nav.hardwareConcurrency;
  const proc = g["process"] as { getBuiltinModule?: (id: string) => unknown } | undefined;
  const os = proc?.getBuiltinModule?.("node:os") as { availableParallelism?: () => number; cpus(): unknown[] } | undefined;
  return os ? (os.availableParallelism?.() ?? os.cpus().length) : 1;
}

interface Plan { requested: number; env: Env; threaded: boolean }

function plan(opts: { threads?: number }): Plan {
  const requested = Math.max(1, Math.min(MAX_THREADS, Math.floor(opts.threads ?? defaultThreads())));
  const env: Env = requested > 1 ? threadEnv() : { kind: "none", why: "1 thread requested" };
  return { requested, env, threaded: requested > 1 && env.kind !== "none" };
}

function newMemory(shared: boolean): WebAssembly.Memory {
  return new WebAssembly.Memory({ initial: 4, maximum: MAX_PAGES, shared });
}

/**
 * Creates a wasm backend. `threads` (default: the number of cores, at most 16) is how many shares a
 * large matmul is split into; 1 means no workers. Without SharedArrayBuffer, or on a browser main
 * thread, it runs single-threaded SIMD. Browsers forbid synchronous compilation of modules over 4 KiB
 * on their main thread: there, await createWasmBackendAsync() instead.
 */
export function createWasmBackend(opts: { threads?: number } = {}): WasmBackend {
  const p = plan(opts);
  let module: WebAssembly.Module, instance: WebAssembly.Instance;
  const memory = newMemory(p.threaded);
  try {
    module = p.threaded
      ? (sharedModule ??= new WebAssembly.Module(decodeBase64(WASM_SHARED_BASE64) as BufferSource))
      : (singleModule ??= new WebAssembly.Module(decodeBase64(WASM_SINGLE_BASE64) as BufferSource));
    instance = new WebAssembly.Instance(module, { env: { memory } });
  } catch (err) {
    throw new Error(`wasm backend: synchronous WebAssembly compilation failed (${String(err)}); on a browser main thread use createWasmBackendAsync()`);
  }
  return assemble(p, module, memory, instance);
}

/** createWasmBackend with asynchronous compilation, for browser main threads. */
export async function createWasmBackendAsync(opts: { threads?: number } = {}): Promise<WasmBackend> {
  const p = plan(opts);
  const memory = newMemory(p.threaded);
  const module = p.threaded
    ? (sharedModule ??= await WebAssembly.compile(decodeBase64(WASM_SHARED_BASE64) as BufferSource))
    : (singleModule ??= await WebAssembly.compile(decodeBase64(WASM_SINGLE_BASE64) as BufferSource));
  const instance = await WebAssembly.instantiate(module, { env: { memory } });
  return assemble(p, module, memory, instance);
}

function assemble(p: Plan, module: WebAssembly.Module, memory: WebAssembly.Memory, instance: WebAssembly.Instance): WasmBackend {
  const { requested, threaded } = p;
  const env = p.env;
  const ex = instance.exports as unknown as GemmExports;
  const heap = new Heap(memory, ex.__heap_base.value as number);
  const ctlPtr = heap.alloc(CTL_INTS * 4); // first allocation: inside the initial pages (see workerLoop)
  const jobPtr = heap.alloc(JOB_INTS * 4);
  // Used only with shared memory, whose old views stay valid after growth.
  const ctl = new Int32Array(memory.buffer, ctlPtr, CTL_INTS);
  const threads = threaded ? requested : 1;

  // Workers; slot w computes share w + 1. Started lazily-asynchronously: until a worker reports ready,
  // the calling thread computes its share itself.
  const workers: WorkerHandle[] = [];
  let disposed = false;
  let threadNote = threaded || requested === 1 ? "" : env.kind === "none" ? env.why : "";
  const spawn = (e: Env): void => {
    if (disposed) return;
    const body = `(${workerLoop.toString()})`;
    for (let w = 0; w < threads - 1; w++) {
      const init: WorkerInit = { module, memory, ctl: ctlPtr, w, spin: 20000 };
      try {
        if (e.kind === "node") {
          // import(), not require(): the eval worker inherits execArgv, and under --input-type=module
          // its code is an ES module without require.
          const src = `import("node:worker_threads").then((wt) => ${body}(wt.workerData));`;
          const worker = new e.Worker(src, { eval: true, workerData: init });
          worker.unref(); // never keeps the process alive
          worker.on("error", () => { /* its shares fall back to the caller: it never reports ready */ });
          workers.push(worker);
        } else if (e.kind === "browser") {
          const url = URL.createObjectURL(new Blob([`self.onmessage = (e) => { self.onmessage = null; ${body}(e.data); };`], { type: "text/javascript" }));
          const worker = new Worker(url);
          worker.postMessage(init);
          workers.push(worker);
        }
      } catch (err) {
        threadNote = `workers failed to start: ${String(err)}`;
      }
    }
  };
  if (env.kind === "node" || env.kind === "browser") spawn(env);
  else if (env.kind === "node-async") {
    // Node < 20.16: no synchronous way to load worker_threads from ESM; the specifier is a variable so
    // browser bundlers do not try to resolve it.
    const spec = "node:worker_threads";
    import(/* @vite-ignore */ spec).then(
      (wt: { Worker: never }) => spawn({ kind: "node", Worker: wt.Worker }),
      (err: unknown) => { threadNote = `worker_threads unavailable: ${String(err)}`; },
    );
  }

  let heapF32 = new Float32Array(memory.buffer);
  const f32 = (): Float32Array => {
    if (heapF32.buffer !== memory.buffer) heapF32 = new Float32Array(memory.buffer);
    return heapF32;
  };

  // The scratch arena: one block reused by every call.
  let arenaPtr = 0, arenaBytes = 0;
  const arena = (bytes: number): number => {
    if (bytes > arenaBytes) {
      if (arenaPtr) heap.release(arenaPtr);
      arenaBytes = roundUp(Math.max(bytes, arenaBytes * 1.25), PAGE);
      arenaPtr = heap.alloc(arenaBytes);
    }
    return arenaPtr;
  };

  /** Copies a strided operand to byte address dst; returns the element strides to use there. */
  const stage = (batch: number, rows: number, cols: number, op: MatOperand<Float32Array>, dst: number, lo: number, hi: number): [number, number, number, number] => {
    const heapView = f32();
    const bs = batch > 1 ? op.batchStride : 0;
    if (hi - lo + 1 <= 2 * batch * rows * cols + 64) {
      // Dense enough: one memcpy of the touched span, strides unchanged.
      heapView.set(op.data.subarray(lo, hi + 1), dst >>> 2);
      return [dst + (op.offset - lo) * 4, bs, op.rowStride, op.colStride];
    }
    // Sparse view of a large buffer: gather only the elements used, contiguously.
    let o = dst >>> 2;
    for (let b = 0; b < batch; b++)
      for (let i = 0; i < rows; i++) {
        const base = op.offset + b * bs + i * op.rowStride;
        for (let j = 0; j < cols; j++) heapView[o++] = op.data[base + j * op.colStride]!;
      }
    return [dst, rows * cols, cols, 1];
  };

  /** Runs a job already written at jobPtr on `nt` shares; blocks until all are done. */
  const runJob = (nt: number): void => {
    if (nt === 1) { ex.gemm_run(jobPtr, 0); return; }
    Atomics.store(ctl, CTL_JOB, jobPtr);
    Atomics.store(ctl, CTL_DONE, 0);
    Atomics.store(ctl, CTL_ERROR, 0);
    const mine: number[] = [0];
    let sent = 0;
    for (let w = 0; w < nt - 1; w++) {
      if (!disposed && Atomics.load(ctl, CTL_READY + w) === 1) {
        Atomics.add(ctl, CTL_GO + w, 1);
        Atomics.notify(ctl, CTL_GO + w);
        sent++;
      } else mine.push(w + 1);
    }
    for (const tid of mine) ex.gemm_run(jobPtr, tid);
    let spins = 0, done: number;
    while ((done = Atomics.load(ctl, CTL_DONE)) < sent) {
      if (++spins > 200000) Atomics.wait(ctl, CTL_DONE, done, 1000);
    }
    if (Atomics.load(ctl, CTL_ERROR) !== 0) throw new Error("wasm backend: a worker thread failed while computing a matmul");
  };

  interface Gemm {
    kernel: "matmul" | "matmulPacked"; // for error messages
    batch: number; M: number; N: number; K: number;
    a: MatOperand<Float32Array>; b: MatOperand<Float32Array> | number; out: Float32Array; bias: Float32Array | null;
  }
  const gemm = ({ kernel, batch, M, N, K, a, b, out, bias }: Gemm): void => {
    if (batch === 0 || M === 0 || N === 0) return;
    const packed = typeof b === "number";
    const work = batch * M * N * Math.max(K, 1);
    const nt = work >= THREAD_MIN_WORK ? threads : 1;
    // Share by batch items when there are enough, else by the longer of the output's two sides.
    const split = batch >= nt ? 0 : N >= M ? 1 : 2;
    const shareRows = split === 2 ? Math.ceil(M / nt) + 8 : M; // + a tile's rows (MR <= 8) of rounding
    const ea = extent(batch, M, K, a);
    const eb = packed ? { lo: 0, hi: -1 } : extent(batch, K, N, b);
    // An upper bound of what is staged below (operands, output, bias, per-thread scratch).
    fits(kernel, (ea.hi - ea.lo + 1) + (eb.hi - eb.lo + 1) + batch * M * N + N + 16 + nt * ((shareRows + 8) * K + B_BLOCK_FLOATS + 64));
    const scratchBytes = roundUp(ex.gemm_scratch_floats(shareRows, N, K) * 4, ALIGN);
    const aBytes = roundUp((ea.hi - ea.lo + 1) * 4, ALIGN), bBytes = roundUp((eb.hi - eb.lo + 1) * 4, ALIGN);
    const cBytes = roundUp(batch * M * N * 4, ALIGN), biasBytes = bias ? roundUp((N + 16) * 4, ALIGN) : 0;
    const base = arena(aBytes + bBytes + cBytes + biasBytes + nt * scratchBytes);
    const aPtr = base, bPtr = aPtr + aBytes, cPtr = bPtr + bBytes, biasPtr = cPtr + cBytes, scratchPtr = biasPtr + biasBytes;
    const [aAt, abs, ars, acs] = stage(batch, M, K, a, aPtr, ea.lo, ea.hi);
    const [bAt, bbs, brs, bcs] = packed ? [b, 0, 0, 0] : stage(batch, K, N, b, bPtr, eb.lo, eb.hi);
    if (bias) {
      const h = f32();
      h.set(bias.subarray(0, N), biasPtr >>> 2);
      h.fill(0, (biasPtr >>> 2) + N, (biasPtr >>> 2) + N + 16); // the microkernel reads whole 8-column panels
    }
    const job = new Int32Array(memory.buffer, jobPtr, JOB_INTS);
    job.set([batch, M, N, K, aAt, abs, ars, acs, bAt, bbs, brs, bcs, packed ? 1 : 0, cPtr, bias ? biasPtr : 0, nt, split]);
    for (let t = 0; t < nt; t++) job[17 + t] = scratchPtr + t * scratchBytes;
    runJob(nt);
    out.set(f32().subarray(cPtr >>> 2, (cPtr >>> 2) + batch * M * N));
  };

  // A tiny product now makes V8 queue its optimising compile of the kernels (wasm has no on-stack
  // replacement, so a first large call would otherwise run entirely in baseline code, ~4x slower).
  // 32x32x256 is about the least work that exhausts V8's tier-up budget (measured: ~1 ms at creation).
  const warm = new Float32Array(256 * 32);
  const warmA = { data: warm, offset: 0, batchStride: 0, rowStride: 256, colStride: 1 };
  const warmB = { data: warm, offset: 0, batchStride: 0, rowStride: 32, colStride: 1 };
  gemm({ kernel: "matmul", batch: 1, M: 32, N: 32, K: 256, a: warmA, b: warmB, out: new Float32Array(32 * 32), bias: null });

  // Packed handles: which block each one owns; freed when the handle is collected.
  const packedPtr = new WeakMap<PackedMatrix, number>();
  const registry = new FinalizationRegistry<number>((ptr) => heap.release(ptr));

  // Behind the shared argument checks (check.ts): sizes reach the module as valid int32s, buffers are long enough.
  const kernels: Partial<Kernels> = checkedKernels({
    matmul<A extends FloatArray>(batch: number, M: number, N: number, K: number, a: MatOperand<A>, b: MatOperand<A>, out: A, bias: A | null): void {
      if (!(a.data instanceof Float32Array && b.data instanceof Float32Array && out instanceof Float32Array && (bias === null || bias instanceof Float32Array))) {
        referenceKernels.matmul(batch, M, N, K, a, b, out, bias);
        return;
      }
      gemm({ kernel: "matmul", batch, M, N, K, a: a as MatOperand<Float32Array>, b: b as MatOperand<Float32Array>, out, bias: bias as Float32Array | null });
    },
    packMatrix(K: number, N: number, b: MatOperand<Float32Array>): PackedMatrix {
      const e = extent(1, K, N, b);
      fits("packMatrix", (N + 8) * K + (K > 0 && N > 0 ? e.hi - e.lo + 1 + K * N : 0)); // the block, and the staging arena
      const ptr = heap.alloc(ex.gemm_packed_floats(K, N) * 4);
      if (K > 0 && N > 0) {
        const tmp = arena((e.hi - e.lo + 1) * 4 + K * N * 4);
        const [at, , rs, cs] = stage(1, K, N, b, tmp, e.lo, e.hi);
        ex.gemm_pack_b(K, N, at, rs, cs, ptr);
      }
      const handle: PackedMatrix = Object.freeze({ K, N, backend: "wasm" });
      packedPtr.set(handle, ptr);
      registry.register(handle, ptr);
      return handle;
    },
    unary<A extends FloatArray>(op: UnaryOp, x: A, xOffset: number, out: A, n: number): void {
      const code = UNARY_CODES[op];
      if (code === undefined || n < EW_MIN || !(x instanceof Float32Array) || !(out instanceof Float32Array)) {
        referenceKernels.unary(op, x, xOffset, out, n);
        return;
      }
      const ptr = arena(roundUp(n, 4) * 4); // the kernel works on whole f32x4 vectors
      f32().set(x.subarray(xOffset, xOffset + n), ptr >>> 2);
      ex.ew_unary(code, ptr, ptr, n);
      out.set(f32().subarray(ptr >>> 2, (ptr >>> 2) + n));
    },
    unaryGrad<A extends FloatArray>(op: UnaryGradOp, x: A, gy: A, gx: A, n: number): void {
      const code = GRAD_CODES[op];
      if (code === undefined || n < EW_MIN || !(x instanceof Float32Array) || !(gy instanceof Float32Array) || !(gx instanceof Float32Array)) {
        referenceKernels.unaryGrad(op, x, gy, gx, n);
        return;
      }
      const ptr = arena(roundUp(n, 4) * 8), h = f32(), px = ptr >>> 2, pg = px + roundUp(n, 4); // whole f32x4 vectors
      h.set(x.subarray(0, n), px);
      h.set(gy.subarray(0, n), pg);
      ex.ew_unary_grad(code, ptr, pg * 4, pg * 4, n);
      gx.set(h.subarray(pg, pg + n));
    },
    softmax<A extends FloatArray>(x: A, rows: number, cols: number, scale: number, causalRows: number, causalOffset: number, out: A): void {
      const n = rows * cols;
      if (n < EW_MIN || !(x instanceof Float32Array) || !(out instanceof Float32Array)) {
        referenceKernels.softmax(x, rows, cols, scale, causalRows, causalOffset, out);
        return;
      }
      const ptr = arena(n * 4);
      f32().set(x.subarray(0, n), ptr >>> 2);
      ex.ew_softmax(ptr, rows, cols, scale, causalRows, causalOffset, ptr);
      out.set(f32().subarray(ptr >>> 2, (ptr >>> 2) + n));
    },
    matmulPacked(M: number, a: MatOperand<Float32Array>, packed: PackedMatrix, out: Float32Array, bias: Float32Array | null): void {
      const ptr = packedPtr.get(packed);
      if (ptr === undefined) throw new Error(`wasm backend: matmulPacked got a matrix packed by ${packed.backend === "wasm" ? "another wasm backend instance" : `the ${packed.backend} backend`}`);
      gemm({ kernel: "matmulPacked", batch: 1, M, N: packed.N, K: packed.K, a, b: ptr, out, bias });
    },
  });

  return {
    name: "wasm",
    get description() {
      // Counts the workers that have reported ready; the others' shares run on the calling thread.
      let live = 1;
      if (threaded && !disposed) for (let w = 0; w < threads - 1; w++) live += Atomics.load(ctl, CTL_READY + w);
      const note = threadNote || (live < threads ? `${threads - live} worker${threads - live === 1 ? "" : "s"} starting` : "");
      return `wasm (SIMD128, ${live} thread${live === 1 ? "" : "s"}${note ? `; ${note}` : ""})`;
    },
    get threads() { return disposed ? 1 : threads; },
    get memoryBytes() { return memory.buffer.byteLength; },
    kernels,
    dispose(): void {
      if (disposed) return;
      disposed = true;
      if (!threaded) return; // no workers; ctl may be a detached view of a grown unshared memory
      Atomics.store(ctl, CTL_QUIT, 1);
      for (let w = 0; w < threads - 1; w++) { Atomics.add(ctl, CTL_GO + w, 1); Atomics.notify(ctl, CTL_GO + w); }
      for (const worker of workers) void worker.terminate();
      workers.length = 0;
    },
  };
}
