// The README's first command runs the demo: check its JSON document end to end (short settings).
import { test } from "node:test";
import assert from "node:assert/strict";
import { cli } from "./cli-helpers.js";

test("circuitscope demo --json prints one JSON document with the engine tour and the induction-head result", () => {
  const r = cli({ timeout: 0 }, "demo", "--steps", "60", "--induction-steps", "60", "--json");
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  assert.ok(doc.matmulGflops > 0);
  assert.ok(doc.finalLoss < doc.lossCurve[0], "the MLP's loss falls");
  assert.equal(typeof doc.induction.phaseChangeStep, "number");
  assert.equal(doc.induction.inductionHead.layer, 1);
  assert.match(r.stderr, /backend/);
});
