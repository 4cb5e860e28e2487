// Activation patching with a normalised logit-difference metric (0 = corrupted baseline, 1 = clean):
// by pos sweeps layer × position at a residual site, by head layer × head at a per-head site, by
// layer a residual site whole (every position) per layer. Method attribution estimates the same
// sweep from one forward and backward pass (attribution patching, Nanda 2023); both runs both and
// adds their Pearson r and the agreement scatter. When |clean − corrupted| is ~0 (conditioning.ts)
// the normalisation is noise: the result (metric.illConditioned), text and pictures say so, and
// every value is the raw logit difference.
import { z } from "zod";
import { attributionAgreement, attributionPatch, patchSweep, type HeadSite, type ResidSite } from "../analysis/patching.js";
import { normalizedMetric } from "../analysis/patching-metrics.js";
import { heatmap, scatter } from "../plot/svg.js";
import { barChart } from "../plot/bars.js";
import { rows2d } from "./inputs.js";
import { conditioningFields, contrastPair, illTitle, pairFields } from "./pair.js";
import { defineTechnique, InputError, progressOf } from "./technique.js";

const RESID_SITES = ["resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out"] as const satisfies readonly ResidSite[];
const HEAD_SITES = ["z", "q", "k", "v", "pattern"] as const satisfies readonly HeadSite[];

const input = z.object({
  ...pairFields,
  by: z.enum(["pos", "head", "layer"]).default("pos").describe("pos (layer × position), head (layer × head) or layer (the whole site, every position, per layer)"),
  site: z.enum([...RESID_SITES, ...HEAD_SITES], { error: (iss) => `must be one of ${RESID_SITES.join(", ")} (by pos or layer) or ${HEAD_SITES.join(", ")} (by head), got ${JSON.stringify(iss.input)}` }).optional().describe(`for pos and layer: ${RESID_SITES.join("|")} (default resid_pre); for head: ${HEAD_SITES.join("|")} (default z)`),
  direction: z.enum(["denoising", "noising"]).default("denoising").describe("denoising (corrupted run, clean activations patched in) or noising"),
  method: z.enum(["activation", "attribution", "both"]).default("activation").describe("activation, attribution (gradient estimate: target metric + Σ Δa · ∂metric/∂a) or both (activation values, plus the estimate, its Pearson r and patch-agreement.svg)"),
});

export const patch = defineTechnique({
  name: "patch",
  summary: "activation patching (layer × position, layer × head or per layer), normalised logit difference",
  input,
  long: true,
  async run(s, inp, opts) {
    const { by, direction, method } = inp, cfg = s.model.cfg;
    const site = inp.site ?? (by === "head" ? "z" : "resid_pre");
    const sites: readonly string[] = by === "head" ? HEAD_SITES : RESID_SITES;
    if (!sites.includes(site)) throw new InputError("site", `for by ${by} must be one of ${sites.join(", ")}, got "${site}"`);
    if (site === "mlp_out" && cfg.attn_only) throw new InputError("site", "mlp_out: an attention-only model has no MLPs");
    const pair = contrastPair(s, inp);
    const { clean, corrupted, base, cleanLd, corruptedLd, conditioning, posLabels } = pair;
    const cols = by === "pos" ? clean.length : by === "head" ? cfg.n_heads : 1;
    const runs = cfg.n_layers * cols;
    if (method !== "attribution" && s.maxRuns !== undefined && runs > s.maxRuns)
      throw new InputError("by", `patching ${cfg.n_layers} layers${by === "layer" ? "" : ` × ${cols} ${by === "pos" ? "positions" : "heads"}`} = ${runs} runs; this server does at most ${s.maxRuns}`);
    const ill = conditioning.illConditioned;
    const metric = ill ? base : normalizedMetric(base, cleanLd, corruptedLd);
    const o = { clean: [clean], corrupted: [corrupted], metric, direction, posLabels };
    // The estimate is of the metric's change; adding the target metric puts it on the same scale as patching's values.
    const estimate = method === "activation" ? null : attributionPatch(s.model, { ...o, site, by });
    let exact = null;
    if (method !== "attribution") {
      const sweep = patchSweep(s.model, { ...o, by, site });
      const p = progressOf(opts, sweep.layers, `patching ${site} by ${by}`);
      for (let l = 0; l < sweep.layers; l++) { sweep.runLayer(l); await p.step(); }
      exact = sweep.result();
    }
    const r = exact ?? estimate!;
    // by layer has one axis: a [1, n_layers] grid inside, a flat list in the result.
    const flat = r.values.ndim === 1;
    const [R, C] = (flat ? [1, r.values.shape[0]!] : r.values.shape) as [number, number];
    const grid = (t: typeof r, add: number) => {
      const g = rows2d((i, j) => (flat ? t.values.get(j) : t.values.get(i, j)) + add, R, C);
      return flat ? g[0]! : g;
    };
    const agreement = exact && estimate ? attributionAgreement(exact, estimate) : null;
    return {
      by, site, direction, method, ...pair.doc,
      metric: { name: metric.name, cleanLogitDiff: cleanLd, corruptedLogitDiff: corruptedLd, target: r.targetMetric, source: r.sourceMetric, ...conditioningFields(conditioning) },
      axes: r.axes, shape: r.values.shape,
      /** [layer][pos or head], or [layer] by layer. */
      values: grid(r, r === estimate ? r.targetMetric : 0),
      // method both: the attribution estimate on the same scale as values, how well it tracks them, and the scatter's points.
      attribution: agreement ? { values: grid(estimate!, estimate!.targetMetric), pearson: agreement.pearson, points: agreement.points } : null,
    };
  },
  text(r) {
    const m = r.metric, ill = m.illConditioned, shown = ill ? "raw logit diff" : "normalised logit diff";
    const [rows, cols] = r.axes;
    return [
      ...(m.note !== undefined ? [m.note] : []),
      `${r.direction} patching of ${r.site} (${shown}; clean ${m.cleanLogitDiff.toFixed(4)}, corrupted ${m.corruptedLogitDiff.toFixed(4)})`,
      ...(!cols ? (r.values as number[]).map((v, l) => `layer ${rows!.labels[l]!.padEnd(4)}${v.toFixed(4).padStart(10)}`) : [
        `${"".padEnd(8)}${cols.labels.map((l) => l.slice(0, 9).padStart(10)).join("")}`,
        ...(r.values as number[][]).map((row, i) => `${rows!.labels[i]!.padEnd(8)}${row.map((v) => v.toFixed(ill ? 4 : 3).padStart(10)).join("")}`)]),
      ...(r.attribution ? [`attribution patching vs activation patching: Pearson r = ${r.attribution.pearson.toFixed(4)}`] : []),
    ].join("\n");
  },
  pictures(r) {
    const m = r.metric, ill = m.illConditioned, shown = ill ? "raw logit diff" : "normalised logit diff";
    const [rows, cols] = r.axes;
    const title = `${ill ? `${illTitle(m)} — ` : ""}${r.method === "attribution" ? "attribution patching (estimate), " : ""}${r.direction} ${r.site}: ${shown} ${JSON.stringify(r.answer.str)} − ${JSON.stringify(r.wrong.str)}`;
    const svg = !cols
      ? barChart((r.values as number[]).map((value, l) => ({ label: `layer ${rows!.labels[l]}`, value })), { title, xLabel: `${shown} with the whole ${r.site} patched${ill ? "" : " (0 = corrupted, 1 = clean)"}` })
      : heatmap(r.values as number[][], { title, rowLabels: rows!.labels, colLabels: cols.labels, xLabel: r.by === "pos" ? "position" : "head", yLabel: "layer", scale: "signed" });
    const out = [{ name: "patch.svg", content: svg }];
    if (r.attribution) out.push({ name: "patch-agreement.svg", content: scatter(r.attribution.points, { title: `attribution vs activation patching (${r.site})`, xLabel: "activation patching: Δ metric", yLabel: "attribution patching: Δ metric" }) });
    return out;
  },
});
