// The README's first command runs the demo: check its JSON document end to end (short settings).
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as cs from "../src/index.js";
import { cli } from "./cli-helpers.js";

test("circuitscope demo --json prints one JSON document with the engine tour and the induction-head result", () => {
  // In a scratch folder: the demo saves its induction model to ./induction-model.
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "cs-demo-"));
  const r = cli({ timeout: 0, cwd }, "demo", "--steps", "60", "--induction-steps", "60", "--json");
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  assert.ok(doc.matmulGflops > 0);
  assert.ok(doc.finalLoss < doc.lossCurve[0], "the MLP's loss falls");
  assert.equal(typeof doc.induction.phaseChangeStep, "number");
  assert.equal(doc.induction.inductionHead.layer, 1);
  assert.match(r.stderr, /backend/);
  // The saved model opens with its tokenizer, and the printed prompt is in its vocabulary.
  assert.equal(doc.induction.serve, "npx circuitscope serve induction-model --port 8080");
  const { model } = cs.loadPretrained(path.join(cwd, doc.induction.model));
  assert.equal(model.toTokens(doc.induction.prompt).shape[1], doc.induction.prompt.split(" ").length + 1, "BOS, then one id per word");
  fs.rmSync(cwd, { recursive: true, force: true });
});
