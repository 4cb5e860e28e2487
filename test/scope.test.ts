// The memory rule of memory.ts: storage made inside scope() is recycled unless it escapes; what did
// not escape fails loudly when touched; graphs, kept tensors, pinned gradients and nested scopes work.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as cs from "../src/index.js";

test("a tensor created in a scope and not returned is released and throws when read", () => {
  const a = cs.randn([4, 8], { rng: new cs.Rng(1) });
  let leaked: cs.Tensor | undefined;
  cs.scope(() => { leaked = a.add(1); });
  assert.throws(() => leaked!.toList(), /released when its scope\(\) ended; return it from the scope or keep\(\) it/);
  assert.ok(leaked!.isReleased);
});

test("returned tensors (also inside arrays, objects and Maps) survive with their values", () => {
  const a = cs.tensor([1, 2, 3]);
  const out = cs.scope(() => ({ x: a.mul(2), list: [a.add(1)], map: new Map([["k", a.sub(1)]]) }));
  assert.deepEqual(out.x.toList(), [2, 4, 6]);
  assert.deepEqual(out.list[0]!.toList(), [2, 3, 4]);
  assert.deepEqual(out.map.get("k")!.toList(), [0, 1, 2]);
  // New allocations after the scope must not overwrite what escaped.
  cs.scope(() => { for (let i = 0; i < 10; i++) a.mul(100 + i); });
  assert.deepEqual(out.x.toList(), [2, 4, 6]);
});

test("storage is recycled: a second scope reuses the first one's buffers", () => {
  const a = cs.randn([16, 768], { rng: new cs.Rng(2) });
  let first: Float32Array | undefined, second: Float32Array | undefined;
  cs.scope(() => { first = a.add(a).rawData as Float32Array; });
  cs.scope(() => { second = a.add(a).rawData as Float32Array; });
  assert.equal(first, second);
});

test("a returned loss keeps its whole graph, so backward after the scope is correct", () => {
  const x = cs.tensor([[0.5, -1.0], [2.0, 0.25]], undefined, "float32").requireGrad();
  const w = cs.tensor([[1.5], [-0.5]], undefined, "float32").requireGrad();
  const loss = cs.scope(() => x.matmul(w).tanh().square().sum());
  cs.scope(() => { for (let i = 0; i < 5; i++) x.mul(3).exp(); }); // churn the pool
  cs.backward(loss);
  // Reference without scopes.
  const x2 = x.detach().requireGrad(), w2 = w.detach().requireGrad();
  cs.backward(x2.matmul(w2).tanh().square().sum());
  assert.deepEqual(x.grad!.toList(), x2.grad!.toList());
  assert.deepEqual(w.grad!.toList(), w2.grad!.toList());
});

test("gradients written by backward inside a scope are pinned and outlive it", () => {
  const p = cs.randn([8, 8], { rng: new cs.Rng(3) }).requireGrad();
  cs.scope(() => { cs.backward(p.mul(p).sum()); });
  const g = p.grad!.toList();
  cs.scope(() => { for (let i = 0; i < 5; i++) p.mul(7).add(1); });
  assert.deepEqual(p.grad!.toList(), g);
  assert.deepEqual(g, p.detach().mul(2).toList());
});

test("keep() lets a tensor escape without returning it; nested scopes hand escapes outward", () => {
  const a = cs.tensor([1, 2]);
  let kept: cs.Tensor | undefined, inner: cs.Tensor | undefined;
  const outer = cs.scope(() => {
    kept = cs.keep(a.mul(5));
    inner = cs.scope(() => a.add(10));
    return inner.add(0);
  });
  assert.deepEqual(kept!.toList(), [5, 10]);
  assert.deepEqual(outer.toList(), [11, 12]);
  // inner escaped the inner scope but not the outer one.
  assert.throws(() => inner!.toList(), /released/);
});

test("an exception inside a scope releases its storage and propagates", () => {
  const a = cs.tensor([1, 2, 3]);
  let made: cs.Tensor | undefined;
  assert.throws(() => cs.scope(() => { made = a.add(1); throw new Error("boom"); }), /boom/);
  assert.throws(() => made!.toList(), /released/);
  assert.equal(cs.poolStats().depth, 0);
});

test("toArray inside a scope returns a copy, not the recyclable storage", () => {
  const a = cs.tensor([1, 2, 3]);
  const arr = cs.scope(() => a.mul(2).toArray());
  cs.scope(() => { for (let i = 0; i < 3; i++) a.mul(9); });
  assert.deepEqual(Array.from(arr), [2, 4, 6]);
});
