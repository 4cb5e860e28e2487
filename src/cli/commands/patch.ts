// `circuitscope patch <snapshot-folder> --clean "<prompt>" --corrupted "<prompt>" --answer " Mary" --wrong " John"`:
// activation patching with a normalised logit-difference metric (0 = corrupted baseline, 1 = clean).
// --by pos sweeps layer × position at a residual site (token labels on the position axis); --by head
// sweeps layer × head at a per-head site. With --out writes patch.svg (heatmap) and patch.json.
// Also exports the small helpers lens and ablate share (snapshot + prompt loading, atomic outputs).
import fs from "node:fs";
import path from "node:path";
import { loadPretrained } from "../../io/snapshot.js";
import { writeFileAtomic } from "../../io/safetensors.js";
import { noGrad } from "../../tensor/autodiff.js";
import { encodeText, toSingleToken } from "../../model/tokens.js";
import { heatmap } from "../../plot/svg.js";
import { patchByHead, patchByPos, type Direction, type HeadSite, type ResidSite } from "../../analysis/patching.js";
import { logitDiffMetric, normalizedMetric } from "../../analysis/patching-metrics.js";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";

const RESID_SITES: readonly ResidSite[] = ["resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out"];
const HEAD_SITES: readonly HeadSite[] = ["z", "q", "k", "v", "pattern"];

const USAGE = `circuitscope patch <snapshot-folder> --clean "<prompt>" --corrupted "<prompt>" --answer " Mary" --wrong " John" [--by pos|head] [--site S] [--direction denoising|noising] [--out dir] [--no-bos] [--json]
  --clean, --corrupted  the two prompts; they must tokenise to the same number of tokens
  --answer, --wrong     single tokens; the metric is logit(answer) − logit(wrong) at the last position, normalised
  --by B                pos (layer × position, default) or head (layer × head)
  --site S              for pos: ${RESID_SITES.join("|")} (default resid_pre); for head: ${HEAD_SITES.join("|")} (default z)
  --direction D         denoising (default: corrupted run, clean activations patched in) or noising
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
  fs.mkdirSync(outDir, { recursive: true });
  const files = [path.join(outDir, `${name}.svg`), path.join(outDir, `${name}.json`)];
  doc.files.push(...files);
  writeFileAtomic(files[0]!, (fd) => fs.writeFileSync(fd, svg));
  writeFileAtomic(files[1]!, (fd) => fs.writeFileSync(fd, JSON.stringify(doc, null, 2) + "\n"));
  return files;
}

/** A token as shown on an axis: spaces visible. */
export const shownToken = (s: string) => s.replace(/ /g, "·").replace(/\n/g, "↵");

/** Rows of a 2-D tensor-like as nested arrays. */
export function rows2d(get: (r: number, c: number) => number, R: number, C: number): number[][] {
  return Array.from({ length: R }, (_, r) => Array.from({ length: C }, (_, c) => get(r, c)));
}

/**
 * A snapshot, two prompts of equal token length and an answer pair, with the logit difference
 * normalised between them (clean 1, corrupted 0): what patch and discover start from.
 */
export function loadContrast(folder: string, t: { cleanText: string; corruptedText: string; answerText: string; wrongText: string }, noBos: boolean) {
  const { model, tokenizer, config: cfg } = loadWithTokenizer(folder);
  const clean = promptIds(tokenizer, t.cleanText, cfg.n_ctx, noBos, "the clean prompt");
  const corrupted = promptIds(tokenizer, t.corruptedText, cfg.n_ctx, noBos, "the corrupted prompt");
  const strs = (ids: number[]) => ids.map((id) => tokenizer.decode([id]));
  if (clean.length !== corrupted.length)
    throw new UsageError(`clean and corrupted prompts must have the same number of tokens: clean has ${clean.length} ${JSON.stringify(strs(clean))}, corrupted has ${corrupted.length} ${JSON.stringify(strs(corrupted))}`);
  const answer = singleToken(tokenizer, "answer", t.answerText), wrong = singleToken(tokenizer, "wrong", t.wrongText);
  const base = logitDiffMetric([answer, wrong]);
  const cleanLd = noGrad(() => base.compute(model.forward([clean])).item());
  const corruptedLd = noGrad(() => base.compute(model.forward([corrupted])).item());
  if (cleanLd === corruptedLd) throw new Error(`the clean and corrupted logit differences are equal (${cleanLd}), so the metric cannot be normalised`);
  return { model, tokenizer, cfg, clean, corrupted, strs, answer, wrong, cleanLd, corruptedLd, metric: normalizedMetric(base, cleanLd, corruptedLd) };
}

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
    const outDir = flags.str("out");
    const noBos = flags.bool("no-bos");
    flags.checkUnknown();
    const [folder, ...extra] = pos;
    if (folder === undefined) throw new UsageError("patch needs a snapshot folder");
    if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(" ")}`);
    if (cleanText === undefined || corruptedText === undefined) throw new UsageError("patch needs --clean and --corrupted prompts");
    if (answerText === undefined || wrongText === undefined) throw new UsageError("patch needs --answer and --wrong tokens");
    if (by !== "pos" && by !== "head") throw new UsageError(`--by must be pos or head, got ${by}`);
    if (direction !== "denoising" && direction !== "noising") throw new UsageError(`--direction must be denoising or noising, got ${direction}`);
    const site = siteFlag ?? (by === "pos" ? "resid_pre" : "z");
    if (by === "pos" && !RESID_SITES.includes(site as ResidSite)) throw new UsageError(`--site for --by pos must be one of ${RESID_SITES.join(", ")}, got ${site}`);
    if (by === "head" && !HEAD_SITES.includes(site as HeadSite)) throw new UsageError(`--site for --by head must be one of ${HEAD_SITES.join(", ")}, got ${site}`);

    const { model, tokenizer, cfg, clean, corrupted, strs, answer, wrong, cleanLd, corruptedLd, metric } =
      loadContrast(folder, { cleanText, corruptedText, answerText, wrongText }, noBos);
    const cleanStrs = strs(clean), corruptedStrs = strs(corrupted);
    const posLabels = cleanStrs.map((s, i) => s === corruptedStrs[i] ? shownToken(s) : `${shownToken(s)}/${shownToken(corruptedStrs[i]!)}`);
    out.info(`${direction} patching of ${site} by ${by}: ${cfg.n_layers} layers × ${by === "pos" ? `${clean.length} positions` : `${cfg.n_heads} heads`}`);
    const opts = { clean: [clean], corrupted: [corrupted], metric, direction, posLabels };
    const r = by === "pos" ? patchByPos(model, { ...opts, site: site as ResidSite }) : patchByHead(model, { ...opts, site: site as HeadSite });
    const [R, C] = r.values.shape as [number, number];
    const values = rows2d((i, j) => r.values.get(i, j), R, C);
    const doc = {
      model: folder, by, site, direction,
      clean: { prompt: cleanText, tokens: clean.map((id, i) => ({ id, str: cleanStrs[i]! })) },
      corrupted: { prompt: corruptedText, tokens: corrupted.map((id, i) => ({ id, str: corruptedStrs[i]! })) },
      answer: { id: answer, str: tokenizer.decode([answer]) }, wrong: { id: wrong, str: tokenizer.decode([wrong]) },
      metric: { name: metric.name, cleanLogitDiff: cleanLd, corruptedLogitDiff: corruptedLd, target: r.targetMetric, source: r.sourceMetric },
      axes: r.axes, shape: [R, C], values,
      files: [] as string[],
    };
    if (outDir !== undefined) {
      const svg = heatmap(values, {
        title: `${direction} ${site}: normalised logit diff ${JSON.stringify(doc.answer.str)} − ${JSON.stringify(doc.wrong.str)}`,
        rowLabels: r.axes[0]!.labels, colLabels: r.axes[1]!.labels, xLabel: by === "pos" ? "position" : "head", yLabel: "layer", scale: "signed",
      });
      writeOutputs(outDir, "patch", svg, doc);
    }
    out.result(doc, () => [
      `${direction} patching of ${site} (normalised logit diff; clean ${cleanLd.toFixed(4)}, corrupted ${corruptedLd.toFixed(4)})`,
      `${"".padEnd(8)}${r.axes[1]!.labels.map((l) => l.slice(0, 9).padStart(10)).join("")}`,
      ...values.map((row, i) => `${r.axes[0]!.labels[i]!.padEnd(8)}${row.map((v) => v.toFixed(3).padStart(10)).join("")}`),
      ...(doc.files.length ? [`files: ${doc.files.join(", ")}`] : []),
    ].join("\n"));
  },
};
