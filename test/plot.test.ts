// SVG plots: valid standalone documents whose marks follow the data (one path per series, one dot per
// point, one cell per value), round tick values, and colour scales that hit their ends.
import { test } from "node:test";
import assert from "node:assert/strict";
import { lineChart, heatmap, scatter, niceTicks, viridis, diverging } from "../src/plot/index.js";

const count = (s: string, re: RegExp) => (s.match(re) ?? []).length;

test("niceTicks are round and span the range", () => {
  assert.deepEqual(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(3, 47, 4), [10, 20, 30, 40]);
  assert.deepEqual(niceTicks(-0.3, 0.3, 3), [-0.2, 0, 0.2]);
});

test("lineChart draws one path per series, a legend for several, and handles empty data", () => {
  const svg = lineChart([{ name: "train", x: [1, 2, 3], y: [3, 2, 1] }, { name: "test", x: [1, 2, 3], y: [3, 3, 2], dashed: true }], { title: "loss", yLog: true });
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.equal(count(svg, /<path /g), 2);
  assert.match(svg, />train</); assert.match(svg, />test</);
  assert.match(lineChart([{ name: "x", x: [], y: [] }]), /no data/);
});

test("scatter draws one dot per finite point; heatmap one cell per value; NaN cells are grey", () => {
  const sc = scatter([{ x: 1, y: 2 }, { x: 2, y: 3, label: "b" }, { x: NaN, y: 1 }]);
  assert.equal(count(sc, /<circle /g), 2);
  const hm = heatmap([[1, -1, 0], [0.5, NaN, -0.5]], { rowLabels: ["L0", "L1"], colLabels: ["a", "b", "c"] });
  assert.equal(count(hm, /<rect x="[^"]*" y="[^"]*" width="[^"]*" height="[^"]*" fill="[^"]*"><title>/g), 6);
  assert.match(hm, /fill="#bbb"><title>L1 × b: NaN/);
});

test("colour scales hit their ends", () => {
  assert.equal(viridis(0), "rgb(68,1,84)");
  assert.equal(viridis(1), "rgb(253,231,37)");
  assert.equal(diverging(-1), "rgb(33,102,172)");
  assert.equal(diverging(1), "rgb(178,24,43)");
});
