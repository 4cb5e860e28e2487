// `circuitscope probe` and `ablate --sweep` end to end on the shared tiny-gpt2 snapshot (random
// weights, real GPT-2 tokenizer; skipped when ../shared is absent): one JSON document on stdout,
// shapes and exact zeros that causality fixes, SVG + JSON files, and the usage errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { cli, noTinyGpt2 as skip, tinyGpt2 as snapshot } from "./cli-helpers.js";

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), "circuitscope-probe-"));

/** --out wrote exactly name.svg (an SVG) and name.json (the stdout document). */
function wrote(dir: string, name: string, doc: { files: string[] }): void {
  assert.deepEqual(fs.readdirSync(dir).sort(), [`${name}.json`, `${name}.svg`]);
  assert.deepEqual(doc.files, [path.join(dir, `${name}.svg`), path.join(dir, `${name}.json`)]);
  assert.match(fs.readFileSync(doc.files[0]!, "utf8"), /^<svg/);
  assert.deepEqual(JSON.parse(fs.readFileSync(doc.files[1]!, "utf8")), doc);
}

interface ProbeDoc {
  axes: { resid: { name: string; labels: string[] }[]; components: string[] };
  mean: { resid: number[][]; heads: number[][]; mlps: number[]; logitDiff: { diff: number }; dla: { diff: number[] }; topComponent: { label: string } };
  pairs: { differing: number[]; a: { tokens: unknown[] }; dla: { diff: number[] }; logitDiff: { diff: number } }[];
  answer: { str: string } | null; files: string[];
}

test("probe --a --b --json --out: exact zeros before the swapped token, DLA differences add up, SVG + JSON", { skip }, () => {
  const dir = tmp();
  const r = cli("probe", snapshot, "--a", "The doctor said that", "--b", "The nurse said that", "--answer", " he", "--wrong", " she", "--out", dir, "--json");
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as ProbeDoc;
  const T = doc.pairs[0]!.a.tokens.length, k = doc.pairs[0]!.differing[0]!;
  assert.deepEqual(doc.pairs[0]!.differing, [2]); // <|endoftext|> The ·doctor/·nurse ·said ·that
  assert.equal(doc.axes.resid[1]!.labels[k], "·doctor/·nurse");
  assert.deepEqual(doc.axes.resid[0]!.labels, ["0_pre", "1_pre", "final_post"]);
  assert.equal(doc.mean.resid.length, 3);
  for (const row of doc.mean.resid) { assert.equal(row.length, T); for (let p = 0; p < k; p++) assert.equal(row[p], 0); assert.ok(row[k]! > 0); }
  assert.deepEqual([doc.mean.heads.length, doc.mean.heads[0]!.length, doc.mean.mlps.length], [2, 2, 2]);
  const sum = doc.mean.dla.diff.reduce((s, x) => s + x, 0);
  assert.ok(Math.abs(sum - doc.mean.logitDiff.diff) < 1e-5, `Σ ΔDLA ${sum} vs Δ logit diff ${doc.mean.logitDiff.diff}`);
  assert.ok(doc.axes.components.includes(doc.mean.topComponent.label));
  assert.equal(doc.answer?.str, " he");
  wrote(dir, "probe", doc);
});

test("probe --pairs: one result per line, per-line targets, means; malformed lines and length mismatches are usage errors", { skip }, () => {
  const dir = tmp(), file = path.join(dir, "pairs.jsonl");
  fs.writeFileSync(file, ['{"a": "The doctor said that", "b": "The nurse said that"}', "", '{"a": "My boss thinks", "b": "My aunt thinks", "answer": " she", "wrong": " he"}'].join("\n"));
  const r = cli("probe", snapshot, "--pairs", file, "--answer", " he", "--wrong", " she", "--json");
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as ProbeDoc;
  assert.equal(doc.pairs.length, 2);
  assert.equal(doc.answer, null, "the pairs have different targets");
  assert.ok(Math.abs(doc.mean.logitDiff.diff - (doc.pairs[0]!.logitDiff.diff + doc.pairs[1]!.logitDiff.diff) / 2) < 1e-12);
  assert.equal(doc.axes.resid[1]!.labels.at(-1), "-1", "unequal lengths: positions counted from the end");

  fs.writeFileSync(file, '{"a": "The doctor said that", "b": "The nurse said that"}\n{"a": "oops"}\n');
  const bad = cli("probe", snapshot, "--pairs", file, "--answer", " he", "--wrong", " she", "--json");
  assert.equal(bad.code, 2);
  assert.match((JSON.parse(bad.stdout) as { error: { message: string } }).error.message, /pairs\.jsonl:2: b: missing: give text or token ids/);
  const len = cli("probe", snapshot, "--a", "The doctor said that", "--b", "The nurse practitioner said that", "--answer", " he", "--wrong", " she", "--json");
  assert.equal(len.code, 2);
  assert.match((JSON.parse(len.stdout) as { error: { message: string } }).error.message, /same number of tokens: A has 5/);
});

interface SweepDoc { sweep: string; shape: number[]; values: number[] | number[][]; axes: { name: string }[]; top: { label: string; value: number }[]; files: string[] }

test("ablate --sweep mlps|positions|neurons: shapes, axes, top cells, SVG + JSON; --sweep neurons needs --layer", { skip }, () => {
  const prompt = "The Eiffel Tower is in", args = ["--answer", " Paris", "--wrong", " London", "--json"];
  const expect = { mlps: [[2], ["layer"]], positions: [[2, 8], ["layer", "pos"]], neurons: [[8], ["neuron"]] } as const;
  for (const sweep of ["mlps", "positions", "neurons"] as const) {
    const dir = tmp();
    const r = cli("ablate", snapshot, prompt, ...args, "--sweep", sweep, ...(sweep === "neurons" ? ["--layer", "1", "--top", "3"] : []), "--kind", "mean", "--reference", "The Eiffel Tower is on", "--out", dir);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as SweepDoc;
    assert.equal(doc.sweep, sweep);
    assert.deepEqual(doc.shape, expect[sweep][0]);
    assert.deepEqual(doc.axes.map((a) => a.name), expect[sweep][1]);
    const flat = (doc.values as (number | number[])[]).flat();
    assert.equal(flat.length, doc.shape.reduce((a, b) => a * b, 1));
    assert.equal(doc.top.length, sweep === "neurons" ? 3 : Math.min(10, flat.length));
    assert.equal(Math.abs(doc.top[0]!.value), Math.max(...flat.map(Math.abs)));
    wrote(dir, "ablate", doc);
  }
  const bad = cli("ablate", snapshot, prompt, ...args, "--sweep", "neurons");
  assert.equal(bad.code, 2);
  assert.match((JSON.parse(bad.stdout) as { error: { message: string } }).error.message, /--layer: .*needs a layer/);
});
