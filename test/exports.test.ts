// The package's entry points: the root and one subpath per layer resolve through package.json's
// "exports" (a self-reference, as a user's `import "circuitscope/model"` would), and importing
// them selects no kernel backend until the first op needs one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { repo } from "./cli-helpers.js";

const SUBPATHS = ["tensor", "nn", "model", "io", "analysis", "techniques", "train", "sae", "plot"];

test("every layer is importable as circuitscope/<layer>, and the root as circuitscope", () => {
  const script = `
    const names = {};
    for (const s of ["", ${SUBPATHS.map((s) => JSON.stringify("/" + s)).join(", ")}]) names[s.slice(1) || "."] = Object.keys(await import("circuitscope" + s)).length;
    console.log(JSON.stringify(names));`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { cwd: repo, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const names = JSON.parse(r.stdout) as Record<string, number>;
  for (const [k, n] of Object.entries(names)) assert.ok(n > 0, `${k} exports something`);
  assert.deepEqual(Object.keys(names).sort(), [".", ...SUBPATHS].sort());
});

test("importing the package selects no backend; the first op does", () => {
  const script = `
    const reg = await import("circuitscope/tensor");
    const { chosenBackend } = await import(${JSON.stringify(`${repo}/dist/src/backend/registry.js`)});
    const before = chosenBackend();
    reg.zeros([2]).add(reg.zeros([2]));
    console.log(JSON.stringify({ before, after: chosenBackend() }));`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { cwd: repo, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const { before, after } = JSON.parse(r.stdout) as { before: string | null; after: string | null };
  assert.equal(before, null, "no backend is chosen at import");
  assert.ok(after, "an op chose one");
  assert.notEqual(after, "ts", "the first op picked an accelerated backend (native or wasm), as the root import used to");
});
