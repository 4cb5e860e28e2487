// `circuitscope attribute <snapshot-folder> "<prompt>"`: which prompt tokens drive the logit of a
// target token, by integrated gradients, saliency, input × gradient (all on hook_embed) or AttnLRP;
// --layer <hook> runs layer integrated gradients on any hooked activation with a position axis.
// Prints one attribution per token with the completeness gap (or LRP's conservation gap); with --out
// writes attribution.svg and attribution.html (one box per token, blue negative, red positive) and
// attribution.json. The renderers are pure functions of strings and numbers.
import { noGrad } from "../../tensor/autodiff.js";
import { tokensHtml, tokensSvg } from "../../plot/tokens.js";
import { INTEGRATION_METHODS, layerIntegratedGradients, logitOf, tokenAttribution, type IntegrationMethod } from "../../analysis/attribution.js";
import { checkHookName, type HookName } from "../../model/hooks.js";
import { transformerLRP } from "../../analysis/lrp.js";
import { describeIllConditioned, type Conditioning } from "../../analysis/conditioning.js";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";
import { loadWithTokenizer, promptIds, singleToken } from "../legacy-inputs.js";
import { writeOutputFiles } from "../outputs.js";

const METHODS = ["ig", "saliency", "ixg", "lrp"] as const;
type Method = (typeof METHODS)[number];

const USAGE = `circuitscope attribute <snapshot-folder> "<prompt>" [--target " Paris"] [--method ig|saliency|ixg|lrp] [--steps 64] [--rule gausslegendre] [--baseline zeros|pad] [--batch K] [--layer <hook name>] [--out dir] [--no-bos] [--json]
  --target T    the token whose last-position logit is explained (one token; default: the model's top prediction)
  --method M    ig (integrated gradients, default), saliency (|gradient|, L2 over d_model), ixg (input × gradient), lrp (AttnLRP)
  --steps N     integration points for ig (default 64)
  --rule R      ${INTEGRATION_METHODS.join(" | ")} (default gausslegendre)
  --baseline B  zeros (default) or pad: every token's embedding replaced by the pad (else EOS) token's
  --batch K     integration points per forward/backward for ig (default: all at once; lower it to save memory)
  --layer H     layer integrated gradients on hook point H (e.g. blocks.0.hook_resid_post) instead of hook_embed;
                the activation runs from its baseline (zeros, or its value on the pad tokens) to its value, per position
  --out dir     write attribution.svg, attribution.html and attribution.json there
  --no-bos      do not put the tokenizer's BOS token before the prompt`;

/** Fixed decimals unless that would print a small nonzero value as 0. */
const num = (v: number) => (v === 0 || Math.abs(v) >= 1e-3 ? v.toFixed(4) : v.toExponential(3));

/** One box per token coloured by its attribution (blue negative, red positive), with a legend and optional caption lines. */
export function tokenAttributionSvg(tokens: readonly string[], values: readonly number[], opts: { title?: string; width?: number; caption?: readonly string[] } = {}): string {
  return tokensSvg(tokens, values, { ...opts, legend: "attribution" });
}

/** The same as an HTML page of spans (hover shows the value). */
export function tokenAttributionHtml(tokens: readonly string[], values: readonly number[], opts: { title?: string; caption?: readonly string[] } = {}): string {
  return tokensHtml(tokens, values, { ...opts, legend: "attribution" });
}

/** A hook name for --layer: known to the model (UsageError naming the nearest names otherwise) and with a position axis. */
export function checkedHook(known: readonly string[], name: string): HookName {
  try { checkHookName(name, new Set(known)); } catch (e) { throw new UsageError(`--layer: ${(e as Error).message}`); }
  // The pattern and scores are [batch, head, query_pos, key_pos]: no single position axis to attribute to.
  if (/\.hook_(pattern|attn_scores)$/.test(name)) throw new UsageError(`--layer: ${name} has no single position axis (it is [batch, head, query_pos, key_pos]); pick e.g. the head outputs ${name.replace(/hook_(pattern|attn_scores)$/, "hook_z")}`);
  return name;
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
    const layerHook = flags.str("layer");
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
    if (layerHook !== undefined && method !== "ig") throw new UsageError(`--layer takes --method ig (layer integrated gradients), got ${method}`);

    const { model, tokenizer, config: cfg } = loadWithTokenizer(folder);
    const ids = promptIds(tokenizer, prompt, cfg.n_ctx, noBos);
    const hook = layerHook === undefined ? undefined : checkedHook(model.hookNames(), layerHook);
    const target = targetText !== undefined ? singleToken(tokenizer, "target", targetText)
      : noGrad(() => model.forward([ids], { lastPositionOnly: true }).reshape([cfg.d_vocab]).argmax(0)).item();
    const score = logitOf(target);
    const padId = tokenizer.padTokenId ?? tokenizer.eosTokenId ?? 0;
    out.info(`${method}${hook ? ` on ${hook}` : ""} for logit(${JSON.stringify(tokenizer.decode([target]))}) over ${ids.length} tokens`);

    let values: number[];
    let check: Record<string, number>;
    // Whether f(x) − f(baseline) is ~0, so the relative gap is not meaningful (ig, saliency, ixg).
    let cond: Conditioning | null = null;
    if (method === "lrp") {
      const r = transformerLRP(model, ids, score);
      values = r.perPosition;
      check = { ...r.conservation, inputPlusBiases: r.conservationWithBiases.inputSum };
    } else {
      const opts = {
        steps, method: rule, ...(batch > 0 ? { internalBatchSize: batch } : {}),
        ...(baselineKind === "pad" ? { baseline: { tokens: ids.map(() => padId) } } : {}),
      };
      const r = hook ? layerIntegratedGradients(model, ids, hook, score, opts) : tokenAttribution(model, ids, score, { ...opts, attribution: method });
      values = r.perPosition;
      const { relativeGapConditioning, ...nums } = r.completeness;
      check = nums; cond = relativeGapConditioning;
    }
    const strs = ids.map((id) => tokenizer.decode([id]));
    const doc = {
      model: folder, prompt, method,
      ...(method === "ig" ? { steps, rule, baseline: baselineKind, hook: hook ?? "hook_embed" } : {}),
      target: { id: target, str: tokenizer.decode([target]) },
      tokens: ids.map((id, i) => ({ id, str: strs[i]!, attribution: values[i]! })),
      // ig/saliency/ixg: completeness (sum, fInput, fBaseline, gap, relativeGap); lrp: conservation.
      [method === "lrp" ? "conservation" : "completeness"]: cond ? { ...check, relativeGapConditioning: cond } : check,
      files: [] as string[],
    };
    const gapLine = method === "lrp"
      ? `conservation: output ${num(check.output!)}, Σ input relevance ${num(check.inputSum!)} (relative gap ${(100 * check.relativeGap!).toFixed(2)}%)`
      : method === "saliency"
        ? "saliency makes no completeness claim (the JSON still has Σ |gradient| against f(x) − f(0))"
        : `completeness: Σ ${num(check.sum!)} vs f(x) − f(baseline) = ${num(check.fInput! - check.fBaseline!)} (gap ${check.gap!.toExponential(2)}, ${cond?.illConditioned
          ? `relative gap not meaningful: ${describeIllConditioned(cond, "f(x) − f(baseline)")}` : `${(100 * check.relativeGap!).toFixed(2)}%`})`;
    if (outDir !== undefined) {
      const title = `${method}${hook ? ` at ${hook}` : ""} attribution to logit(${JSON.stringify(doc.target.str)})`;
      writeOutputFiles(outDir, [
        ["attribution.svg", tokenAttributionSvg(strs, values, { title, caption: [gapLine] })],
        ["attribution.html", tokenAttributionHtml(strs, values, { title, caption: [gapLine] })],
      ], "attribution", doc);
    }
    out.result(doc, () => [
      `${method}${hook ? ` (${hook})` : ""} → logit(${JSON.stringify(doc.target.str)})`,
      ...doc.tokens.map((t) => `  ${JSON.stringify(t.str).padEnd(16)} ${t.attribution >= 0 ? " " : ""}${num(t.attribution)}`),
      gapLine,
      ...(doc.files.length ? [`files: ${doc.files.join(", ")}`] : []),
    ].join("\n"));
  },
};
