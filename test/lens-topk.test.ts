// topKIndices (the logit lens's and the workbench's top tokens) equals the first k of a full sort by
// (value descending, index ascending), ties and k > length included.
import { test } from "node:test";
import assert from "node:assert/strict";
import { topKIndices } from "../src/tensor/ops/sparse.js";
import { Rng } from "../src/tensor/rng.js";

test("topKIndices = the first k of a full sort, ties to the lower index", () => {
  const rng = new Rng(4);
  for (let trial = 0; trial < 200; trial++) {
    const n = 1 + rng.int(0, 40);
    // Few distinct values, so ties are common.
    const row = Float32Array.from({ length: n }, () => rng.int(0, 6) / 7);
    const sorted = Array.from({ length: n }, (_, i) => i).sort((a, b) => row[b]! - row[a]! || a - b);
    for (const k of [1, 3, 5, n, n + 2]) assert.deepEqual(topKIndices(row, k), sorted.slice(0, k), `n ${n} k ${k} row ${Array.from(row)}`);
  }
  assert.deepEqual(topKIndices([], 3), []);
  assert.deepEqual(topKIndices([0.5, NaN, 0.9, 0.9], 3), [1, 2, 3]); // NaN ranks first, as topkMask ranks it
});
