// The workbench page's pure helpers (src/web/heatmap.ts), without a browser: readable text on the
// colour scales' fills, number formatting, and the top-dimension picks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { diverging, fmt, textOn, topDims, viridis } from "../src/web/heatmap.js";

test("textOn picks white on dark fills and black on light ones (viridis ends, the diverging scale)", () => {
  assert.equal(textOn(viridis(0)), "#fff");   // #440154, dark purple
  assert.equal(textOn(viridis(1)), "#000");   // #fde725, yellow
  assert.equal(textOn(diverging(0)), "#000"); // near white
  assert.equal(textOn(diverging(-1)), "#fff"); // #2166ac, dark blue
  assert.equal(textOn(diverging(1)), "#fff");  // #b2182b, dark red
  assert.equal(textOn("not a colour"), "#000");
});

test("fmt and topDims", () => {
  assert.equal(fmt(0.123456), "0.123");
  assert.equal(fmt(123.456), "123.5");
  assert.equal(fmt(0), "0.000");
  assert.equal(fmt(2e-5), "2.00e-5");
  assert.equal(fmt(-12345), "-1.23e+4");
  assert.deepEqual(topDims([0.5, 2, 2, -1, 3], 3), [4, 1, 2]);
  assert.deepEqual(topDims([1], 8), [0]);
});
