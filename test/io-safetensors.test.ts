// safetensors reading and writing: hand-built files with known bit patterns (F16/BF16 specials,
// subnormals, I64 limits), bytes written for F16/BF16 against round-to-nearest-even results computed
// with NumPy, round trips of every dtype, header alignment, sharded checkpoints, every malformed-file
// error (each must name the file and the tensor), and atomic writes (no temporary file left behind,
// and an existing file untouched when a write throws).
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Tensor } from "../src/tensor/tensor.js";
import {
  SafetensorsFile, ShardedSafetensors, SafetensorsError, loadSafetensors, saveSafetensors, floatToHalfBits, floatToBf16Bits,
  type SafetensorsDType, type SafetensorsErrorCode,
} from "../src/io/safetensors.js";

const tmpDirs: string[] = [];
const tmp = (): string => { const d = fs.mkdtempSync(path.join(os.tmpdir(), "cs-io-st-")); tmpDirs.push(d); return d; };
process.on("exit", () => { for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true }); });

interface RawEntry { name: string; dtype: string; shape: number[]; bytes: Uint8Array; offsets?: [number, number] }

/** A safetensors file assembled by hand (independent of the writer): offsets follow the entries unless given. */
function rawFile(file: string, entries: RawEntry[], opts: { metadata?: Record<string, string>; headerOverride?: string; dataOverride?: Uint8Array } = {}): void {
  const header: Record<string, unknown> = {};
  if (opts.metadata) header.__metadata__ = opts.metadata;
  let off = 0;
  const parts: Uint8Array[] = [];
  for (const e of entries) {
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: e.offsets ?? [off, off + e.bytes.length] };
    off += e.bytes.length;
    parts.push(e.bytes);
  }
  const json = Buffer.from(opts.headerOverride ?? JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([len, json, opts.dataOverride ?? Buffer.concat(parts)]));
}

const u16 = (...v: number[]) => new Uint8Array(Uint16Array.from(v).buffer);
const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function assertStError(fn: () => unknown, code: SafetensorsErrorCode, file: string, tensor: string | undefined, msg: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof SafetensorsError, `expected SafetensorsError, got ${String(e)}`);
    assert.equal(e.code, code);
    assert.equal(e.file, file);
    assert.equal(e.tensor, tensor);
    assert.ok(e.message.includes(file), `message names the file: ${e.message}`);
    if (tensor !== undefined) assert.ok(e.message.includes(`"${tensor}"`), `message names the tensor: ${e.message}`);
    assert.match(e.message, msg);
    return true;
  });
}

describe("reading hand-built files", () => {
  test("F16 and BF16 bit patterns convert exactly to float32 (specials, subnormals, signed zero)", () => {
    const f = path.join(tmp(), "half.safetensors");
    const f16 = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x0400, 0x7c00, 0xfc00, 0x7e00, 0x8000, 0x3555];
    const bf16 = [0x3f80, 0xc040, 0x4049, 0x7f80, 0x0001, 0x7fc0, 0x8000];
    rawFile(f, [{ name: "h", dtype: "F16", shape: [f16.length], bytes: u16(...f16) }, { name: "b", dtype: "BF16", shape: [bf16.length], bytes: u16(...bf16) }]);
    const st = SafetensorsFile.open(f);
    const h = st.load("h");
    assert.equal(h.dtype, "float32");
    const hv = Array.from(h.toArray());
    assert.deepEqual(hv.slice(0, 8), [1, -2, 65504, 2 ** -24, 1023 * 2 ** -24, 2 ** -14, Infinity, -Infinity]);
    assert.ok(Number.isNaN(hv[8]));
    assert.ok(Object.is(hv[9], -0), "0x8000 is -0");
    assert.equal(hv[10], 0.333251953125);
    const bv = Array.from(st.load("b").toArray());
    assert.deepEqual(bv.slice(0, 5), [1, -3, 3.140625, Infinity, 2 ** -133]);
    assert.ok(Number.isNaN(bv[5]));
    assert.ok(Object.is(bv[6], -0));
    // Requested as float64, the same exact values.
    assert.deepEqual(Array.from(st.load("h", { dtype: "float64" }).toArray()).slice(0, 4), [1, -2, 65504, 2 ** -24]);
  });

  test("F32, F64, I32, I64, U8, BOOL, scalars, empty tensors and metadata", () => {
    const f = path.join(tmp(), "mixed.safetensors");
    const i64 = BigInt64Array.from([-(2n ** 31n), 2n ** 31n - 1n, 5n]);
    rawFile(f, [
      { name: "f32", dtype: "F32", shape: [2, 2], bytes: bytesOf(Float32Array.from([1.5, -2, 3.25, 1e-3])) },
      { name: "f64", dtype: "F64", shape: [2], bytes: bytesOf(Float64Array.from([Math.PI, -1e300])) },
      { name: "i32", dtype: "I32", shape: [3], bytes: bytesOf(Int32Array.from([-7, 0, 2147483647])) },
      { name: "i64", dtype: "I64", shape: [3], bytes: bytesOf(i64) },
      { name: "u8", dtype: "U8", shape: [3], bytes: Uint8Array.from([0, 255, 7]) },
      { name: "bool", dtype: "BOOL", shape: [3], bytes: Uint8Array.from([0, 1, 1]) },
      { name: "scalar", dtype: "F32", shape: [], bytes: bytesOf(Float32Array.from([42])) },
      { name: "empty", dtype: "F32", shape: [0, 3], bytes: new Uint8Array(0) },
    ], { metadata: { format: "pt", note: "hi" } });
    const st = SafetensorsFile.open(f);
    assert.deepEqual(st.metadata, { format: "pt", note: "hi" });
    assert.deepEqual(st.names(), ["f32", "f64", "i32", "i64", "u8", "bool", "scalar", "empty"]);
    assert.deepEqual(st.info("i64"), { dtype: "I64", shape: [3], dataOffsets: [44, 68] });
    const all = st.loadAll();
    const check = (name: string, dtype: string, shape: number[], values: number[]) => {
      const t = all.get(name)!;
      assert.equal(t.dtype, dtype, `${name} dtype`);
      assert.deepEqual(t.shape, shape, `${name} shape`);
      assert.deepEqual(Array.from(t.toArray()), values, `${name} values`);
    };
    check("f32", "float32", [2, 2], [1.5, -2, 3.25, Math.fround(1e-3)]);
    check("f64", "float64", [2], [Math.PI, -1e300]);
    check("i32", "int32", [3], [-7, 0, 2147483647]);
    check("i64", "int32", [3], [-2147483648, 2147483647, 5]);
    check("u8", "int32", [3], [0, 255, 7]);
    check("bool", "int32", [3], [0, 1, 1]);
    check("scalar", "float32", [], [42]);
    check("empty", "float32", [0, 3], []);
    assert.deepEqual(Array.from(st.load("f64", { dtype: "float32" }).toArray()), [Math.fround(Math.PI), -Infinity]);
    assertStError(() => st.load("i32", { dtype: "float32" }), "unsupported", f, "i32", /cannot load I32 data as float32/);
    assertStError(() => st.load("nope"), "missing_tensor", f, "nope", /no such tensor/);
  });

  test("I64 values outside int32 are an error naming the element", () => {
    const f = path.join(tmp(), "big.safetensors");
    rawFile(f, [{ name: "ids", dtype: "I64", shape: [2], bytes: bytesOf(BigInt64Array.from([1n, 2n ** 31n])) }]);
    assertStError(() => SafetensorsFile.open(f).load("ids"), "value_out_of_range", f, "ids", /element 1 = 2147483648 does not fit in int32/);
  });
});

describe("writing", () => {
  test("F16 and BF16 are rounded to nearest even (bytes on disk against NumPy's results)", () => {
    const f = path.join(tmp(), "round.safetensors");
    const hIn = [1, 1 / 3, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 65520, 65519, 2 ** -25, 3 * 2 ** -26, -0, 2 ** -24, 1e-8, -2.5, NaN, -Infinity];
    const hOut = [0x3c00, 0x3555, 0x3c00, 0x3c02, 0x7c00, 0x7bff, 0x0000, 0x0001, 0x8000, 0x0001, 0x0000, 0xc100, 0x7e00, 0xfc00];
    const bIn = [1 / 3, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -Infinity, 3.4e38, -2.5, NaN];
    const bOut = [0x3eab, 0x3f80, 0x3f82, 0xff80, 0x7f80, 0xc020, 0x7fc0];
    assert.deepEqual(hIn.map(floatToHalfBits), hOut);
    assert.deepEqual(bIn.map(floatToBf16Bits), bOut);
    saveSafetensors(f, new Map([["h", new Tensor(Float32Array.from(hIn), [hIn.length])], ["b", new Tensor(Float32Array.from(bIn), [bIn.length])]]), undefined, { storeAs: { h: "F16", b: "BF16" } });
    const buf = fs.readFileSync(f), n = Number(buf.readBigUInt64LE(0));
    const header = JSON.parse(buf.subarray(8, 8 + n).toString()) as Record<string, { dtype: string; data_offsets: [number, number] }>;
    const words = (name: string) => {
      const [a, b] = header[name]!.data_offsets;
      return Array.from(new Uint16Array(buf.buffer.slice(buf.byteOffset + 8 + n + a, buf.byteOffset + 8 + n + b)));
    };
    assert.equal(header.h!.dtype, "F16");
    assert.deepEqual(words("h"), hOut);
    assert.deepEqual(words("b"), bOut);
  });

  test("the header is padded with spaces so the data starts 8-byte aligned", () => {
    const dir = tmp();
    for (let k = 0; k < 8; k++) {
      const f = path.join(dir, `a${k}.safetensors`);
      saveSafetensors(f, new Map([["x".repeat(k + 1), new Tensor(Float32Array.from([1, 2]), [2])]]), k % 2 ? { format: "pt" } : undefined);
      const buf = fs.readFileSync(f), n = Number(buf.readBigUInt64LE(0));
      assert.equal((8 + n) % 8, 0, `header length ${n}`);
      const text = buf.subarray(8, 8 + n).toString();
      assert.match(text, /^\{.*\} *$/);
      assert.equal(buf.length, 8 + n + 8);
    }
  });

  test("every dtype round-trips (floats through F64/F32/F16/BF16, int32 through I64/I32/U8/BOOL)", () => {
    const f = path.join(tmp(), "all.safetensors");
    const exact = [0, 1, -2, 0.5, 3.25, -1024, 0.125]; // representable in every float format
    const ints = [0, 1, 1, 0, 1, 0, 1]; // representable in every integer format
    const tensors = new Map<string, Tensor>();
    const storeAs: Record<string, SafetensorsDType> = {};
    for (const st of ["F64", "F32", "F16", "BF16"] as const) { tensors.set(st, new Tensor(Float32Array.from(exact), [7, 1])); storeAs[st] = st; }
    tensors.set("F64-from-float64", new Tensor(Float64Array.from([Math.PI, 1e-300]), [2]));
    for (const st of ["I64", "I32", "U8", "BOOL"] as const) { tensors.set(st, new Tensor(Int32Array.from(ints), [1, 7])); storeAs[st] = st; }
    tensors.set("I64-wide", new Tensor(Int32Array.from([-2147483648, 2147483647]), [2]));
    storeAs["I64-wide"] = "I64";
    saveSafetensors(f, tensors, { format: "pt" }, { storeAs });
    const st = SafetensorsFile.open(f);
    assert.deepEqual(st.metadata, { format: "pt" });
    for (const [name, t] of tensors) {
      assert.equal(st.info(name).dtype, storeAs[name] ?? "F64", `${name} stored dtype`);
      const back = st.load(name);
      assert.deepEqual(back.shape, t.shape, `${name} shape`);
      assert.deepEqual(Array.from(back.toArray()), Array.from(t.toArray()), `${name} values`);
    }
    assert.deepEqual(loadSafetensors(f).get("F64-from-float64")!.dtype, "float64");
  });

  test("non-contiguous tensors are written in row-major order", () => {
    const f = path.join(tmp(), "t.safetensors");
    const x = new Tensor(Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]).transpose(0, 1); // [3, 2]
    saveSafetensors(f, new Map([["xt", x]]));
    assert.deepEqual(Array.from(loadSafetensors(f).get("xt")!.toArray()), [1, 4, 2, 5, 3, 6]);
  });

  test("dtype and value problems are refused", () => {
    const f = path.join(tmp(), "bad.safetensors");
    const ints = new Tensor(Int32Array.from([1, 256]), [2]);
    assertStError(() => saveSafetensors(f, new Map([["i", ints]]), undefined, { storeAs: { i: "F16" } }), "unsupported", f, "i", /cannot store a int32 tensor as F16/);
    assertStError(() => saveSafetensors(f, new Map([["i", ints]]), undefined, { storeAs: { i: "U8" } }), "value_out_of_range", f, "i", /element 1 = 256 does not fit in U8/);
    assertStError(() => saveSafetensors(f, new Map([["i", ints]]), undefined, { storeAs: { i: "F8_E4M3" as SafetensorsDType } }), "unknown_dtype", f, "i", /cannot store as "F8_E4M3"/);
    assert.throws(() => saveSafetensors(f, new Map([["__metadata__", ints]])), /reserved/);
    assert.equal(fs.existsSync(f), false);
  });

  test("writes are atomic: no temporary file remains, and a failed write leaves the old file intact", () => {
    const dir = tmp(), f = path.join(dir, "model.safetensors");
    saveSafetensors(f, new Map([["a", new Tensor(Float32Array.from([1, 2, 3]), [3])]]));
    const before = fs.readFileSync(f);
    assert.deepEqual(fs.readdirSync(dir), ["model.safetensors"]);
    // The second tensor fails its range check after the first tensor's bytes are already written.
    const bad = new Map([["a", new Tensor(Float32Array.from([9, 9, 9]), [3])], ["b", new Tensor(Int32Array.from([0, 1, 2]), [3])]]);
    assert.throws(() => saveSafetensors(f, bad, undefined, { storeAs: { b: "BOOL" } }), /does not fit in BOOL/);
    assert.deepEqual(fs.readFileSync(f), before, "old file unchanged");
    assert.deepEqual(fs.readdirSync(dir), ["model.safetensors"], "temporary file removed");
    // And a successful overwrite replaces it.
    saveSafetensors(f, new Map([["a", new Tensor(Float32Array.from([7]), [1])]]));
    assert.deepEqual(Array.from(loadSafetensors(f).get("a")!.toArray()), [7]);
    assert.deepEqual(fs.readdirSync(dir), ["model.safetensors"]);
  });
});

describe("sharded checkpoints", () => {
  test("the index's weight_map spreads names over shards; each loads from its own file", () => {
    const dir = tmp();
    saveSafetensors(path.join(dir, "model-00001-of-00002.safetensors"), new Map([["a", new Tensor(Float32Array.from([1, 2]), [2])]]));
    saveSafetensors(path.join(dir, "model-00002-of-00002.safetensors"), new Map([["b", new Tensor(Float32Array.from([3, 4, 5, 6]), [2, 2])], ["c", new Tensor(Int32Array.from([9]), [1])]]));
    const index = path.join(dir, "model.safetensors.index.json");
    fs.writeFileSync(index, JSON.stringify({ metadata: { total_size: 28 }, weight_map: { a: "model-00001-of-00002.safetensors", b: "model-00002-of-00002.safetensors", c: "model-00002-of-00002.safetensors" } }));
    const s = new ShardedSafetensors(index);
    assert.deepEqual(s.names(), ["a", "b", "c"]);
    assert.deepEqual(s.info("b").shape, [2, 2]);
    assert.deepEqual(Array.from(s.load("a").toArray()), [1, 2]);
    assert.deepEqual(Array.from(s.load("b").toArray()), [3, 4, 5, 6]);
    assert.equal(s.load("c").dtype, "int32");
    assertStError(() => s.load("d"), "missing_tensor", index, "d", /no such tensor in the weight_map/);
  });

  test("index errors: a name its shard lacks, a path outside the folder, no weight_map", () => {
    const dir = tmp(), index = path.join(dir, "model.safetensors.index.json");
    saveSafetensors(path.join(dir, "s1.safetensors"), new Map([["a", new Tensor(Float32Array.from([1]), [1])]]));
    fs.writeFileSync(index, JSON.stringify({ weight_map: { a: "s1.safetensors", z: "s1.safetensors" } }));
    assertStError(() => new ShardedSafetensors(index), "missing_tensor", index, "z", /maps it to s1\.safetensors, which does not contain it/);
    fs.writeFileSync(index, JSON.stringify({ weight_map: { a: "../s1.safetensors" } }));
    assertStError(() => new ShardedSafetensors(index), "bad_index", index, "a", /file name in the same folder/);
    fs.writeFileSync(index, JSON.stringify({ metadata: {} }));
    assertStError(() => new ShardedSafetensors(index), "bad_index", index, undefined, /no weight_map/);
  });
});

describe("malformed files give errors naming the file and the tensor", () => {
  const f32 = (n: number) => bytesOf(new Float32Array(n));

  test("truncated below the 8-byte length", () => {
    const f = path.join(tmp(), "short.safetensors");
    fs.writeFileSync(f, Buffer.from([1, 2, 3, 4, 5]));
    assertStError(() => SafetensorsFile.open(f), "truncated", f, undefined, /5 bytes, fewer than the 8-byte header length/);
  });

  test("header length beyond the file size", () => {
    const f = path.join(tmp(), "hdr.safetensors");
    const b = Buffer.alloc(18);
    b.writeBigUInt64LE(1000n);
    fs.writeFileSync(f, b);
    assertStError(() => SafetensorsFile.open(f), "truncated", f, undefined, /header length 1000 is beyond the file size \(18 bytes/);
  });

  test("header that is not JSON, or not an object", () => {
    const f = path.join(tmp(), "json.safetensors");
    rawFile(f, [], { headerOverride: "{not json" });
    assertStError(() => SafetensorsFile.open(f), "bad_json", f, undefined, /header is not valid JSON/);
    rawFile(f, [], { headerOverride: "[1, 2]" });
    assertStError(() => SafetensorsFile.open(f), "bad_json", f, undefined, /must be an object/);
  });

  test("data cut short (offsets past the end of the file)", () => {
    const dir = tmp(), good = path.join(dir, "good.safetensors"), cut = path.join(dir, "cut.safetensors");
    saveSafetensors(good, new Map([["a", new Tensor(new Float32Array(4), [4])], ["b", new Tensor(new Float32Array(4), [4])]]));
    const bytes = fs.readFileSync(good);
    fs.writeFileSync(cut, bytes.subarray(0, bytes.length - 3));
    assertStError(() => SafetensorsFile.open(cut), "offsets_out_of_range", cut, "b", /data_offsets \[16, 32\] run past the data section \(29 bytes\): the file is truncated/);
  });

  test("offsets that end before they begin", () => {
    const f = path.join(tmp(), "rev.safetensors");
    rawFile(f, [{ name: "w", dtype: "F32", shape: [0], bytes: f32(2), offsets: [8, 0] }]);
    assertStError(() => SafetensorsFile.open(f), "offsets_out_of_range", f, "w", /end before they begin/);
  });

  test("overlapping tensors", () => {
    const f = path.join(tmp(), "overlap.safetensors");
    rawFile(f, [
      { name: "a", dtype: "F32", shape: [2], bytes: f32(2), offsets: [0, 8] },
      { name: "b", dtype: "F32", shape: [2], bytes: f32(1), offsets: [4, 12] },
    ]);
    assertStError(() => SafetensorsFile.open(f), "overlapping", f, "b", /overlap tensor "a"/);
  });

  test("shape and byte size disagree", () => {
    const f = path.join(tmp(), "size.safetensors");
    rawFile(f, [{ name: "w", dtype: "F32", shape: [3], bytes: f32(2) }]);
    assertStError(() => SafetensorsFile.open(f), "size_mismatch", f, "w", /shape \[3\] of F32 needs 12 bytes but data_offsets \[0, 8\] span 8/);
  });

  test("unknown dtype", () => {
    const f = path.join(tmp(), "dtype.safetensors");
    rawFile(f, [{ name: "w", dtype: "F8_E4M3", shape: [4], bytes: new Uint8Array(4) }]);
    assertStError(() => SafetensorsFile.open(f), "unknown_dtype", f, "w", /unknown dtype "F8_E4M3" \(supported: F64, F32, F16, BF16, I64, I32, U8, BOOL\)/);
  });

  test("bad shape and metadata entries", () => {
    const f = path.join(tmp(), "shape.safetensors");
    rawFile(f, [{ name: "w", dtype: "F32", shape: [-1], bytes: f32(1) }]);
    assertStError(() => SafetensorsFile.open(f), "bad_header", f, "w", /shape must be an array of non-negative integers/);
    rawFile(f, [], { metadata: { n: 3 } as unknown as Record<string, string> });
    assertStError(() => SafetensorsFile.open(f), "bad_header", f, undefined, /__metadata__\.n must be a string/);
  });

  test("a missing file", () => {
    const f = path.join(tmp(), "nope.safetensors");
    assertStError(() => SafetensorsFile.open(f), "io", f, undefined, /cannot open/);
  });
});
