// Seeded random numbers: xoshiro128** (Blackman & Vigna 2018) seeded by splitmix32, so every run
// with the same seed draws the same numbers on every platform.
export class Rng {
  // The 128-bit state as four int32s: V8 keeps them unboxed, where uint32 values above 2^31 would
  // become heap doubles (a 10x slowdown). Bit patterns, and so the sequence, are the same.
  private readonly s = new Int32Array(4);
  private spare: number | undefined; // Box–Muller makes normals in pairs

  constructor(seed = 0) {
    let x = seed >>> 0;
    const next = () => {
      // splitmix32 expands one 32-bit seed into the 128-bit state.
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    for (let i = 0; i < 4; i++) this.s[i] = next();
  }

  /** A uniform 32-bit unsigned integer. */
  nextU32(): number {
    const s = this.s;
    const s0 = s[0]!, s1 = s[1]!;
    const m = Math.imul(s1, 5);
    const r = Math.imul((m << 7) | (m >>> 25), 9);
    const t = s1 << 9;
    const s2 = s[2]! ^ s0, s3 = s[3]! ^ s1;
    s[1] = s1 ^ s2;
    s[0] = s0 ^ s3;
    s[2] = s2 ^ t;
    s[3] = (s3 << 11) | (s3 >>> 21);
    return r >>> 0;
  }

  /** The generator's full state (to checkpoint a run and resume it exactly). */
  state(): { s: [number, number, number, number]; spare: number | null } {
    return { s: [this.s[0]!, this.s[1]!, this.s[2]!, this.s[3]!], spare: this.spare ?? null };
  }

  /** Restore a state from state(); the next draws repeat what followed it. */
  setState(st: { s: readonly number[]; spare: number | null }): this {
    if (st.s.length !== 4 || st.s.every((v) => v === 0)) throw new RangeError("Rng.setState: need four 32-bit words, not all zero");
    for (let i = 0; i < 4; i++) this.s[i] = st.s[i]! | 0;
    this.spare = st.spare ?? undefined;
    return this;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextU32() >>> 5, lo = this.nextU32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Standard normal by Box–Muller. */
  normal(): number {
    if (this.spare !== undefined) { const s = this.spare; this.spare = undefined; return s; }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Uniform integer in [lo, hi). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.uniform() * (hi - lo));
  }

  /** Index drawn with probability proportional to weights[i] (non-negative, not all zero). */
  categorical(weights: ArrayLike<number>): number {
    let total = 0;
    for (let i = 0; i < weights.length; i++) total += weights[i]!;
    if (!(total > 0)) throw new RangeError("categorical: weights must be non-negative with a positive sum");
    let u = this.uniform() * total;
    for (let i = 0; i < weights.length; i++) { u -= weights[i]!; if (u < 0) return i; }
    let last = weights.length - 1;
    while (last > 0 && weights[last] === 0) last--;
    return last;
  }

  /** Fisher–Yates shuffle in place. */
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) { const j = this.int(0, i + 1); [xs[i], xs[j]] = [xs[j]!, xs[i]!]; }
    return xs;
  }
}


let globalRng = new Rng(0);
/** The generator used when an op is given no Rng; reset it with manualSeed. */
export const defaultRng = (): Rng => globalRng;
export function manualSeed(seed: number): void { globalRng = new Rng(seed); }
