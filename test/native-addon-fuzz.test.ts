// Property test of the native addon's exported functions called directly, past the TypeScript
// checks: fast-check fills the shared parameter block with random sizes, offsets, strides and op codes
// (small ones and 2^31, 2^53, 2^62, -1, NaN, Infinity, fractions) and passes random arguments (typed
// arrays of every kind and length, null, numbers, strings, objects, a packed matrix). Every call must
// return or throw an Error naming the function; a missing check in C would crash this process. Its
// own file, because init() here rebinds the addon's parameter block away from src/backend/native.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import fc from "fast-check";

const RUNS = 2000; // per function
const SEED = 0xadd0;
const path = fileURLToPath(new URL("../../native/build/Release/circuitscope_native.node", import.meta.url));
const skip = existsSync(path) ? false : `the native addon is not built (${path})`;
type Fn = (...a: unknown[]) => unknown;
const addon = skip ? null : (createRequire(import.meta.url)(path) as Record<string, Fn>);
const P = new Float64Array(64);

// The kernels, with the argument count and the name their errors carry.
const KERNELS: [fn: string, argc: number, kernel: string][] = [
  ["matmul", 4, "matmul"], ["pack", 1, "packMatrix"], ["matmulPacked", 4, "matmulPacked"], ["unary", 2, "unary"],
  ["unaryGrad", 3, "unaryGrad"], ["binary", 3, "binary"], ["copy", 2, "copy"], ["reduce", 2, "reduce"], ["argmax", 2, "argmax"],
  ["softmax", 2, "softmax"], ["softmaxBackward", 3, "softmaxBackward"], ["logSoftmax", 2, "logSoftmax"],
  ["logSoftmaxBackward", 3, "logSoftmaxBackward"], ["layerNorm", 6, "layerNorm"], ["layerNormBackward", 8, "layerNormBackward"],
  ["rmsNorm", 4, "rmsNorm"], ["rmsNormBackward", 6, "rmsNormBackward"], ["adamw", 4, "adamw"], ["gatherRows", 3, "gatherRows"],
  ["scatterAddRows", 3, "scatterAddRows"],
];

// Parameter-block entries: mostly small (valid sizes, strides and op codes), sometimes hostile.
const HOSTILE = [-1, -2, 2 ** 31, 2 ** 31 - 1, 2 ** 32 + 1, 2 ** 53, 2 ** 62, -(2 ** 62), 2 ** 64, 1e300, NaN, Infinity, -Infinity, 0.5, -0.5];
const entry = fc.oneof({ weight: 10, arbitrary: fc.integer({ min: 0, max: 5 }) }, { weight: 1, arbitrary: fc.integer({ min: -3, max: -1 }) },
  { weight: 2, arbitrary: fc.constantFrom(...HOSTILE) });
const block = fc.array(entry, { minLength: 64, maxLength: 64 });
// Arguments: typed arrays of any kind (indices 0-4 into the builders below), plus junk and the packed matrix.
const argArb = fc.oneof(
  { weight: 12, arbitrary: fc.record({ t: fc.constant("f32"), n: fc.integer({ min: 0, max: 40 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constantFrom("i32", "f64", "u8"), n: fc.integer({ min: 0, max: 40 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constantFrom("null", "undefined", "number", "string", "object", "packed", "buffer"), n: fc.constant(0) }) },
);

function makeArg(a: { t: string; n: number }, packed: unknown, r: number): unknown {
  switch (a.t) {
    case "f32": return new Float32Array(a.n).map((_, i) => Math.sin(i + r));
    case "i32": return new Int32Array(a.n).map((_, i) => (i * 7 + r) % 5 - 1); // indices, some out of range
    case "f64": return new Float64Array(a.n);
    case "u8": return new Uint8Array(a.n);
    case "null": return null;
    case "undefined": return undefined;
    case "number": return 3;
    case "string": return "x";
    case "object": return { length: 1e9 };
    case "packed": return packed;
    default: return new ArrayBuffer(16);
  }
}

test("every native kernel survives random parameter blocks and arguments", { skip }, () => {
  addon!["init"]!(P);
  P.set([2, 3, 0, 3, 1]); // K N bOff bRow bCol: a 2x3 packed matrix to hand to matmulPacked
  const packed = addon!["pack"]!(new Float32Array(6));
  for (const [fn, argc, kernel] of KERNELS) {
    let threw = 0, returned = 0;
    fc.assert(fc.property(block, fc.array(argArb, { minLength: argc, maxLength: argc }), fc.integer({ min: 0, max: 9 }), (params, args, r) => {
      P.set(params);
      try {
        addon![fn]!(...args.map((a) => makeArg(a, packed, r)));
        returned++;
      } catch (e) {
        threw++;
        assert.ok(e instanceof Error, `${fn}: threw a non-Error ${String(e)}`);
        assert.ok(e.message.startsWith(`${kernel}: `), `${fn}: message "${e.message}" does not name ${kernel}`);
      }
    }), { numRuns: RUNS, seed: SEED });
    assert.ok(threw > 0 && returned + threw === RUNS, `${fn}: ${returned} returned, ${threw} threw`);
  }
});

test("init, setThreads, useAvx2 and peakGflops reject bad arguments without side effects", { skip }, () => {
  const a = addon!;
  for (const bad of [new Float64Array(63), new Float32Array(64), null, 3, "x"]) {
    assert.throws(() => a["init"]!(bad), /^RangeError: init: params must be a Float64Array of at least 64 entries$/);
  }
  const threads = a["setThreads"]!(1) as number;
  for (const bad of [NaN, Infinity, 1.5, 2 ** 62]) assert.throws(() => a["setThreads"]!(bad), /^RangeError: setThreads: n = .* is not an integer$/);
  assert.throws(() => a["setThreads"]!("2"), /^TypeError: setThreads: n must be a number$/);
  assert.equal(a["setThreads"]!(-5), 1); // clamped, as documented
  assert.equal(a["setThreads"]!(threads), threads);
  // Out of [1, 256] the peak is 0 without running the measurement; non-integers throw.
  for (const n of [0, -1, 257, 2 ** 32 + 1]) assert.equal(a["peakGflops"]!(n), 0);
  for (const bad of [NaN, 0.5]) assert.throws(() => a["peakGflops"]!(bad), /^RangeError: peakGflops: threads = /);
  assert.throws(() => a["useAvx2"]!(1), /^TypeError: useAvx2: flag must be a boolean$/);
  a["useAvx2"]!(true);
});
