// `circuitscope discover` end to end on the shared tiny-gpt2 snapshot (random weights, the real GPT-2
// tokenizer; skipped when ../shared is absent): the JSON document's graph, circuit and curve agree
// with each other, --out writes the graph and curve SVGs (well-formed, one path per drawn edge) and
// the same JSON; plus bad flags. And the graph drawing itself on a hand-made graph.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { circuitGraphSvg } from "../src/plot/graph.js";
import { buildGraph, edgeIndex, emptyCircuit } from "../src/analysis/circuit-discovery/graph.js";
import { makeConfig } from "../src/model/config.js";
import { cli, noTinyGpt2 as skip, tinyGpt2 as snapshot } from "./cli-helpers.js";

const PROMPTS = ["--clean", "When Mary and John went to the store, John gave a drink to", "--corrupted", "When Mary and John went to the store, Mary gave a drink to", "--answer", " Mary", "--wrong", " John"];

interface Doc {
  method: string; selection: string;
  graph: { senders: string[]; receivers: string[]; edges: number };
  circuit: { edges: { name: string; from: string; to: string; score: number }[]; count: number };
  faithfulness: { edges: number; normalized: number; metric: number; kl: number };
  curve: { topN: number; edges: number; normalized: number }[];
  allEdges: { name: string; score: number; inCircuit: boolean }[];
  files: string[];
}

const pathCount = (svg: string) => (svg.match(/<path /g) ?? []).length;

test("discover --method eap-ig --top-n 5 --json --out: the circuit, its faithfulness and curve, two SVGs and the JSON", { skip }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "circuitscope-discover-"));
  const r = cli("discover", snapshot, ...PROMPTS, "--method", "eap-ig", "--top-n", "5", "--steps", "4", "--out", dir, "--json");
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as Doc;
  // tiny-gpt2: 2 layers × 2 heads with MLPs: senders input + 2·(2 + 1) = 7; receivers 2·(6 + 1) + 1 = 15.
  assert.equal(doc.graph.senders.length, 7); assert.equal(doc.graph.receivers.length, 15);
  assert.equal(doc.graph.edges, 6 + 3 + 6 * 4 + 6 + 7);
  assert.equal(doc.allEdges.length, doc.graph.edges);
  assert.equal(doc.method, "eap-ig"); assert.match(doc.selection, /top 5 edges/);
  // The circuit is the top 5 by |score| minus dangling edges, listed by decreasing |score|.
  const top5 = [...doc.allEdges].sort((a, b) => Math.abs(b.score) - Math.abs(a.score)).slice(0, 5).map((e) => e.name);
  assert.ok(doc.circuit.count <= 5 && doc.circuit.edges.every((e) => top5.includes(e.name)), JSON.stringify(doc.circuit));
  assert.deepEqual(doc.allEdges.filter((e) => e.inCircuit).map((e) => e.name).sort(), doc.circuit.edges.map((e) => e.name).sort());
  assert.equal(doc.faithfulness.edges, doc.circuit.count);
  assert.ok(Number.isFinite(doc.faithfulness.normalized));
  // The curve runs from the corrupted model (0 edges: 0) to the clean one (every edge: 1).
  assert.equal(doc.curve[0]!.topN, 0); assert.ok(Math.abs(doc.curve[0]!.normalized) < 1e-4);
  const last = doc.curve[doc.curve.length - 1]!;
  assert.equal(last.topN, doc.graph.edges); assert.ok(Math.abs(last.normalized - 1) < 1e-3, `${last.normalized}`);
  // Files: the curve, the graph, the JSON (equal to stdout).
  assert.deepEqual(doc.files, [path.join(dir, "circuit-curve.svg"), path.join(dir, "circuit.svg"), path.join(dir, "discover.json")]);
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, "discover.json"), "utf8")), doc);
  const svg = fs.readFileSync(path.join(dir, "circuit.svg"), "utf8");
  assert.ok(svg.startsWith("<svg") && svg.endsWith("</svg>"));
  assert.equal(pathCount(svg), doc.graph.edges, "one path per edge");
  assert.ok(fs.readFileSync(path.join(dir, "circuit-curve.svg"), "utf8").startsWith("<svg"));
  assert.deepEqual(fs.readdirSync(dir).sort(), ["circuit-curve.svg", "circuit.svg", "discover.json"]);
});

test("discover --method acdc: a circuit from ACDC; bad flags are usage errors", { skip }, () => {
  const r = cli("discover", snapshot, ...PROMPTS, "--method", "acdc", "--threshold", "0.001", "--json");
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as Doc;
  assert.match(doc.selection, /ACDC τ = 0\.001 \(kl\)/);
  assert.ok(doc.faithfulness.kl < 0.001 * doc.graph.edges, `KL ${doc.faithfulness.kl}`);
  for (const [flags, msg] of [
    [["--method", "magic"], /option '--method <value>' argument 'magic' is invalid\. Allowed choices are eap, eap-ig, acdc/],
    [["--method", "acdc", "--top-n", "3"], /--top-n: is for eap and eap-ig; ACDC takes threshold/],
    [["--top-n", "3", "--threshold", "0.1"], /not both/],
    [["--top-n", "-2"], /--top-n: must be a non-negative integer/],
  ] as const) {
    const bad = cli("discover", snapshot, ...PROMPTS, ...flags, "--json");
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(JSON.parse(bad.stdout).error.message, msg);
  }
});

test("circuitGraphSvg: one path per edge, circuit edges coloured by sign and widened by |score|, circuit nodes filled", () => {
  const g = buildGraph(makeConfig({ architecture: "attn-only", d_model: 8, n_layers: 2, n_heads: 2, d_vocab: 5 }));
  const scores = new Float64Array(g.edges.length), mask = emptyCircuit(g);
  const a = edgeIndex(g, "a0.h1->a1.h0<k>"), b = edgeIndex(g, "a1.h0->logits");
  scores[a] = -2; scores[b] = 1; mask[a] = 1; mask[b] = 1;
  const svg = circuitGraphSvg(g, scores, mask, { title: "t <1>" });
  assert.equal(pathCount(svg), g.edges.length);
  assert.match(svg, /stroke="#d62728" stroke-width="4\.8"[^>]*><title>a0\.h1 → a1\.h0&lt;k&gt;: -2<\/title>/);
  assert.match(svg, /stroke="#1f77b4" stroke-width="2\.8"[^>]*><title>a1\.h0 → logits: 1<\/title>/);
  assert.equal((svg.match(/fill="#fff3c4"/g) ?? []).length, 3, "a0.h1, a1.h0 and logits are in the circuit");
  assert.match(svg, /t &lt;1&gt;/);
  // Without background edges, only the circuit's.
  assert.equal(pathCount(circuitGraphSvg(g, scores, mask, { maxBackgroundEdges: 0 })), 2);
});
