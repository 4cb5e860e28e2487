// Path patching (Wang et al. 2022) from every sender head, one at a time, to chosen receivers — the
// logits (the direct path) or head inputs such as 1.0:q — with the logit difference as metric: per
// layer × head the patched metric, its normalised value (0 = corrupted, 1 = clean) and the change
// Δ = normalised − normalised(target run). When |clean − corrupted| is ~0 (conditioning.ts) the
// normalisation is noise: the result (metric.illConditioned, normalized null), text and picture say
// so, and Δ is the raw change of the logit difference, value − value(target run).
import { z } from "zod";
import { pathPatchSteps, type ReceiverRef } from "../analysis/path-patching.js";
import { cellSize, heatmap } from "../plot/svg.js";
import { rows2d } from "./inputs.js";
import { conditioningFields, contrastPair, illTitle, pairFields } from "./pair.js";
import { defineTechnique, InputError, progressOf } from "./technique.js";

/** "logits" or "L.H:q,L.H:k"; checked against the model's shape, InputError naming the receiver field. */
export function parseReceivers(s: string, nLayers: number, nHeads: number): ReceiverRef[] | "logits" {
  if (s === "logits") return "logits";
  return s.split(",").map((part) => {
    const m = /^(\d+)\.(\d+):(q|k|v)$/.exec(part.trim());
    if (!m) throw new InputError("receiver", `"${part}" is not "logits" or a head input L.H:q|k|v (e.g. 1.0:q)`);
    const layer = Number(m[1]), head = Number(m[2]);
    if (layer >= nLayers || head >= nHeads) throw new InputError("receiver", `${part} does not exist; the model has ${nLayers} layers × ${nHeads} heads`);
    if (layer === 0) throw new InputError("receiver", `${part} is in layer 0, so no head is before it to send to it`);
    return { layer, head, input: m[3] as ReceiverRef["input"] };
  });
}

const input = z.object({
  ...pairFields,
  receiver: z.string().default("logits").describe("logits (the direct path to the unembedding) or a comma-separated list of head inputs L.H:q|k|v (e.g. 1.0:q or 2.3:k,2.3:v); every sender head of an earlier layer is path-patched on its own"),
  direction: z.enum(["noising", "denoising"]).default("noising").describe("noising (as Wang et al.: clean run, corrupted senders) or denoising"),
  freezeMlps: z.boolean().default(false).describe("also freeze MLP outputs (head-to-head paths only; by default MLPs recompute)"),
});

export const pathPatch = defineTechnique({
  name: "path-patch",
  summary: "path patching: every sender head → receivers (logits or head q/k/v), layer × head",
  input,
  long: true,
  async run(s, inp, opts) {
    const cfg = s.model.cfg, L = cfg.n_layers, H = cfg.n_heads;
    const receivers = parseReceivers(inp.receiver, L, H);
    if (inp.freezeMlps && cfg.attn_only) throw new InputError("freezeMlps", "this model is attention-only (it has no MLPs)");
    const pair = contrastPair(s, inp);
    const { clean, corrupted, base, cleanLd, corruptedLd, conditioning } = pair;
    const ill = conditioning.illConditioned;
    const receiverName = receivers === "logits" ? "logits" : receivers.map((r) => `${r.layer}.${r.head}:${r.input}`).join(",");
    const steps = pathPatchSteps(s.model, { clean: [clean], corrupted: [corrupted], metric: base, receivers, direction: inp.direction, freezeMlps: inp.freezeMlps });
    const runs = steps.layers * H;
    if (s.maxRuns !== undefined && runs > s.maxRuns) throw new InputError("receiver", `path patching ${steps.layers} layers × ${H} sender heads = ${runs} runs; this server does at most ${s.maxRuns}`);
    const p = progressOf(opts, steps.layers, `path patching → ${receiverName}`);
    for (let l = 0; l < steps.layers; l++) { steps.runLayer(l); await p.step(); }
    const r = steps.result();
    const nul = (v: number) => (Number.isNaN(v) ? null : v);
    const targetNorm = inp.direction === "noising" ? 1 : 0;
    const values = rows2d((l, h) => r.values.get(l, h), L, H);
    const normalized = rows2d((l, h) => r.normalized.get(l, h), L, H);
    const delta = ill ? values.map((row) => row.map((v) => v - r.targetMetric)) : normalized.map((row) => row.map((v) => v - targetNorm));
    return {
      direction: inp.direction, receiver: receiverName, freezeMlps: inp.freezeMlps, ...pair.doc,
      metric: { name: base.name, cleanLogitDiff: cleanLd, corruptedLogitDiff: corruptedLd, target: r.targetMetric, ...conditioningFields(conditioning), delta: ill ? "value − target" : "normalized − normalized(target)" },
      axes: [{ name: "layer", labels: r.axes[0]!.labels }, { name: "head", labels: r.axes[1]!.labels }],
      shape: [L, H],
      // [layer][head]; null where the head is not a sender (not before every receiver); normalized is all null when ill-conditioned.
      values: values.map((row) => row.map(nul)), normalized: normalized.map((row) => row.map((v) => (ill ? null : nul(v)))), delta: delta.map((row) => row.map(nul)),
    };
  },
  text(r) {
    const m = r.metric, ill = m.illConditioned;
    // Raw Δs of an ill-conditioned pair are tiny: shown in exponent form.
    const f = (v: number | null) => (v === null ? "—" : ill ? v.toExponential(2) : v.toFixed(4)).padStart(10);
    return [
      ...(m.note !== undefined ? [m.note] : []),
      `${r.direction} path patching → ${r.receiver}: ${ill ? "Δ raw logit diff" : "Δ normalised logit diff"} (clean ${m.cleanLogitDiff.toFixed(4)}, corrupted ${m.corruptedLogitDiff.toFixed(4)})`,
      `${"".padEnd(8)}${r.axes[1]!.labels.map((h) => `H${h}`.padStart(10)).join("")}`,
      ...r.delta.map((row, l) => `${`L${l}`.padEnd(8)}${row.map(f).join("")}`),
    ].join("\n");
  },
  pictures(r) {
    const m = r.metric, ill = m.illConditioned, [L, H] = r.shape as [number, number];
    const svg = heatmap(r.delta.map((row) => row.map((v) => v ?? NaN)), {
      title: `${ill ? `${illTitle(m)} — ` : ""}path patching (${r.direction}) heads → ${r.receiver}: ${ill ? "Δ raw logit diff" : "Δ normalised logit diff"} ${JSON.stringify(r.answer.str)} − ${JSON.stringify(r.wrong.str)}`,
      rowLabels: r.axes[0]!.labels.map((l) => `L${l}`), colLabels: r.axes[1]!.labels.map((h) => `H${h}`),
      xLabel: "sender head", yLabel: "sender layer", scale: "signed", cell: cellSize(L, H),
    });
    return [{ name: "path-patch.svg", content: svg }];
  },
});
