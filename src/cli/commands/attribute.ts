// `circuitscope attribute <snapshot-folder> "<prompt>"`: which prompt tokens drive the logit of a
// target token, by integrated gradients, saliency, input × gradient (all on hook_embed) or AttnLRP.
// Prints one attribution per token with the completeness gap (or LRP's conservation gap); with --out
// writes attribution.svg and attribution.html (one box per token, blue negative, red positive) and
// attribution.json. The renderers are pure functions of strings and numbers.
import fs from "node:fs";
import path from "node:path";
import { loadPretrained } from "../../io/snapshot.js";
import { noGrad } from "../../tensor/autodiff.js";
import { encodeText, toSingleToken } from "../../model/tokens.js";
import { diverging } from "../../plot/svg.js";
import { INTEGRATION_METHODS, logitOf, tokenAttribution, type IntegrationMethod } from "../../analysis/attribution.js";
import { transformerLRP } from "../../analysis/lrp.js";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";

const METHODS = ["ig", "saliency", "ixg", "lrp"] as const;
type Method = (typeof METHODS)[number];

const USAGE = `circuitscope attribute <snapshot-folder> "<prompt>" [--target " Paris"] [--method ig|saliency|ixg|lrp] [--steps 64] [--rule gausslegendre] [--baseline zeros|pad] [--batch K] [--out dir] [--no-bos] [--json]
  --target T    the token whose last-position logit is explained (one token; default: the model's top prediction)
  --method M    ig (integrated gradients, default), saliency (|gradient|, L2 over d_model), ixg (input × gradient), lrp (AttnLRP)
  --steps N     integration points for ig (default 64)
  --rule R      ${INTEGRATION_METHODS.join(" | ")} (default gausslegendre)
  --baseline B  zeros (default) or pad: every token's embedding replaced by the pad (else EOS) token's
  --batch K     integration points per forward/backward for ig (default: all at once; lower it to save memory)
  --out dir     write attribution.svg, attribution.html and attribution.json there
  --no-bos      do not put the tokenizer's BOS token before the prompt`;

/** Fixed decimals unless that would print a small nonzero value as 0. */
const num = (v: number) => (v === 0 || Math.abs(v) >= 1e-3 ? v.toFixed(4) : v.toExponential(3));
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
/** A token as shown: whitespace made visible so " Paris" and "Paris" differ. */
const shown = (s: string) => s.replace(/ /g, "·").replace(/\n/g, "↵");
/** Colour for v on a scale symmetric around 0 (blue negative, red positive). */
const colour = (v: number, maxAbs: number) => diverging(maxAbs > 0 ? v / maxAbs : 0);

/** One rectangle per token coloured by its attribution, wrapped into lines of at most `width` px. */
export function tokenAttributionSvg(tokens: readonly string[], values: readonly number[], opts: { title?: string; width?: number } = {}): string {
  if (tokens.length !== values.length) throw new RangeError(`tokenAttributionSvg: ${tokens.length} tokens but ${values.length} values`);
  const width = opts.width ?? 800, h = 28, gap = 4, charW = 8, top = opts.title ? 30 : 8;
  const maxAbs = Math.max(0, ...values.map(Math.abs));
  let x = 8, y = top;
  const boxes: string[] = [];
  tokens.forEach((t, i) => {
    const w = Math.max(24, shown(t).length * charW + 12);
    if (x + w > width - 8 && x > 8) { x = 8; y += h + gap; }
    const v = values[i]!;
    boxes.push(`<g><title>${esc(`${JSON.stringify(t)}: ${v.toPrecision(4)}`)}</title><rect x="${x}" y="${y}" width="${w}" height="${h}" rx="3" fill="${colour(v, maxAbs)}" stroke="#999"/>` +
      `<text x="${x + w / 2}" y="${y + h / 2 + 5}" text-anchor="middle" font-family="monospace" font-size="13">${esc(shown(t))}</text></g>`);
    x += w + gap;
  });
  const height = y + h + 8;
  const title = opts.title ? `<text x="8" y="20" font-family="sans-serif" font-size="14">${esc(opts.title)}</text>` : "";
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${title}${boxes.join("")}</svg>\n`;
}

/** The same as an HTML page of spans (hover shows the value). */
export function tokenAttributionHtml(tokens: readonly string[], values: readonly number[], opts: { title?: string } = {}): string {
  if (tokens.length !== values.length) throw new RangeError(`tokenAttributionHtml: ${tokens.length} tokens but ${values.length} values`);
  const maxAbs = Math.max(0, ...values.map(Math.abs));
  const spans = tokens.map((t, i) => `<span title="${esc(values[i]!.toPrecision(4))}" style="background:${colour(values[i]!, maxAbs)};padding:2px 3px;margin:1px;border-radius:3px;font-family:monospace;white-space:pre">${esc(t)}</span>`);
  return `<!doctype html><meta charset="utf-8"><title>${esc(opts.title ?? "attribution")}</title><h3 style="font-family:sans-serif">${esc(opts.title ?? "")}</h3><p>${spans.join("")}</p>\n`;
}

export const attribute: Command = {
  name: "attribute",
  summary: "attribute a target token's logit to the prompt tokens (IG, saliency, input×grad, AttnLRP)",
  usage: USAGE,
  run(pos, flags, out) {
    const targetText = flags.str("target");
    const method = flags.str("method", "ig") as Method;
    const steps = flags.num("steps", 64);
    const rule = flags.str("rule", "gausslegendre") as IntegrationMethod;
    const baselineKind = flags.str("baseline", "zeros");
    const batch = flags.num("batch", 0);
    const outDir = flags.str("out");
    const noBos = flags.bool("no-bos");
    flags.checkUnknown();
    const [folder, prompt, ...extra] = pos;
    if (folder === undefined || prompt === undefined) throw new UsageError("attribute needs a snapshot folder and a prompt");
    if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(" ")}`);
    if (!METHODS.includes(method)) throw new UsageError(`--method must be one of ${METHODS.join(", ")}, got ${method}`);
    if (!INTEGRATION_METHODS.includes(rule)) throw new UsageError(`--rule must be one of ${INTEGRATION_METHODS.join(", ")}, got ${rule}`);
    if (!Number.isInteger(steps) || steps < 2) throw new UsageError(`--steps must be an integer >= 2, got ${steps}`);
    if (!Number.isInteger(batch) || batch < 0) throw new UsageError(`--batch must be a positive integer, got ${batch}`);
    if (baselineKind !== "zeros" && baselineKind !== "pad") throw new UsageError(`--baseline must be zeros or pad, got ${baselineKind}`);

    const { model, tokenizer, config: cfg } = loadPretrained(folder);
    if (!tokenizer) throw new Error(`${folder} has no tokenizer.json, so a text prompt cannot be tokenized`);
    const ids = encodeText(tokenizer, prompt, noBos ? { prependBos: false } : {});
    if (ids.length === 0) throw new UsageError("the prompt has no tokens");
    if (ids.length > cfg.n_ctx) throw new UsageError(`the prompt has ${ids.length} tokens, more than n_ctx = ${cfg.n_ctx}`);
    const target = targetText !== undefined ? toSingleToken(tokenizer, targetText)
      : noGrad(() => model.forward([ids], { lastPositionOnly: true }).reshape([cfg.d_vocab]).argmax(0)).item();
    const score = logitOf(target);
    const padId = tokenizer.padTokenId ?? tokenizer.eosTokenId ?? 0;
    out.info(`${method} for logit(${JSON.stringify(tokenizer.decode([target]))}) over ${ids.length} tokens`);

    let values: number[];
    let check: Record<string, number>;
    if (method === "lrp") {
      const r = transformerLRP(model, ids, score);
      values = r.perPosition;
      check = { ...r.conservation, inputPlusBiases: r.conservationWithBiases.inputSum };
    } else {
      const r = tokenAttribution(model, ids, score, {
        attribution: method, steps, method: rule, ...(batch > 0 ? { internalBatchSize: batch } : {}),
        ...(baselineKind === "pad" ? { baseline: { tokens: ids.map(() => padId) } } : {}),
      });
      values = r.perPosition;
      check = { ...r.completeness };
    }
    const strs = ids.map((id) => tokenizer.decode([id]));
    const doc = {
      model: folder, prompt, method,
      ...(method === "ig" ? { steps, rule, baseline: baselineKind } : {}),
      target: { id: target, str: tokenizer.decode([target]) },
      tokens: ids.map((id, i) => ({ id, str: strs[i]!, attribution: values[i]! })),
      // ig/saliency/ixg: completeness (sum, fInput, fBaseline, gap, relativeGap); lrp: conservation.
      [method === "lrp" ? "conservation" : "completeness"]: check,
      files: [] as string[],
    };
    if (outDir !== undefined) {
      fs.mkdirSync(outDir, { recursive: true });
      const title = `${method} attribution to logit(${JSON.stringify(doc.target.str)})`;
      // Write a temp file, then rename, so a reader never sees half a file.
      const write = (f: string, text: string) => { fs.writeFileSync(f + ".tmp", text); fs.renameSync(f + ".tmp", f); };
      // The JSON lists every file, itself included, so it is named before it is written.
      doc.files.push(...["attribution.svg", "attribution.html", "attribution.json"].map((n) => path.join(outDir, n)));
      write(doc.files[0]!, tokenAttributionSvg(strs, values, { title }));
      write(doc.files[1]!, tokenAttributionHtml(strs, values, { title }));
      write(doc.files[2]!, JSON.stringify(doc, null, 2) + "\n");
    }
    const gapLine = method === "lrp"
      ? `conservation: output ${num(check.output!)}, Σ input relevance ${num(check.inputSum!)} (relative gap ${(100 * check.relativeGap!).toFixed(2)}%)`
      : method === "saliency"
        ? "saliency makes no completeness claim (the JSON still has Σ |gradient| against f(x) − f(0))"
        : `completeness: Σ ${num(check.sum!)} vs f(x) − f(baseline) = ${num(check.fInput! - check.fBaseline!)} (gap ${check.gap!.toExponential(2)}, ${(100 * check.relativeGap!).toFixed(2)}%)`;
    out.result(doc, () => [
      `${method} → logit(${JSON.stringify(doc.target.str)})`,
      ...doc.tokens.map((t) => `  ${JSON.stringify(t.str).padEnd(16)} ${t.attribution >= 0 ? " " : ""}${num(t.attribution)}`),
      gapLine,
      ...(doc.files.length ? [`files: ${doc.files.join(", ")}`] : []),
    ].join("\n"));
  },
};
