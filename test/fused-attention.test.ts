// The fused causal attention op (causalAttention) against the unfused composition it replaces
// (q kᵀ + mask → causalSoftmax → @ v, GQA by expanding k and v), forward and backward, on awkward
// shapes: odd T, T = 1, batch > 1, grouped-query heads, padding masks, a KV cache (query_pos <
// key_pos) and strided k/v views; float64 finite differences of its backward; the native kernel
// against the reference; and whole GPT-2- and Llama-style models with and without the fused path.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as cs from "../src/index.js";
import { tsKernels } from "../src/backend/ts.js";
import { loadNativeBackend, setNativeAvx2 } from "../src/backend/native.js";
import type { AttentionDims, Strided } from "../src/backend/kernels.js";
import { gradcheck, project, seeded } from "./helpers.js";
import { fastAttention } from "../src/tensor/ops/attention.js";
import { randomModel, randomTokens } from "./model-fixtures.js";

type Tensor = cs.Tensor;
const Tensor = cs.Tensor;

/** The unfused path of Attention.attend: per-head scores, additive mask, causal scaled softmax, weighted sum. */
function unfused(q: Tensor, k: Tensor, v: Tensor, scale: number, mask: Tensor | null): Tensor {
  const [B, , H, dh] = q.shape as [number, number, number, number];
  const [, Tk, Hkv] = k.shape as [number, number, number, number];
  const g = H / Hkv;
  const rep = (t: Tensor) => t.reshape([B, Tk, Hkv, 1, dh]).expand([B, Tk, Hkv, g, dh]).reshape([B, Tk, H, dh]);
  let scores = q.permute(0, 2, 1, 3).matmul(rep(k).permute(0, 2, 3, 1));
  if (mask) scores = scores.add(mask);
  return cs.causalSoftmax(scores, scale).matmul(rep(v).permute(0, 2, 1, 3)).permute(0, 2, 1, 3);
}

/** Largest |a - b| relative to the largest |b| (or to `scale` when larger: a gradient that is 0 in exact arithmetic). */
function relDiff(a: Tensor, b: Tensor, scale = 0): number {
  assert.deepEqual(a.shape, b.shape);
  const x = a.contiguous().toArray(), y = b.contiguous().toArray();
  let d = 0, m = scale;
  for (let i = 0; i < x.length; i++) { d = Math.max(d, Math.abs(x[i]! - y[i]!)); m = Math.max(m, Math.abs(y[i]!)); }
  return d / Math.max(m, 1e-30);
}
const absMax = (t: Tensor): number => Array.from(t.toArray() as ArrayLike<number>).reduce((m, x) => Math.max(m, Math.abs(x)), 0);

/** Largest |a - b|. */
function maxAbs(a: Tensor, b: Tensor): number {
  const x = a.toArray(), y = b.toArray();
  let d = 0;
  for (let i = 0; i < x.length; i++) d = Math.max(d, Math.abs(x[i]! - y[i]!));
  return d;
}

/** [B, Tk] padding (0 / 1) → the model's additive key mask [B, 1, 1, Tk] (-1e9 on padding). */
function keyMask(pad: number[][]): Tensor {
  const B = pad.length, Tk = pad[0]!.length, d = new Float32Array(B * Tk);
  pad.forEach((r, b) => r.forEach((real, j) => { if (!real) d[b * Tk + j] = -1e9; }));
  return new Tensor(d, [B, 1, 1, Tk]);
}
interface Case { name: string; B: number; Tq: number; Tk: number; H: number; Hkv: number; dh: number; pad?: number[][]; strided?: boolean }
const CASES: Case[] = [
  { name: "T = 1", B: 1, Tq: 1, Tk: 1, H: 2, Hkv: 2, dh: 8 },
  { name: "odd T, batch 2", B: 2, Tq: 7, Tk: 7, H: 3, Hkv: 3, dh: 5 },
  { name: "GQA 4 on 2, odd d_head", B: 2, Tq: 9, Tk: 9, H: 4, Hkv: 2, dh: 7 },
  { name: "GQA 6 on 1, long T", B: 1, Tq: 37, Tk: 37, H: 6, Hkv: 1, dh: 16 },
  { name: "left and right padding", B: 2, Tq: 6, Tk: 6, H: 2, Hkv: 1, dh: 8, pad: [[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]] },
  { name: "KV cache: 3 queries on 8 keys", B: 2, Tq: 3, Tk: 8, H: 4, Hkv: 2, dh: 6 },
  { name: "KV cache: 1 query, strided k/v", B: 2, Tq: 1, Tk: 11, H: 2, Hkv: 2, dh: 9, strided: true },
  { name: "d_head 64, T 70", B: 1, Tq: 70, Tk: 70, H: 2, Hkv: 2, dh: 64 },
];

/** Seeded q, k, v of a case; strided: k and v are views into a buffer with spare positions (as the KV cache keeps them). */
function inputs(c: Case, dtype: "float32" | "float64", seed: number): { q: Tensor; k: Tensor; v: Tensor; mask: Tensor | null } {
  const rng = seeded(seed);
  const q = cs.randn([c.B, c.Tq, c.H, c.dh], { rng, dtype });
  const kv = () => c.strided
    ? cs.randn([c.B, c.Tk + 5, c.Hkv, c.dh], { rng, dtype }).slice(1, 2, c.Tk + 2)
    : cs.randn([c.B, c.Tk, c.Hkv, c.dh], { rng, dtype });
  const k = kv(), v = kv();
  if (c.strided) assert.equal(k.isContiguous, false, "strided case must give non-contiguous k");
  return { q, k, v, mask: c.pad ? keyMask(c.pad).cast(dtype) : null };
}

/** Forward and gradients (of a fixed projection of the output) of f, under the active backend. */
function run(f: (q: Tensor, k: Tensor, v: Tensor) => Tensor, q: Tensor, k: Tensor, v: Tensor): { out: Tensor; grads: Tensor[] } {
  const [q1, k1, v1] = [q, k, v].map((t) => t.detach().requireGrad()) as [Tensor, Tensor, Tensor];
  const out = f(q1, k1, v1);
  const grads = cs.grad(project(out.cast("float64")), [q1, k1, v1]);
  return { out, grads };
}

/** Rows whose query sees at least one real key: padding-only rows are garbage in both paths (and never read). */
function maskPadRows(t: Tensor, c: Case): Tensor {
  if (!c.pad) return t;
  const keep = new Float64Array(c.B * c.Tq);
  for (let b = 0; b < c.B; b++) for (let i = 0; i < c.Tq; i++) {
    const lim = i + c.Tk - c.Tq + 1;
    keep[b * c.Tq + i] = c.pad[b]!.slice(0, lim).some((x) => x === 1) ? 1 : 0;
  }
  return t.cast("float64").mul(new Tensor(keep, [c.B, c.Tq, 1, 1]));
}

for (const dtype of ["float64", "float32"] as const) {
  for (const c of CASES) {
    test(`fused attention (${dtype}) equals the unfused path, forward and backward: ${c.name}`, () => {
      const { q, k, v, mask } = inputs(c, dtype, 11);
      const scale = 1 / Math.sqrt(c.dh);
      const fused = run((a, b, d) => cs.causalAttention(a, b, d, { scale, keyMask: mask }), q, k, v);
      const ref = run((a, b, d) => unfused(a, b, d, scale, mask), q, k, v);
      const tol = dtype === "float64" ? 1e-12 : 2e-5;
      const fwd = relDiff(maskPadRows(fused.out, c), maskPadRows(ref.out, c));
      assert.ok(fwd <= tol, `forward: relative difference ${fwd.toExponential(3)} > ${tol}`);
      if (c.pad) return; // padding-only query rows differ between the paths (see maskPadRows); their gradients flow into real keys' v
      // With one visible key dq and dk are 0 in exact arithmetic: compare against the largest gradient of the three.
      const gscale = Math.max(...ref.grads.map(absMax));
      ["q", "k", "v"].forEach((name, i) => {
        const d = relDiff(fused.grads[i]!, ref.grads[i]!, gscale);
        assert.ok(d <= tol * 5, `d${name}: relative difference ${d.toExponential(3)} > ${tol * 5}`);
      });
    });
  }
}

test("fused attention with padding: gradients equal the unfused path when padding-only rows are not read", () => {
  // The loss reads only rows that see a real key, as a model's padded loss does.
  const c = CASES.find((x) => x.pad)!;
  const { q, k, v, mask } = inputs(c, "float64", 5);
  const scale = 0.3;
  const grads = (f: (a: Tensor, b: Tensor, d: Tensor) => Tensor) => {
    const [q1, k1, v1] = [q, k, v].map((t) => t.detach().requireGrad()) as [Tensor, Tensor, Tensor];
    return cs.grad(project(maskPadRows(f(q1, k1, v1), c)), [q1, k1, v1]);
  };
  const a = grads((x, y, z) => cs.causalAttention(x, y, z, { scale, keyMask: mask }));
  const b = grads((x, y, z) => unfused(x, y, z, scale, mask));
  for (let i = 0; i < 3; i++) {
    const d = relDiff(a[i]!, b[i]!);
    assert.ok(d <= 1e-10, `grad ${i}: relative difference ${d.toExponential(3)}`);
  }
});

test("fused attention backward matches float64 finite differences (GQA, KV cache offset, padding)", () => {
  for (const c of [CASES[2]!, CASES[5]!, { ...CASES[4]!, pad: [[0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0]] }]) {
    const { q, k, v, mask } = inputs({ ...c, dh: 3, Tq: Math.min(c.Tq, 4), Tk: Math.min(c.Tk, 6) }, "float64", 3);
    const scale = 0.7;
    const r = gradcheck((a, b, d) => project(cs.causalAttention(a, b, d, { scale, keyMask: mask })), [q, k, v], { rtol: 1e-6, msg: c.name });
    assert.ok(r.maxRelErr < 1e-6);
  }
});

test("the native attention kernels agree with the reference on float32 (forward, lse and backward)", (t) => {
  const nb = loadNativeBackend();
  if (!nb?.kernels.attention || !nb.kernels.attentionBackward) { t.skip("native backend or its attention kernels unavailable"); return; }
  const nk = nb.kernels;
  const hasAvx2 = setNativeAvx2(true);
  // The AVX2/FMA 4x16 tile and the portable C one.
  try {
  for (const avx2 of hasAvx2 ? [true, false] : [false]) for (const c of CASES) {
    setNativeAvx2(avx2);
    const { q, k, v, mask } = inputs(c, "float32", 21);
    const d: AttentionDims = { batch: c.B, heads: c.H, kvHeads: c.Hkv, Tq: c.Tq, Tk: c.Tk, dh: c.dh, scale: 1 / Math.sqrt(c.dh) };
    const s = (x: Tensor) => ({ data: x.data, offset: x.offset, strides: x.strides }) as Strided<Float32Array>;
    // A general additive bias in [-3, 0) here: with -1e9 padding, padding-only rows lose q·k to float32 rounding (compared above).
    const m = mask ? (cs.rand([c.B * c.Tk], { rng: seeded(8), low: -3, high: 0 }).data as Float32Array) : null;
    const nq = c.B * c.Tq * c.H * c.dh, nkv = c.B * c.Tk * c.Hkv * c.dh, nl = c.B * c.H * c.Tq;
    const outs = [nk, tsKernels].map((K) => {
      const out = new Float32Array(nq), lse = new Float32Array(nl);
      K.attention!(d, s(q), s(k), s(v), m, out, lse);
      return { out, lse };
    });
    const gOut = cs.randn([nq], { rng: seeded(4) }).data as Float32Array;
    const grads = [nk, tsKernels].map((K) => {
      // Both backward passes start from the reference forward, so only the backward is compared.
      const gq = new Float32Array(nq).fill(NaN), gk = new Float32Array(nkv).fill(NaN), gv = new Float32Array(nkv).fill(NaN);
      K.attentionBackward!(d, s(q), s(k), s(v), m, outs[1]!.out, outs[1]!.lse, gOut, gq, gk, gv);
      return [gq, gk, gv];
    });
    // As above, relative to the largest reference gradient of the three (dq is 0 in exact arithmetic when T = 1).
    const gscale = Math.max(...grads[1]!.map((g) => g.reduce((m, x) => Math.max(m, Math.abs(x)), 0)));
    const rel = (a: Float32Array, b: Float32Array, floor = 0) => {
      let dd = 0, mm = floor;
      for (let i = 0; i < a.length; i++) { dd = Math.max(dd, Math.abs(a[i]! - b[i]!)); mm = Math.max(mm, Math.abs(b[i]!)); }
      return Number.isNaN(dd) ? Infinity : dd / Math.max(mm, 1e-30);
    };
    assert.ok(rel(outs[0]!.out, outs[1]!.out) < 1e-5, `${c.name}: out differs by ${rel(outs[0]!.out, outs[1]!.out)}`);
    assert.ok(rel(outs[0]!.lse, outs[1]!.lse) < 1e-5, `${c.name}: lse differs by ${rel(outs[0]!.lse, outs[1]!.lse)}`);
    ["gq", "gk", "gv"].forEach((name, i) => {
      const r = rel(grads[0]![i]!, grads[1]![i]!, gscale);
      assert.ok(r < 1e-4, `${c.name} (avx2 ${avx2}): ${name} differs by ${r}`);
    });
  }
  } finally { setNativeAvx2(hasAvx2); }
});

test("attention kernels reject bad geometry and short buffers by name", () => {
  const d: AttentionDims = { batch: 1, heads: 3, kvHeads: 2, Tq: 2, Tk: 2, dh: 4, scale: 1 };
  const x = { data: new Float32Array(64), offset: 0, strides: [24, 12, 4, 1] };
  const kernels = [tsKernels, loadNativeBackend()?.kernels].filter((k) => k?.attention);
  for (const K of kernels) {
    assert.throws(() => K!.attention!(d, x, x, x, null, new Float32Array(24), new Float32Array(6)), /attention: heads = 3 is not a multiple of kvHeads = 2/);
    const ok = { ...d, kvHeads: 3 };
    assert.throws(() => K!.attention!(ok, x, x, x, null, new Float32Array(23), new Float32Array(6)), /attention: batch\*Tq\*heads\*dh = 24 exceeds the length 23 of out/);
    assert.throws(() => K!.attention!(ok, x, x, x, new Float32Array(1), new Float32Array(24), new Float32Array(6)), /attention: batch\*Tk = 2 exceeds the length 1 of mask/);
    assert.throws(() => K!.attention!({ ...ok, Tk: 9 }, x, x, x, null, new Float32Array(24), new Float32Array(6)), /attention: k reaches elements/);
    assert.throws(() => K!.attentionBackward!(ok, x, x, x, null, new Float32Array(24), new Float32Array(6), new Float32Array(24), new Float32Array(24), new Float32Array(24), new Float32Array(5)),
      /attentionBackward: batch\*Tk\*kvHeads\*dh = 24 exceeds the length 5 of gv/);
  }
});

/** Logits and the gradient of every parameter of the loss, with the fused path on or off. */
function modelRun(model: cs.HookedTransformer, tokens: number[][], fused: boolean, attentionMask?: Tensor): { logits: Tensor; grads: Map<string, Tensor> } {
  const prev = cs.setFusedAttention(fused);
  try {
    const logits = cs.noGrad(() => model.forward(tokens, { attentionMask }));
    for (const p of model.parameters()) p.grad = null;
    cs.backward(model.loss(tokens, { attentionMask }));
    const grads = new Map([...model.namedParameters()].map(([n, p]) => [n, p.grad!]));
    return { logits, grads };
  } finally { cs.setFusedAttention(prev); }
}

for (const arch of ["gpt2", "llama"] as const) {
  test(`a ${arch}-style model gives the same logits and gradients with and without fused attention (batch 2, odd T, padding)`, () => {
    const model = randomModel(arch, { seed: 3 });
    const tokens = randomTokens(model.cfg.d_vocab, 2, 9, 5);
    for (const mask of [undefined, new Tensor(new Float32Array([0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0]), [2, 9])]) {
      const a = modelRun(model, tokens, true, mask), b = modelRun(model, tokens, false, mask);
      const real = mask ? mask.reshape([2, 9, 1]) : null;
      const lg = (t: Tensor) => (real ? t.mul(real) : t);
      const dl = relDiff(lg(a.logits), lg(b.logits));
      assert.ok(dl < 1e-5, `${arch}${mask ? " padded" : ""}: logits differ by ${dl.toExponential(3)}`);
      // Relative to each gradient's largest element, floored at 1e-3 of the largest of all: b_K's true
      // gradient is 0 (softmax ignores a shift shared by every key), so both paths give only rounding noise.
      const amax = (t: Tensor) => Math.max(...t.toArray().map(Math.abs));
      const floor = 1e-3 * Math.max(...[...b.grads.values()].map(amax));
      let worst = 0, where = "";
      for (const [n, g] of b.grads) {
        assert.ok(a.grads.get(n), `${n}: no gradient with the fused path`);
        const d = maxAbs(a.grads.get(n)!, g) / Math.max(amax(g), floor);
        if (d > worst) { worst = d; where = n; }
      }
      assert.ok(worst < 1e-4, `${arch}${mask ? " padded" : ""}: gradient of ${where} differs by ${worst.toExponential(3)}`);
    }
  });
}

test("fused attention serves KV-cache generation (query_pos < key_pos) with the unfused logits", () => {
  const model = randomModel("llama", { seed: 4 });
  const tokens = randomTokens(model.cfg.d_vocab, 2, 8, 9);
  const stepwise = (fused: boolean) => {
    const prev = cs.setFusedAttention(fused);
    try {
      return cs.noGrad(() => {
        const kvCache: cs.KVCache = { keys: [], values: [] };
        const first = model.forward(tokens.map((r) => r.slice(0, 5)), { kvCache });
        const rest = model.forward(tokens.map((r) => r.slice(5)), { kvCache });
        return [first, rest];
      });
    } finally { cs.setFusedAttention(prev); }
  };
  const a = stepwise(true), b = stepwise(false);
  for (let i = 0; i < 2; i++) assert.ok(relDiff(a[i]!, b[i]!) < 1e-5, `chunk ${i}: logits differ by ${relDiff(a[i]!, b[i]!)}`);
});

test("a hook or the cache on hook_pattern still sees the materialised pattern, with the fused logits", () => {
  const model = randomModel("gpt2", { seed: 6 });
  const tokens = randomTokens(model.cfg.d_vocab, 1, 7, 2);
  const fused = cs.noGrad(() => model.forward(tokens));
  const { logits, cache } = cs.noGrad(() => model.runWithCache(tokens));
  assert.deepEqual(cache.get("blocks.1.attn.hook_pattern").shape, [1, 4, 7, 7]);
  assert.ok(relDiff(logits, fused) < 1e-5, `runWithCache logits differ from the fused forward by ${relDiff(logits, fused)}`);
  let seen = 0;
  cs.noGrad(() => model.runWithHooks(tokens, { fwd: [["blocks.0.attn.hook_attn_scores", (s) => { seen = s.shape[3]!; return s; }]] }));
  assert.equal(seen, 7, "hook_attn_scores was not called with [batch, head, query, key] scores");
});

test("the model takes the fused path only on a backend with the kernel (wasm keeps its own matmuls)", () => {
  const prev = cs.getBackend();
  try {
    for (const b of cs.backendStatus().filter((x) => x.available)) {
      cs.setBackend(b.name);
      const has = cs.getBackend().kernels.attention !== undefined;
      assert.equal(fastAttention("float32"), has, `${b.name}: fastAttention("float32")`);
      assert.equal(fastAttention("float64"), true, `${b.name}: float64 runs the reference either way`);
      if (b.name === "native") assert.ok(has, "the native backend implements attention");
      if (b.name === "wasm") assert.ok(!has, "wasm falls back: it should not claim a fused kernel");
    }
  } finally { cs.setBackend(prev); }
});
