// Activations of a HookedTransformer at one hook (an SAE) or two (a transcoder's input and output)
// over windows of corpus tokens, as flat row-major float32 rows, and a chunked shuffle buffer that
// makes training batch s a pure function of s: chunk c = ⌊s / batchesPerChunk⌋ covers the next
// `chunkWindows` windows (cycling over the corpus), shuffled with a seed derived from c. So a resumed
// run sees exactly the batches of an uninterrupted one without saving the buffer.
import { noGrad } from "../tensor/autodiff.js";
import { scope } from "../tensor/memory.js";
import { Rng } from "../tensor/rng.js";
import { Tensor } from "../tensor/tensor.js";
import type { HookName } from "../model/hooks.js";
import type { HookedTransformer } from "../model/transformer.js";

/** Rows [n, d] of activations. */
export interface ActivationRows { x: Float32Array; y: Float32Array; n: number; dIn: number; dOut: number }

export interface ActivationSpec {
  hookIn: HookName;
  /** The reconstructed hook (= hookIn for an SAE). */
  hookOut: HookName;
  /** Positions [0, skipPositions) of every window are left out (1 drops a BOS column). */
  skipPositions: number;
  /** Windows per forward pass. */
  batchWindows: number;
}

/** Run the model over windows and keep the hooks' activations at every non-skipped position. */
export function collectActivations(model: HookedTransformer, windows: readonly (readonly number[])[], spec: ActivationSpec): ActivationRows {
  const xs: Float32Array[] = [], ys: Float32Array[] = [];
  let dIn = 0, dOut = 0, n = 0;
  const rowsOf = (a: Tensor, skip: number): Float32Array => {
    if (a.ndim !== 3) throw new RangeError(`sae: ${a.ndim}-d activation [${a.shape.join(", ")}]; SAEs read [batch, pos, d] hooks`);
    const [B, T, d] = a.shape as [number, number, number];
    const src = a.toArray(), out = new Float32Array(B * Math.max(T - skip, 0) * d);
    for (let b = 0, o = 0; b < B; b++) for (let t = skip; t < T; t++, o += d) out.set(src.subarray((b * T + t) * d, (b * T + t + 1) * d), o);
    return out;
  };
  for (let i = 0; i < windows.length; i += spec.batchWindows) {
    const part = windows.slice(i, i + spec.batchWindows);
    scope(() => noGrad(() => {
      let gotIn: Float32Array | null = null, gotOut: Float32Array | null = null;
      const read = (which: "in" | "out") => (a: Tensor) => {
        const rows = rowsOf(a, spec.skipPositions);
        if (which === "in") { gotIn = rows; dIn = a.shape[2]!; } else { gotOut = rows; dOut = a.shape[2]!; }
      };
      const fwd: [HookName, (a: Tensor) => void][] = [[spec.hookIn, read("in")]];
      if (spec.hookOut !== spec.hookIn) fwd.push([spec.hookOut, read("out")]);
      model.runWithHooks(part as number[][], { fwd });
      if (!gotIn) throw new Error(`sae: hook ${spec.hookIn} did not fire`);
      if (spec.hookOut !== spec.hookIn && !gotOut) throw new Error(`sae: hook ${spec.hookOut} did not fire`);
      xs.push(gotIn); ys.push(gotOut ?? gotIn);
    }));
    n += xs[xs.length - 1]!.length / dIn;
  }
  if (spec.hookOut === spec.hookIn) dOut = dIn;
  const cat = (parts: Float32Array[], len: number) => { const out = new Float32Array(len); let o = 0; for (const p of parts) { out.set(p, o); o += p.length; } return out; };
  const x = cat(xs, n * dIn);
  return { x, y: spec.hookOut === spec.hookIn ? x : cat(ys, n * dOut), n, dIn, dOut };
}

/** Training batches x [batchTokens, d_in], y [batchTokens, d_out] as a function of the step. */
export interface BatchSource {
  readonly dIn: number;
  readonly dOut: number;
  batch(step: number): { x: Tensor; y: Tensor };
  /** Some rows for initialising b_dec (the first chunk's). */
  sample(): ActivationRows;
}

/** Shuffle rows of x and y together with a seeded Fisher–Yates permutation. */
function shuffleRows(r: ActivationRows, rng: Rng): ActivationRows {
  const perm = Array.from({ length: r.n }, (_, i) => i);
  for (let i = r.n - 1; i > 0; i--) { const j = rng.int(0, i + 1); [perm[i], perm[j]] = [perm[j]!, perm[i]!]; }
  const x = new Float32Array(r.x.length), y = r.y === r.x ? x : new Float32Array(r.y.length);
  perm.forEach((p, i) => {
    x.set(r.x.subarray(p * r.dIn, (p + 1) * r.dIn), i * r.dIn);
    if (y !== x) y.set(r.y.subarray(p * r.dOut, (p + 1) * r.dOut), i * r.dOut);
  });
  return { ...r, x, y };
}

/** Rows from a fixed-rows source (synthetic data, or activations already collected), chunked the same way. */
export function rowsBatchSource(getChunk: (chunk: number) => ActivationRows, batchTokens: number, seed: number): BatchSource {
  let cached: { chunk: number; rows: ActivationRows } | null = null;
  const first = getChunk(0);
  const perChunk = Math.floor(first.n / batchTokens);
  if (perChunk < 1) throw new RangeError(`sae: a chunk holds ${first.n} tokens, fewer than one batch of ${batchTokens}; use more windows per chunk or a smaller batch`);
  const chunkAt = (c: number) => {
    if (cached?.chunk !== c) cached = { chunk: c, rows: shuffleRows(c === 0 ? first : getChunk(c), new Rng(seed * 1_000_003 + c)) };
    return cached.rows;
  };
  return {
    dIn: first.dIn, dOut: first.dOut,
    sample: () => first,
    batch(step) {
      const r = chunkAt(Math.floor(step / perChunk));
      const b = step % perChunk, B = batchTokens;
      const x = new Tensor(r.x.slice(b * B * r.dIn, (b + 1) * B * r.dIn), [B, r.dIn]);
      const y = r.y === r.x ? x : new Tensor(r.y.slice(b * B * r.dOut, (b + 1) * B * r.dOut), [B, r.dOut]);
      return { x, y };
    },
  };
}

/** Batches of a model's activations over corpus windows, `chunkWindows` windows per shuffle buffer. */
export function modelBatchSource(model: HookedTransformer, windows: readonly (readonly number[])[], spec: ActivationSpec & { chunkWindows: number; batchTokens: number; seed: number }): BatchSource {
  const W = Math.min(spec.chunkWindows, windows.length), N = windows.length;
  if (N === 0) throw new RangeError("sae: no corpus windows");
  const chunk = (c: number) => collectActivations(model, Array.from({ length: W }, (_, i) => windows[(c * W + i) % N]!), spec);
  return rowsBatchSource(chunk, spec.batchTokens, spec.seed);
}
