// Rotary position embeddings (Su et al. 2021) in the "rotate half" convention of Hugging Face's
// GPT-NeoX and Llama code (modeling_gpt_neox.py / modeling_llama.py, transformers v4.40): the first
// rotary_dim dims of each head are split in halves (x1, x2) and rotated as
// (x1 cos - x2 sin, x2 cos + x1 sin), with frequency base^(-2i/rotary_dim) for pair i.
import { concat, slice } from "../tensor/ops/movement.js";
import { Tensor } from "../tensor/tensor.js";

export class RotaryTables {
  private cos: Float32Array = new Float32Array(0);
  private sin: Float32Array = new Float32Array(0);
  private len = 0;

  constructor(readonly rotaryDim: number, readonly base: number, readonly scaling: number) {}

  /** cos/sin tables [positions, rotary_dim/2] for positions [0, n), grown on demand. */
  private ensure(n: number): void {
    if (n <= this.len) return;
    // Generation asks for one more position per step: double the table and compute only the new rows.
    n = Math.max(n, 2 * this.len);
    const half = this.rotaryDim / 2;
    const cos = new Float32Array(n * half), sin = new Float32Array(n * half);
    cos.set(this.cos); sin.set(this.sin);
    for (let p = this.len; p < n; p++) {
      for (let i = 0; i < half; i++) {
        // Computed in float64 then rounded, like HF's float32 inv_freq * position.
        const invFreq = 1 / Math.pow(this.base, (2 * i) / this.rotaryDim);
        const angle = Math.fround((p / this.scaling) * Math.fround(invFreq));
        cos[p * half + i] = Math.cos(angle);
        sin[p * half + i] = Math.sin(angle);
      }
    }
    this.cos = cos; this.sin = sin; this.len = n;
  }

  /** Exact float64 tables for float64 models (reference checks), computed directly. */
  private tables64(positions: Int32Array, B: number, T: number): { cosT: Tensor; sinT: Tensor } {
    const half = this.rotaryDim / 2;
    const c = new Float64Array(B * T * half), s = new Float64Array(B * T * half);
    for (let r = 0; r < B * T; r++) {
      for (let i = 0; i < half; i++) {
        const angle = (positions[r]! / this.scaling) / Math.pow(this.base, (2 * i) / this.rotaryDim);
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
    const [B, T] = x.shape as [number, number, number, number];
    const half = this.rotaryDim / 2;
    let maxPos = 0;
    for (const p of positions) maxPos = Math.max(maxPos, p);
    this.ensure(maxPos + 1);
    const c = new Float32Array(B * T * half), s = new Float32Array(B * T * half);
    for (let i = 0; i < B * T; i++) {
      const p = positions[i]!;
      c.set(this.cos.subarray(p * half, p * half + half), i * half);
      s.set(this.sin.subarray(p * half, p * half + half), i * half);
    }
    // Tables broadcast over heads: [batch, pos, 1, rotary_dim/2].
    let cosT = new Tensor(c, [B, T, 1, half]), sinT = new Tensor(s, [B, T, 1, half]);
    if (x.dtype === "float64") ({ cosT, sinT } = this.tables64(positions, B, T));
    const x1 = slice(x, -1, 0, half), x2 = slice(x, -1, half, this.rotaryDim);
    const r1 = x1.mul(cosT).sub(x2.mul(sinT));
    const r2 = x2.mul(cosT).add(x1.mul(sinT));
    const parts = [r1, r2];
    if (this.rotaryDim < x.shape[3]!) parts.push(slice(x, -1, this.rotaryDim));
    return concat(parts, -1);
  }
}
