// `circuitscope patch <snapshot-folder> --clean "<prompt>" --corrupted "<prompt>" --answer " Mary" --wrong " John"`:
// activation patching with a normalised logit-difference metric (0 = corrupted baseline, 1 = clean).
// --by pos sweeps layer × position at a residual site (token labels on the position axis); --by head
// sweeps layer × head at a per-head site; --by layer patches a residual site whole (every position)
// per layer. With --out writes patch.svg (heatmap, or bars per layer for --by layer) and patch.json.
// --method attribution estimates the same sweep from one forward and backward pass (attribution
// patching, Nanda 2023); --method both runs both and adds patch-agreement.svg (scatter) and Pearson r.
// When |clean − corrupted| is ~0 (conditioning.ts) the normalisation is noise: text, JSON
// (metric.illConditioned) and the SVG title say so, and every value is the raw logit difference.
// Also exports the small helpers lens and ablate share (snapshot + prompt loading, atomic outputs).
import { loadPretrained } from "../../io/snapshot.js";
import { noGrad } from "../../tensor/autodiff.js";
import { encodeText, toSingleToken } from "../../model/tokens.js";
import { heatmap } from "../../plot/svg.js";
import { barChart } from "../../plot/bars.js";
import { attributionAgreement, attributionPatch, patchByHead, patchByLayer, patchByPos, type Direction, type HeadSite, type ResidSite } from "../../analysis/patching.js";
import { normalizedMetric } from "../../analysis/patching-metrics.js";
import { describeIllConditioned, type Conditioning } from "../../analysis/conditioning.js";
import { loadContrastPair } from "../prompt-pair.js";
import { writeOutputFiles } from "../outputs.js";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";

const RESID_SITES: readonly ResidSite[] = ["resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out"];
const HEAD_SITES: readonly HeadSite[] = ["z", "q", "k", "v", "pattern"];

const USAGE = `circuitscope patch <snapshot-folder> --clean "<prompt>" --corrupted "<prompt>" --answer " Mary" --wrong " John" [--by pos|head|layer] [--site S] [--direction denoising|noising] [--method activation|attribution|both] [--out dir] [--no-bos] [--json]
  --clean, --corrupted  the two prompts; they must tokenise to the same number of tokens
  --answer, --wrong     single tokens; the metric is logit(answer) − logit(wrong) at the last position, normalised
  --by B                pos (layer × position, default), head (layer × head) or layer (the whole site, every position, per layer)
  --site S              for pos and layer: ${RESID_SITES.join("|")} (default resid_pre); for head: ${HEAD_SITES.join("|")} (default z)
  --direction D         denoising (default: corrupted run, clean activations patched in) or noising
  --method M            activation (default), attribution (gradient estimate: target metric + Σ Δa · ∂metric/∂a)
                        or both (activation values, plus the estimate, its Pearson r and patch-agreement.svg)
  --out dir             write patch.svg and patch.json there
  --no-bos              do not put the tokenizer's BOS token before the prompts`;

/** Load a snapshot that has a tokenizer; throws a clear error otherwise. */
export function loadWithTokenizer(folder: string) {
  const loaded = loadPretrained(folder);
  if (!loaded.tokenizer) throw new Error(`${folder} has no tokenizer.json, so a text prompt cannot be tokenized`);
  return { ...loaded, tokenizer: loaded.tokenizer };
}

/** Token ids of a prompt, checked against n_ctx. */
export function promptIds(tokenizer: Parameters<typeof encodeText>[0], prompt: string, nCtx: number, noBos: boolean, what = "the prompt"): number[] {
  const ids = encodeText(tokenizer, prompt, noBos ? { prependBos: false } : {});
  if (ids.length === 0) throw new UsageError(`${what} has no tokens`);
  if (ids.length > nCtx) throw new UsageError(`${what} has ${ids.length} tokens, more than n_ctx = ${nCtx}`);
  return ids;
}

/** A single-token flag value as its id (UsageError naming the flag if it splits). */
export function singleToken(tokenizer: Parameters<typeof toSingleToken>[0], flag: string, text: string): number {
  try { return toSingleToken(tokenizer, text); } catch (e) { throw new UsageError(`--${flag}: ${(e as Error).message}`); }
}

/** Write `name.svg` and `name.json` into outDir atomically; the JSON lists both files. Returns the paths. */
export function writeOutputs(outDir: string, name: string, svg: string, doc: { files: string[] }): string[] {
  return writeOutputFiles(outDir, [[`${name}.svg`, svg]], name, doc);
}

/** A token as shown on an axis: spaces visible. */
export const shownToken = (s: string) => s.replace(/ /g, "·").replace(/\n/g, "↵");

/** Rows of a 2-D tensor-like as nested arrays. */
export function rows2d(get: (r: number, c: number) => number, R: number, C: number): number[][] {
  return Array.from({ length: R }, (_, r) => Array.from({ length: C }, (_, c) => get(r, c)));
}

/** The JSON fields of a clean/corrupted normalisation's conditioning (patch, path-patch, discover). */
export function conditioningFields(c: Conditioning) {
  return { normalized: !c.illConditioned, illConditioned: c.illConditioned, denominator: c.denominator, threshold: c.threshold, ...(c.illConditioned ? { note: illText(c) } : {}) };
}
/** The text report's warning line. */
export const illText = (c: Conditioning) => `${describeIllConditioned(c)}: the normalised metric would be noise; showing the raw logit difference`;
/** The SVG title's warning. */
export const illTitle = (c: Conditioning) => `ill-conditioned: clean − corrupted = ${c.denominator.toPrecision(2)}; showing the raw metric`;

export const patch: Command = {
  name: "patch",
  summary: "activation patching (layer × position or layer × head), normalised logit difference",
  usage: USAGE,
  run(pos, flags, out) {
    const cleanText = flags.str("clean"), corruptedText = flags.str("corrupted");
    const answerText = flags.str("answer"), wrongText = flags.str("wrong");
    const by = flags.str("by", "pos");
    const direction = flags.str("direction", "denoising") as Direction;
    const siteFlag = flags.str("site");
    const method = flags.str("method", "activation");
    const outDir = flags.str("out");
    const noBos = flags.bool("no-bos");
    flags.checkUnknown();
    const [folder, ...extra] = pos;
    if (folder === undefined) throw new UsageError("patch needs a snapshot folder");
    if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(" ")}`);
    if (by !== "pos" && by !== "head" && by !== "layer") throw new UsageError(`--by must be pos, head or layer, got ${by}`);
    if (direction !== "denoising" && direction !== "noising") throw new UsageError(`--direction must be denoising or noising, got ${direction}`);
    if (method !== "activation" && method !== "attribution" && method !== "both") throw new UsageError(`--method must be activation, attribution or both, got ${method}`);
    const site = siteFlag ?? (by === "head" ? "z" : "resid_pre");
    if (by !== "head" && !RESID_SITES.includes(site as ResidSite)) throw new UsageError(`--site for --by ${by} must be one of ${RESID_SITES.join(", ")}, got ${site}`);
    if (by === "head" && !HEAD_SITES.includes(site as HeadSite)) throw new UsageError(`--site for --by head must be one of ${HEAD_SITES.join(", ")}, got ${site}`);

    const { model, cfg, clean, corrupted, base, cleanLd, corruptedLd, conditioning, posLabels, doc: pair } =
      loadContrastPair("patch", folder, { clean: cleanText, corrupted: corruptedText, answer: answerText, wrong: wrongText, noBos });
    const ill = conditioning.illConditioned;
    const metric = ill ? base : normalizedMetric(base, cleanLd, corruptedLd);
    const shownMetric = ill ? "raw logit diff" : "normalised logit diff";
    if (by === "layer" && cfg.attn_only && site === "mlp_out") throw new UsageError("--site mlp_out: an attention-only model has no MLPs");
    out.info(`${direction} patching of ${site} by ${by}: ${cfg.n_layers} layers${by === "layer" ? "" : ` × ${by === "pos" ? `${clean.length} positions` : `${cfg.n_heads} heads`}`}`);
    const opts = { clean: [clean], corrupted: [corrupted], metric, direction, posLabels };
    const exact = () => by === "pos" ? patchByPos(model, { ...opts, site: site as ResidSite })
      : by === "layer" ? patchByLayer(model, { ...opts, site: site as ResidSite }) : patchByHead(model, { ...opts, site: site as HeadSite });
    // The estimate is of the metric's change; adding the target metric puts it on the same scale as patching's values.
    const estimate = method === "activation" ? null : attributionPatch(model, { ...opts, site: site as ResidSite | HeadSite, by });
    const r = method === "attribution" ? estimate! : exact();
    // --by layer has one axis: shown as a [1, n_layers] grid internally, a flat list in the JSON.
    const flat = r.values.ndim === 1;
    const [R, C] = (flat ? [1, r.values.shape[0]!] : r.values.shape) as [number, number];
    const at = (t: typeof r.values, i: number, j: number) => (flat ? t.get(j) : t.get(i, j));
    const grid = rows2d((i, j) => at(r.values, i, j) + (r === estimate ? r.targetMetric : 0), R, C);
    const values = flat ? grid[0]! : grid;
    const agreement = method === "both" ? attributionAgreement(r, estimate!) : null;
    const doc = {
      model: folder, by, site, direction, method, ...pair,
      metric: { name: metric.name, cleanLogitDiff: cleanLd, corruptedLogitDiff: corruptedLd, target: r.targetMetric, source: r.sourceMetric, ...conditioningFields(conditioning) },
      axes: r.axes, shape: r.values.shape, values,
      // --method both: the attribution estimate on the same scale as values, and how well it tracks them.
      ...(agreement ? { attribution: { values: ((g) => (flat ? g[0]! : g))(rows2d((i, j) => at(estimate!.values, i, j) + estimate!.targetMetric, R, C)), pearson: agreement.pearson } } : {}),
      files: [] as string[],
    };
    if (outDir !== undefined) {
      const title = `${ill ? `${illTitle(conditioning)} — ` : ""}${method === "attribution" ? "attribution patching (estimate), " : ""}${direction} ${site}: ${shownMetric} ${JSON.stringify(doc.answer.str)} − ${JSON.stringify(doc.wrong.str)}`;
      const svg = flat
        ? barChart(grid[0]!.map((value, l) => ({ label: `layer ${r.axes[0]!.labels[l]}`, value })), { title, xLabel: `${shownMetric} with the whole ${site} patched${ill ? "" : " (0 = corrupted, 1 = clean)"}` })
        : heatmap(grid as number[][], {
        title, rowLabels: r.axes[0]!.labels, colLabels: r.axes[1]!.labels, xLabel: by === "pos" ? "position" : "head", yLabel: "layer", scale: "signed",
      });
      if (agreement) writeOutputFiles(outDir, [["patch.svg", svg], ["patch-agreement.svg", agreement.svg]], "patch", doc);
      else writeOutputs(outDir, "patch", svg, doc);
    }
    out.result(doc, () => [
      ...(ill ? [illText(conditioning)] : []),
      `${direction} patching of ${site} (${shownMetric}; clean ${cleanLd.toFixed(4)}, corrupted ${corruptedLd.toFixed(4)})`,
      ...(flat ? grid[0]!.map((v, l) => `layer ${r.axes[0]!.labels[l]!.padEnd(4)}${v.toFixed(4).padStart(10)}`) : [
        `${"".padEnd(8)}${r.axes[1]!.labels.map((l) => l.slice(0, 9).padStart(10)).join("")}`,
        ...grid.map((row, i) => `${r.axes[0]!.labels[i]!.padEnd(8)}${row.map((v) => v.toFixed(ill ? 4 : 3).padStart(10)).join("")}`)]),
      ...(agreement ? [`attribution patching vs activation patching: Pearson r = ${agreement.pearson.toFixed(4)}`] : []),
      ...(doc.files.length ? [`files: ${doc.files.join(", ")}`] : []),
    ].join("\n"));
  },
};
