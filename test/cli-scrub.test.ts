// `circuitscope scrub`: on a small GPT-2-shaped snapshot (attention-only models have no Hugging Face
// layout) with JSON token data, the CLI's numbers are the library's, the picture names every node of
// the hypothesis, the empty hypothesis recovers 0, and malformed input fails with the path named.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { causalScrub, parseHypothesis } from "../src/analysis/index.js";
import { loadPretrained, saveHF } from "../src/io/snapshot.js";
import { Rng } from "../src/tensor/rng.js";
import { makeConfig } from "../src/model/config.js";
import { HookedTransformer } from "../src/model/transformer.js";
import { noGrad } from "../src/tensor/autodiff.js";
import { cli } from "./cli-helpers.js";

describe("circuitscope scrub (CLI)", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "scrub-cli-"));
  const folder = path.join(dir, "snapshot"), outDir = path.join(dir, "out");
  const dataFile = path.join(dir, "tokens.json"), hypFile = path.join(dir, "hyp.json"), emptyFile = path.join(dir, "empty.json");
  const hyp = {
    name: "L1H0 reads L0H1's previous-token output",
    output: [
      { node: "embed", feature: "token" },
      { node: "head", layer: 1, head: 0, feature: "whole", q: [{ node: "embed", feature: "token" }], k: [{ node: "head", layer: 0, head: 1, feature: "prev-token", v: [{ node: "embed", feature: "token" }] }] },
      { node: "mlp", layer: 1, feature: ["token", "prev-token"], in: [{ node: "embed", feature: "token" }] },
    ],
  };
  before(() => {
    const model = new HookedTransformer(makeConfig({ architecture: "gpt2", d_model: 16, n_layers: 2, n_heads: 2, d_mlp: 32, d_vocab: 50, n_ctx: 16 })).initWeights(4);
    // Larger weights than GPT-2's initialisation, so the heads and MLPs matter.
    noGrad(() => { const g = new Rng(5); for (const p of model.parameters()) if (p.ndim === 2) { for (let i = 0; i < p.size; i++) p.data[i] = 0.3 * g.normal(); p.version++; } });
    saveHF(model, folder);
    const rng = new Rng(2);
    fs.writeFileSync(dataFile, JSON.stringify(Array.from({ length: 30 }, () => Array.from({ length: 8 }, () => rng.int(0, model.cfg.d_vocab)))));
    fs.writeFileSync(hypFile, JSON.stringify(hyp));
    fs.writeFileSync(emptyFile, JSON.stringify({ name: "nothing", output: [] }));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("--json: the library's numbers; writes scrub.svg with every node and scrub.json", () => {
    const r = cli("scrub", folder, "--hypothesis", hypFile, "--data", dataFile, "--samples", "40", "--seed", "3", "--positions", "2-6", "--out", outDir, "--json");
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as { recovered: number; modelLoss: number; scrubbedLoss: number; randomLoss: number; samples: number; files: string[] };
    const { model } = loadPretrained(folder);
    const want = causalScrub(model, parseHypothesis(hyp), { sequences: JSON.parse(fs.readFileSync(dataFile, "utf8")) as number[][], positions: [2, 3, 4, 5, 6] }, { samples: 40, seed: 3 });
    assert.equal(doc.samples, 40);
    for (const k of ["modelLoss", "scrubbedLoss", "randomLoss", "recovered"] as const) assert.ok(Math.abs(doc[k] - want[k]) < 1e-5, `${k}: ${doc[k]} vs ${want[k]}`); // the CLI may run on another backend (float32 forward passes)
    const svg = fs.readFileSync(path.join(outDir, "scrub.svg"), "utf8");
    assert.match(svg, /^<svg[\s\S]*<\/svg>\s*$/);
    for (const s of ["L1H0", "L0H1", "MLP1", "token[pos-1]", "token[pos],token[pos-1]", "loss recovered", "random", "output (logits)"]) assert.ok(svg.includes(s), `svg shows ${s}`);
    assert.deepEqual(doc.files, [path.join(outDir, "scrub.svg"), path.join(outDir, "scrub.json")]);
    assert.equal((JSON.parse(fs.readFileSync(path.join(outDir, "scrub.json"), "utf8")) as { recovered: number }).recovered, doc.recovered);
  });

  it("the empty hypothesis recovers 0", () => {
    const r = cli("scrub", folder, "--hypothesis", emptyFile, "--data", dataFile, "--samples", "20", "--json");
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as { recovered: number; scrubbedLoss: number; randomLoss: number };
    assert.equal(doc.scrubbedLoss, doc.randomLoss);
    assert.ok(doc.recovered === 0);
  });

  it("fails clearly on a malformed hypothesis, a component the model lacks, and missing flags", () => {
    const bad = path.join(dir, "bad.json");
    fs.writeFileSync(bad, JSON.stringify({ output: [{ node: "head", layer: 0, head: 0, feature: "token[pos-x]" }] }));
    let r = cli("scrub", folder, "--hypothesis", bad, "--data", dataFile, "--json");
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--hypothesis: output\[0\]: unknown feature "token\[pos-x\]"/);
    assert.match(r.stdout, /"UsageError"/);
    fs.writeFileSync(bad, JSON.stringify({ output: [{ node: "head", layer: 5, head: 0, feature: "any" }] }));
    r = cli("scrub", folder, "--hypothesis", bad, "--data", dataFile);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--hypothesis: .*L5H0 is not a head of this model/);
    r = cli("scrub", folder, "--data", dataFile);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--hypothesis: needs a hypothesis \(JSON inline or a \.json file\)/);
  });
});
