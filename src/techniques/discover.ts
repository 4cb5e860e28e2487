// Automated circuit discovery over the edge graph (analysis/circuit-discovery) — EAP (Syed et al.
// 2023), EAP-IG (Hanna et al. 2024) or ACDC (Conmy et al. 2023) — with a normalised logit-difference
// metric (0 = corrupted, 1 = clean): the circuit's edges, its faithfulness and the faithfulness
// curve over edges kept. An ill-conditioned pair (clean − corrupted ~0, conditioning.ts) runs on the
// raw logit difference and is flagged in the result, the text and the pictures.
import { z } from "zod";
import { discoverCircuit, DISCOVERY_METHODS } from "../analysis/circuit-discovery/index.js";
import { normalizedMetric } from "../analysis/patching-metrics.js";
import { spanConditioning } from "../analysis/conditioning.js";
import { lineChart } from "../plot/svg.js";
import { circuitGraphSvg, type DrawnNode } from "../plot/graph.js";
import { buildGraph } from "../analysis/circuit-discovery/graph.js";
import { conditioningFields, contrastPair, illTitle, pairFields } from "./pair.js";
import { defineTechnique, InputError, progressOf } from "./technique.js";

/** The circuit's size and faithfulness; the normalised metric is ill-conditioned when the clean and corrupted logit diffs are ~equal. */
export function circuitLine(f: { edges: number; normalized: number }, total: number, cleanLd: number, corruptedLd: number): string {
  const lds = `logit diff clean ${cleanLd.toFixed(4)}, corrupted ${corruptedLd.toFixed(4)}`;
  if (spanConditioning(cleanLd, corruptedLd).illConditioned)
    return `circuit: ${f.edges} of ${total} edges; faithfulness ill-conditioned: clean − corrupted logit diff is ${(cleanLd - corruptedLd).toExponential(2)}, ~0 next to the logit diffs (${lds}), so the edges' selection and faithfulness are not meaningful`;
  return `circuit: ${f.edges} of ${total} edges; faithfulness ${f.normalized.toFixed(4)} (${lds}, circuit ${(corruptedLd + f.normalized * (cleanLd - corruptedLd)).toFixed(4)})`;
}

const input = z.object({
  ...pairFields,
  method: z.enum(DISCOVERY_METHODS as ["eap", "eap-ig", "acdc"]).default("eap-ig").describe("eap (Syed et al. 2023), eap-ig (Hanna et al. 2024) or acdc (Conmy et al. 2023)"),
  topN: z.number().int("must be a non-negative integer").min(0, "must be a non-negative integer").optional().describe("eap, eap-ig: keep the N edges with the largest |score|"),
  threshold: z.number().min(0, "must be a number ≥ 0").optional().describe("eap, eap-ig: keep edges with |score| ≥ T; acdc: τ (default 0.01 for kl, 0.02 for metric)"),
  steps: z.number().int("must be a positive integer").min(1, "must be a positive integer").default(10).describe("eap-ig: points on the input path"),
  criterion: z.enum(["kl", "metric"]).default("kl").describe("acdc: kl (KL to the clean model) or metric (|Δ normalised metric|)"),
  target: z.number().default(0.8).describe("eap, eap-ig without top-n / threshold: the fewest top edges keeping this fraction of the metric"),
});

export const discover = defineTechnique({
  name: "discover",
  summary: "automated circuit discovery over edges (EAP, EAP-IG, ACDC) with faithfulness",
  input,
  long: true,
  async run(s, inp, opts) {
    const { method, topN, threshold } = inp;
    if (topN !== undefined && threshold !== undefined) throw new InputError("threshold", "give top-n or threshold, not both");
    if (method === "acdc" && topN !== undefined) throw new InputError("topN", "is for eap and eap-ig; ACDC takes threshold (τ)");
    const edges = buildGraph(s.model.cfg).edges.length;
    if (topN !== undefined && topN > edges) throw new InputError("topN", `the model's graph has ${edges} edges, fewer than ${topN}`);
    // Two steps a surface can stop between: the pair measured, the circuit found (the analysis itself runs in one piece).
    const p = progressOf(opts, 2, "discover");
    const pair = contrastPair(s, inp);
    const { clean, corrupted, base, cleanLd, corruptedLd, conditioning } = pair;
    await p.step();
    const ill = conditioning.illConditioned;
    const metric = ill ? base : normalizedMetric(base, cleanLd, corruptedLd);
    const r = discoverCircuit(s.model, {
      clean: [clean], corrupted: [corrupted], metric, method, topN, threshold, steps: inp.steps, target: inp.target, criterion: inp.criterion,
      onProgress: (stage) => opts.onProgress?.({ done: 1, total: 2, stage }),
    });
    await p.step();
    const g = r.graph;
    return {
      method, selection: r.selection, ...pair.doc,
      metric: { name: metric.name, cleanLogitDiff: cleanLd, corruptedLogitDiff: corruptedLd, ...conditioningFields(conditioning) },
      graph: { senders: g.senders.map((x) => x.name), receivers: g.receivers.map((x) => x.name), edges: g.edges.length },
      scores: method === "acdc" ? "ACDC: the change of the criterion when the edge was removed (0 if never tested)" : `estimated Δ ${ill ? "raw" : "normalised"} logit diff when the edge alone is corrupted`,
      circuit: { edges: r.edges, count: r.edges.length },
      faithfulness: r.faithfulness,
      curve: r.curve,
      allEdges: g.edges.map((e, i) => ({ name: e.name, score: r.scores[i]!, inCircuit: r.mask[i] === 1 })),
      acdcTested: r.acdcTested,
      /** The edge graph as the circuit picture draws it: nodes and, per edge (in allEdges' order), sender and receiver index. */
      layout: {
        n_layers: g.n_layers,
        senders: g.senders.map(({ order: _o, ...n }) => n as DrawnNode), receivers: g.receivers.map(({ order: _o, ...n }) => n as DrawnNode),
        edges: g.edges.map((e) => ({ from: e.from, to: e.to })),
      },
    };
  },
  text(r) {
    const ill = r.metric.illConditioned;
    return [
      ...(r.metric.note !== undefined ? [`${r.metric.note}; faithfulness below is not meaningful`] : []),
      `${r.method}: ${r.selection}`,
      circuitLine(r.faithfulness, r.graph.edges, r.metric.cleanLogitDiff, r.metric.corruptedLogitDiff),
      ...r.circuit.edges.slice(0, 30).map((e) => `  ${e.name.padEnd(28)} ${ill ? e.score.toExponential(2) : e.score.toFixed(4)}`),
      ...(r.circuit.edges.length > 30 ? [`  … ${r.circuit.edges.length - 30} more`] : []),
      ill ? `circuit logit diff over top-n: ${r.curve.map((p) => `${p.topN}:${p.metric.toPrecision(6)}`).join(" ")}`
        : `faithfulness over top-n: ${r.curve.map((p) => `${p.topN}:${p.normalized.toFixed(2)}`).join(" ")}`,
    ].join("\n");
  },
  pictures(r) {
    const ill = r.metric.illConditioned, warn = ill ? `${illTitle(r.metric)} — ` : "";
    const n = r.faithfulness.edges;
    const curve = lineChart([
      { name: "top-n edges by |score|", x: r.curve.map((p) => p.topN), y: r.curve.map((p) => p.normalized) },
      { name: `circuit found (${n} edges)`, x: [n, n], y: [0, r.faithfulness.normalized], dashed: true },
      { name: "clean model", x: [0, r.graph.edges], y: [1, 1], dashed: true, color: "#999" },
    ], { title: `${warn}${r.method}: faithfulness of the circuit alone`, xLabel: "edges kept", yLabel: `normalised logit diff (1 = clean)${ill ? ", not meaningful" : ""}` });
    const scores = r.allEdges.map((e) => e.score), mask = r.allEdges.map((e) => (e.inCircuit ? 1 : 0));
    const title = `${warn}${r.method} circuit: ${n} of ${r.graph.edges} edges, faithfulness ${ill ? "not meaningful" : r.faithfulness.normalized.toFixed(3)}`;
    return [{ name: "circuit-curve.svg", content: curve }, { name: "circuit.svg", content: circuitGraphSvg(r.layout, scores, mask, { title }) }];
  },
});
