// Rotary position embeddings (Su et al. 2021). Two pairings of a head's first rotary_dim dims:
// "rotate half" (Hugging Face's GPT-NeoX, Llama and their descendants, modeling_llama.py): pair i is
// (x_i, x_{i + rotary_dim/2}); "adjacent pairs" (GPT-J's rotate_every_two, modeling_gptj.py): pair i
// is (x_{2i}, x_{2i+1}). Each pair rotates as (a cos - b sin, b cos + a sin) by position · inv_freq_i,
// inv_freq_i = base^(-2i/rotary_dim), optionally rescaled as modeling_rope_utils.py does for
// rope_scaling "llama3" (per-frequency factors) and "dynamic" (NTK: a larger base once the sequence
// outgrows the original context; computed from this call's longest position, as an uncached HF forward).
import { concat, slice } from "../tensor/ops/movement.js";
import { Tensor } from "../tensor/tensor.js";
import type { RopeScaling } from "./config.js";

export interface RotaryOptions {
  adjacentPairs?: boolean;
  ropeScaling?: RopeScaling | null;
}

export class RotaryTables {
  private cos: Float32Array = new Float32Array(0);
  private sin: Float32Array = new Float32Array(0);
  private len = 0;
  /** The base the float32 tables were computed with (dynamic scaling changes it). */
  private tableBase = NaN;
  readonly adjacentPairs: boolean;
  readonly ropeScaling: RopeScaling | null;

  constructor(readonly rotaryDim: number, readonly base: number, readonly scaling: number, opts: RotaryOptions = {}) {
    this.adjacentPairs = opts.adjacentPairs ?? false;
    this.ropeScaling = opts.ropeScaling ?? null;
  }

  /** The RoPE base for a call whose longest position is seqLen - 1 (dynamic NTK grows it past the original context). */
  private baseFor(seqLen: number): number {
    const rs = this.ropeScaling;
    if (rs?.type !== "dynamic" || seqLen <= rs.original_max_position_embeddings) return this.base;
    const d = this.rotaryDim;
    // _compute_dynamic_ntk_parameters: base · ((factor · seq_len / max_pos) − (factor − 1))^(dim / (dim − 2))
    return this.base * ((rs.factor * seqLen) / rs.original_max_position_embeddings - (rs.factor - 1)) ** (d / (d - 2));
  }

  /** inv_freq per pair in float64 (HF computes it in float32; the float32 tables round it once). */
  private invFreq(base: number): Float64Array {
    const half = this.rotaryDim / 2, out = new Float64Array(half);
    for (let i = 0; i < half; i++) out[i] = 1 / Math.pow(base, (2 * i) / this.rotaryDim);
    const rs = this.ropeScaling;
    if (rs?.type === "llama3") {
      // _compute_llama3_parameters: long wavelengths slowed by factor, short ones kept, a smooth blend between.
      const lowWavelen = rs.original_max_position_embeddings / rs.low_freq_factor, highWavelen = rs.original_max_position_embeddings / rs.high_freq_factor;
      for (let i = 0; i < half; i++) {
        const f = out[i]!, wavelen = (2 * Math.PI) / f;
        if (wavelen > lowWavelen) out[i] = f / rs.factor;
        else if (wavelen >= highWavelen) {
          const smooth = (rs.original_max_position_embeddings / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
          out[i] = ((1 - smooth) * f) / rs.factor + smooth * f;
        }
      }
    }
    return out;
  }

  /** cos/sin tables [positions, rotary_dim/2] for positions [0, n), grown on demand. */
  private ensure(n: number, base: number): void {
    if (base !== this.tableBase) { this.len = 0; this.cos = new Float32Array(0); this.sin = new Float32Array(0); this.tableBase = base; }
    if (n <= this.len) return;
    // Generation asks for one more position per step: double the table and compute only the new rows.
    n = Math.max(n, 2 * this.len);
    const half = this.rotaryDim / 2, inv = this.invFreq(base);
    const cos = new Float32Array(n * half), sin = new Float32Array(n * half);
    cos.set(this.cos); sin.set(this.sin);
    for (let p = this.len; p < n; p++) {
      for (let i = 0; i < half; i++) {
        // Computed in float64 then rounded, like HF's float32 inv_freq * position.
        const angle = Math.fround((p / this.scaling) * Math.fround(inv[i]!));
        cos[p * half + i] = Math.cos(angle);
        sin[p * half + i] = Math.sin(angle);
      }
    }
    this.cos = cos; this.sin = sin; this.len = n;
  }

  /** Exact float64 tables for float64 models (reference checks), computed directly. */
  private tables64(positions: Int32Array, B: number, T: number, base: number): { cosT: Tensor; sinT: Tensor } {
    const half = this.rotaryDim / 2, inv = this.invFreq(base);
    const c = new Float64Array(B * T * half), s = new Float64Array(B * T * half);
    for (let r = 0; r < B * T; r++) {
      for (let i = 0; i < half; i++) {
        const angle = (positions[r]! / this.scaling) * inv[i]!;
        c[r * half + i] = Math.cos(angle);
        s[r * half + i] = Math.sin(angle);
      }
    }
    return { cosT: new Tensor(c, [B, T, 1, half]), sinT: new Tensor(s, [B, T, 1, half]) };
  }

  /**
   * Rotate x [batch, pos, head_index, d_head] whose positions are given per row (positions
   * [batch, pos], e.g. offset by a KV cache or by left padding).
   */
  apply(x: Tensor, positions: Int32Array): Tensor {
    const [B, T, H, dh] = x.shape as [number, number, number, number];
    const half = this.rotaryDim / 2;
    let maxPos = 0;
    for (const p of positions) maxPos = Math.max(maxPos, p);
    const base = this.baseFor(maxPos + 1);
    let cosT: Tensor, sinT: Tensor;
    if (x.dtype === "float64") ({ cosT, sinT } = this.tables64(positions, B, T, base));
    else {
      this.ensure(maxPos + 1, base);
      const c = new Float32Array(B * T * half), s = new Float32Array(B * T * half);
      for (let i = 0; i < B * T; i++) {
        const p = positions[i]!;
        c.set(this.cos.subarray(p * half, p * half + half), i * half);
        s.set(this.sin.subarray(p * half, p * half + half), i * half);
      }
      // Tables broadcast over heads: [batch, pos, 1, rotary_dim/2].
      cosT = new Tensor(c, [B, T, 1, half]); sinT = new Tensor(s, [B, T, 1, half]);
    }
    const pass = this.rotaryDim < dh ? [slice(x, -1, this.rotaryDim)] : [];
    if (this.adjacentPairs) {
      // [batch, pos, head_index, rotary_dim/2, 2]: the last axis holds (x_2i, x_2i+1).
      const pairs = slice(x, -1, 0, this.rotaryDim).contiguous().reshape([B, T, H, half, 2]);
      const a = slice(pairs, -1, 0, 1), b = slice(pairs, -1, 1, 2);
      const c5 = cosT.reshape([B, T, 1, half, 1]), s5 = sinT.reshape([B, T, 1, half, 1]);
      const rot = concat([a.mul(c5).sub(b.mul(s5)), b.mul(c5).add(a.mul(s5))], -1).reshape([B, T, H, this.rotaryDim]);
      return pass.length ? concat([rot, ...pass], -1) : rot;
    }
    const x1 = slice(x, -1, 0, half), x2 = slice(x, -1, half, this.rotaryDim);
    const r1 = x1.mul(cosT).sub(x2.mul(sinT));
    const r2 = x2.mul(cosT).add(x1.mul(sinT));
    return concat([r1, r2, ...pass], -1);
  }
}
