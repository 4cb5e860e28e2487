// Acceptance: 1,000 forward/backward/AdamW iterations of a small MLP keep resident memory flat
// (growth under 10% over 1,000 iterations after a 1,000-iteration warm-up, each measured after forced GC).
// The loop runs in a child process started with --expose-gc (test/fixtures/memory-mlp.mjs) so GC
// can be forced and this process's own allocations do not blur the numbers. A second run keeps
// every step's loss, and so its graph, alive, to show the measurement does catch a leak.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

// This file runs as dist/test/memory.test.js; the fixture is plain JS kept in the source tree.
const distSrc = fileURLToPath(new URL("../src/", import.meta.url));
const fixture = fileURLToPath(new URL("../../test/fixtures/memory-mlp.mjs", import.meta.url));

interface Snapshot { rss: number; heapUsed: number }
interface Report { atStart: Snapshot; atEnd: Snapshot; loss: number; kept: number; ms: number }

function runFixture(mode?: "leak"): Report {
  const r = spawnSync(process.execPath, ["--expose-gc", fixture, distSrc, ...(mode ? [mode] : [])], { encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, `fixture exited with ${r.status} (signal ${r.signal}):\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as Report;
}

const mb = (b: number) => `${(b / 1048576).toFixed(1)} MB`;
const growth = (r: Report, k: keyof Snapshot) => (r.atEnd[k] - r.atStart[k]) / r.atStart[k];
const describeRun = (r: Report) =>
  `rss ${mb(r.atStart.rss)} → ${mb(r.atEnd.rss)} (${(100 * growth(r, "rss")).toFixed(1)}%), ` +
  `heapUsed ${mb(r.atStart.heapUsed)} → ${mb(r.atEnd.heapUsed)} (${(100 * growth(r, "heapUsed")).toFixed(1)}%), ${r.ms} ms`;

test("1,000 training iterations of a small MLP keep resident memory within 10%", (t) => {
  const r = runFixture();
  t.diagnostic(describeRun(r));
  assert.ok(Number.isFinite(r.loss), "the loop really trained");
  assert.ok(growth(r, "rss") < 0.1, `resident memory grew ${(100 * growth(r, "rss")).toFixed(1)}%: ${describeRun(r)}`);
});

test("the same measurement flags a leak: keeping each step's graph alive grows memory past 10%", (t) => {
  const r = runFixture("leak");
  t.diagnostic(describeRun(r));
  assert.equal(r.kept, 2000);
  assert.ok(growth(r, "rss") > 0.1, `expected the retained graphs to show: ${describeRun(r)}`);
});
