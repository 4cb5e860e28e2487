// `circuitscope discover <snapshot-folder> --clean "<prompt>" --corrupted "<prompt>" --answer " Mary" --wrong " John" --method eap|eap-ig|acdc`:
// automated circuit discovery over the edge graph (src/analysis/circuit-discovery) with a normalised
// logit-difference metric (0 = corrupted, 1 = clean). Prints the circuit's edges and faithfulness;
// with --out writes circuit.svg (the graph, circuit highlighted), circuit-curve.svg (faithfulness
// against edges kept) and circuit.json.
import { lineChart } from "../../plot/svg.js";
import { circuitGraphSvg } from "../../plot/graph.js";
import { discoverCircuit, DISCOVERY_METHODS, type DiscoveryMethod, type DiscoveryResult } from "../../analysis/circuit-discovery/index.js";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";
import { writeOutputFiles } from "../outputs.js";
import { loadContrastPair } from "../prompt-pair.js";
import { normalizedMetric } from "../../analysis/patching-metrics.js";
import { conditioningFields, illText, illTitle } from "../../techniques/pair.js";
import { spanConditioning } from "../../analysis/conditioning.js";

const USAGE = `circuitscope discover <snapshot-folder> --clean "<prompt>" --corrupted "<prompt>" --answer " Mary" --wrong " John" [--method eap|eap-ig|acdc] [--top-n N | --threshold T] [--steps m] [--criterion kl|metric] [--target f] [--out dir] [--no-bos] [--json]
  --clean, --corrupted  the two prompts; they must tokenise to the same number of tokens
  --answer, --wrong     single tokens; the metric is logit(answer) − logit(wrong) at the last position, normalised
  --method M            eap (Syed et al. 2023), eap-ig (Hanna et al. 2024, default) or acdc (Conmy et al. 2023)
  --top-n N             eap, eap-ig: keep the N edges with the largest |score|
  --threshold T         eap, eap-ig: keep edges with |score| ≥ T; acdc: τ (default 0.01 for kl, 0.02 for metric)
  --steps m             eap-ig: points on the input path (default 10)
  --criterion C         acdc: kl (KL to the clean model, default) or metric (|Δ normalised metric|)
  --target f            eap, eap-ig without --top-n/--threshold: the fewest top edges keeping f of the metric (default 0.8)
  --out dir             write circuit.svg, circuit-curve.svg and circuit.json there
  --no-bos              do not put the tokenizer's BOS token before the prompts`;

/** Faithfulness against the number of top edges kept, the chosen circuit marked. */
function curveSvg(r: DiscoveryResult): string {
  const xs = r.curve.map((p) => p.topN), ys = r.curve.map((p) => p.normalized);
  const n = r.faithfulness.edges;
  return lineChart([
    { name: "top-n edges by |score|", x: xs, y: ys },
    { name: `circuit found (${n} edges)`, x: [n, n], y: [0, r.faithfulness.normalized], dashed: true },
    { name: "clean model", x: [0, r.graph.edges.length], y: [1, 1], dashed: true, color: "#999" },
  ], { title: `${r.conditioning.illConditioned ? `${illTitle(r.conditioning)} — ` : ""}${r.method}: faithfulness of the circuit alone`, xLabel: "edges kept", yLabel: `normalised logit diff (1 = clean)${r.conditioning.illConditioned ? ", not meaningful" : ""}` });
}

/** The circuit's size and faithfulness; the normalised metric is ill-conditioned when the clean and corrupted logit diffs are ~equal. */
export function circuitLine(f: { edges: number; normalized: number }, total: number, cleanLd: number, corruptedLd: number): string {
  const lds = `logit diff clean ${cleanLd.toFixed(4)}, corrupted ${corruptedLd.toFixed(4)}`;
  if (spanConditioning(cleanLd, corruptedLd).illConditioned)
    return `circuit: ${f.edges} of ${total} edges; faithfulness ill-conditioned: clean − corrupted logit diff is ${(cleanLd - corruptedLd).toExponential(2)}, ~0 next to the logit diffs (${lds}), so the edges' selection and faithfulness are not meaningful`;
  return `circuit: ${f.edges} of ${total} edges; faithfulness ${f.normalized.toFixed(4)} (${lds}, circuit ${(corruptedLd + f.normalized * (cleanLd - corruptedLd)).toFixed(4)})`;
}

export const discover: Command = {
  name: "discover",
  summary: "automated circuit discovery over edges (EAP, EAP-IG, ACDC) with faithfulness",
  usage: USAGE,
  run(pos, flags, out) {
    const cleanText = flags.str("clean"), corruptedText = flags.str("corrupted");
    const answerText = flags.str("answer"), wrongText = flags.str("wrong");
    const method = flags.str("method", "eap-ig") as DiscoveryMethod;
    const topNFlag = flags.str("top-n"), thresholdFlag = flags.str("threshold");
    const steps = flags.num("steps", 10), target = flags.num("target", 0.8);
    const criterion = flags.str("criterion", "kl");
    const outDir = flags.str("out");
    const noBos = flags.bool("no-bos");
    flags.checkUnknown();
    const [folder, ...extra] = pos;
    if (folder === undefined) throw new UsageError("discover needs a snapshot folder");
    if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(" ")}`);
    if (!DISCOVERY_METHODS.includes(method)) throw new UsageError(`--method must be one of ${DISCOVERY_METHODS.join(", ")}, got ${method}`);
    if (criterion !== "kl" && criterion !== "metric") throw new UsageError(`--criterion must be kl or metric, got ${criterion}`);
    if (topNFlag !== undefined && thresholdFlag !== undefined) throw new UsageError("give --top-n or --threshold, not both");
    if (method === "acdc" && topNFlag !== undefined) throw new UsageError("--top-n is for eap and eap-ig; ACDC takes --threshold (τ)");
    const topN = topNFlag === undefined ? undefined : Number(topNFlag);
    if (topN !== undefined && !(Number.isInteger(topN) && topN >= 0)) throw new UsageError(`--top-n must be a non-negative integer, got "${topNFlag}"`);
    const threshold = thresholdFlag === undefined ? undefined : Number(thresholdFlag);
    if (threshold !== undefined && !(threshold >= 0)) throw new UsageError(`--threshold must be a number ≥ 0, got "${thresholdFlag}"`);
    if (!(Number.isInteger(steps) && steps >= 1)) throw new UsageError(`--steps must be a positive integer, got ${steps}`);

    const { model, clean, corrupted, base, cleanLd, corruptedLd, conditioning, doc: pair } =
      loadContrastPair("discover", folder, { clean: cleanText, corrupted: corruptedText, answer: answerText, wrong: wrongText, noBos });
    // An ill-conditioned pair (clean − corrupted ~0, conditioning.ts) runs on the raw logit difference and is flagged.
    const ill = conditioning.illConditioned;
    const metric = ill ? base : normalizedMetric(base, cleanLd, corruptedLd);
    const r = discoverCircuit(model, {
      clean: [clean], corrupted: [corrupted], metric, method, topN, threshold, steps, target, criterion,
      onProgress: (m) => out.info(m),
    });
    const g = r.graph;
    const doc = {
      model: folder, method, selection: r.selection,
      ...pair,
      metric: { name: metric.name, cleanLogitDiff: cleanLd, corruptedLogitDiff: corruptedLd, ...conditioningFields(conditioning) },
      graph: { senders: g.senders.map((s) => s.name), receivers: g.receivers.map((x) => x.name), edges: g.edges.length },
      scores: method === "acdc" ? "ACDC: the change of the criterion when the edge was removed (0 if never tested)" : `estimated Δ ${ill ? "raw" : "normalised"} logit diff when the edge alone is corrupted`,
      circuit: { edges: r.edges, count: r.edges.length },
      faithfulness: r.faithfulness,
      curve: r.curve,
      allEdges: g.edges.map((e, i) => ({ name: e.name, score: r.scores[i]!, inCircuit: r.mask[i] === 1 })),
      acdcTested: r.acdcTested,
      seconds: r.seconds,
      files: [] as string[],
    };
    if (outDir !== undefined) {
      const title = `${ill ? `${illTitle(conditioning)} — ` : ""}${method} circuit: ${r.faithfulness.edges} of ${g.edges.length} edges, faithfulness ${ill ? "not meaningful" : r.faithfulness.normalized.toFixed(3)}`;
      writeOutputFiles(outDir, [["circuit-curve.svg", curveSvg(r)], ["circuit.svg", circuitGraphSvg(g, r.scores, r.mask, { title })]], "circuit", doc);
    }
    out.result(doc, () => [
      ...(ill ? [`${illText(conditioning)}; faithfulness below is not meaningful`] : []),
      `${method}: ${r.selection}`,
      circuitLine(r.faithfulness, g.edges.length, cleanLd, corruptedLd),
      ...r.edges.slice(0, 30).map((e) => `  ${e.name.padEnd(28)} ${ill ? e.score.toExponential(2) : e.score.toFixed(4)}`),
      ...(r.edges.length > 30 ? [`  … ${r.edges.length - 30} more`] : []),
      ill ? `circuit logit diff over top-n: ${r.curve.map((p) => `${p.topN}:${p.metric.toPrecision(6)}`).join(" ")}`
        : `faithfulness over top-n: ${r.curve.map((p) => `${p.topN}:${p.normalized.toFixed(2)}`).join(" ")}`,
      ...(doc.files.length ? [`files: ${doc.files.join(", ")}`] : []),
    ].join("\n"));
  },
};
