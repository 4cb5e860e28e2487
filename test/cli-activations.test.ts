// The activations and attention descriptors on the tiny-gpt2 snapshot through the CLI: activations
// --json equals cache.get(hook) (per position, and per query position for patterns), --out writes
// activations.svg with the largest-|value| dimensions and activations.json; attention --layer gives
// exactly the heads of that layer, the same as naming them with --heads; bad input exits 2 naming the flag.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { useBackend } from "../src/backend/init.js";
import { loadPretrained } from "../src/io/snapshot.js";
import { noGrad } from "../src/tensor/autodiff.js";
import { encodeText } from "../src/model/tokens.js";
import type { HookName } from "../src/model/hooks.js";
import type { TechniqueResult } from "../src/server/api-types.js";
import { assertSvg, cli, errorOf, noTinyGpt2 as skip, tinyGpt2 as snapshot } from "./cli-helpers.js";

if (!skip) useBackend();
const prompt = "The Eiffel Tower is in";

test("activations --json --out: values equal cache.get(hook) per position; patterns per query position; picture and JSON", { skip }, () => {
  const { model, tokenizer } = loadPretrained(snapshot);
  const ids = encodeText(tokenizer!, prompt), T = ids.length;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "circuitscope-activations-"));
  try {
    const hook = "blocks.1.mlp.hook_post";
    const r = cli("activations", snapshot, prompt, "--hook", hook, "--out", dir, "--json");
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as TechniqueResult<"activations"> & { files: string[] };
    const want = noGrad(() => model.runWithCache([ids], { names: [hook as HookName] }).cache.get(hook as HookName)); // [batch, pos, d_mlp]
    assert.deepEqual(doc.shape, want.shape.slice(1));
    assert.deepEqual(doc.axes, ["pos", "dim"]);
    doc.values.forEach((row, p) => row.forEach((v, d) => assert.ok(Math.abs(v - want.get(0, p, d)) <= 1e-6, `pos ${p} dim ${d}`)));
    assert.deepEqual(doc.files, [path.join(dir, "activations.svg"), path.join(dir, "activations.json")]);
    assertSvg(doc.files[0]!, [`${hook}: L2 norm per position`, "dimensions with the largest |value|", "7 ·in", "5 ·Tower"]);

    const pat = JSON.parse(cli("activations", snapshot, prompt, "--hook", "blocks.0.attn.hook_pattern", "--json").stdout) as TechniqueResult<"activations">;
    const p = noGrad(() => model.runWithCache([ids], { names: ["blocks.0.attn.hook_pattern"] }).cache.get("blocks.0.attn.hook_pattern"));
    assert.deepEqual(pat.axes, ["head_index", "query_pos", "key_pos"]);
    assert.equal(pat.values.length, T);
    // values[q][h·T + k] = pattern[0, h, q, k]
    assert.ok(Math.abs(pat.values[4]![T + 2]! - p.get(0, 1, 4, 2)) <= 1e-6);

    assert.match(errorOf(cli("activations", snapshot, prompt, "--hook", "blocks.0.hook_resid_prex", "--json")), /^--hook: unknown hook point "blocks\.0\.hook_resid_prex"; did you mean "blocks\.0\.hook_resid_pre"/);
    assert.match(errorOf(cli("activations", snapshot, prompt, "--json")), /^--hook: missing/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("attention --layer: every head of that layer, identical to --heads naming them; layer and heads together exit 2", { skip }, () => {
  type Doc = TechniqueResult<"attention">;
  const byLayer = JSON.parse(cli("attention", snapshot, prompt, "--layer", "1", "--json").stdout) as Doc;
  const byHeads = JSON.parse(cli("attention", snapshot, prompt, "--heads", "1.0,1.1", "--json").stdout) as Doc;
  assert.equal(byLayer.layer, 1);
  assert.equal(byHeads.layer, null);
  assert.deepEqual(byLayer.heads.map((h) => [h.layer, h.head]), [[1, 0], [1, 1]]);
  assert.deepEqual(byLayer.heads, byHeads.heads);
  assert.match(errorOf(cli("attention", snapshot, prompt, "--layer", "1", "--heads", "0.1", "--json")), /^--layer: give layer or heads, not both/);
  assert.match(errorOf(cli("attention", snapshot, prompt, "--layer", "2", "--json")), /^--layer: must be between 0 and 1, got 2/);
});
