// nn layer behaviour: module naming and state dicts (with their errors), layers against hand-computed
// values, AdamW and SGD against float64 transcriptions of their update formulas, clipGradNorm,
// schedule values at known steps, optimizer save/resume, and a small MLP that learns deterministically.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import * as cs from "../src/index.js";
import * as nn from "../src/nn/index.js";

type Tensor = cs.Tensor;

/** Largest |a - b| / |b| over the elements (b is the reference, kept away from 0 by the tests). */
function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "length");
  let e = 0;
  for (let i = 0; i < a.length; i++) e = Math.max(e, Math.abs(a[i]! - b[i]!) / Math.abs(b[i]!));
  return e;
}

function assertClose(got: Tensor | ArrayLike<number>, want: ArrayLike<number>, tol: number, msg = ""): void {
  const g = got instanceof cs.Tensor ? got.toList() : Array.from(got);
  assert.equal(g.length, want.length, `${msg}: length`);
  for (let i = 0; i < g.length; i++) {
    const d = Math.abs(g[i]! - want[i]!);
    assert.ok(d <= tol * Math.max(1, Math.abs(want[i]!)), `${msg}: element ${i}: got ${g[i]}, want ${want[i]} (|diff| ${d.toExponential(2)} > ${tol})`);
  }
}

/** Values in ±[lo, hi) with random signs, so relative errors are meaningful. */
function awayFromZero(rng: cs.Rng, n: number, lo = 0.5, hi = 2): number[] {
  return Array.from({ length: n }, () => (rng.uniform() < 0.5 ? -1 : 1) * (lo + (hi - lo) * rng.uniform()));
}

// ---- a toy model tree: embed, blocks.{0,1}.{ln1, attn}, a buffer --------------------------------

class ToyAttn extends nn.Module {
  W_Q: nn.Parameter;
  b_Q: nn.Parameter;
  constructor(rng: cs.Rng) {
    super();
    this.W_Q = this.param("W_Q", nn.init.normal([4, 2], { rng, std: 0.02 }));
    this.b_Q = this.param("b_Q", nn.init.zeros([2]));
  }
}

class ToyBlock extends nn.Module {
  ln1 = this.child("ln1", new nn.LayerNorm(4));
  attn: ToyAttn;
  constructor(rng: cs.Rng) { super(); this.attn = this.child("attn", new ToyAttn(rng)); }
}

class ToyNet extends nn.Module {
  embed: nn.Embedding;
  blocks: nn.ModuleList<ToyBlock>;
  mask = this.buffer("mask", cs.tensor([1, 0, 1, 1], [4], "int32"));
  constructor(seed: number) {
    super();
    const rng = new cs.Rng(seed);
    this.embed = this.child("embed", new nn.Embedding(5, 4, { rng }));
    this.blocks = this.child("blocks", new nn.ModuleList([new ToyBlock(rng), new ToyBlock(rng)]));
  }
}

const EXPECTED_NAMES = [
  "embed.W",
  "blocks.0.ln1.w", "blocks.0.ln1.b", "blocks.0.attn.W_Q", "blocks.0.attn.b_Q",
  "blocks.1.ln1.w", "blocks.1.ln1.b", "blocks.1.attn.W_Q", "blocks.1.attn.b_Q",
];

describe("Module", () => {
  test("namedParameters gives dotted names in registration order; numParams counts them", () => {
    const net = new ToyNet(1);
    assert.deepEqual(net.namedParameters().map(([n]) => n), EXPECTED_NAMES);
    assert.equal(net.parameters().length, EXPECTED_NAMES.length);
    assert.ok(net.parameters().every((p) => p instanceof nn.Parameter && p.requiresGrad && p.node === null));
    assert.equal(net.numParams(), 5 * 4 + 2 * (4 + 4 + 8 + 2));
    assert.deepEqual(net.namedBuffers().map(([n]) => n), ["mask"]);
    assert.deepEqual([...net.stateDict().keys()], [...EXPECTED_NAMES, "mask"]);
    assert.deepEqual(net.namedModules().map(([n]) => n), ["", "embed", "blocks", "blocks.0", "blocks.0.ln1", "blocks.0.attn", "blocks.1", "blocks.1.ln1", "blocks.1.attn"]);
  });

  test("stateDict round trip copies values into the existing tensors and bumps their versions", () => {
    const a = new ToyNet(1), b = new ToyNet(2);
    const W = b.blocks.at(1).attn.W_Q, v0 = W.version;
    assert.notDeepEqual(W.toList(), a.blocks.at(1).attn.W_Q.toList());
    const res = b.loadStateDict(a.stateDict());
    assert.deepEqual(res, { missingKeys: [], unexpectedKeys: [] });
    for (const [[na, pa], [nb, pb]] of a.namedParameters().map((x, i) => [x, b.namedParameters()[i]!] as const)) {
      assert.equal(na, nb);
      assert.deepEqual(pb.toList(), pa.toList(), na);
      assert.notEqual(pb.data, pa.data, `${na} must be copied, not aliased`);
    }
    assert.equal(b.blocks.at(1).attn.W_Q, W, "the parameter object is kept");
    assert.equal(W.version, v0 + 1);
    // A later change to the source does not leak into the loaded module.
    a.embed.W.data[0] = 123;
    assert.notEqual(b.embed.W.data[0], 123);
  });

  test("loadStateDict accepts a plain record and converts float64 values into float32 parameters", () => {
    const net = new nn.Linear(2, 1, { rng: new cs.Rng(0) });
    net.loadStateDict({ W: cs.tensor([[0.25], [-2]], undefined, "float64"), b: cs.tensor([3], undefined, "float64") });
    assert.equal(net.W.dtype, "float32");
    assert.deepEqual(net.W.toList(), [0.25, -2]);
    assert.deepEqual(net.b!.toList(), [3]);
  });

  test("loadStateDict errors name the missing key, the unexpected key and the shapes, and write nothing", () => {
    const a = new ToyNet(1), b = new ToyNet(2);
    const before = b.embed.W.toList();
    const sd = a.stateDict();
    sd.delete("blocks.1.attn.b_Q");
    sd.set("blocks.7.attn.W_K", cs.zeros([4, 2]));
    sd.set("blocks.0.attn.W_Q", cs.zeros([2, 4]));
    const err = (() => { try { b.loadStateDict(sd); } catch (e) { return e; } return undefined; })();
    assert.ok(err instanceof nn.StateDictError, "throws StateDictError");
    assert.deepEqual(err.issues.map((i) => [i.code, i.key]), [
      ["shape_mismatch", "blocks.0.attn.W_Q"], ["missing_key", "blocks.1.attn.b_Q"], ["unexpected_key", "blocks.7.attn.W_K"],
    ]);
    assert.match(err.message, /"blocks\.0\.attn\.W_Q": expected shape \[4, 2\], got \[2, 4\]/);
    assert.match(err.message, /missing key "blocks\.1\.attn\.b_Q"/);
    assert.match(err.message, /unexpected key "blocks\.7\.attn\.W_K"/);
    const shapeIssue = err.issues[0]!;
    assert.ok(shapeIssue.code === "shape_mismatch");
    assert.deepEqual([shapeIssue.expected, shapeIssue.got], [[4, 2], [2, 4]]);
    assert.deepEqual(b.embed.W.toList(), before, "nothing written on error");
  });

  test("strict: false reports missing and unexpected keys but still rejects shape and dtype mismatches", () => {
    const a = new ToyNet(1), b = new ToyNet(2);
    const sd = a.stateDict();
    sd.delete("embed.W");
    sd.set("extra", cs.zeros([1]));
    assert.deepEqual(b.loadStateDict(sd, { strict: false }), { missingKeys: ["embed.W"], unexpectedKeys: ["extra"] });
    assert.deepEqual(b.blocks.at(0).attn.W_Q.toList(), a.blocks.at(0).attn.W_Q.toList());
    sd.set("blocks.0.ln1.w", cs.ones([5]));
    assert.throws(() => b.loadStateDict(sd, { strict: false }), /"blocks\.0\.ln1\.w": expected shape \[4\], got \[5\]/);
    const sd2 = a.stateDict();
    sd2.set("mask", cs.ones([4]));
    assert.throws(() => b.loadStateDict(sd2, { strict: false }), (e: unknown) => e instanceof nn.StateDictError && e.issues[0]!.code === "dtype_mismatch");
  });

  test("registration rejects duplicate and dotted names and non-leaf tensors", () => {
    class Bad extends nn.Module {
      constructor(kind: "dup" | "dot" | "node") {
        super();
        const x = cs.ones([2]).requireGrad();
        if (kind === "dup") { this.param("w", cs.ones([2])); this.child("w", new nn.LayerNorm(2)); }
        if (kind === "dot") this.param("a.b", cs.ones([2]));
        if (kind === "node") this.param("w", x.mul(2));
      }
    }
    assert.throws(() => new Bad("dup"), /"w" is already registered/);
    assert.throws(() => new Bad("dot"), /invalid name "a\.b"/);
    assert.throws(() => new Bad("node"), /must be a leaf tensor/);
  });

  test("a tied parameter is listed once in parameters() and under both names in stateDict()", () => {
    class Tied extends nn.Module {
      embed = this.child("embed", new nn.Embedding(3, 2, { rng: new cs.Rng(0) }));
      W_U = this.param("W_U", this.embed.W);
    }
    const m = new Tied();
    // Own entries come before children's, so the tied tensor is listed under W_U.
    assert.deepEqual(m.namedParameters().map(([n]) => n), ["W_U"]);
    assert.equal(m.numParams(), 6);
    assert.deepEqual([...m.stateDict().keys()], ["W_U", "embed.W"]);
  });

  test("train()/eval() reach every descendant; zeroGrad() clears every gradient", () => {
    const net = new ToyNet(3);
    net.eval();
    assert.ok(net.namedModules().every(([, m]) => !m.training));
    net.train();
    assert.ok(net.namedModules().every(([, m]) => m.training));
    const loss = net.blocks.at(0).attn.W_Q.sum().add(net.embed.W.square().sum());
    cs.backward(loss);
    assert.ok(net.blocks.at(0).attn.W_Q.grad && net.embed.W.grad);
    net.zeroGrad();
    assert.ok(net.parameters().every((p) => p.grad === null));
  });
});

describe("initialisers", () => {
  test("bounds, moments and determinism", () => {
    const rng = () => new cs.Rng(7);
    const k = nn.init.kaimingUniform([200, 50], { rng: rng() });
    const kb = Math.sqrt(2) * Math.sqrt(3 / 200);
    assert.ok(k.toList().every((v) => Math.abs(v) <= kb) && Math.max(...k.toList().map(Math.abs)) > 0.95 * kb);
    const x = nn.init.xavierUniform([30, 70], { rng: rng(), gain: 2 });
    const xb = 2 * Math.sqrt(6 / 100);
    assert.ok(x.toList().every((v) => Math.abs(v) <= xb) && Math.max(...x.toList().map(Math.abs)) > 0.95 * xb);
    const n = nn.init.normal([10000], { rng: rng(), std: 0.02, dtype: "float64" });
    const mean = n.mean().item(), std = Math.sqrt(n.var().item());
    assert.ok(Math.abs(mean) < 0.001 && Math.abs(std - 0.02) < 0.001, `mean ${mean} std ${std}`);
    assert.equal(n.dtype, "float64");
    assert.deepEqual(nn.init.normal([5], { rng: rng(), std: 1 }).toList(), nn.init.normal([5], { rng: rng(), std: 1 }).toList());
    assert.deepEqual(nn.fansOf([3, 4, 5]), [4, 5]);
    assert.deepEqual(nn.init.ones([2, 2]).toList(), [1, 1, 1, 1]);
    assert.ok(nn.init.zeros([3]).requiresGrad);
  });

  test("Linear's default init is torch's U(±1/sqrt(d_in)); std gives N(0, std²) with a zero bias", () => {
    const l = new nn.Linear(64, 8, { rng: new cs.Rng(1) });
    const bound = 1 / 8;
    assert.ok([...l.W.toList(), ...l.b!.toList()].every((v) => Math.abs(v) <= bound));
    const g = new nn.Linear(4, 3, { rng: new cs.Rng(1), std: 0.02 });
    assert.deepEqual(g.b!.toList(), [0, 0, 0]);
    assert.ok(g.W.toList().every((v) => Math.abs(v) < 0.02 * 6));
    assert.equal(new nn.Linear(4, 3, { rng: new cs.Rng(1), bias: false }).b, null);
  });
});

describe("layers against hand-computed values", () => {
  test("Linear: y = x @ W + b, with W [d_in, d_out], for 2-D and 3-D inputs", () => {
    const l = new nn.Linear(2, 3, { rng: new cs.Rng(0) });
    l.loadStateDict({ W: cs.tensor([[1, 2, 3], [4, 5, 6]]), b: cs.tensor([0.5, -1, 2]) });
    const x = cs.tensor([[1, -1], [2, 0.5]]);
    // [1, -1] @ W = [-3, -3, -3]; [2, 0.5] @ W = [4, 6.5, 9]; plus b.
    const want = [-2.5, -4, -1, 4.5, 5.5, 11];
    assert.deepEqual(l.forward(x).toList(), want);
    const y3 = l.forward(x.reshape(2, 1, 2));
    assert.deepEqual(y3.shape, [2, 1, 3]);
    assert.deepEqual(y3.toList(), want);
    // d(sum y)/dW[i, j] = sum over rows of x[:, i]; d/db = number of rows.
    cs.backward(l.forward(x).sum());
    assert.deepEqual(l.W.grad!.toList(), [3, 3, 3, -0.5, -0.5, -0.5]);
    assert.deepEqual(l.b!.grad!.toList(), [2, 2, 2]);
  });

  test("Embedding picks rows of W [d_vocab, d_model] for ids of any shape", () => {
    const e = new nn.Embedding(3, 2, { rng: new cs.Rng(0) });
    e.loadStateDict({ W: cs.tensor([[0, 1], [10, 11], [20, 21]]) });
    const y = e.forward(cs.tensor([[2, 0], [1, 2]], undefined, "int32"));
    assert.deepEqual(y.shape, [2, 2, 2]);
    assert.deepEqual(y.toList(), [20, 21, 0, 1, 10, 11, 20, 21]);
    assert.deepEqual(e.forward([1]).toList(), [10, 11]);
  });

  test("LayerNorm normalises over d_model then applies w and b", () => {
    const ln = new nn.LayerNorm(4, { dtype: "float64" });
    ln.loadStateDict({ w: cs.tensor([1, 2, 1, 1]), b: cs.tensor([0, 0, 1, 0]) });
    // x = [1, 2, 3, 4]: mean 2.5, var 1.25, so (x - mean) * rstd = [-1.5, -0.5, 0.5, 1.5] / sqrt(1.25 + 1e-5).
    const r = 1 / Math.sqrt(1.25 + 1e-5);
    const y = ln.forward(cs.tensor([[1, 2, 3, 4], [5, 5, 5, 5]], undefined, "float64"));
    assertClose(y, [-1.5 * r, -1 * r, 0.5 * r + 1, 1.5 * r, 0, 0, 1, 0], 1e-12, "layerNorm");
    const plain = new nn.LayerNorm(4, { affine: false, dtype: "float64", eps: 0 });
    assert.equal(plain.parameters().length, 0);
    assertClose(plain.forward(cs.tensor([1, 2, 3, 4], undefined, "float64")), [-1.5, -0.5, 0.5, 1.5].map((v) => v / Math.sqrt(1.25)), 1e-12, "no affine");
  });

  test("RMSNorm divides by the root mean square and scales by w", () => {
    const n = new nn.RMSNorm(2, { dtype: "float64" });
    n.loadStateDict({ w: cs.tensor([1, 3]) });
    // x = [3, 4]: mean(x^2) = 12.5.
    const r = 1 / Math.sqrt(12.5 + 1e-6);
    assertClose(n.forward(cs.tensor([3, 4], undefined, "float64")), [3 * r, 12 * r], 1e-12, "rmsNorm");
  });

  test("activations match their formulas", () => {
    const xs = [-2, -0.5, 0.3, 1.7];
    const x = cs.tensor(xs, undefined, "float64");
    const erf = (z: number) => { // Abramowitz & Stegun 7.1.26 is too coarse; integrate instead.
      let s = 0; const n = 20000, h = z / n;
      for (let i = 0; i < n; i++) { const t = (i + 0.5) * h; s += Math.exp(-t * t); }
      return (2 / Math.sqrt(Math.PI)) * s * h;
    };
    assertClose(nn.activate(x, "relu"), xs.map((v) => Math.max(0, v)), 1e-12, "relu");
    assertClose(nn.activate(x, "silu"), xs.map((v) => v / (1 + Math.exp(-v))), 1e-12, "silu");
    assertClose(nn.activate(x, "gelu_tanh"), xs.map((v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)))), 1e-12, "gelu_tanh");
    assertClose(nn.activate(x, "gelu_erf"), xs.map((v) => 0.5 * v * (1 + erf(v / Math.SQRT2))), 1e-7, "gelu_erf");
  });

  test("MLP and Sequential name their layers by index and chain them", () => {
    const rng = new cs.Rng(4);
    const mlp = new nn.MLP([3, 5, 2], { rng, act: "silu" });
    assert.deepEqual(mlp.namedParameters().map(([n]) => n), ["layers.0.W", "layers.0.b", "layers.1.W", "layers.1.b"]);
    const l0 = mlp.layers.at(0), l1 = mlp.layers.at(1);
    const seq = new nn.Sequential([l0, new nn.Activation("silu"), l1]);
    assert.deepEqual(seq.namedParameters().map(([n]) => n), ["0.W", "0.b", "2.W", "2.b"]);
    const x = cs.randn([4, 3], { rng });
    const want = l1.forward(l0.forward(x).silu()).toList();
    assert.deepEqual(mlp.forward(x).toList(), want);
    assert.deepEqual(seq.forward(x).toList(), want);
  });
});

// ---- optimizers --------------------------------------------------------------------------------

/** torch.optim.AdamW's update in float64, in torch's order of operations. */
function adamwReference(p: number[], grads: (number[] | null)[], lrs: number[], wd: number, b1 = 0.9, b2 = 0.999, eps = 1e-8): number[] {
  p = p.slice();
  const m = p.map(() => 0), v = p.map(() => 0);
  let t = 0;
  grads.forEach((g, s) => {
    if (!g) return; // no gradient: no update, and the step count does not advance
    t++;
    const lr = lrs[s]!;
    for (let i = 0; i < p.length; i++) {
      p[i] = p[i]! * (1 - lr * wd); // decoupled weight decay
      m[i] = b1 * m[i]! + (1 - b1) * g[i]!;
      v[i] = b2 * v[i]! + (1 - b2) * g[i]! * g[i]!;
      const denom = Math.sqrt(v[i]!) / Math.sqrt(1 - b2 ** t) + eps;
      p[i] = p[i]! - (lr / (1 - b1 ** t)) * (m[i]! / denom);
    }
  });
  return p;
}

function adamwAgainstReference(dtype: "float32" | "float64"): string {
  const rng = new cs.Rng(11);
  const W0 = cs.tensor(awayFromZero(rng, 12), [3, 4], dtype), b0 = cs.tensor(awayFromZero(rng, 4), [4], dtype);
  const W = nn.Parameter.from(W0), b = nn.Parameter.from(b0);
  // Reference inputs are read back from the tensors, so float32 rounding of the start is shared.
  const Wstart = W.toList(), bstart = b.toList();
  const opt = new nn.AdamW([{ params: [W], weightDecay: 0.1 }, { params: [b], weightDecay: 0 }], { lr: 1e-2 });
  const lrs = [1e-2, 2e-2, 3e-2, 1e-2, 5e-3, 2e-2];
  const gW: number[][] = [], gb: (number[] | null)[] = [];
  for (let s = 0; s < lrs.length; s++) {
    const gw = cs.tensor(awayFromZero(rng, 12, 0.01, 3), [3, 4], dtype);
    const gbs = s === 3 ? null : cs.tensor(awayFromZero(rng, 4, 0.01, 3), [4], dtype);
    W.grad = gw; b.grad = gbs;
    gW.push(gw.toList()); gb.push(gbs ? gbs.toList() : null);
    const v = W.version;
    opt.setLr(lrs[s]!);
    opt.step();
    assert.equal(W.version, v + 1, "step bumps version");
  }
  const tol = dtype === "float32" ? 1e-6 : 1e-12;
  const eW = maxRelErr(W.toList(), adamwReference(Wstart, gW, lrs, 0.1));
  const eb = maxRelErr(b.toList(), adamwReference(bstart, gb, lrs, 0));
  assert.ok(eW < tol, `W relative error ${eW.toExponential(2)}`);
  assert.ok(eb < tol, `b relative error ${eb.toExponential(2)}`);
  const sd = opt.stateDict();
  assert.deepEqual(sd.state.map((s) => s!.step), [6, 5], "per-parameter step counts");
  assert.equal(sd.steps, 6);
  assert.deepEqual(sd.groups.map((g) => g.hyper.weightDecay), [0.1, 0]);
  return `max relative error: W ${eW.toExponential(2)}, b ${eb.toExponential(2)} (tolerance ${tol})`;
}

/** float32 runs on each available backend's adamw kernel; float64 always on the TypeScript loop. */
const adamwCases: { dtype: "float32" | "float64"; backend: cs.BackendName }[] = [
  ...cs.backendStatus().filter((b) => b.available).map((b) => ({ dtype: "float32" as const, backend: b.name })),
  { dtype: "float64", backend: "ts" },
];

describe("AdamW", () => {
  for (const { dtype, backend } of adamwCases) {
    test(`${dtype} (${backend}): matches the float64 reference over 6 steps, with groups, LR changes and a skipped grad`, (t) => {
      const prev = cs.getBackend();
      cs.setBackend(backend);
      try { t.diagnostic(adamwAgainstReference(dtype)); } finally { cs.setBackend(prev); }
    });
  }

  for (const { backend } of adamwCases.filter((c) => c.dtype === "float32")) {
    test(`(${backend}) a packed-weight cache goes stale after a step: the next forward uses the new weights`, () => {
      const prev = cs.getBackend();
      cs.setBackend(backend);
      try {
        const l = new nn.Linear(3, 2, { rng: new cs.Rng(5) });
        const x = cs.tensor([[1, 2, 3]]);
        // Two forwards at the same version let a packing backend pack W.
        l.forward(x); l.forward(x);
        if (cs.getBackend().kernels.packMatrix) assert.ok(l.W.packed?.handle, "W was packed");
        const opt = new nn.AdamW(l.parameters(), { lr: 0.1 });
        cs.backward(l.forward(x).sum());
        opt.step();
        // Reference from the updated values, computed without linear() (so without any packed copy).
        const W = l.W.toList(), b = l.b!.toList();
        const want = [0, 1].map((j) => 1 * W[j]! + 2 * W[2 + j]! + 3 * W[4 + j]! + b[j]!);
        assertClose(l.forward(x), want, 1e-6, "forward after step");
      } finally { cs.setBackend(prev); }
    });
  }

  test("rejects a gradient whose shape differs from its parameter", () => {
    const p = nn.init.zeros([2, 2]);
    const opt = new nn.AdamW([p]);
    p.grad = cs.zeros([4]);
    assert.throws(() => opt.step(), /gradient of a parameter has shape \[4\], parameter has \[2, 2\]/);
  });
});

describe("SGD", () => {
  /** torch.optim.SGD in float64. */
  function sgdReference(p: number[], grads: number[][], o: { lr: number; momentum: number; wd: number; dampening: number; nesterov: boolean }): number[] {
    p = p.slice();
    let buf: number[] | null = null;
    for (const g of grads) {
      const d = g.map((gi, i) => gi + o.wd * p[i]!);
      let step = d;
      if (o.momentum !== 0) {
        buf = buf ? buf.map((bi, i) => o.momentum * bi + (1 - o.dampening) * d[i]!) : d.slice();
        step = o.nesterov ? d.map((di, i) => di + o.momentum * buf![i]!) : buf;
      }
      p = p.map((pi, i) => pi - o.lr * step[i]!);
    }
    return p;
  }

  const cases = [
    { lr: 0.1, momentum: 0, wd: 0, dampening: 0, nesterov: false },
    { lr: 0.05, momentum: 0.9, wd: 0.01, dampening: 0, nesterov: false },
    { lr: 0.05, momentum: 0.9, wd: 0, dampening: 0.3, nesterov: false },
    { lr: 0.05, momentum: 0.8, wd: 0.02, dampening: 0, nesterov: true },
  ];
  for (const o of cases) {
    test(`momentum ${o.momentum}, weight decay ${o.wd}, dampening ${o.dampening}, nesterov ${o.nesterov}: matches the formula`, () => {
      const rng = new cs.Rng(3);
      const p = nn.Parameter.from(cs.tensor(awayFromZero(rng, 6), [2, 3], "float64"));
      const start = p.toList(), grads: number[][] = [];
      const opt = new nn.SGD([p], { lr: o.lr, momentum: o.momentum, weightDecay: o.wd, dampening: o.dampening, nesterov: o.nesterov });
      for (let s = 0; s < 5; s++) {
        const g = awayFromZero(rng, 6, 0.1, 1);
        grads.push(g);
        p.grad = cs.tensor(g, [2, 3], "float64");
        opt.step();
      }
      const e = maxRelErr(p.toList(), sgdReference(start, grads, o));
      assert.ok(e < 1e-12, `relative error ${e.toExponential(2)}`);
    });
  }

  test("nesterov without momentum is rejected", () => {
    assert.throws(() => new nn.SGD([nn.init.zeros([1])], { lr: 0.1, nesterov: true }), /nesterov needs momentum > 0/);
  });
});

describe("clipGradNorm", () => {
  test("returns the total L2 norm and scales every gradient by maxNorm / (norm + 1e-6)", () => {
    const a = nn.init.zeros([2], { dtype: "float64" }), b = nn.init.zeros([1], { dtype: "float64" }), c = nn.init.zeros([3]);
    a.grad = cs.tensor([3, 4], undefined, "float64");
    b.grad = cs.tensor([12], undefined, "float64");
    const total = nn.clipGradNorm([a, b, c], 6.5); // c has no grad and is skipped
    assert.equal(total, 13);
    const k = 6.5 / (13 + 1e-6);
    assertClose(a.grad, [3 * k, 4 * k], 1e-15, "a");
    assertClose(b.grad, [12 * k], 1e-15, "b");
    assert.equal(c.grad, null);
  });

  test("leaves gradients alone under the limit; supports the max-abs norm", () => {
    const a = nn.init.zeros([3], { dtype: "float64" });
    const g = cs.tensor([1, -2, 2], undefined, "float64");
    a.grad = g;
    assert.equal(nn.clipGradNorm([a], 10), 3);
    assert.equal(a.grad, g);
    assert.equal(nn.clipGradNorm([a], 1, Infinity), 2);
    assertClose(a.grad, [1 / (2 + 1e-6), -2 / (2 + 1e-6), 2 / (2 + 1e-6)], 1e-15, "inf norm");
  });

  test("scales each parameter once when the add rule handed both parameters one gradient", () => {
    const a = nn.init.ones([4], { dtype: "float64" }), b = nn.init.ones([4], { dtype: "float64" });
    // d/da sum((a + b)^2) = 2(a + b) = 4; the add rule hands that one tensor to both leaves, and
    // backward gives each leaf its own copy.
    cs.backward(a.add(b).square().sum());
    assert.notEqual(a.grad!.rawData, b.grad!.rawData, "each leaf owns its gradient storage");
    const total = nn.clipGradNorm([a, b], 1);
    assertClose([total], [Math.sqrt(8 * 16)], 1e-15, "norm");
    const k = 4 / (Math.sqrt(128) + 1e-6);
    assertClose(a.grad!, [k, k, k, k], 1e-15, "a");
    assertClose(b.grad!, [k, k, k, k], 1e-15, "b");
  });
});

describe("schedules", () => {
  test("cosine with warm-up follows nanoGPT's get_lr", () => {
    const lr = nn.cosineSchedule({ maxLr: 1e-3, minLr: 1e-4, warmupSteps: 10, decaySteps: 110 });
    assertClose([lr(0)], [1e-3 / 11], 1e-15, "warm-up start");
    assertClose([lr(9)], [1e-3 * 10 / 11], 1e-15, "warm-up end");
    assert.equal(lr(10), 1e-3, "peak right after warm-up");
    assertClose([lr(60)], [5.5e-4], 1e-15, "cosine midpoint is halfway between max and min");
    assertClose([lr(35)], [1e-4 + 0.5 * (1 + Math.cos(Math.PI / 4)) * 9e-4], 1e-15, "quarter way");
    assert.equal(lr(110), 1e-4, "min at decaySteps");
    assert.equal(lr(5000), 1e-4, "min after");
    assert.throws(() => lr(-1), /non-negative integer/);
    assert.throws(() => nn.cosineSchedule({ maxLr: 1, minLr: 0, warmupSteps: 10, decaySteps: 10 }), /must exceed warmupSteps/);
  });

  test("linear warm-up, constant and step decay", () => {
    const w = nn.linearWarmupSchedule({ lr: 0.3, warmupSteps: 2 });
    assertClose([w(0), w(1), w(2), w(100)], [0.1, 0.2, 0.3, 0.3], 1e-15, "warm-up");
    assert.equal(nn.constantSchedule(0.01)(12345), 0.01);
    const s = nn.stepDecaySchedule({ lr: 0.1, stepSize: 10, gamma: 0.5 });
    assert.deepEqual([s(0), s(9), s(10), s(25)], [0.1, 0.1, 0.05, 0.025]);
  });
});

// ---- training ---------------------------------------------------------------------------------

/** Two Gaussian blobs per class on a 2-D plane, XOR-style: class = (x > 0) xor (y > 0). */
function xorData(rng: cs.Rng, n: number): { x: Tensor; y: Tensor } {
  const xs: number[] = [], ys: number[] = [];
  for (let i = 0; i < n; i++) {
    const sx = rng.uniform() < 0.5 ? -1 : 1, sy = rng.uniform() < 0.5 ? -1 : 1;
    xs.push(sx + 0.3 * rng.normal(), sy + 0.3 * rng.normal());
    ys.push(sx * sy < 0 ? 1 : 0);
  }
  return { x: cs.tensor(xs, [n, 2]), y: cs.tensor(ys, [n], "int32") };
}

function makeModel(seed: number): { model: nn.MLP; opt: nn.AdamW } {
  const model = new nn.MLP([2, 16, 2], { rng: new cs.Rng(seed), act: "gelu_tanh" });
  // Biases are not decayed (the usual nanoGPT grouping: only matrices decay).
  const decay = model.parameters().filter((p) => p.ndim >= 2), noDecay = model.parameters().filter((p) => p.ndim < 2);
  const opt = new nn.AdamW([{ params: decay, weightDecay: 0.1 }, { params: noDecay, weightDecay: 0 }], { lr: 0.02 });
  return { model, opt };
}

function trainSteps(model: nn.MLP, opt: nn.Optimizer<nn.AdamWHyper>, data: { x: Tensor; y: Tensor }, from: number, to: number): number {
  const lr = nn.cosineSchedule({ maxLr: 0.05, minLr: 0.005, warmupSteps: 10, decaySteps: 150 });
  let loss = NaN;
  for (let step = from; step < to; step++) {
    opt.zeroGrad();
    const l = cs.crossEntropy(model.forward(data.x), data.y);
    cs.backward(l);
    nn.clipGradNorm(model.parameters(), 1);
    opt.setLr(lr(step));
    opt.step();
    loss = l.item();
  }
  return loss;
}

describe("training", () => {
  test("an MLP learns XOR with AdamW + cosine schedule, and the same seed gives the same loss bit for bit", () => {
    const run = () => {
      const data = xorData(new cs.Rng(99), 128);
      const { model, opt } = makeModel(42);
      const initial = cs.noGrad(() => cs.crossEntropy(model.forward(data.x), data.y).item());
      const final = trainSteps(model, opt, data, 0, 150);
      const after = cs.noGrad(() => cs.crossEntropy(model.forward(data.x), data.y).item());
      return { initial, final, after };
    };
    const a = run(), b = run();
    assert.ok(a.after < 0.2 * a.initial, `loss ${a.initial} → ${a.after}`);
    assert.ok(Object.is(a.final, b.final) && Object.is(a.after, b.after), `same seed, different loss: ${a.after} vs ${b.after}`);
    const c = (() => { const data = xorData(new cs.Rng(99), 128); const { model, opt } = makeModel(43); trainSteps(model, opt, data, 0, 150); return cs.noGrad(() => cs.crossEntropy(model.forward(data.x), data.y).item()); })();
    assert.notEqual(c, a.after, "a different seed gives a different run");
  });

  test("saving model and optimizer state mid-run and resuming gives the identical trajectory", () => {
    const data = xorData(new cs.Rng(5), 64);
    const { model, opt } = makeModel(1);
    trainSteps(model, opt, data, 0, 20);
    // Snapshot: copies, since stateDict() values share storage with the live model.
    const modelState = new Map([...model.stateDict()].map(([k, t]) => [k, cs.tensor(t.toArray().slice(), t.shape)]));
    const optState = opt.stateDict();
    const lossA = trainSteps(model, opt, data, 20, 40);
    const finalA = model.parameters().map((p) => p.toList());

    const resumed = makeModel(777); // different init, overwritten by the load
    resumed.model.loadStateDict(modelState);
    resumed.opt.loadStateDict(optState);
    assert.equal(resumed.opt.steps, 20);
    const lossB = trainSteps(resumed.model, resumed.opt, data, 20, 40);
    assert.ok(Object.is(lossA, lossB), `loss ${lossA} vs ${lossB}`);
    assert.deepEqual(resumed.model.parameters().map((p) => p.toList()), finalA);

    // Without the optimizer state the moments restart, and the trajectory differs.
    const fresh = makeModel(777);
    fresh.model.loadStateDict(modelState);
    trainSteps(fresh.model, fresh.opt, data, 20, 40);
    assert.notDeepEqual(fresh.model.parameters().map((p) => p.toList()), finalA);
  });

  test("optimizer loadStateDict rejects state from another optimizer or parameter layout", () => {
    const { model, opt } = makeModel(1);
    const sgd = new nn.SGD(model.parameters(), { lr: 0.1 });
    assert.throws(() => sgd.loadStateDict(opt.stateDict() as never), /state is for AdamW, this optimizer is SGD/);
    const oneGroup = new nn.AdamW(model.parameters());
    assert.throws(() => oneGroup.loadStateDict(opt.stateDict()), /state has 2 parameter groups, optimizer has 1/);
    const data = xorData(new cs.Rng(5), 8);
    trainSteps(model, opt, data, 0, 1);
    const sd = opt.stateDict();
    sd.state[0]!.buffers.exp_avg = new Float32Array(3);
    assert.throws(() => opt.loadStateDict(sd), /parameter 0 \("W"\) buffer "exp_avg" has 3 elements, expected 32/);
  });
});
