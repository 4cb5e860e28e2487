// Acceptance: every differentiable op's gradient matches central finite differences in float64
// (relative error < 1e-6, see relErr in helpers.ts) on random inputs with awkward shapes, non-contiguous
// layouts and broadcasting. Plus: grad w.r.t. intermediates, accumulation, retainGraph, noGrad.
import { test, describe, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import * as cs from "../src/index.js";
import {
  assertClose, awayFromZero, gradcheck, gradErrors, layouts, project, rand64, randn64, seeded, elems, relErr, unravel, storageOffset,
} from "./helpers.js";

type Tensor = cs.Tensor;
// Each test draws from its own generator seeded by its name, so adding a test never changes another's inputs.
let R = seeded(20240601);
beforeEach((t) => { R = seeded([...t.name].reduce((h, c) => (Math.imul(h, 31) + c.charCodeAt(0)) >>> 0, 20240601)); });
const i32 = (v: number[], shape?: number[]) => cs.tensor(v, shape ?? [v.length], "int32");
const positive = (shape: number[], lo = 0.5, hi = 2.5) => rand64(R, shape, lo, hi);

after(() => {
  const rows = [...gradErrors].sort((a, b) => a[0].localeCompare(b[0]));
  console.log("max relative gradient error per op group:\n" + rows.map(([k, v]) => `  ${k.padEnd(16)} ${v.toExponential(2)}`).join("\n"));
});

describe("binary arithmetic with broadcasting", () => {
  const cases: [string, (a: cs.TensorLike, b: cs.TensorLike) => Tensor][] = [
    ["add", cs.add], ["sub", cs.sub], ["mul", cs.mul], ["div", cs.div], ["maximum", cs.maximum], ["minimum", cs.minimum],
  ];
  for (const [name, op] of cases) {
    test(`${name}: same shape, broadcast, non-contiguous, scalar`, () => {
      const den = (s: number[]) => (name === "div" ? awayFromZero(R, s, 0.5, 2) : randn64(R, s));
      gradcheck((a, b) => project(op(a, b)), [randn64(R, [3, 5]), den([3, 5])], { msg: `binary ${name} same` });
      gradcheck((a, b) => project(op(a, b)), [randn64(R, [3, 1, 5]), den([4, 1])], { msg: `binary ${name} bcast` });
      gradcheck((a, b) => project(op(a, b)), [randn64(R, [1]), den([2, 3])], { msg: `binary ${name} size1` });
      gradcheck((a, b) => project(op(a, b)), [layouts.permuted(R, [4, 3]), layouts.strided(R, [4, 3], (_r, s) => den(s as number[]))], { msg: `binary ${name} strided` });
      gradcheck((a) => project(op(a, 0.7)), [randn64(R, [2, 3])], { msg: `binary ${name} scalar-rhs` });
      gradcheck((b) => project(op(1.3, b)), [den([3, 2])], { msg: `binary ${name} scalar-lhs` });
      // Both operands broadcast: [3,1] with [1,4].
      gradcheck((a, b) => project(op(a, b)), [randn64(R, [3, 1]), den([1, 4])], { msg: `binary ${name} both-bcast` });
    });
  }
  test("pow: positive base, tensor exponent (both get gradients), broadcasting, integer power of any sign", () => {
    gradcheck((a, b) => project(cs.pow(a, b)), [positive([3, 4]), randn64(R, [3, 4])], { msg: "binary pow" });
    gradcheck((a, b) => project(cs.pow(a, b)), [positive([2, 1, 3]), randn64(R, [4, 1])], { msg: "binary pow bcast" });
    gradcheck((a) => project(cs.pow(a, 3)), [randn64(R, [5])], { msg: "binary pow int" });
    gradcheck((a) => project(cs.pow(a, -1.5)), [layouts.permuted(R, [3, 2], (r, s) => rand64(r, s, 0.5, 2))], { msg: "binary pow frac" });
    gradcheck((b) => project(cs.pow(2.5, b)), [randn64(R, [4])], { msg: "binary pow scalar-base" });
  });
});

describe("unary ops", () => {
  const domain: Record<string, (s: number[]) => Tensor> = {
    log: (s) => positive(s), sqrt: (s) => positive(s), rsqrt: (s) => positive(s),
    recip: (s) => awayFromZero(R, s, 0.4, 2), relu: (s) => awayFromZero(R, s), abs: (s) => awayFromZero(R, s),
  };
  const ops = ["neg", "exp", "log", "sqrt", "rsqrt", "recip", "tanh", "sigmoid", "relu", "gelu_tanh", "gelu_erf", "silu", "abs", "sin", "cos", "square"] as const;
  for (const op of ops) {
    test(op, () => {
      const make = domain[op] ?? ((s: number[]) => randn64(R, s, 1.5));
      gradcheck((x) => project(cs.unary(op, x)), [make([2, 1, 7])], { msg: `unary ${op}` });
      gradcheck((x) => project(cs.unary(op, x)), [layouts.permuted(R, [3, 4], (_r, s) => make(s as number[]))], { msg: `unary ${op} permuted` });
      gradcheck((x) => project(cs.unary(op, x)), [layouts.strided(R, [2, 3], (_r, s) => make(s as number[]))], { msg: `unary ${op} strided` });
    });
  }
  test("Tensor method sugar matches (reciprocal, gelu both ways, square)", () => {
    gradcheck((x) => project(x.reciprocal().add(x.gelu("tanh")).add(x.gelu()).add(x.square()).add(x.sigmoid().mul(x.silu()))), [awayFromZero(R, [3, 3], 0.5, 2)], { msg: "unary chain" });
  });
  test("sign has zero gradient away from 0", () => {
    gradcheck((x) => project(cs.unary("sign", x).mul(x)), [awayFromZero(R, [2, 3])], { msg: "unary sign" });
  });
  test("gelu_erf over a wide range (series and continued-fraction branches of erf)", () => {
    const x = cs.tensor(new Float64Array([-6, -4, -3, -2.6, -2.4, -1, -0.3, 0.2, 1.1, 2.45, 2.55, 3.5, 5]), [13]);
    gradcheck((t) => project(cs.unary("gelu_erf", t)), [x], { msg: "unary gelu_erf wide" });
  });
});

describe("cast and where", () => {
  test("cast float32 -> float64: gradient arrives at the float32 leaf as float32 with the right values", () => {
    const x32 = cs.randn([3, 4], { rng: R }).requireGrad();
    const w = randn64(R, [3, 4]);
    const y = cs.cast(x32, "float64").mul(w).sum();
    cs.backward(y);
    assert.equal(x32.grad!.dtype, "float32");
    assertClose(x32.grad!, elems(w.cast("float32")), { rtol: 0, atol: 0 });
  });
  test("mixed float32/float64 operands: each leaf's gradient has the leaf's dtype and the right values", () => {
    const a = cs.randn([2, 3], { rng: R }).requireGrad(), b = randn64(R, [3]).requireGrad();
    const c = cs.randn([2, 3], { rng: R }).requireGrad(), W = randn64(R, [3, 2]).requireGrad();
    const y = cs.concat([a.mul(b), cs.where(a.gt(0), c, b)], 0).matmul(W).sum();
    cs.backward(y);
    assert.deepEqual([a.grad!.dtype, b.grad!.dtype, c.grad!.dtype, W.grad!.dtype], ["float32", "float64", "float32", "float64"]);
    // Reference: the same computation with every leaf in float64.
    const [a6, c6] = [a, c].map((t) => t.detach().cast("float64").requireGrad()) as [Tensor, Tensor];
    const b6 = b.detach().requireGrad(), W6 = W.detach().requireGrad();
    cs.backward(cs.concat([a6.mul(b6), cs.where(a6.gt(0), c6, b6)], 0).matmul(W6).sum());
    assertClose(a.grad!, a6.grad!, { rtol: 1e-6, atol: 1e-7 });
    assertClose(c.grad!, c6.grad!, { rtol: 1e-6, atol: 1e-7 });
    assertClose(b.grad!, b6.grad!, { rtol: 1e-12 });
    assertClose(W.grad!, W6.grad!, { rtol: 1e-6, atol: 1e-7 });
  });
  test("cast float64 -> float32 -> float64 chain passes gradients through (within float32 precision)", () => {
    const x = randn64(R, [5]).requireGrad();
    const w = randn64(R, [5]);
    const [g] = cs.grad(cs.cast(cs.cast(x, "float32"), "float64").mul(w).sum(), [x]);
    assertClose(g!, w, { rtol: 1e-7 });
  });
  test("cast float64 -> float64 is the identity and keeps the graph", () => {
    gradcheck((x) => project(cs.cast(x, "float64").mul(x)), [randn64(R, [4])], { msg: "cast identity" });
  });
  test("where: broadcast condition and branches, non-contiguous branch, scalar branch", () => {
    const cond = cs.tensor([1, 0, 0, 1, 1, 0], [3, 2, 1], "float64").sub(0).gt(0.5);
    gradcheck((a, b) => project(cs.where(cond, a, b)), [randn64(R, [3, 2, 4]), randn64(R, [4])], { msg: "where bcast" });
    const c2 = randn64(R, [4, 3]).gt(0);
    gradcheck((a, b) => project(cs.where(c2, a, b)), [layouts.permuted(R, [4, 3]), randn64(R, [4, 1])], { msg: "where permuted" });
    gradcheck((a) => project(cs.where(c2, a, -2)), [randn64(R, [4, 3])], { msg: "where scalar-b" });
    gradcheck((b) => project(cs.where(c2, 0.5, b)), [randn64(R, [3])], { msg: "where scalar-a" });
  });
});

describe("reductions", () => {
  const axesCases: [string, number | number[] | undefined, boolean][] = [
    ["all", undefined, false], ["all-keep", undefined, true], ["ax1", 1, false], ["ax-1-keep", -1, true],
    ["ax0,2", [0, 2], false], ["ax0,2-keep", [0, 2], true], ["ax1,2", [1, 2], false], ["ax0,1,2-keep", [0, 1, 2], true],
  ];
  for (const [name, fn] of [["sum", cs.sum], ["mean", cs.mean], ["max", cs.max], ["min", cs.min]] as const) {
    test(`${name} over single and multiple axes, with and without keepDims`, () => {
      for (const [label, axes, keep] of axesCases) {
        gradcheck((x) => project(fn(x, axes, keep)), [randn64(R, [3, 1, 5])], { msg: `reduce ${name} ${label}` });
        gradcheck((x) => project(fn(x, axes, keep)), [layouts.permuted(R, [2, 4, 3])], { msg: `reduce ${name} ${label} permuted` });
      }
    });
  }
  test("logsumexp", () => {
    gradcheck((x) => project(cs.logsumexp(x, 1)), [randn64(R, [3, 5, 2], 3)], { msg: "reduce logsumexp ax1" });
    gradcheck((x) => project(cs.logsumexp(x, [0, 2], true)), [layouts.strided(R, [3, 2, 4])], { msg: "reduce logsumexp ax0,2" });
    gradcheck((x) => project(cs.logsumexp(x, -1)), [randn64(R, [1, 7], 20)], { msg: "reduce logsumexp big" });
  });
  test("sumTo (the inverse of broadcasting used by backward rules)", () => {
    gradcheck((x) => project(cs.sumTo(x, [3, 1])), [randn64(R, [2, 3, 4])], { msg: "reduce sumTo" });
    gradcheck((x) => project(cs.sumTo(x, [1, 4])), [layouts.permuted(R, [3, 4])], { msg: "reduce sumTo keep" });
  });
  test("variance (population and sample)", () => {
    gradcheck((x) => project(cs.variance(x, 1)), [randn64(R, [3, 5])], { msg: "reduce var ax1" });
    gradcheck((x) => project(cs.variance(x, [0, 2], true, 1)), [layouts.permuted(R, [3, 2, 4])], { msg: "reduce var ax0,2 corr1" });
    gradcheck((x) => cs.variance(x), [randn64(R, [2, 3, 2])], { msg: "reduce var all" });
    gradcheck((x) => project(x.var(-1, false, 1)), [randn64(R, [4, 3])], { msg: "reduce var method" });
  });
});

describe("movement and views", () => {
  test("reshape of contiguous and non-contiguous data, with -1", () => {
    gradcheck((x) => project(cs.reshape(x, [2, 6])), [randn64(R, [3, 4])], { msg: "move reshape" });
    gradcheck((x) => project(cs.reshape(x, [-1, 3, 1])), [layouts.permuted(R, [2, 2, 3])], { msg: "move reshape permuted" });
    gradcheck((x) => project(x.reshape(6).mul(x.flatten())), [layouts.strided(R, [2, 3])], { msg: "move reshape strided" });
  });
  test("permute and transpose", () => {
    gradcheck((x) => project(cs.permute(x, [2, 0, 1])), [randn64(R, [2, 3, 4])], { msg: "move permute" });
    gradcheck((x) => project(cs.permute(x, [1, 0, 2]).mul(x.transpose(0, 1))), [layouts.permuted(R, [3, 1, 2])], { msg: "move permute twice" });
    gradcheck((x) => project(cs.transpose(x, 0, -1).contiguous()), [randn64(R, [2, 3, 5])], { msg: "move transpose" });
    gradcheck((x) => project(x.T.matmul(x)), [randn64(R, [4, 3])], { msg: "move transpose T" });
  });
  test("expand (new leading dims, size-1 dims, -1) and broadcasting through expanded operands", () => {
    gradcheck((x) => project(cs.expand(x, [2, 3, 5, 4])), [randn64(R, [3, 1, 4])], { msg: "move expand" });
    gradcheck((x) => project(cs.expand(x, [4, -1]).mul(2)), [randn64(R, [1, 3])], { msg: "move expand -1" });
    gradcheck((x) => project(cs.expand(x.transpose(0, 1), [2, 3, 2]).exp()), [randn64(R, [2, 3]).slice(0, 0, 1).detach()], { msg: "move expand view" });
  });
  test("squeeze and unsqueeze", () => {
    gradcheck((x) => project(cs.squeeze(x)), [randn64(R, [1, 3, 1, 2])], { msg: "move squeeze all" });
    gradcheck((x) => project(cs.squeeze(x, 2)), [layouts.permuted(R, [3, 1, 1])], { msg: "move squeeze axis" });
    gradcheck((x) => project(cs.unsqueeze(x, -1).mul(cs.unsqueeze(x, 0))), [randn64(R, [3])], { msg: "move unsqueeze" });
    gradcheck((x) => project(cs.unsqueeze(x, 1)), [layouts.permuted(R, [2, 3])], { msg: "move unsqueeze permuted" });
  });
  test("slice with step, negative bounds, empty and full slices", () => {
    gradcheck((x) => project(cs.slice(x, 1, 1, 7, 2)), [randn64(R, [3, 8])], { msg: "move slice step" });
    gradcheck((x) => project(cs.slice(x, -1, -3)), [layouts.permuted(R, [4, 5])], { msg: "move slice neg" });
    gradcheck((x) => project(cs.slice(cs.slice(x, 0, 0, 5, 3), 1, 1, undefined, 2).mul(2)), [randn64(R, [5, 4])], { msg: "move slice twice" });
    gradcheck((x) => project(cs.slice(x, 0, 0, 3, 1)).add(project(cs.slice(x, 0, 2, 2))), [randn64(R, [3, 2])], { msg: "move slice empty" });
  });
  test("select", () => {
    gradcheck((x) => project(cs.select(x, 1, -1)), [randn64(R, [3, 4, 2])], { msg: "move select" });
    gradcheck((x) => project(cs.select(x, 0, 1).mul(cs.select(x, 0, 0))), [layouts.strided(R, [2, 3])], { msg: "move select twice" });
  });
  test("contiguous of permuted, sliced and expanded views", () => {
    gradcheck((x) => project(cs.contiguous(x.permute(1, 0))), [randn64(R, [3, 4])], { msg: "move contiguous" });
    gradcheck((x) => project(cs.contiguous(x.slice(1, 0, 4, 3))), [randn64(R, [2, 5])], { msg: "move contiguous slice" });
    gradcheck((x) => project(cs.contiguous(x.expand(3, 2))), [randn64(R, [2])], { msg: "move contiguous expand" });
  });
  test("indexSelect: axis 0, other axes, repeated and negative indices, tensor index shapes", () => {
    gradcheck((x) => project(cs.indexSelect(x, 0, [2, 0, 2, 1, 2])), [randn64(R, [3, 4])], { msg: "index indexSelect ax0" });
    gradcheck((x) => project(cs.indexSelect(x, 1, i32([1, 1, 0, -1]))), [randn64(R, [2, 3, 2])], { msg: "index indexSelect ax1" });
    gradcheck((x) => project(cs.indexSelect(x, -1, i32([3, 0, 3, 3, 1, 2], [2, 3]))), [layouts.permuted(R, [3, 4])], { msg: "index indexSelect ax-1 2d" });
    gradcheck((x) => project(cs.indexSelect(x, 1, [0])), [layouts.strided(R, [2, 3, 2])], { msg: "index indexSelect strided" });
  });
  test("gather (repeats, several axes, non-contiguous input)", () => {
    const idx = i32([0, 2, 2, 1, 0, 0, 1, 1], [4, 2]);
    gradcheck((x) => project(cs.gather(x, 1, idx)), [randn64(R, [4, 3])], { msg: "index gather ax1" });
    gradcheck((x) => project(cs.gather(x, 0, i32([3, 0, 1, 3, 3, 2], [2, 3]))), [layouts.permuted(R, [4, 3])], { msg: "index gather ax0" });
    gradcheck((x) => project(cs.gather(x, -1, i32([1, 0, 1, 1, 0, 0], [3, 1, 2]))), [randn64(R, [3, 2, 2])], { msg: "index gather ax-1 3d" });
  });
  test("concat, stack, split", () => {
    gradcheck((a, b, c) => project(cs.concat([a, b, c], 1)), [randn64(R, [2, 1, 3]), layouts.permuted(R, [2, 3, 3]), randn64(R, [2, 2, 3])], { msg: "join concat" });
    gradcheck((a, b) => project(cs.concat([a, b, a], 0)), [randn64(R, [1, 2]), layouts.strided(R, [3, 2])], { msg: "join concat repeat" });
    gradcheck((a, b) => project(cs.stack([a, b], 0)), [randn64(R, [2, 3]), layouts.permuted(R, [2, 3])], { msg: "join stack 0" });
    gradcheck((a, b) => project(cs.stack([a, b, b], -1)), [randn64(R, [2, 3]), randn64(R, [2, 3])], { msg: "join stack -1" });
    gradcheck((a, b) => project(cs.stack([a, b], 1)), [randn64(R, [3]), randn64(R, [3])], { msg: "join stack 1" });
    gradcheck((x) => {
      const [p, q, r] = cs.split(x, [1, 3, 2], 1) as [Tensor, Tensor, Tensor];
      return project(p, 1).add(project(q.exp(), 2)).add(project(r.mul(r), 3));
    }, [randn64(R, [2, 6])], { msg: "join split" });
    gradcheck((x) => project(cs.split(x, [2, 1], 0)[1]!), [layouts.permuted(R, [3, 2])], { msg: "join split one" });
  });
});

describe("matrix products", () => {
  test("matmul: 2-D, batched, broadcast batch, 1-D operands, transposed views", () => {
    const mm = (a: Tensor, b: Tensor) => project(cs.matmul(a, b));
    gradcheck(mm, [randn64(R, [3, 4]), randn64(R, [4, 5])], { msg: "matmul 2d" });
    gradcheck(mm, [randn64(R, [2, 3, 4]), randn64(R, [2, 4, 1])], { msg: "matmul batched" });
    gradcheck(mm, [randn64(R, [2, 1, 3, 4]), randn64(R, [3, 4, 2])], { msg: "matmul bcast-batch" });
    gradcheck(mm, [randn64(R, [3, 4]), randn64(R, [2, 4, 3])], { msg: "matmul bcast-2d-lhs" });
    gradcheck(mm, [randn64(R, [4]), randn64(R, [4, 3])], { msg: "matmul 1d-lhs" });
    gradcheck(mm, [randn64(R, [2, 3, 4]), randn64(R, [4])], { msg: "matmul 1d-rhs" });
    gradcheck(mm, [randn64(R, [4]), randn64(R, [2, 4, 3])], { msg: "matmul 1d-lhs-batched" });
    gradcheck((a, b) => cs.matmul(a, b), [randn64(R, [5]), randn64(R, [5])], { msg: "matmul 1d-1d" });
    gradcheck(mm, [layouts.permuted(R, [3, 4]), layouts.permuted(R, [4, 2])], { msg: "matmul transposed" });
    gradcheck(mm, [layouts.strided(R, [2, 3, 4]), layouts.permuted(R, [2, 4, 3])], { msg: "matmul strided" });
    gradcheck((a) => project(cs.matmul(a, a.transpose(-1, -2))), [randn64(R, [2, 3, 4])], { msg: "matmul self" });
    gradcheck((a, b) => project(cs.matmul(a.permute(1, 0, 2), b)), [randn64(R, [3, 2, 4]), randn64(R, [4, 2])], { msg: "matmul permuted-batch" });
  });
  test("linear: with and without bias, 3-D input, strided operands", () => {
    gradcheck((x, W, b) => project(cs.linear(x, W, b)), [randn64(R, [5, 4]), randn64(R, [4, 3]), randn64(R, [3])], { msg: "linear bias" });
    gradcheck((x, W) => project(cs.linear(x, W)), [randn64(R, [5, 4]), randn64(R, [4, 3])], { msg: "linear nobias" });
    gradcheck((x, W, b) => project(cs.linear(x, W, b)), [randn64(R, [2, 3, 4]), randn64(R, [4, 1]), randn64(R, [1])], { msg: "linear 3d" });
    gradcheck((x, W, b) => project(cs.linear(x, W, b)), [layouts.permuted(R, [3, 4]), layouts.permuted(R, [4, 2]), layouts.strided(R, [2])], { msg: "linear strided" });
    gradcheck((x, W) => project(cs.linear(x, W)), [layouts.permuted(R, [2, 3, 4]), randn64(R, [4, 2])], { msg: "linear 3d-permuted" });
    gradcheck((x, W) => project(cs.linear(x, W)), [randn64(R, [4]), randn64(R, [4, 3])], { msg: "linear 1d" });
  });
  test("einsum: matmul, batched, ellipsis, 3 operands, reductions, outer, implicit output", () => {
    const cases: [string, number[][]][] = [
      ["ij,jk->ik", [[3, 4], [4, 2]]],
      ["bij,bkj->bik", [[2, 3, 4], [2, 5, 4]]],
      ["bhqd,bhkd->bhqk", [[1, 2, 3, 4], [1, 2, 5, 4]]],
      ["...d,dv->...v", [[2, 3, 4], [4, 5]]],
      ["...i,...i->...", [[3, 4], [2, 3, 4]]],
      ["ij,jk,kl->il", [[2, 3], [3, 4], [4, 2]]],
      ["i,j,ij->", [[3], [4], [3, 4]]],
      ["ij->ji", [[3, 4]]],
      ["ijk->j", [[2, 3, 4]]],
      ["i,j->ij", [[3], [2]]],
      ["ij,jk", [[2, 3], [3, 4]]],
      ["bi,bi->b", [[3, 5], [3, 5]]],
    ];
    for (const [spec, shapes] of cases) {
      gradcheck((...xs) => project(cs.einsum(spec, ...xs)), shapes.map((s, k) => (k % 2 ? layouts.permuted(R, s) : randn64(R, s))), { msg: `einsum ${spec}` });
    }
  });
});

describe("fused nn ops", () => {
  test("softmax along any axis, non-contiguous input", () => {
    for (const axis of [-1, 0, 1, 2]) gradcheck((x) => project(cs.softmax(x, axis)), [randn64(R, [3, 4, 5], 2)], { msg: `nn softmax ax${axis}` });
    gradcheck((x) => project(cs.softmax(x, -1)), [layouts.permuted(R, [4, 3])], { msg: "nn softmax permuted" });
    gradcheck((x) => project(x.softmax(0)), [layouts.strided(R, [3, 1])], { msg: "nn softmax size1" });
  });
  test("causalSoftmax: square, queries shorter than keys, with scale, non-contiguous scores", () => {
    gradcheck((x) => project(cs.causalSoftmax(x)), [randn64(R, [2, 4, 4])], { msg: "nn causalSoftmax square" });
    gradcheck((x) => project(cs.causalSoftmax(x, 0.37)), [randn64(R, [2, 1, 3, 5], 2)], { msg: "nn causalSoftmax q<k scale" });
    gradcheck((x) => project(cs.causalSoftmax(x, 2)), [layouts.permuted(R, [2, 3, 3])], { msg: "nn causalSoftmax permuted" });
  });
  test("logSoftmax along any axis", () => {
    for (const axis of [-1, 0, 1]) gradcheck((x) => project(cs.logSoftmax(x, axis)), [randn64(R, [3, 2, 5], 2)], { msg: `nn logSoftmax ax${axis}` });
    gradcheck((x) => project(x.logSoftmax()), [layouts.strided(R, [2, 4])], { msg: "nn logSoftmax strided" });
  });
  test("layerNorm with and without weight and bias, 3-D, non-contiguous", () => {
    const x = () => randn64(R, [3, 5], 2, 0.5);
    gradcheck((x, w, b) => project(cs.layerNorm(x, w, b)), [x(), randn64(R, [5]), randn64(R, [5])], { msg: "nn layerNorm wb" });
    gradcheck((x) => project(cs.layerNorm(x, null, null)), [x()], { msg: "nn layerNorm plain" });
    gradcheck((x, w) => project(cs.layerNorm(x, w, null)), [x(), randn64(R, [5])], { msg: "nn layerNorm w" });
    gradcheck((x, b) => project(cs.layerNorm(x, null, b)), [x(), randn64(R, [5])], { msg: "nn layerNorm b" });
    gradcheck((x, w, b) => project(cs.layerNorm(x, w, b, 1e-3)), [randn64(R, [2, 3, 4]), randn64(R, [4]), randn64(R, [4])], { msg: "nn layerNorm 3d" });
    gradcheck((x, w, b) => project(cs.layerNorm(x, w, b)), [layouts.permuted(R, [3, 4]), layouts.strided(R, [4]), randn64(R, [4])], { msg: "nn layerNorm permuted" });
  });
  test("rmsNorm with and without weight", () => {
    gradcheck((x, w) => project(cs.rmsNorm(x, w)), [randn64(R, [3, 5]), randn64(R, [5])], { msg: "nn rmsNorm w" });
    gradcheck((x) => project(cs.rmsNorm(x, null)), [randn64(R, [2, 2, 4])], { msg: "nn rmsNorm plain" });
    gradcheck((x, w) => project(cs.rmsNorm(x, w, 1e-2)), [layouts.permuted(R, [4, 3]), randn64(R, [3])], { msg: "nn rmsNorm permuted" });
  });
  test("embedding with repeated ids of any shape", () => {
    gradcheck((W) => project(cs.embedding(W, i32([1, 4, 1, 0, 5, 1], [2, 3]))), [randn64(R, [6, 4])], { msg: "nn embedding" });
    gradcheck((W) => project(cs.embedding(W, [2, 2])), [layouts.permuted(R, [3, 2])], { msg: "nn embedding permuted" });
  });
  test("crossEntropy: mean, sum, none, ignoreIndex, 3-D logits", () => {
    const t = i32([0, 4, 2, 2]);
    gradcheck((x) => cs.crossEntropy(x, t), [randn64(R, [4, 5], 2)], { msg: "nn crossEntropy mean" });
    gradcheck((x) => cs.crossEntropy(x, t, { reduction: "sum" }), [randn64(R, [4, 5], 2)], { msg: "nn crossEntropy sum" });
    gradcheck((x) => project(cs.crossEntropy(x, t, { reduction: "none" })), [layouts.permuted(R, [4, 5])], { msg: "nn crossEntropy none" });
    const ti = i32([1, -100, 3, -100, 0, 2], [2, 3]);
    gradcheck((x) => cs.crossEntropy(x, ti, { ignoreIndex: -100 }), [randn64(R, [2, 3, 4])], { msg: "nn crossEntropy ignore" });
    gradcheck((x) => project(cs.crossEntropy(x, ti, { ignoreIndex: -100, reduction: "none" })), [randn64(R, [2, 3, 4])], { msg: "nn crossEntropy ignore-none" });
    gradcheck((x) => cs.crossEntropy(x, ti, { ignoreIndex: -100, reduction: "sum" }), [layouts.strided(R, [2, 3, 4])], { msg: "nn crossEntropy ignore-sum" });
  });
  test("topk values (largest and smallest, any axis)", () => {
    gradcheck((x) => project(cs.topk(x, 3).values), [randn64(R, [3, 6])], { msg: "topk last" });
    gradcheck((x) => project(cs.topk(x, 2, 0, false).values), [layouts.permuted(R, [4, 3])], { msg: "topk ax0 smallest" });
    gradcheck((x) => project(cs.topk(x, 1, 1).values), [randn64(R, [2, 5, 2])], { msg: "topk mid" });
  });
  test("a composite: attention head", () => {
    gradcheck((x, Wq, Wk, Wv) => {
      const q = cs.linear(x, Wq), k = cs.linear(x, Wk), v = cs.linear(x, Wv);
      const p = cs.causalSoftmax(cs.einsum("bqd,bkd->bqk", q, k), 0.5);
      return project(cs.layerNorm(cs.matmul(p, v).add(x), null, null));
    }, [randn64(R, [2, 3, 4]), randn64(R, [4, 4]), randn64(R, [4, 4]), randn64(R, [4, 4])], { msg: "composite attention" });
  });
});

describe("autodiff mechanics", () => {
  test("cs.grad w.r.t. an intermediate activation matches finite differences of perturbing it", () => {
    const x = randn64(R, [3, 4]).requireGrad(), W = randn64(R, [4, 5]);
    const hOf = (x: Tensor) => cs.matmul(x, W).tanh(); // h(x)
    const g = (h: Tensor) => project(cs.softmax(h.mul(h.sum(-1, true)), -1)).add(cs.layerNorm(h, null, null).sin().sum()); // g(h)
    const h = hOf(x);
    assert.ok(h.node, "h is an intermediate");
    const y = g(h);
    const [dh, dx] = cs.grad(y, [h, x]);
    assert.equal(x.grad, null, "grad() does not touch .grad");
    const hd = h.detach().contiguous().mul(1); // a private copy of the activation to perturb
    const eps = 1e-6;
    let maxErr = 0;
    for (let i = 0; i < hd.size; i++) {
      const o = hd.data[i]!;
      hd.data[i] = o + eps; const fp = cs.noGrad(() => g(hd)).item();
      hd.data[i] = o - eps; const fm = cs.noGrad(() => g(hd)).item();
      hd.data[i] = o;
      maxErr = Math.max(maxErr, relErr(elems(dh!)[i]!, (fp - fm) / (2 * eps)));
    }
    assert.ok(maxErr < 1e-6, `d g / d h relative error ${maxErr}`);
    gradErrors.set("intermediate", maxErr);
    // And d/dx through the same graph agrees with gradcheck of the whole composition.
    const [dx2] = cs.grad(g(hOf(x)), [x]);
    assertClose(dx!, dx2!, { rtol: 1e-12 });
    x.grad = null;
    gradcheck((x) => g(hOf(x)), [x], { msg: "intermediate full" });
    // An intermediate the root does not depend on gets zeros.
    const unrelated = x.mul(3);
    const [z] = cs.grad(g(hOf(x)), [unrelated]);
    assert.deepEqual(elems(z!), new Array(12).fill(0));
  });

  test("backward accumulates into .grad across calls; grads of shared inputs sum", () => {
    const x = randn64(R, [2, 3]).requireGrad(), w = randn64(R, [2, 3]);
    const f = () => x.mul(w).add(x.mul(x)).sum(); // df/dx = w + 2x
    cs.backward(f());
    const once = elems(x.grad!);
    assertClose(once, elems(w.add(x.detach().mul(2))), { rtol: 1e-14 });
    cs.backward(f());
    assertClose(x.grad!, once.map((v) => 2 * v), { rtol: 1e-14 });
    assert.ok(x.grad!.isContiguous);
  });

  test("retainGraph allows a second backward; without it the second backward throws a clear error", () => {
    const x = randn64(R, [4]).requireGrad();
    const y = x.exp().mul(x).sum();
    cs.backward(y, { retainGraph: true });
    const g1 = elems(x.grad!);
    cs.backward(y);
    assertClose(x.grad!, g1.map((v) => 2 * v), { rtol: 1e-14 });
    assert.throws(() => cs.backward(y), /freed.*retainGraph/);
    const z = x.sin().sum();
    cs.grad(z, [x]);
    assert.throws(() => cs.grad(z, [x]), /retainGraph/);
    const u = x.sin().sum();
    const [a] = cs.grad(u, [x], { retainGraph: true });
    const [b] = cs.grad(u, [x]);
    assertClose(a!, b!, { rtol: 0, atol: 0 });
  });

  test("gradOutput seeds a non-scalar root; a wrong shape is rejected", () => {
    const x = randn64(R, [2, 3]).requireGrad();
    const go = randn64(R, [2, 3]);
    const [g] = cs.grad(x.mul(x), [x], { gradOutput: go });
    assertClose(g!, go.mul(x.detach()).mul(2), { rtol: 1e-14 });
    assert.throws(() => cs.grad(x.mul(x), [x], { gradOutput: randn64(R, [3, 2]) }), /gradOutput shape/);
  });

  test("retainGrad keeps an intermediate's .grad", () => {
    const x = randn64(R, [3]).requireGrad();
    const h = x.mul(2).retainGrad();
    cs.backward(h.square().sum());
    assertClose(h.grad!, h.detach().mul(2), { rtol: 1e-14 });
    assertClose(x.grad!, h.detach().mul(4), { rtol: 1e-14 });
  });

  test("noGrad records nothing, restores the mode (also after a throw), and backward through it fails clearly", () => {
    const x = randn64(R, [3]).requireGrad();
    const y = cs.noGrad(() => x.mul(2).exp().sum());
    assert.equal(y.requiresGrad, false);
    assert.equal(y.node, null);
    assert.equal(cs.isGradEnabled(), true);
    assert.throws(() => cs.noGrad(() => { throw new Error("boom"); }), /boom/);
    assert.equal(cs.isGradEnabled(), true);
    assert.throws(() => cs.backward(y), /does not require grad/);
    // withGrad(true) inside noGrad records again.
    const z = cs.noGrad(() => cs.withGrad(true, () => x.mul(2).sum()));
    assert.equal(z.requiresGrad, true);
    // detach cuts the graph.
    const d = x.mul(2).detach();
    assert.equal(d.requiresGrad, false);
    // Ops on tensors that need no grad record nothing.
    const c = randn64(R, [3]).exp();
    assert.equal(c.node, null);
  });

  test("a deep chain (10k ops) backpropagates without stack overflow", () => {
    const x = randn64(R, [2]).requireGrad();
    let h = x;
    for (let i = 0; i < 10000; i++) h = h.mul(1.0001);
    const [g] = cs.grad(h.sum(), [x]);
    assertClose(g!, [Math.pow(1.0001, 10000), Math.pow(1.0001, 10000)], { rtol: 1e-10 });
  });
});

// Sanity check of the checker itself: a wrong gradient must be caught.
test("gradcheck catches a wrong gradient", () => {
  const x = randn64(R, [3]);
  // Multiplying by a detached copy hides a term from autodiff: d(x * c)/dx = c, but f's true derivative is 2x.
  assert.throws(() => gradcheck((t) => t.mul(t.detach()).sum(), [x], { msg: "selftest" }), /relative error/);
  gradErrors.delete("selftest");
  void unravel; void storageOffset;
});
