// Which prompt tokens drive the logit of a target token at the last position: integrated gradients,
// saliency, input × gradient (all on hook_embed) or AttnLRP; with a layer hook, layer integrated
// gradients on any hooked activation with a position axis. One attribution per token with the
// completeness gap (or LRP's conservation gap). Pictures: attribution.svg and attribution.html (one
// box per token, blue negative, red positive).
import { z } from "zod";
import { noGrad } from "../tensor/autodiff.js";
import { tokensHtml, tokensSvg } from "../plot/tokens.js";
import { INTEGRATION_METHODS, layerIntegratedGradients, logitOf, tokenAttribution, type IntegrationMethod } from "../analysis/attribution.js";
import { transformerLRP } from "../analysis/lrp.js";
import { describeIllConditioned, type Conditioning } from "../analysis/conditioning.js";
import { bosField, hookOf, promptField, promptIds, singleToken, tokenField, tokenList } from "./inputs.js";
import { defineTechnique, InputError } from "./technique.js";

const input = z.object({
  prompt: promptField(),
  target: tokenField("the token whose last-position logit is explained; default: the model's top prediction").optional(),
  method: z.enum(["ig", "saliency", "ixg", "lrp"]).default("ig")
    .describe("ig (integrated gradients), saliency (|gradient|, L2 over d_model), ixg (input × gradient), lrp (AttnLRP)"),
  steps: z.number().int().min(2).default(64).describe("integration points for ig"),
  rule: z.enum(INTEGRATION_METHODS as [IntegrationMethod, ...IntegrationMethod[]]).default("gausslegendre").describe("the integration rule of ig"),
  baseline: z.enum(["zeros", "pad"]).default("zeros").describe("zeros, or pad: every token's embedding replaced by the pad (else EOS) token's"),
  batch: z.number().int().min(1).optional().describe("integration points per forward/backward for ig (default: all at once; lower it to save memory)"),
  layer: z.string().optional().describe("layer integrated gradients on this hook point (e.g. blocks.0.hook_resid_post) instead of hook_embed; the activation runs from its baseline to its value, per position"),
  bos: bosField,
});

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

type Completeness = { sum: number; fInput: number; fBaseline: number; gap: number; relativeGap: number; relativeGapConditioning: Conditioning };
type Conservation = { output: number; inputSum: number; relativeGap: number; inputPlusBiases: number };

export const attribute = defineTechnique({
  name: "attribute",
  summary: "attribute a target token's logit to the prompt tokens (IG, saliency, input×grad, AttnLRP)",
  input,
  positionals: ["prompt"],
  run(s, inp) {
    const { method } = inp;
    if (inp.layer !== undefined && method !== "ig") throw new InputError("layer", `takes method ig (layer integrated gradients), got ${method}`);
    const ids = promptIds(s, "prompt", inp.prompt, inp.bos);
    const hook = inp.layer === undefined ? undefined : hookOf(s, "layer", inp.layer);
    // The pattern and scores are [batch, head, query_pos, key_pos]: no single position axis to attribute to.
    if (hook && /\.hook_(pattern|attn_scores)$/.test(hook)) throw new InputError("layer", `${hook} has no single position axis (it is [batch, head, query_pos, key_pos]); pick e.g. the head outputs ${hook.replace(/hook_(pattern|attn_scores)$/, "hook_z")}`);
    const target = inp.target !== undefined ? singleToken(s, "target", inp.target)
      : noGrad(() => s.model.forward([ids], { lastPositionOnly: true }).reshape([s.model.cfg.d_vocab]).argmax(0)).item();
    const score = logitOf(target);
    const tok = s.tokenizer;
    const padId = tok?.padTokenId ?? tok?.eosTokenId ?? 0;
    let values: number[];
    let check: { completeness: Completeness } | { conservation: Conservation };
    if (method === "lrp") {
      const r = transformerLRP(s.model, ids, score);
      values = r.perPosition;
      check = { conservation: { ...r.conservation, inputPlusBiases: r.conservationWithBiases.inputSum } };
    } else {
      const opts = {
        steps: inp.steps, method: inp.rule, ...(inp.batch !== undefined ? { internalBatchSize: inp.batch } : {}),
        ...(inp.baseline === "pad" ? { baseline: { tokens: ids.map(() => padId) } } : {}),
      };
      const r = hook ? layerIntegratedGradients(s.model, ids, hook, score, opts) : tokenAttribution(s.model, ids, score, { ...opts, attribution: method });
      values = r.perPosition;
      check = { completeness: r.completeness };
    }
    return {
      prompt: inp.prompt, method,
      ...(method === "ig" ? { steps: inp.steps, rule: inp.rule, baseline: inp.baseline, hook: hook ?? "hook_embed" } : {}),
      target: tokenList(s, [target])[0]!,
      tokens: tokenList(s, ids).map((t, i) => ({ ...t, attribution: values[i]! })),
      /** ig/saliency/ixg: completeness (sum, fInput, fBaseline, gap, relativeGap and whether f(x) − f(baseline) is ~0); lrp: conservation. */
      ...check,
    };
  },
  text(r) {
    return [
      `${r.method}${r.hook && r.hook !== "hook_embed" ? ` (${r.hook})` : ""} → logit(${JSON.stringify(r.target.str)})`,
      ...r.tokens.map((t) => `  ${JSON.stringify(t.str).padEnd(16)} ${t.attribution >= 0 ? " " : ""}${num(t.attribution)}`),
      gapLine(r),
    ].join("\n");
  },
  pictures(r) {
    const layer = r.hook && r.hook !== "hook_embed" ? r.hook : undefined;
    const title = `${r.method}${layer ? ` at ${layer}` : ""} attribution to logit(${JSON.stringify(r.target.str)})`;
    const strs = r.tokens.map((t) => t.str), values = r.tokens.map((t) => t.attribution), caption = [gapLine(r)];
    return [
      { name: "attribution.svg", content: tokenAttributionSvg(strs, values, { title, caption }) },
      { name: "attribution.html", content: tokenAttributionHtml(strs, values, { title, caption }) },
    ];
  },
});

/** The completeness (or conservation) sentence, chosen by the computed conditioning check. */
function gapLine(r: { method: string; completeness?: Completeness; conservation?: Conservation }): string {
  if (r.conservation) {
    const c = r.conservation;
    return `conservation: output ${num(c.output)}, Σ input relevance ${num(c.inputSum)} (relative gap ${(100 * c.relativeGap).toFixed(2)}%)`;
  }
  if (r.method === "saliency") return "saliency makes no completeness claim (the JSON still has Σ |gradient| against f(x) − f(0))";
  const c = r.completeness!, cond = c.relativeGapConditioning;
  return `completeness: Σ ${num(c.sum)} vs f(x) − f(baseline) = ${num(c.fInput - c.fBaseline)} (gap ${c.gap.toExponential(2)}, ${cond.illConditioned
    ? `relative gap not meaningful: ${describeIllConditioned(cond, "f(x) − f(baseline)")}` : `${(100 * c.relativeGap).toFixed(2)}%`})`;
}
