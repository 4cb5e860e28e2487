// `circuitscope patch`, `lens` and `ablate` end to end: spawn the built CLI on the shared tiny-gpt2
// snapshot (skipped when ../shared is absent), parse the one JSON document on stdout, check its
// shapes and keys and that --out wrote an SVG and the same JSON; plus one error case per command.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { cli, noTinyGpt2 as skip, tinyGpt2 as snapshot } from "./cli-helpers.js";

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), "circuitscope-techniques-"));

/** The SVG exists and is an SVG; the JSON file equals the stdout document; no temp files left. */
function checkFiles(dir: string, name: string, doc: { files: string[] }): void {
  const svg = path.join(dir, `${name}.svg`), json = path.join(dir, `${name}.json`);
  assert.deepEqual(doc.files, [svg, json]);
  assert.ok(fs.readFileSync(svg, "utf8").startsWith("<svg"), `${svg} starts with <svg`);
  assert.deepEqual(JSON.parse(fs.readFileSync(json, "utf8")), doc);
  assert.deepEqual(fs.readdirSync(dir).sort(), [`${name}.json`, `${name}.svg`]);
}

const CLEAN = "When Mary and John went to the store, John gave a drink to";
const CORRUPTED = "When Mary and John went to the store, Mary gave a drink to";

interface PatchDoc {
  by: string; site: string; direction: string; shape: number[]; values: number[][];
  axes: { name: string; labels: string[] }[];
  clean: { tokens: { id: number; str: string }[] };
  metric: { cleanLogitDiff: number; corruptedLogitDiff: number; target: number; source: number; illConditioned: boolean };
  files: string[];
}

test("patch --by pos --json --out: layer × position logit diff (raw: the pair is ill-conditioned), token labels, SVG + JSON", { skip }, () => {
  const dir = tmp();
  const r = cli("patch", snapshot, "--clean", CLEAN, "--corrupted", CORRUPTED, "--answer", " Mary", "--wrong", " John", "--out", dir, "--json");
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as PatchDoc;
  const T = doc.clean.tokens.length;
  assert.equal(doc.by, "pos"); assert.equal(doc.site, "resid_pre"); assert.equal(doc.direction, "denoising");
  assert.deepEqual(doc.shape, [2, T]);
  assert.equal(doc.values.length, 2);
  for (const row of doc.values) { assert.equal(row.length, T); for (const v of row) assert.ok(Number.isFinite(v)); }
  assert.deepEqual(doc.axes.map((a) => a.name), ["layer", "pos"]);
  assert.equal(doc.axes[1]!.labels.length, T);
  assert.ok(doc.axes[1]!.labels.some((l) => l.includes("John") && l.includes("Mary")), "the differing position is labelled with both tokens");
  // tiny-gpt2's clean and corrupted logit diffs differ by ~2.6e-8, so the values are the raw logit
  // difference (test/ill-conditioned.test.ts). Denoising: the target run is the corrupted one, the source the clean one.
  assert.equal(doc.metric.illConditioned, true);
  assert.equal(doc.metric.target, doc.metric.corruptedLogitDiff);
  assert.equal(doc.metric.source, doc.metric.cleanLogitDiff);
  // At layer 0 only the position where the prompts differ carries a difference: every other cell is the
  // corrupted run's, and patching the whole clean residual there restores the clean metric exactly.
  const diff = doc.axes[1]!.labels.findIndex((l) => l.includes("/"));
  assert.equal(doc.axes[1]!.labels.filter((l) => l.includes("/")).length, 1);
  doc.values[0]!.forEach((v, p) => assert.equal(v, p === diff ? doc.metric.cleanLogitDiff : doc.metric.corruptedLogitDiff, `layer 0 pos ${p}: ${v}`));
  checkFiles(dir, "patch", doc);
});

test("patch --by head: layer × head; unequal prompt lengths are a usage error", { skip }, () => {
  const r = cli("patch", snapshot, "--clean", CLEAN, "--corrupted", CORRUPTED, "--answer", " Mary", "--wrong", " John", "--by", "head", "--direction", "noising", "--json");
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as PatchDoc;
  assert.equal(doc.site, "z"); assert.equal(doc.direction, "noising");
  assert.deepEqual(doc.shape, [2, 2]);
  assert.deepEqual(doc.axes.map((a) => a.name), ["layer", "head"]);
  assert.deepEqual(doc.files, []);

  const bad = cli("patch", snapshot, "--clean", "A B C", "--corrupted", "A B", "--answer", " Mary", "--wrong", " John", "--json");
  assert.equal(bad.code, 2);
  const err = JSON.parse(bad.stdout) as { error: { message: string } };
  assert.match(err.error.message, /same number of tokens/);
  assert.match(bad.stderr, /clean has 4 .* corrupted has 3/);
});

interface LensDoc {
  tokens: { id: number; str: string }[]; shape: number[]; axes: { name: string; labels: string[] }[];
  topTokens: { id: number; str: string; prob: number }[][][];
  target: null | { id: number; str: string; prob: number[][]; rank: number[][] };
  files: string[];
}

test("lens --target --top 3 --json --out: top tokens and target prob per layer × position", { skip }, () => {
  const dir = tmp();
  const r = cli("lens", snapshot, "The Eiffel Tower is in", "--target", " Paris", "--top", "3", "--out", dir, "--json");
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as LensDoc;
  const T = doc.tokens.length;
  assert.equal(T, 8);
  assert.deepEqual(doc.shape, [3, T]); // 0_pre, 1_pre, final_post
  assert.deepEqual(doc.axes[0]!.labels, ["0_pre", "1_pre", "final_post"]);
  assert.equal(doc.topTokens.length, 3);
  for (const row of doc.topTokens) {
    assert.equal(row.length, T);
    for (const cell of row) {
      assert.equal(cell.length, 3);
      for (let i = 1; i < cell.length; i++) assert.ok(cell[i - 1]!.prob >= cell[i]!.prob);
    }
  }
  assert.ok(doc.target);
  assert.equal(doc.target.str, " Paris");
  assert.equal(doc.target.prob.length, 3); assert.equal(doc.target.prob[0]!.length, T);
  for (const row of doc.target.rank) for (const v of row) assert.ok(Number.isInteger(v) && v >= 0);
  checkFiles(dir, "lens", doc);

  const plain = JSON.parse(cli("lens", snapshot, "The Eiffel Tower is in", "--json").stdout) as LensDoc;
  assert.equal(plain.target, null);
  assert.equal(plain.topTokens[0]![0]!.length, 5);
});

test("lens: a multi-token --target is a usage error", { skip }, () => {
  const r = cli("lens", snapshot, "The Eiffel Tower is in", "--target", " Parisian hello", "--json");
  assert.equal(r.code, 2);
  assert.match((JSON.parse(r.stdout) as { error: { message: string } }).error.message, /--target: .*not a single token/);
});

interface AblateDoc {
  kind: string; shape: number[]; values: number[][]; axes: { name: string; labels: string[] }[];
  metric: { name: string; clean: number }; wrong: null | { str: string }; files: string[];
}

test("ablate --json --out: zero head ablation, Δ logit diff per layer × head, SVG + JSON", { skip }, () => {
  const dir = tmp();
  const r = cli("ablate", snapshot, "The Eiffel Tower is in", "--answer", " Paris", "--wrong", " London", "--out", dir, "--json");
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as AblateDoc;
  assert.equal(doc.kind, "zero");
  assert.equal(doc.metric.name, "logit difference");
  assert.deepEqual(doc.shape, [2, 2]);
  assert.deepEqual(doc.axes.map((a) => a.name), ["layer", "head"]);
  for (const row of doc.values) for (const v of row) assert.ok(Number.isFinite(v));
  checkFiles(dir, "ablate", doc);

  const res = cli("ablate", snapshot, "The Eiffel Tower is in", "--answer", " Paris", "--kind", "resample", "--reference", "The Eiffel Tower is on", "--json");
  assert.equal(res.code, 0, res.stderr);
  const d = JSON.parse(res.stdout) as AblateDoc;
  assert.equal(d.kind, "resample"); assert.equal(d.wrong, null); assert.equal(d.metric.name, "probability");
  assert.deepEqual(d.shape, [2, 2]);
});

test("ablate: mean without --reference is a usage error", { skip }, () => {
  const r = cli("ablate", snapshot, "The Eiffel Tower is in", "--answer", " Paris", "--kind", "mean", "--json");
  assert.equal(r.code, 2);
  assert.match((JSON.parse(r.stdout) as { error: { message: string } }).error.message, /--reference: .*needs a reference prompt/);
});
