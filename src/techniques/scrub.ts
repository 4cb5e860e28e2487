// Causal scrubbing (Chan et al. 2022): resamples every node of a hypothesis from inputs that agree
// with it on the node's feature, unnamed components from random inputs, and reports the fraction of
// the next-token loss recovered, (L_random − L_scrubbed) / (L_random − L_model). The hypothesis is
// JSON (the CLI reads it inline or from a file); the data are token-id lists, or text cut into
// seq-len-token sequences with the model's tokenizer.
import { z } from "zod";
import { causalScrub, checkHypothesis, componentName, featureName, HypothesisError, type Hypothesis, type HypothesisNode, type ScrubResult } from "../analysis/causal-scrubbing.js";
import { spanConditioning } from "../analysis/conditioning.js";
import { parseHypothesis } from "../analysis/hypothesis-json.js";
import { encodeText } from "../model/tokens.js";
import { scrubChart, type ScrubTreeNode } from "../plot/scrub-tree.js";
import { tokenizerOf } from "./inputs.js";
import { defineTechnique, InputError, progressOf, type Subject } from "./technique.js";

const HYPOTHESIS_HELP = `the hypothesis, JSON (the CLI takes it inline or from a .json file):
  { "name": "induction", "output": [ <node>, ... ] }  the important parents of the logits
  <node> = { "node": "embed" }  token + position embedding
         | { "node": "head", "layer": L, "head": H, "q": [<node>...], "k": [...], "v": [...] }
         | { "node": "mlp", "layer": L, "in": [<node>...] }
  each with "feature": which inputs it may be resampled from (equal feature = swappable): "whole" (the input itself),
  "any" (any input), "token" (token at the node's position), "prev-token", "token[pos-2]", "token[pos+1]", "token[0]"
  (absolute), or a list of these (all agree). Components a node's input does not name come from one random input.`;

const input = z.object({
  hypothesis: z.object({ name: z.string().optional(), output: z.array(z.unknown()) }, { error: (iss) => (iss.input === undefined ? "needs a hypothesis (JSON inline or a .json file)" : `must be {"name"?, "output": [<node>, ...]}, got ${JSON.stringify(iss.input)}`) }).loose().describe(HYPOTHESIS_HELP),
  data: z.union([z.array(z.array(z.number().int().min(0))), z.string()], { error: (iss) => (iss.input === undefined ? "needs data: token-id lists or text" : "must be a list of equal-length token-id lists or a text") })
    .describe("equal-length token-id lists (the CLI takes a .json file), or text cut into seq-len-token sequences with the model's tokenizer, no BOS (the CLI takes any other file)"),
  seqLen: z.number().int().optional().describe("tokens per sequence for text data (default min(32, n_ctx))"),
  positions: z.string().optional().describe("positions whose next-token loss is scored, e.g. 12-22 or 3,5,7 (default all but the last)"),
  samples: z.number().int("must be a positive integer").min(1, "must be a positive integer").default(200).describe("reference (sequence, position) pairs scored"),
  seed: z.number().int("must be an integer").default(0).describe("sampling seed"),
});

/** Sequences from the data field: token lists as given (checked), or text tokenized and cut into seqLen chunks. */
function sequencesOf(s: Subject, data: number[][] | string, seqLen: number | undefined): number[][] {
  const nCtx = s.model.cfg.n_ctx, V = s.model.cfg.d_vocab;
  if (typeof data !== "string") {
    if (data.length < 2) throw new InputError("data", `needs at least two sequences to resample from, got ${data.length}`);
    const T = data[0]!.length;
    data.forEach((seq, i) => {
      if (seq.length !== T) throw new InputError(`data.${i}`, `has ${seq.length} tokens; the first sequence has ${T} (all must be equally long)`);
      const bad = seq.find((id) => id >= V);
      if (bad !== undefined) throw new InputError(`data.${i}`, `token id ${bad} is outside the vocabulary of ${V}`);
    });
    if (T < 2 || T > nCtx) throw new InputError("data", `sequences of ${T} tokens; scrubbing needs 2 to n_ctx = ${nCtx}`);
    return data;
  }
  const T = seqLen ?? Math.min(32, nCtx);
  if (T < 2 || T > nCtx) throw new InputError("seqLen", `must be an integer in [2, ${nCtx}], got ${T}`);
  const ids = encodeText(tokenizerOf(s, "data"), data, { prependBos: false });
  const out: number[][] = [];
  for (let i = 0; i + T <= ids.length; i += T) out.push(ids.slice(i, i + T));
  if (out.length < 2) throw new InputError("data", `the text has ${ids.length} tokens, fewer than two sequences of ${T}`);
  return out;
}

function parsePositions(s: string): number[] {
  const out: number[] = [];
  for (const part of s.split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new InputError("positions", `must look like 12-22 or 3,5,7, got "${s}"`);
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

/** The hypothesis JSON parsed and checked against the model; errors name the field and the path inside it. */
function hypothesisOf(s: Subject, json: unknown): Hypothesis {
  try {
    const h = parseHypothesis(json);
    checkHypothesis(s.model, h);
    return h;
  } catch (e) {
    if (e instanceof HypothesisError) throw new InputError("hypothesis", e.message);
    throw e;
  }
}

export const scrub = defineTechnique({
  name: "scrub",
  summary: "causal scrubbing: fraction of loss a hypothesis (JSON) recovers under resampling",
  input,
  long: true,
  async run(s, inp, opts) {
    const hyp = hypothesisOf(s, inp.hypothesis);
    const sequences = sequencesOf(s, inp.data, inp.seqLen);
    const T = sequences[0]!.length;
    const positions = inp.positions === undefined ? undefined : parsePositions(inp.positions);
    const bad = positions?.find((p) => p >= T - 1);
    if (bad !== undefined) throw new InputError("positions", `position ${bad} has no next token in sequences of ${T} (scored positions are 0 … ${T - 2})`);
    // Two steps a surface can stop between: the input checked, the scrubbing done (the analysis itself runs in one piece).
    const p = progressOf(opts, 2, `scrubbing "${hyp.name ?? "hypothesis"}" on ${sequences.length} sequences of ${T} tokens`);
    await p.step();
    const r = causalScrub(s.model, hyp, { sequences, ...(positions ? { positions } : {}) }, { samples: inp.samples, seed: inp.seed });
    await p.step();
    return {
      hypothesis: inp.hypothesis, name: r.hypothesis, samples: r.samples, seed: inp.seed,
      sequences: sequences.length, seqLen: T,
      modelLoss: r.modelLoss, scrubbedLoss: r.scrubbedLoss, randomLoss: r.randomLoss,
      recovered: r.recovered, recoveredStderr: r.recoveredStderr, scrubbedStderr: r.scrubbedStderr,
    };
  },
  text: (r) => scrubLines({ ...r, hypothesis: r.name }).join("\n"),
  pictures(r) {
    const svg = scrubChart({
      title: `causal scrubbing: ${r.name}`, tree: hypothesisTree(parseHypothesis(r.hypothesis)),
      modelLoss: r.modelLoss, scrubbedLoss: r.scrubbedLoss, randomLoss: r.randomLoss, recovered: r.recovered, recoveredStderr: r.recoveredStderr,
    });
    return [{ name: "scrub.svg", content: svg }];
  },
});
