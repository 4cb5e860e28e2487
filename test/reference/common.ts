// Float64 building blocks for the reference implementations in this folder: plain loops over
// Hugging Face tensors, written from the equations in transformers' modeling files (v4.40). They
// share nothing with src/model or the tensor engine's ops, so a mistake there cannot hide here.
// Activations are [pos, features] row-major Float64Arrays for one sequence.

/** A Hugging Face tensor in float64: its HF shape and row-major data. */
export interface W { shape: number[]; data: Float64Array }
export type Weights = ReadonlyMap<string, W>;
export type HFConfig = Record<string, unknown>;

export function get(w: Weights, name: string): W {
  const t = w.get(name);
  if (!t) throw new Error(`reference: missing weight "${name}"`);
  return t;
}

/** y = x @ M + b with M stored [in, out] (GPT-2's Conv1D). */
export function conv1d(x: Float64Array, T: number, M: W, b?: W): Float64Array {
  const [I, O] = M.shape as [number, number];
  const y = new Float64Array(T * O);
  for (let t = 0; t < T; t++) for (let o = 0; o < O; o++) {
    let s = b ? b.data[o]! : 0;
    for (let i = 0; i < I; i++) s += x[t * I + i]! * M.data[i * O + o]!;
    y[t * O + o] = s;
  }
  return y;
}

/** y = x @ M^T + b with M stored [out, in] (torch.nn.Linear). */
export function linear(x: Float64Array, T: number, M: W, b?: W): Float64Array {
  const [O, I] = M.shape as [number, number];
  const y = new Float64Array(T * O);
  for (let t = 0; t < T; t++) for (let o = 0; o < O; o++) {
    let s = b ? b.data[o]! : 0;
    for (let i = 0; i < I; i++) s += x[t * I + i]! * M.data[o * I + i]!;
    y[t * O + o] = s;
  }
  return y;
}

/** torch.nn.LayerNorm: (x - mean) / sqrt(var + eps) * w + b, biased variance. */
export function layerNorm(x: Float64Array, T: number, w: W, b: W, eps: number): Float64Array {
  const D = w.shape[0]!, y = new Float64Array(T * D);
  for (let t = 0; t < T; t++) {
    let m = 0;
    for (let d = 0; d < D; d++) m += x[t * D + d]!;
    m /= D;
    let v = 0;
    for (let d = 0; d < D; d++) v += (x[t * D + d]! - m) ** 2;
    v /= D;
    for (let d = 0; d < D; d++) y[t * D + d] = ((x[t * D + d]! - m) / Math.sqrt(v + eps)) * w.data[d]! + b.data[d]!;
  }
  return y;
}

/** LlamaRMSNorm: w * x / sqrt(mean(x^2) + eps). */
export function rmsNorm(x: Float64Array, T: number, w: W, eps: number): Float64Array {
  const D = w.shape[0]!, y = new Float64Array(T * D);
  for (let t = 0; t < T; t++) {
    let ms = 0;
    for (let d = 0; d < D; d++) ms += x[t * D + d]! ** 2;
    ms /= D;
    for (let d = 0; d < D; d++) y[t * D + d] = w.data[d]! * (x[t * D + d]! / Math.sqrt(ms + eps));
  }
  return y;
}

/** erf to ~1e-14: Maclaurin series for |x| < 3, Laplace's continued fraction for erfc beyond. */
export function erf(x: number): number {
  const a = Math.abs(x);
  if (a < 3) {
    let term = a, sum = a;
    for (let n = 1; n < 200; n++) {
      term *= (-a * a) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(a) = exp(-a²)/√π · 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + …))))
  let k = a;
  for (let n = 80; n >= 1; n--) k = a + n / 2 / k;
  return Math.sign(x) * (1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / k);
}

/** transformers.activations (ACT2FN) for the names the three families use. */
export function activation(name: string): (x: number) => number {
  switch (name) {
    case "gelu_new": case "gelu_pytorch_tanh": return (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
    case "gelu": return (x) => 0.5 * x * (1 + erf(x / Math.SQRT2));
    case "relu": return (x) => Math.max(0, x);
    case "silu": case "swish": return (x) => x / (1 + Math.exp(-x));
    default: throw new Error(`reference: activation "${name}" not implemented`);
  }
}

/**
 * Rotary embedding as HF's apply_rotary_pos_emb on the first `rotaryDim` dims of each head, in place:
 * inv_freq_i = 1 / base^(2i / rotaryDim), freqs = (pos / scaling) ⊗ inv_freq, emb = cat(freqs, freqs),
 * x_rot = x * cos(emb) + rotate_half(x) * sin(emb), rotate_half(x) = cat(-x2, x1). x is [pos, heads, d_head].
 */
export function rotary(x: Float64Array, T: number, heads: number, dh: number, rotaryDim: number, base: number, scaling: number): void {
  const half = rotaryDim / 2;
  const rot = new Float64Array(rotaryDim);
  for (let t = 0; t < T; t++) for (let h = 0; h < heads; h++) {
    const o = (t * heads + h) * dh;
    for (let j = 0; j < rotaryDim; j++) {
      const freq = (t / scaling) * (1 / base ** ((2 * (j % half)) / rotaryDim));
      const rh = j < half ? -x[o + j + half]! : x[o + j - half]!;
      rot[j] = x[o + j]! * Math.cos(freq) + rh * Math.sin(freq);
    }
    for (let j = 0; j < rotaryDim; j++) x[o + j] = rot[j]!;
  }
}

/**
 * Causal softmax attention. q [pos, n_heads, d_head], k and v [pos, n_kv_heads, d_head]; query head h
 * reads key/value head floor(h / (n_heads / n_kv_heads)) (HF repeat_kv). Returns z [pos, n_heads * d_head].
 */
export function causalAttention(q: Float64Array, k: Float64Array, v: Float64Array, T: number, H: number, Hkv: number, dh: number, scale: number): Float64Array {
  const z = new Float64Array(T * H * dh), rep = H / Hkv, s = new Float64Array(T);
  for (let h = 0; h < H; h++) {
    const kh = Math.floor(h / rep);
    for (let i = 0; i < T; i++) {
      let mx = -Infinity;
      for (let j = 0; j <= i; j++) {
        let d = 0;
        for (let e = 0; e < dh; e++) d += q[(i * H + h) * dh + e]! * k[(j * Hkv + kh) * dh + e]!;
        s[j] = d * scale;
        mx = Math.max(mx, s[j]!);
      }
      let tot = 0;
      for (let j = 0; j <= i; j++) { s[j] = Math.exp(s[j]! - mx); tot += s[j]!; }
      for (let j = 0; j <= i; j++) {
        const p = s[j]! / tot;
        for (let e = 0; e < dh; e++) z[(i * H + h) * dh + e]! += p * v[(j * Hkv + kh) * dh + e]!;
      }
    }
  }
  return z;
}

export const addInto = (a: Float64Array, b: Float64Array): Float64Array => { for (let i = 0; i < a.length; i++) a[i]! += b[i]!; return a; };

/** Rows of an embedding matrix [n, d] for the given ids: [pos, d]. */
export function embedRows(E: W, ids: readonly number[]): Float64Array {
  const D = E.shape[1]!, out = new Float64Array(ids.length * D);
  ids.forEach((id, t) => out.set(E.data.subarray(id * D, id * D + D), t * D));
  return out;
}

/** Read a number field of config.json, with HF's default when absent. */
export function cfgNum(c: HFConfig, key: string, dflt?: number): number {
  const v = c[key];
  if (typeof v === "number") return v;
  if (dflt === undefined) throw new Error(`reference: config.json lacks "${key}"`);
  return dflt;
}
export const cfgBool = (c: HFConfig, key: string, dflt: boolean): boolean => (typeof c[key] === "boolean" ? (c[key] as boolean) : dflt);
export const cfgStr = (c: HFConfig, key: string, dflt: string): string => (typeof c[key] === "string" ? (c[key] as string) : dflt);

/** Linear RoPE factor from rope_scaling (only "linear" is implemented here). */
export function linearRopeFactor(c: HFConfig): number {
  const rs = c.rope_scaling as { type?: string; rope_type?: string; factor?: number } | null | undefined;
  if (!rs) return 1;
  const type = rs.rope_type ?? rs.type;
  if (type !== "linear") throw new Error(`reference: rope_scaling ${type} not implemented`);
  return rs.factor!;
}
