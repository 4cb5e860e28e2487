// `circuitscope scrub <snapshot-folder> --hypothesis hyp.json --data tokens.json`: causal scrubbing
// (Chan et al. 2022). Resamples every node of the hypothesis from inputs that agree with it on the
// node's feature, unnamed components from random inputs, and reports the fraction of the next-token
// loss recovered: (L_random − L_scrubbed) / (L_random − L_model). With --out writes scrub.svg (the
// hypothesis tree beside the three losses) and scrub.json.
import fs from "node:fs";
import { loadPretrained } from "../../io/snapshot.js";
import { encodeText } from "../../model/tokens.js";
import { causalScrub, componentName, featureName, type Hypothesis, type HypothesisNode, type ScrubResult } from "../../analysis/causal-scrubbing.js";
import { spanConditioning } from "../../analysis/conditioning.js";
import { parseHypothesis } from "../../analysis/hypothesis-json.js";
import { scrubChart, type ScrubTreeNode } from "../../plot/scrub-tree.js";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";
import { writeOutputs } from "../outputs.js";

const USAGE = `circuitscope scrub <snapshot-folder> --hypothesis hyp.json --data <tokens.json | text file> [--seq-len N] [--positions a-b] [--samples N] [--seed S] [--out dir] [--json]
  --hypothesis F   the hypothesis, JSON:
                     { "name": "induction", "output": [ <node>, ... ] }     the important parents of the logits
                     <node> = { "node": "embed" }                           token + position embedding
                            | { "node": "head", "layer": L, "head": H, "q": [<node>...], "k": [...], "v": [...] }
                            | { "node": "mlp", "layer": L, "in": [<node>...] }
                     each with "feature": which inputs it may be resampled from (equal feature = swappable):
                       "whole" (the input itself), "any" (any input), "token" (token at the node's position),
                       "prev-token", "token[pos-2]", "token[pos+1]", "token[0]" (absolute), or a list of these (all agree).
                     Components a node's input does not name are unimportant: they come from one random input.
  --data F         a JSON array of equal-length token-id lists, or a text file cut into --seq-len-token
                   sequences with the model's tokenizer (no BOS added)
  --seq-len N      tokens per sequence for text data (default min(32, n_ctx))
  --positions a-b  positions whose next-token loss is scored (default all but the last); e.g. 12-22 or 3,5,7
  --samples N      reference (sequence, position) pairs scored (default 200)
  --seed S         sampling seed (default 0)
  --out dir        write scrub.svg and scrub.json there`;

/** Sequences from --data: a JSON array of token lists, or text tokenized and cut into seqLen chunks. */
function readData(file: string, folder: string, seqLen: number | undefined, nCtx: number): number[][] {
  let raw: string;
  try { raw = fs.readFileSync(file, "utf8"); } catch (e) { throw new UsageError(`--data: cannot read ${file}: ${(e as Error).message}`); }
  if (file.endsWith(".json")) {
    let v: unknown;
    try { v = JSON.parse(raw); } catch (e) { throw new UsageError(`--data: ${file} is not valid JSON: ${(e as Error).message}`); }
    if (!Array.isArray(v) || !v.every((r) => Array.isArray(r) && r.every((x) => typeof x === "number"))) throw new UsageError(`--data: ${file} must be a JSON array of token-id lists, e.g. [[1, 2, 3], [4, 5, 6]]`);
    return v as number[][];
  }
  const { tokenizer } = loadPretrained(folder);
  if (!tokenizer) throw new UsageError(`--data ${file} is text, but ${folder} has no tokenizer.json; pass a JSON array of token ids instead`);
  const T = seqLen ?? Math.min(32, nCtx);
  if (!Number.isInteger(T) || T < 2 || T > nCtx) throw new UsageError(`--seq-len must be an integer in [2, ${nCtx}], got ${T}`);
  const ids = encodeText(tokenizer, raw, { prependBos: false });
  const out: number[][] = [];
  for (let i = 0; i + T <= ids.length; i += T) out.push(ids.slice(i, i + T));
  if (out.length < 2) throw new UsageError(`--data: ${file} has ${ids.length} tokens, fewer than two sequences of ${T}`);
  return out;
}

function parsePositions(s: string): number[] {
  const out: number[] = [];
  for (const part of s.split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new UsageError(`--positions must look like 12-22 or 3,5,7, got "${s}"`);
    const a = Number(m[1]), b = m[2] === undefined ? a : Number(m[2]);
    for (let p = a; p <= b; p++) out.push(p);
  }
  return out;
}

/** The hypothesis as plain tree data for the picture. */
export function hypothesisTree(h: Hypothesis): ScrubTreeNode[] {
  const conv = (n: HypothesisNode, edge: string): ScrubTreeNode => ({
    label: componentName(n), feature: featureName(n.feature), edge,
    children: (["q", "k", "v", "in"] as const).flatMap((k) => (n[k] ?? []).map((c) => conv(c, k))),
  });
  return h.output.map((n) => conv(n, ""));
}

/** The text result; the fraction recovered is ill-conditioned when the random loss is ~ the model's loss. */
export function scrubLines(r: Pick<ScrubResult, "hypothesis" | "samples" | "modelLoss" | "scrubbedLoss" | "scrubbedStderr" | "randomLoss" | "recovered" | "recoveredStderr">): string[] {
  const span = r.randomLoss - r.modelLoss;
  return [
    `causal scrubbing of "${r.hypothesis}" over ${r.samples} (sequence, position) samples`,
    `  model loss     ${r.modelLoss.toFixed(4)}`,
    `  scrubbed loss  ${r.scrubbedLoss.toFixed(4)} ± ${r.scrubbedStderr.toFixed(4)}`,
    `  random loss    ${r.randomLoss.toFixed(4)}`,
    spanConditioning(r.randomLoss, r.modelLoss).illConditioned
      ? `  loss recovered ill-conditioned: random − model loss is ${span.toExponential(2)}, ~0 next to the losses, so no fraction is stated`
      : `  loss recovered ${(100 * r.recovered).toFixed(1)}% ± ${(100 * r.recoveredStderr).toFixed(1)}%`,
  ];
}

export const scrub: Command = {
  name: "scrub",
  summary: "causal scrubbing: fraction of loss a hypothesis (JSON) recovers under resampling",
  usage: USAGE,
  run(pos, flags, out) {
    const hypFile = flags.str("hypothesis"), dataFile = flags.str("data"), outDir = flags.str("out");
    const seqLenFlag = flags.str("seq-len"), positionsFlag = flags.str("positions");
    const samples = flags.num("samples", 200), seed = flags.num("seed", 0);
    flags.checkUnknown();
    const [folder, ...extra] = pos;
    if (folder === undefined) throw new UsageError("scrub needs a snapshot folder");
    if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(" ")}`);
    if (hypFile === undefined) throw new UsageError("scrub needs --hypothesis hyp.json");
    if (dataFile === undefined) throw new UsageError("scrub needs --data (a JSON array of token lists or a text file)");
    if (!Number.isInteger(samples) || samples < 1) throw new UsageError(`--samples must be a positive integer, got ${samples}`);
    if (!Number.isInteger(seed)) throw new UsageError(`--seed must be an integer, got ${seed}`);
    let hypJson: unknown;
    try { hypJson = JSON.parse(fs.readFileSync(hypFile, "utf8")); } catch (e) { throw new UsageError(`--hypothesis: cannot read ${hypFile} as JSON: ${(e as Error).message}`); }
    const hyp = parseHypothesis(hypJson);

    const { model, config: cfg } = loadPretrained(folder);
    const sequences = readData(dataFile, folder, seqLenFlag === undefined ? undefined : Number(seqLenFlag), cfg.n_ctx);
    const positions = positionsFlag === undefined ? undefined : parsePositions(positionsFlag);
    out.info(`scrubbing "${hyp.name ?? "hypothesis"}" on ${sequences.length} sequences of ${sequences[0]?.length ?? 0} tokens, ${samples} samples`);
    const r = causalScrub(model, hyp, { sequences, ...(positions ? { positions } : {}) }, { samples, seed });
    const doc = {
      model: folder, hypothesis: hypJson, name: r.hypothesis, samples: r.samples, seed,
      sequences: sequences.length, seqLen: sequences[0]!.length,
      modelLoss: r.modelLoss, scrubbedLoss: r.scrubbedLoss, randomLoss: r.randomLoss,
      recovered: r.recovered, recoveredStderr: r.recoveredStderr, scrubbedStderr: r.scrubbedStderr,
      files: [] as string[],
    };
    if (outDir !== undefined) {
      const svg = scrubChart({
        title: `causal scrubbing: ${r.hypothesis}`, tree: hypothesisTree(hyp),
        modelLoss: r.modelLoss, scrubbedLoss: r.scrubbedLoss, randomLoss: r.randomLoss, recovered: r.recovered, recoveredStderr: r.recoveredStderr,
      });
      writeOutputs(outDir, "scrub", svg, doc);
    }
    out.result(doc, () => [...scrubLines(r), ...(doc.files.length ? [`files: ${doc.files.join(", ")}`] : [])].join("\n"));
  },
};
