// The safetensors format (https://github.com/huggingface/safetensors, README "Format"): an 8-byte
// little-endian header length N, N bytes of JSON mapping each tensor name to
// { dtype, shape, data_offsets: [begin, end) } (offsets relative to the data section that follows the
// header) plus an optional "__metadata__" of string → string, then the raw little-endian data.
//
// Reading is lazy: opening a file reads and validates only the header; each tensor is read on demand
// with fs.readSync at its offset straight into its own typed array (half precision is converted in
// bounded chunks), so a file is never held in memory whole and a model is never held twice.
// Sharded checkpoints (model.safetensors.index.json with a weight_map) look like one file.
// Writing goes to a temporary file in the same folder, fsynced, then renamed over the target, so a
// crash or a throw never leaves a half-written checkpoint where a good one was expected.
//
// This file is not a model loader: it knows tensors and bytes, not Hugging Face names (see hf-*.ts).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Tensor } from "../tensor/tensor.js";
import { fmt, numel } from "../tensor/shape.js";
import type { DType, Storage } from "../tensor/dtype.js";

/** The on-disk element types this reader understands. */
export type SafetensorsDType = "F64" | "F32" | "F16" | "BF16" | "I64" | "I32" | "U8" | "BOOL";

const ITEM_BYTES: Record<SafetensorsDType, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, U8: 1, BOOL: 1 };
const isStDType = (d: unknown): d is SafetensorsDType => typeof d === "string" && Object.hasOwn(ITEM_BYTES, d);

/** The engine dtype a stored dtype loads as by default: floats widen to float32 (F64 stays float64), integers to int32. */
export function engineDTypeOf(d: SafetensorsDType): DType {
  switch (d) {
    case "F64": return "float64";
    case "F32": case "F16": case "BF16": return "float32";
    case "I64": case "I32": case "U8": case "BOOL": return "int32";
    default: return d satisfies never;
  }
}

export type SafetensorsErrorCode =
  | "truncated" | "header_too_large" | "bad_json" | "bad_header" | "unknown_dtype" | "size_mismatch"
  | "offsets_out_of_range" | "overlapping" | "missing_tensor" | "value_out_of_range" | "bad_index" | "unsupported" | "io";

/** A malformed or unreadable checkpoint; `file` and (when one is to blame) `tensor` say where. */
export class SafetensorsError extends Error {
  override name = "SafetensorsError";
  constructor(readonly code: SafetensorsErrorCode, readonly file: string, readonly tensor: string | undefined, detail: string) {
    super(`${file}: ${tensor !== undefined ? `tensor "${tensor}": ` : ""}${detail}`);
  }
}

export interface TensorInfo {
  dtype: SafetensorsDType;
  shape: number[];
  /** [begin, end) in bytes, relative to the start of the data section. */
  dataOffsets: [number, number];
}

export interface LoadOptions {
  /** Engine dtype of the result; floats convert among float32/float64, integers only to int32. Default: engineDTypeOf(stored). */
  dtype?: DType;
}

/** Anything that can list and load named tensors: one safetensors file or a sharded set. */
export interface TensorSource {
  /** Where the tensors come from (a file or an index), for error messages. */
  readonly location: string;
  names(): string[];
  has(name: string): boolean;
  info(name: string): TensorInfo;
  load(name: string, opts?: LoadOptions): Tensor;
}

/** The Rust reference implementation refuses headers above 100 MB; so do we (a corrupt length would otherwise allocate gigabytes). */
const MAX_HEADER_BYTES = 100_000_000;
/** Half-precision values are converted through a scratch buffer of this many elements (bounded extra memory). */
const CHUNK_ELEMS = 1 << 20;
/** fs.readSync/writeSync take at most 2^31 - 1 bytes per call. */
const MAX_IO_BYTES = 1 << 30;

function assertLittleEndianHost(file: string): void {
  if (os.endianness() !== "LE") throw new SafetensorsError("unsupported", file, undefined, "safetensors data is little-endian and this reader only supports little-endian hosts");
}

/** Read exactly `bytes.length` bytes at `position`, looping over short reads. */
function readFully(fd: number, bytes: Uint8Array, position: number, file: string, tensor?: string): void {
  let done = 0;
  while (done < bytes.length) {
    const n = fs.readSync(fd, bytes, done, Math.min(bytes.length - done, MAX_IO_BYTES), position + done);
    if (n === 0) throw new SafetensorsError("truncated", file, tensor, `file ended after ${position + done} bytes while reading ${bytes.length} bytes at offset ${position}`);
    done += n;
  }
}

function writeFully(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += fs.writeSync(fd, bytes, done, Math.min(bytes.length - done, MAX_IO_BYTES));
}

// ---- half-precision bit conversions ------------------------------------------------------------

let halfTable: Float32Array | null = null;
/** All 65,536 IEEE binary16 values as float32, built once (exact: every half is a float32). */
function halfToFloatTable(): Float32Array {
  if (halfTable) return halfTable;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    // value = (-1)^s · 2^(e-15) · (1 + m/1024) for normals, (-1)^s · 2^-14 · (m/1024) for subnormals.
    t[h] = e === 0 ? sign * m * 2 ** -24 : e === 31 ? (m ? NaN : sign * Infinity) : sign * (1 + m / 1024) * 2 ** (e - 15);
  }
  return (halfTable = t);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → binary16 bits, rounding to nearest even; overflow gives ±Infinity, NaN stays NaN (quiet). */
export function floatToHalfBits(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  const sign = (b >>> 16) & 0x8000, exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15; // the half's biased exponent
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half: value / 2^-24 = (1.mant · 2^23) >> (14 - e); below 2^-25 everything rounds to 0.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e, rem = mant & ((1 << shift) - 1), halfway = 1 << (shift - 1);
    let h = mant >>> shift;
    if (rem > halfway || (rem === halfway && h & 1)) h++; // a carry into the exponent gives the smallest normal, correctly
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // a carry may reach 0x7c00 = Infinity, which is right
  return sign | h;
}

/** float32 → bfloat16 bits (the top 16 bits), rounding to nearest even; NaN stays NaN (quiet). */
export function floatToBf16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  if ((b & 0x7f800000) === 0x7f800000 && b & 0x7fffff) return (b >>> 16) | 0x40;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

// ---- reading ------------------------------------------------------------------------------------

/** One safetensors file, opened lazily: the header is parsed and checked, tensors are read on demand. */
export class SafetensorsFile implements TensorSource {
  readonly location: string;
  /** The "__metadata__" strings (e.g. { format: "pt" }). */
  readonly metadata: Readonly<Record<string, string>>;
  private readonly entries: Map<string, TensorInfo>;
  /** Absolute file position where the data section starts: 8 + header length. */
  private readonly dataStart: number;

  private constructor(file: string, metadata: Record<string, string>, entries: Map<string, TensorInfo>, dataStart: number) {
    this.location = file; this.metadata = metadata; this.entries = entries; this.dataStart = dataStart;
  }

  /** Open and validate a file's header (reads 8 + header-length bytes, not the data). */
  static open(file: string): SafetensorsFile {
    assertLittleEndianHost(file);
    let fd: number;
    try { fd = fs.openSync(file, "r"); } catch (e) {
      throw new SafetensorsError("io", file, undefined, `cannot open: ${(e as Error).message}`);
    }
    try {
      const size = fs.fstatSync(fd).size;
      if (size < 8) throw new SafetensorsError("truncated", file, undefined, `truncated: ${size} bytes, fewer than the 8-byte header length`);
      const lenBytes = new Uint8Array(8);
      readFully(fd, lenBytes, 0, file);
      const n64 = new DataView(lenBytes.buffer).getBigUint64(0, true);
      if (n64 > BigInt(size - 8)) throw new SafetensorsError("truncated", file, undefined, `header length ${n64} is beyond the file size (${size} bytes, so at most ${size - 8} for the header)`);
      const n = Number(n64);
      if (n > MAX_HEADER_BYTES) throw new SafetensorsError("header_too_large", file, undefined, `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
      const headerBytes = new Uint8Array(n);
      readFully(fd, headerBytes, 8, file);
      const { metadata, entries } = parseHeader(file, new TextDecoder().decode(headerBytes), size - 8 - n);
      return new SafetensorsFile(file, metadata, entries, 8 + n);
    } finally {
      fs.closeSync(fd);
    }
  }

  names(): string[] { return [...this.entries.keys()]; }
  has(name: string): boolean { return this.entries.has(name); }

  info(name: string): TensorInfo {
    const e = this.entries.get(name);
    if (!e) throw new SafetensorsError("missing_tensor", this.location, name, `no such tensor (the file has ${this.entries.size}: ${preview(this.names())})`);
    return { dtype: e.dtype, shape: e.shape.slice(), dataOffsets: [e.dataOffsets[0], e.dataOffsets[1]] };
  }

  /** Read one tensor from disk into fresh storage of the requested engine dtype. */
  load(name: string, opts: LoadOptions = {}): Tensor {
    const fd = fs.openSync(this.location, "r");
    try { return this.read(fd, name, opts); } finally { fs.closeSync(fd); }
  }

  /** Read several tensors (all by default) with one open file handle. */
  loadAll(names: readonly string[] = this.names(), opts: LoadOptions = {}): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    const fd = fs.openSync(this.location, "r");
    try { for (const n of names) out.set(n, this.read(fd, n, opts)); } finally { fs.closeSync(fd); }
    return out;
  }

  private read(fd: number, name: string, opts: LoadOptions): Tensor {
    const { dtype: st, shape, dataOffsets } = this.info(name);
    const want = opts.dtype ?? engineDTypeOf(st);
    const isInt = st === "I64" || st === "I32" || st === "U8" || st === "BOOL";
    if (isInt !== (want === "int32"))
      throw new SafetensorsError("unsupported", this.location, name, `cannot load ${st} data as ${want} (integers load as int32, floats as float32 or float64)`);
    const n = numel(shape), pos = this.dataStart + dataOffsets[0];
    const readInto = (arr: ArrayBufferView, at: number) => readFully(fd, new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength), at, this.location, name);
    let out: Storage;
    switch (st) {
      case "F32": {
        const a = new Float32Array(n); readInto(a, pos);
        out = want === "float32" ? a : Float64Array.from(a);
        break;
      }
      case "F64": {
        const a = new Float64Array(n); readInto(a, pos);
        out = want === "float64" ? a : Float32Array.from(a);
        break;
      }
      case "F16": case "BF16": {
        const dst = want === "float32" ? new Float32Array(n) : new Float64Array(n);
        const scratch = new Uint16Array(Math.min(n, CHUNK_ELEMS));
        const table = st === "F16" ? halfToFloatTable() : null;
        const bits = new Uint32Array(1), asFloat = new Float32Array(bits.buffer);
        for (let i0 = 0; i0 < n; i0 += scratch.length) {
          const m = Math.min(scratch.length, n - i0), s = scratch.subarray(0, m);
          readInto(s, pos + 2 * i0);
          if (table) for (let i = 0; i < m; i++) dst[i0 + i] = table[s[i]!]!;
          // bfloat16 is the top half of a float32: shifting the bits up is exact.
          else for (let i = 0; i < m; i++) { bits[0] = s[i]! << 16; dst[i0 + i] = asFloat[0]!; }
        }
        out = dst;
        break;
      }
      case "I32": { const a = new Int32Array(n); readInto(a, pos); out = a; break; }
      case "I64": {
        const dst = new Int32Array(n), scratch = new BigInt64Array(Math.min(n, CHUNK_ELEMS));
        for (let i0 = 0; i0 < n; i0 += scratch.length) {
          const m = Math.min(scratch.length, n - i0), s = scratch.subarray(0, m);
          readInto(s, pos + 8 * i0);
          for (let i = 0; i < m; i++) {
            const v = s[i]!;
            if (v < -2147483648n || v > 2147483647n)
              throw new SafetensorsError("value_out_of_range", this.location, name, `element ${i0 + i} = ${v} does not fit in int32 (I64 data loads as int32)`);
            dst[i0 + i] = Number(v);
          }
        }
        out = dst;
        break;
      }
      case "U8": case "BOOL": {
        const a = new Uint8Array(n); readInto(a, pos);
        out = Int32Array.from(a);
        break;
      }
      default: return st satisfies never;
    }
    const t = new Tensor(out, shape);
    t.name = name;
    return t;
  }
}

function preview(names: string[]): string {
  return names.length <= 8 ? names.join(", ") : `${names.slice(0, 8).join(", ")}, …`;
}

/** Parse and check the JSON header against the data section's size; every error names the tensor. */
function parseHeader(file: string, text: string, dataBytes: number): { metadata: Record<string, string>; entries: Map<string, TensorInfo> } {
  let raw: unknown;
  try { raw = JSON.parse(text); } catch (e) {
    throw new SafetensorsError("bad_json", file, undefined, `header is not valid JSON (${(e as Error).message})`);
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw new SafetensorsError("bad_json", file, undefined, "header JSON must be an object of tensor entries");
  const metadata: Record<string, string> = {};
  const entries = new Map<string, TensorInfo>();
  for (const [name, v] of Object.entries(raw as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (v === null || typeof v !== "object" || Array.isArray(v)) throw new SafetensorsError("bad_header", file, undefined, "__metadata__ must be an object of strings");
      for (const [k, s] of Object.entries(v)) {
        if (typeof s !== "string") throw new SafetensorsError("bad_header", file, undefined, `__metadata__.${k} must be a string, got ${typeof s}`);
        metadata[k] = s;
      }
      continue;
    }
    const bad = (detail: string) => new SafetensorsError("bad_header", file, name, detail);
    if (v === null || typeof v !== "object") throw bad("entry must be an object with dtype, shape and data_offsets");
    const { dtype, shape, data_offsets } = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!isStDType(dtype)) throw new SafetensorsError("unknown_dtype", file, name, `unknown dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(ITEM_BYTES).join(", ")})`);
    const isIndex = (d: unknown): d is number => typeof d === "number" && Number.isSafeInteger(d) && d >= 0;
    if (!Array.isArray(shape) || !shape.every(isIndex)) throw bad(`shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
    if (!Array.isArray(data_offsets) || data_offsets.length !== 2 || !data_offsets.every(isIndex)) throw bad(`data_offsets must be [begin, end] byte offsets, got ${JSON.stringify(data_offsets)}`);
    const [begin, end] = data_offsets as [number, number];
    if (begin > end) throw new SafetensorsError("offsets_out_of_range", file, name, `data_offsets [${begin}, ${end}] end before they begin`);
    if (end > dataBytes)
      throw new SafetensorsError("offsets_out_of_range", file, name, `data_offsets [${begin}, ${end}] run past the data section (${dataBytes} bytes): the file is truncated or the header is wrong`);
    const expected = numel(shape) * ITEM_BYTES[dtype];
    if (end - begin !== expected)
      throw new SafetensorsError("size_mismatch", file, name, `shape ${fmt(shape)} of ${dtype} needs ${expected} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`);
    entries.set(name, { dtype, shape: shape as number[], dataOffsets: [begin, end] });
  }
  // Two tensors may not share bytes (zero-size tensors occupy none).
  const spans = [...entries].filter(([, e]) => e.dataOffsets[1] > e.dataOffsets[0]).sort((a, b) => a[1].dataOffsets[0] - b[1].dataOffsets[0]);
  for (let i = 1; i < spans.length; i++) {
    const [pn, p] = spans[i - 1]!, [cn, c] = spans[i]!;
    if (c.dataOffsets[0] < p.dataOffsets[1])
      throw new SafetensorsError("overlapping", file, cn, `data_offsets [${c.dataOffsets}] overlap tensor "${pn}" at [${p.dataOffsets}]`);
  }
  return { metadata, entries };
}

/** A checkpoint split over several files, described by an index JSON's weight_map. */
export class ShardedSafetensors implements TensorSource {
  readonly location: string;
  private readonly shardOf = new Map<string, SafetensorsFile>();

  /** Open every shard's header and check the index against them (each mapped name must be in its shard). */
  constructor(indexFile: string) {
    this.location = indexFile;
    let raw: unknown;
    try { raw = JSON.parse(fs.readFileSync(indexFile, "utf8")); } catch (e) {
      throw new SafetensorsError("bad_index", indexFile, undefined, `cannot read the index: ${(e as Error).message}`);
    }
    const map = (raw as { weight_map?: unknown } | null)?.weight_map;
    if (map === null || typeof map !== "object" || Array.isArray(map)) throw new SafetensorsError("bad_index", indexFile, undefined, "the index has no weight_map object");
    const dir = path.dirname(indexFile), shards = new Map<string, SafetensorsFile>();
    for (const [name, shard] of Object.entries(map as Record<string, unknown>)) {
      // Shard names are plain file names in the same folder; anything else could read outside it.
      if (typeof shard !== "string" || shard !== path.basename(shard) || shard === ".." || shard === ".")
        throw new SafetensorsError("bad_index", indexFile, name, `weight_map entry must be a file name in the same folder, got ${JSON.stringify(shard)}`);
      let f = shards.get(shard);
      if (!f) shards.set(shard, (f = SafetensorsFile.open(path.join(dir, shard))));
      if (!f.has(name)) throw new SafetensorsError("missing_tensor", indexFile, name, `the index maps it to ${shard}, which does not contain it`);
      this.shardOf.set(name, f);
    }
  }

  names(): string[] { return [...this.shardOf.keys()]; }
  has(name: string): boolean { return this.shardOf.has(name); }
  info(name: string): TensorInfo { return this.shard(name).info(name); }
  load(name: string, opts: LoadOptions = {}): Tensor { return this.shard(name).load(name, opts); }
  private shard(name: string): SafetensorsFile {
    const f = this.shardOf.get(name);
    if (!f) throw new SafetensorsError("missing_tensor", this.location, name, "no such tensor in the weight_map");
    return f;
  }
}

/** Load every tensor of a file into memory (small files; use SafetensorsFile to load lazily). */
export function loadSafetensors(file: string, opts: LoadOptions = {}): Map<string, Tensor> {
  return SafetensorsFile.open(file).loadAll(undefined, opts);
}

// ---- writing ------------------------------------------------------------------------------------

export interface SaveOptions {
  /**
   * Stored dtype per tensor name; the default is F32, F64 or I32 after the engine dtype. Floats can
   * be stored as F64/F32/F16/BF16 (rounded to nearest even); int32 as I64/I32, or U8/BOOL after a range check.
   */
  storeAs?: Readonly<Record<string, SafetensorsDType>>;
}

function defaultStDType(d: DType): SafetensorsDType {
  switch (d) {
    case "float32": return "F32";
    case "float64": return "F64";
    case "int32": return "I32";
    default: return d satisfies never;
  }
}

/**
 * Write tensors (and optional string metadata) as a safetensors file, atomically (see writeFileAtomic):
 * if anything throws, an existing file at `file` is left untouched and no temporary file remains.
 */
export function saveSafetensors(file: string, tensors: ReadonlyMap<string, Tensor>, metadata?: Readonly<Record<string, string>>, opts: SaveOptions = {}): void {
  assertLittleEndianHost(file);
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) {
    for (const [k, v] of Object.entries(metadata)) if (typeof v !== "string") throw new TypeError(`saveSafetensors(${file}): metadata "${k}" must be a string (the format stores string → string)`);
    header.__metadata__ = { ...metadata };
  }
  const plan: { name: string; t: Tensor; st: SafetensorsDType }[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    if (name === "__metadata__") throw new TypeError(`saveSafetensors(${file}): "__metadata__" is reserved and cannot name a tensor`);
    const st = opts.storeAs?.[name] ?? defaultStDType(t.dtype);
    if (!isStDType(st)) throw new SafetensorsError("unknown_dtype", file, name, `cannot store as ${JSON.stringify(st)} (supported: ${Object.keys(ITEM_BYTES).join(", ")})`);
    const intStore = st === "I64" || st === "I32" || st === "U8" || st === "BOOL";
    if (intStore !== (t.dtype === "int32")) throw new SafetensorsError("unsupported", file, name, `cannot store a ${t.dtype} tensor as ${st}`);
    const bytes = t.size * ITEM_BYTES[st];
    header[name] = { dtype: st, shape: t.shape.slice(), data_offsets: [offset, offset + bytes] };
    plan.push({ name, t, st });
    offset += bytes;
  }
  let json = JSON.stringify(header);
  // The spec pads the header with spaces so the data section starts 8-byte aligned.
  const headerBytes0 = new TextEncoder().encode(json).length;
  json += " ".repeat((8 - ((8 + headerBytes0) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);

  writeFileAtomic(file, (fd) => {
    const len = new Uint8Array(8);
    new DataView(len.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
    writeFully(fd, len);
    writeFully(fd, headerBytes);
    for (const p of plan) writeTensor(fd, file, p.name, p.t, p.st);
  });
}

/**
 * Create `file` atomically: `write` fills a new temporary file beside it, which is fsynced and renamed
 * over `file` only when complete. If anything throws, the temporary file is removed and whatever was
 * at `file` is left untouched.
 */
export function writeFileAtomic(file: string, write: (fd: number) => void): void {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}.tmp`);
  const fd = fs.openSync(tmp, "wx");
  let ok = false;
  try {
    write(fd);
    fs.fsyncSync(fd);
    ok = true;
  } finally {
    fs.closeSync(fd);
    if (!ok) fs.rmSync(tmp, { force: true });
  }
  try { fs.renameSync(tmp, file); } catch (e) { fs.rmSync(tmp, { force: true }); throw e; }
}

/** Write one tensor's elements (row-major) in its stored dtype, converting in bounded chunks. */
function writeTensor(fd: number, file: string, name: string, t: Tensor, st: SafetensorsDType): void {
  const src = t.contiguous().toArray();
  const asBytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  if ((st === "F32" && src instanceof Float32Array) || (st === "F64" && src instanceof Float64Array) || (st === "I32" && src instanceof Int32Array)) {
    writeFully(fd, asBytes(src));
    return;
  }
  const n = src.length;
  for (let i0 = 0; i0 < n; i0 += CHUNK_ELEMS) {
    const m = Math.min(CHUNK_ELEMS, n - i0);
    let chunk: ArrayBufferView;
    switch (st) {
      case "F32": chunk = Float32Array.from(src.subarray(i0, i0 + m)); break;
      case "F64": chunk = Float64Array.from(src.subarray(i0, i0 + m)); break;
      case "I32": chunk = Int32Array.from(src.subarray(i0, i0 + m)); break;
      case "F16": case "BF16": {
        const conv = st === "F16" ? floatToHalfBits : floatToBf16Bits, c = new Uint16Array(m);
        for (let i = 0; i < m; i++) c[i] = conv(src[i0 + i]!);
        chunk = c;
        break;
      }
      case "I64": {
        const c = new BigInt64Array(m);
        for (let i = 0; i < m; i++) c[i] = BigInt(src[i0 + i]!);
        chunk = c;
        break;
      }
      case "U8": case "BOOL": {
        const max = st === "U8" ? 255 : 1, c = new Uint8Array(m);
        for (let i = 0; i < m; i++) {
          const v = src[i0 + i]!;
          if (v < 0 || v > max) throw new SafetensorsError("value_out_of_range", file, name, `element ${i0 + i} = ${v} does not fit in ${st} (0..${max})`);
          c[i] = v;
        }
        chunk = c;
        break;
      }
      default: return st satisfies never;
    }
    writeFully(fd, asBytes(chunk));
  }
}
