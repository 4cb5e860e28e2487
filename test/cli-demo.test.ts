// The README's first command runs the demo: check its JSON document end to end (short settings).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const cli = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));

test("circuitscope demo --json prints one JSON document with the engine tour and the induction-head result", () => {
  const r = spawnSync(process.execPath, [cli, "demo", "--steps", "60", "--induction-steps", "60", "--json"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  assert.ok(doc.matmulGflops > 0);
  assert.ok(doc.finalLoss < doc.lossCurve[0], "the MLP's loss falls");
  assert.equal(typeof doc.induction.phaseChangeStep, "number");
  assert.equal(doc.induction.inductionHead.layer, 1);
  assert.match(r.stderr, /backend/);
});
