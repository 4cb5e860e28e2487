// The sparse-autoencoder activations of src/tensor/ops/sparse.ts against references: JumpReLU's and
// the Heaviside step's z-gradients by central finite differences (away from the jump), their
// θ pseudo-derivatives against the paper's formula in float64 loops and against the derivative of
// the kernel-smoothed expectation (finite differences over a dense grid of z), and the top-k mask.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as cs from "../src/index.js";
import { assertClose, gradcheck, project, randn64, seeded } from "./helpers.js";

const R = seeded(5150);
const f64 = (v: number[], shape?: number[]) => cs.tensor(v, shape ?? [v.length], "float64");
/** z drawn so every entry is at least `gap` from its threshold (the finite difference never crosses the jump). */
function awayFrom(theta: cs.Tensor, rows: number, gap: number): cs.Tensor {
  const d = theta.size, out = new Float64Array(rows * d), t = theta.toArray();
  for (let i = 0; i < out.length; i++) {
    let v = 0;
    do v = 2 * R.normal(); while (Math.abs(v - t[i % d]!) < gap);
    out[i] = v;
  }
  return new cs.Tensor(out, [rows, d]);
}

test("jumpRelu: forward is z·1[z > θ], z-gradient matches finite differences", () => {
  const theta = f64([0.3, -0.2, 0.8, 0.05, 1.1]);
  const z = awayFrom(theta, 4, 0.05);
  const y = cs.noGrad(() => cs.jumpRelu(z, theta, 0.01));
  const want = z.toArray().map((v, i) => (v > theta.toArray()[i % 5]! ? v : 0));
  assertClose(y, want, { rtol: 0, atol: 0, msg: "forward" });
  gradcheck((zz) => project(cs.jumpRelu(zz, theta, 0.01)), [z], { msg: "jumpRelu dz" });
});

test("jumpRelu and heavisideStep: θ pseudo-derivatives equal −(θ/ε)K and −(1/ε)K summed over the batch (float64 loop)", () => {
  const eps = 0.5;
  const theta = f64([0.3, -0.2, 0.8]).requireGrad();
  const z = randn64(R, [6, 3]).requireGrad();
  const w = randn64(R, [6, 3]);
  const [gz, gt] = cs.grad(cs.jumpRelu(z, theta, eps).mul(w).sum(), [z, theta]);
  const [gzs, gts] = cs.grad(cs.heavisideStep(z, theta, eps).mul(w).sum(), [z, theta]);
  const Z = z.toArray(), T = theta.toArray(), W = w.toArray();
  const wantT = [0, 0, 0], wantTs = [0, 0, 0], wantZ: number[] = [];
  for (let i = 0; i < 18; i++) {
    const j = i % 3, u = (Z[i]! - T[j]!) / eps, K = Math.abs(u) < 0.5 ? 1 : 0;
    wantT[j]! += W[i]! * (-T[j]! / eps) * K;
    wantTs[j]! += W[i]! * (-1 / eps) * K;
    wantZ.push(Z[i]! > T[j]! ? W[i]! : 0);
  }
  assert.ok(wantTs.some((v) => v !== 0), "some z fall inside the kernel");
  assertClose(gt!, wantT, { rtol: 1e-12, msg: "jumpRelu dθ" });
  assertClose(gz!, wantZ, { rtol: 1e-12, msg: "jumpRelu dz" });
  assertClose(gts!, wantTs, { rtol: 1e-12, msg: "step dθ" });
  assertClose(gzs!, new Array(18).fill(0), { rtol: 0, atol: 0, msg: "step passes no gradient to z" });
});

test("pseudo-derivatives estimate the derivative of the expectation over z (finite differences on a dense grid)", () => {
  // z uniform on [−2, 2] (density ¼): d/dθ E[z·H(z − θ)] = −θ/4 and d/dθ E[H(z − θ)] = −1/4.
  const n = 40_001, zs = new Float64Array(n);
  for (let i = 0; i < n; i++) zs[i] = -2 + (4 * i) / (n - 1);
  const z = new cs.Tensor(zs, [n, 1]);
  for (const th of [0.5, -0.7]) {
    const theta = f64([th]).requireGrad();
    const [gJ] = cs.grad(cs.jumpRelu(z, theta, 0.02).mean(), [theta]);
    const [gH] = cs.grad(cs.heavisideStep(z, theta, 0.02).mean(), [theta]);
    const h = 0.01;
    const meanAt = (f: (t: cs.Tensor) => cs.Tensor, t: number) => cs.noGrad(() => f(f64([t])).mean()).item();
    const fdJ = (meanAt((t) => cs.jumpRelu(z, t, 1), th + h) - meanAt((t) => cs.jumpRelu(z, t, 1), th - h)) / (2 * h);
    const fdH = (meanAt((t) => cs.heavisideStep(z, t, 1), th + h) - meanAt((t) => cs.heavisideStep(z, t, 1), th - h)) / (2 * h);
    assert.ok(Math.abs(gJ!.item() - fdJ) < 2e-3, `jumpRelu θ=${th}: pseudo ${gJ!.item()} vs FD ${fdJ} (exact ${-th / 4})`);
    assert.ok(Math.abs(gH!.item() - fdH) < 2e-3, `step θ=${th}: pseudo ${gH!.item()} vs FD ${fdH} (exact −0.25)`);
    assert.ok(Math.abs(fdJ + th / 4) < 2e-3 && Math.abs(fdH + 0.25) < 2e-3, "FD agrees with the closed form");
  }
});

test("jumpRelu: only entries strictly above θ survive; bad bandwidth is rejected", () => {
  const y = cs.jumpRelu(f64([0.5, 0.5, 0.49, 2], [1, 4]), f64([0.5, 0.4, 0.5, -1]), 0.1);
  assert.deepEqual([...y.toArray()], [0, 0.5, 0, 2]);
  assert.throws(() => cs.jumpRelu(f64([1]), f64([0]), 0), /bandwidth/);
  assert.throws(() => cs.heavisideStep(f64([1]), f64([0]), -1), /bandwidth/);
});

test("topkMask keeps exactly k per row along any axis, ties to the lower index, carries no graph", () => {
  const x = randn64(R, [5, 7, 3]).requireGrad();
  for (const [axis, k] of [[-1, 2], [1, 3], [0, 1]] as const) {
    const m = cs.topkMask(x, k, axis);
    assert.equal(m.requiresGrad, false);
    const ones = m.sum(axis);
    assert.ok([...ones.toArray()].every((v) => v === k), `axis ${axis}: every row has ${k} ones`);
    // The kept entries are the largest: every kept value ≥ every dropped value in its row.
    const kept = x.mul(m).add(m.sub(1).mul(-1e9)).min(axis), dropped = x.mul(m.neg().add(1)).add(m.mul(-1e9)).max(axis);
    assert.ok([...kept.toArray()].every((v, i) => v >= dropped.toArray()[i]!), `axis ${axis}: kept ≥ dropped`);
  }
  assert.deepEqual([...cs.topkMask(f64([1, 3, 3, 0, 3], [1, 5]), 2).toArray()], [0, 1, 1, 0, 0]);
  // Gradients flow through relu(x)·mask to the kept entries only.
  const g = cs.grad(x.relu().mul(cs.topkMask(x, 2)).sum(), [x])[0]!;
  const m = cs.topkMask(x, 2).mul(x.gt(0));
  assertClose(g, m, { rtol: 0, atol: 0, msg: "gradient mask" });
});

test("topkMask equals the mask of topk's indices (ties, NaN, every axis, k = 0 and k = n)", () => {
  const ref = (x: cs.Tensor, k: number, axis: number) => {
    const { indices } = cs.topk(x, k, axis);
    const m = cs.zeros(x.shape, "float64");
    const idx = indices.toArray(), n = x.shape[(axis + x.ndim) % x.ndim]!;
    // Walk indices in their own layout and set the picked positions.
    const st = indices.shape, xs = x.shape;
    for (let i = 0; i < idx.length; i++) {
      let rest = i, o = 0, mult = 1;
      const coord = new Array<number>(st.length);
      for (let d = st.length - 1; d >= 0; d--) { coord[d] = rest % st[d]!; rest = Math.floor(rest / st[d]!); }
      coord[(axis + x.ndim) % x.ndim] = idx[i]!;
      for (let d = xs.length - 1; d >= 0; d--) { o += coord[d]! * mult; mult *= xs[d]!; }
      m.data[o] = 1;
    }
    void n;
    return m;
  };
  const ints = cs.tensor(Array.from({ length: 4 * 6 * 5 }, () => R.int(0, 4)), [4, 6, 5], "float64");
  ints.data[7] = NaN; ints.data[31] = NaN;
  for (const axis of [0, 1, 2, -1]) {
    const n = ints.shape[(axis + 3) % 3]!;
    for (const k of [0, 1, 2, n]) assertClose(cs.topkMask(ints, k, axis), ref(ints, k, axis), { rtol: 0, atol: 0, msg: `axis ${axis} k ${k}` });
  }
  assert.throws(() => cs.topkMask(ints, 7, -1), /k = 7/);
});
