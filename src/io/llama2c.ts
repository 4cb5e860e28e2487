// llama2.c checkpoints (Karpathy's run.c, "version 0" / legacy export): a header of 7 int32 (dim,
// hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size — negative when the classifier is stored
// separately —, seq_len), then float32 arrays: token embedding, rms_att, wq, wk, wv, wo, rms_ffn, w1,
// w2, w3, rms_final, the unused RoPE tables freq_cis_real/imag [seq_len, head_size/2], and wcls when
// not shared. Matrices are torch nn.Linear weights [out, in], as in Hugging Face's Llama.
//
// run.c's RoPE rotates adjacent pairs (2i, 2i+1) of each head; Hugging Face's (and circuitscope's)
// rotates halves (i, i + head_size/2). export.py permutes wq/wk from the HF layout into llama2.c's;
// here the inverse permutation brings them back, so q·k, and so every logit, is unchanged.
//
// Not handled: the version 1/2 exports (magic "ak42"; float32 or int8-quantized with a 256-byte header).
import fs from "node:fs";
import path from "node:path";
import { configFromHF, type HFConfigJson } from "./hf-config.js";
import { frozenFromHF } from "./hf-weights.js";
import type { LoadOptions, TensorInfo, TensorSource } from "./safetensors.js";
import { Tensor } from "../tensor/tensor.js";
import { Tokenizer } from "./tokenizer.js";
import { llama2cTokenizerJson, readLlama2cTokenizer } from "./llama2c-tokenizer.js";
import type { LoadPretrainedOptions, Pretrained } from "./snapshot.js";

export class Llama2cError extends Error {
  override name = "Llama2cError";
}

export interface Llama2cHeader {
  dim: number;
  hidden_dim: number;
  n_layers: number;
  n_heads: number;
  n_kv_heads: number;
  /** Always positive here; sharedClassifier keeps the sign's meaning. */
  vocab_size: number;
  seq_len: number;
  sharedClassifier: boolean;
}

const HEADER_BYTES = 7 * 4;
/** export.py's version 1/2 files start with this uint32 ("ak42"). */
const MAGIC_V1 = 0x616b3432;
const FIELDS = ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"] as const;

/** Parse and check the 28-byte header; file names the checkpoint in errors. */
export function parseLlama2cHeader(buf: Uint8Array, file: string): Llama2cHeader {
  if (buf.length < HEADER_BYTES) throw new Llama2cError(`${file}: truncated: ${buf.length} bytes, expected at least ${HEADER_BYTES} for the llama2.c header (7 int32)`);
  const view = new DataView(buf.buffer, buf.byteOffset, HEADER_BYTES);
  if (view.getUint32(0, true) === MAGIC_V1) throw new Llama2cError(`${file}: a llama2.c version 1/2 export (magic "ak42"); only the version 0 (legacy) format run.c reads is supported — re-export with export.py --version 0`);
  const v = FIELDS.map((_, i) => view.getInt32(i * 4, true));
  const h: Llama2cHeader = { dim: v[0]!, hidden_dim: v[1]!, n_layers: v[2]!, n_heads: v[3]!, n_kv_heads: v[4]!, vocab_size: Math.abs(v[5]!), seq_len: v[6]!, sharedClassifier: v[5]! > 0 };
  const bad = FIELDS.filter((k) => !(h[k] > 0 && h[k] <= 1 << 24));
  if (bad.length) throw new Llama2cError(`${file}: not a llama2.c checkpoint: header ${bad.map((k) => `${k} = ${v[FIELDS.indexOf(k)]}`).join(", ")} (each must be in 1..2^24; vocab_size may be negative)`);
  if (h.dim % h.n_heads !== 0) throw new Llama2cError(`${file}: header dim ${h.dim} is not a multiple of n_heads ${h.n_heads}`);
  if (h.n_heads % h.n_kv_heads !== 0) throw new Llama2cError(`${file}: header n_heads ${h.n_heads} is not a multiple of n_kv_heads ${h.n_kv_heads}`);
  if ((h.dim / h.n_heads) % 2 !== 0) throw new Llama2cError(`${file}: head size ${h.dim / h.n_heads} (dim / n_heads) is odd; RoPE rotates pairs`);
  return h;
}

/** The float32 arrays after the header, in file order, with their torch shapes. */
function layout(h: Llama2cHeader): { name: string; shape: number[] }[] {
  const hs = h.dim / h.n_heads, L = h.n_layers, D = h.dim, F = h.hidden_dim, kv = h.n_kv_heads * hs;
  const out = [
    { name: "token_embedding_table", shape: [h.vocab_size, D] },
    { name: "rms_att_weight", shape: [L, D] },
    { name: "wq", shape: [L, h.n_heads * hs, D] },
    { name: "wk", shape: [L, kv, D] },
    { name: "wv", shape: [L, kv, D] },
    { name: "wo", shape: [L, D, h.n_heads * hs] },
    { name: "rms_ffn_weight", shape: [L, D] },
    { name: "w1", shape: [L, F, D] },
    { name: "w2", shape: [L, D, F] },
    { name: "w3", shape: [L, F, D] },
    { name: "rms_final_weight", shape: [D] },
    { name: "freq_cis_real", shape: [h.seq_len, hs / 2] },
    { name: "freq_cis_imag", shape: [h.seq_len, hs / 2] },
  ];
  if (!h.sharedClassifier) out.push({ name: "wcls", shape: [h.vocab_size, D] });
  return out;
}

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Bytes a checkpoint with this header has: the header plus every array. */
export function llama2cFileBytes(h: Llama2cHeader): number {
  return HEADER_BYTES + 4 * layout(h).reduce((s, a) => s + numel(a.shape), 0);
}

/** config.json of the Hugging Face Llama equivalent (run.c: RMSNorm eps 1e-5, RoPE base 10000, BOS 1, EOS 2). */
export function llama2cHFConfig(h: Llama2cHeader): HFConfigJson {
  return {
    architectures: ["LlamaForCausalLM"], model_type: "llama",
    hidden_size: h.dim, intermediate_size: h.hidden_dim, num_hidden_layers: h.n_layers, num_attention_heads: h.n_heads,
    num_key_value_heads: h.n_kv_heads, head_dim: h.dim / h.n_heads, vocab_size: h.vocab_size, max_position_embeddings: h.seq_len,
    hidden_act: "silu", rms_norm_eps: 1e-5, rope_theta: 10000, rope_scaling: null, attention_bias: false, mlp_bias: false,
    tie_word_embeddings: h.sharedClassifier, bos_token_id: 1, eos_token_id: 2, torch_dtype: "float32",
  };
}

/** Rows of a [n_heads·hs, D] projection from llama2.c's interleaved pairs to rotate-half: HF row c·hs/2 + i ← row 2i + c, per head. */
function unpermuteRows(w: Float32Array, nHeads: number, hs: number, D: number): Float32Array {
  const out = new Float32Array(w.length), half = hs / 2;
  for (let h = 0; h < nHeads; h++)
    for (let i = 0; i < half; i++)
      for (let c = 0; c < 2; c++) {
        const src = (h * hs + 2 * i + c) * D, dst = (h * hs + c * half + i) * D;
        out.set(w.subarray(src, src + D), dst);
      }
  return out;
}

/** Named float32 tensors held in memory: what loadHFWeights reads. */
class MemorySource implements TensorSource {
  constructor(readonly location: string, private readonly tensors: Map<string, { data: Float32Array; shape: number[] }>) {}
  names(): string[] { return [...this.tensors.keys()]; }
  has(name: string): boolean { return this.tensors.has(name); }
  info(name: string): TensorInfo {
    const t = this.get(name);
    return { dtype: "F32", shape: t.shape, dataOffsets: [0, t.data.byteLength] };
  }
  load(name: string, opts: LoadOptions = {}): Tensor {
    const t = this.get(name);
    const data = opts.dtype === "float64" ? Float64Array.from(t.data) : opts.dtype === undefined || opts.dtype === "float32" ? t.data.slice() : null;
    if (data === null) throw new Llama2cError(`${this.location}: tensor "${name}" is float32 and cannot load as ${opts.dtype}`);
    return new Tensor(data, t.shape);
  }
  private get(name: string) {
    const t = this.tensors.get(name);
    if (!t) throw new Llama2cError(`${this.location}: no tensor "${name}"`);
    return t;
  }
}

/** A checkpoint's header and its weights under Hugging Face Llama names, q/k rows in rotate-half order. */
export function readLlama2c(file: string): { header: Llama2cHeader; weights: TensorSource } {
  let buf: Buffer;
  try { buf = fs.readFileSync(file); } catch (e) {
    throw new Llama2cError(`${file}: cannot read the llama2.c checkpoint (${(e as Error).message})`);
  }
  const h = parseLlama2cHeader(buf, file);
  const want = llama2cFileBytes(h);
  const shapes = `dim ${h.dim}, hidden_dim ${h.hidden_dim}, n_layers ${h.n_layers}, n_heads ${h.n_heads}, n_kv_heads ${h.n_kv_heads}, vocab_size ${h.vocab_size} (${h.sharedClassifier ? "shared" : "separate"} classifier), seq_len ${h.seq_len}`;
  if (buf.length < want) throw new Llama2cError(`${file}: truncated: expected ${want} bytes for the header's shapes (${shapes}), got ${buf.length}`);
  if (buf.length > want) throw new Llama2cError(`${file}: ${buf.length - want} bytes more than the ${want} the header's shapes imply (${shapes}); not a version 0 llama2.c checkpoint with this header`);

  // Copy the floats out once (the header's 28 bytes leave them 4-byte aligned in an aligned copy).
  const floats = new Float32Array(buf.buffer.slice(buf.byteOffset + HEADER_BYTES, buf.byteOffset + want));
  const arrays = new Map<string, { data: Float32Array; shape: number[] }>();
  let o = 0;
  for (const a of layout(h)) { const n = numel(a.shape); arrays.set(a.name, { data: floats.subarray(o, o + n), shape: a.shape }); o += n; }
  for (const [name, a] of arrays) {
    const bad = a.data.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0 && !name.startsWith("freq_cis")) throw new Llama2cError(`${file}: ${name} holds a non-finite value (${a.data[bad]}) at element ${bad}`);
  }

  const hs = h.dim / h.n_heads, D = h.dim;
  const tensors = new Map<string, { data: Float32Array; shape: number[] }>();
  const layer = (name: string, l: number) => {
    const a = arrays.get(name)!, per = numel(a.shape.slice(1));
    return { data: a.data.subarray(l * per, (l + 1) * per), shape: a.shape.slice(1) };
  };
  tensors.set("model.embed_tokens.weight", arrays.get("token_embedding_table")!);
  for (let l = 0; l < h.n_layers; l++) {
    const p = `model.layers.${l}.`;
    const q = layer("wq", l), k = layer("wk", l);
    tensors.set(`${p}input_layernorm.weight`, layer("rms_att_weight", l));
    tensors.set(`${p}self_attn.q_proj.weight`, { data: unpermuteRows(q.data, h.n_heads, hs, D), shape: q.shape });
    tensors.set(`${p}self_attn.k_proj.weight`, { data: unpermuteRows(k.data, h.n_kv_heads, hs, D), shape: k.shape });
    tensors.set(`${p}self_attn.v_proj.weight`, layer("wv", l));
    tensors.set(`${p}self_attn.o_proj.weight`, layer("wo", l));
    tensors.set(`${p}post_attention_layernorm.weight`, layer("rms_ffn_weight", l));
    tensors.set(`${p}mlp.gate_proj.weight`, layer("w1", l));
    tensors.set(`${p}mlp.down_proj.weight`, layer("w2", l));
    tensors.set(`${p}mlp.up_proj.weight`, layer("w3", l));
  }
  tensors.set("model.norm.weight", arrays.get("rms_final_weight")!);
  if (!h.sharedClassifier) tensors.set("lm_head.weight", arrays.get("wcls")!);
  return { header: h, weights: new MemorySource(file, tensors) };
}

export interface LoadLlama2cOptions extends LoadPretrainedOptions {
  /** llama2.c tokenizer file (tok512.bin, tokenizer.bin); without it the result has no tokenizer. */
  tokenizerPath?: string;
}

export interface Llama2cPretrained extends Pretrained {
  header: Llama2cHeader;
  /** tokenizer.json and tokenizer_config.json contents of the tokenizer (null without one), for saving. */
  tokenizerFiles: { tokenizerJson: Record<string, unknown>; tokenizerConfig: Record<string, unknown> } | null;
}

/** A frozen HookedTransformer (architecture "llama") from a llama2.c checkpoint, and its tokenizer as a Hugging Face one. */
export function loadLlama2c(binPath: string, opts: LoadLlama2cOptions = {}): Llama2cPretrained {
  const dtype = opts.dtype ?? "float32";
  if (dtype !== "float32" && dtype !== "float64") throw new Llama2cError(`loadLlama2c: dtype must be "float32" or "float64", got ${JSON.stringify(dtype)}`);
  const { header, weights } = readLlama2c(binPath);
  const hfConfig = llama2cHFConfig(header);
  const config = { ...configFromHF(hfConfig), dtype };
  let tokenizer: Tokenizer | null = null, tokenizerFiles: Llama2cPretrained["tokenizerFiles"] = null;
  if (opts.tokenizerPath !== undefined) {
    tokenizerFiles = llama2cTokenizerJson(readLlama2cTokenizer(opts.tokenizerPath, header.vocab_size), header.seq_len);
    tokenizer = Tokenizer.fromJson(tokenizerFiles.tokenizerJson, tokenizerFiles.tokenizerConfig);
  }
  return { model: frozenFromHF(config, weights), tokenizer, config, hfConfig, header, tokenizerFiles };
}

/**
 * A llama2.c checkpoint named by a path: the .bin file itself, or a folder (without config.json)
 * holding one checkpoint .bin beside a tok*.bin; null when the path is neither (a Hugging Face snapshot folder).
 * The tokenizer is the folder's one tok*.bin (or tokenizer.bin), if any.
 */
export function findLlama2c(p: string): { binPath: string; tokenizerPath?: string } | null {
  if (!fs.existsSync(p)) return null;
  const isTok = (f: string) => /^tok.*\.bin$/.test(f);
  const stat = fs.statSync(p);
  const folder = stat.isDirectory() ? p : path.dirname(p);
  let bins: string[];
  try { bins = fs.readdirSync(folder).filter((f) => f.endsWith(".bin")); } catch { bins = []; }
  // pytorch_model*.bin are pickled torch files of Hugging Face folders, never llama2.c checkpoints.
  const isTorch = (f: string) => f.startsWith("pytorch_model");
  const toks = bins.filter(isTok), models = bins.filter((f) => !isTok(f) && !isTorch(f));
  const tokenizerPath = toks.length === 1 ? path.join(folder, toks[0]!) : undefined;
  if (stat.isFile()) return p.endsWith(".bin") && !isTorch(path.basename(p)) ? { binPath: p, tokenizerPath } : null;
  if (fs.existsSync(path.join(folder, "config.json")) || models.length === 0 || toks.length === 0) return null;
  if (models.length > 1) throw new Llama2cError(`${p}: holds ${models.length} llama2.c checkpoints (${models.join(", ")}); name one .bin file`);
  return { binPath: path.join(folder, models[0]!), tokenizerPath };
}
