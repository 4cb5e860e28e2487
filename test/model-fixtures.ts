// Small random models of every architecture HookedTransformer composes, shared by the hook, cache
// and weight-processing tests, plus exact and tolerance comparisons that report the worst element.
import assert from "node:assert/strict";
import * as cs from "../src/index.js";
import { makeConfig, type ModelConfig } from "../src/model/config.js";
import { HookedTransformer } from "../src/model/transformer.js";

type Tensor = cs.Tensor;

export type Arch = "gpt2" | "neox" | "llama" | "attn-only";
export const ARCHS: readonly Arch[] = ["gpt2", "neox", "llama", "attn-only"];

const BASE = { d_model: 16, n_layers: 2, n_heads: 4, d_vocab: 29, n_ctx: 16, d_mlp: 24 } as const;

/**
 * gpt2: LayerNorm, GELU, learned positions. neox: parallel attention+MLP, partial rotary (2 of 4
 * dims). llama: RMSNorm, SwiGLU, grouped-query attention (4 query heads on 2 key/value heads).
 * attn-only: LayerNorm, no MLPs. unembed_bias is on where the LayerNorm's bias must fold into b_U.
 */
export function archConfig(arch: Arch, extra: Partial<ModelConfig> = {}): ModelConfig {
  switch (arch) {
    case "gpt2": return makeConfig({ ...BASE, architecture: "gpt2", unembed_bias: true, ...extra });
    case "neox": return makeConfig({ ...BASE, architecture: "neox", rotary_dim: 2, unembed_bias: true, ...extra });
    case "llama": return makeConfig({ ...BASE, architecture: "llama", n_key_value_heads: 2, ...extra });
    case "attn-only": return makeConfig({ ...BASE, architecture: "attn-only", unembed_bias: true, ...extra });
    default: return arch satisfies never;
  }
}

/**
 * A model with every parameter random, including norm weights (1 + 0.2 N) and biases (0.1 N),
 * which initWeights leaves at 1 and 0, so folding and bias tests have something to move. Matrices
 * are N(0, 0.25²): sharp enough attention patterns to make heads matter.
 */
export function randomModel(arch: Arch, opts: { seed?: number; dtype?: "float32" | "float64"; cfg?: Partial<ModelConfig> } = {}): HookedTransformer {
  const model = new HookedTransformer(archConfig(arch, { dtype: opts.dtype ?? "float32", ...opts.cfg })).initWeights(opts.seed ?? 0);
  const rng = new cs.Rng(1000 + (opts.seed ?? 0));
  cs.noGrad(() => {
    for (const [name, p] of model.namedParameters()) {
      const leaf = name.split(".").pop()!;
      const [mean, std] = leaf === "w" ? [1, 0.2] : leaf.startsWith("b") ? [0, 0.1] : [0, 0.25];
      p.data.set(cs.randn(p.shape, { rng, mean, std, dtype: p.dtype }).data);
      p.version++;
    }
  });
  return model;
}

/** Seeded tokens [batch, pos]. */
export function randomTokens(d_vocab: number, batch = 2, pos = 7, seed = 7): number[][] {
  const rng = new cs.Rng(seed);
  return Array.from({ length: batch }, () => Array.from({ length: pos }, () => rng.int(0, d_vocab)));
}

/** Bitwise equality of two tensors (same shape, every element Object.is-equal). */
export function assertBitwiseEqual(a: Tensor, b: Tensor, msg: string): void {
  assert.deepEqual(a.shape, b.shape, `${msg}: shape`);
  const x = a.toArray(), y = b.toArray();
  for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) assert.fail(`${msg}: element ${i} differs: ${x[i]} vs ${y[i]}`);
}

/** Largest |a - b| over the elements. */
export function maxAbsDiff(a: Tensor, b: Tensor): number {
  const x = a.toArray(), y = b.toArray();
  assert.equal(x.length, y.length, "maxAbsDiff: sizes differ");
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
  return m;
}

/** |a - b| <= tol everywhere (shapes equal), reporting the largest difference on failure. */
export function assertClose(a: Tensor, b: Tensor, tol: number, msg: string): void {
  assert.deepEqual(a.shape, b.shape, `${msg}: shape`);
  const d = maxAbsDiff(a, b);
  assert.ok(d <= tol, `${msg}: max |diff| ${d.toExponential(3)} > ${tol}`);
}
