// Ablation sweep: ablate every attention head in turn (zero, mean over a reference prompt, or
// resampled from it) and report the change in the metric per layer × head — logit(answer) −
// logit(wrong) with a wrong token, else the answer's probability, at the last position. The sweep
// can instead go over every MLP, the residual stream at every layer × position, or the neurons of one
// layer. Pictures: a heatmap, or bars for MLPs and the top neurons.
import { z } from "zod";
import { ablationSweep, type SweepOver } from "../analysis/ablation.js";
import { logitDiffMetric, tokenProbMetric } from "../analysis/patching-metrics.js";
import { heatmap } from "../plot/svg.js";
import { barChart } from "../plot/bars.js";
import { bosField, layerOf, promptField, promptIds, rows2d, shownToken, singleToken, tokenField, tokenList } from "./inputs.js";
import { defineTechnique, InputError } from "./technique.js";

const input = z.object({
  prompt: promptField(),
  answer: tokenField("the token the metric reads"),
  wrong: tokenField("with it the metric is logit(answer) − logit(wrong); without it, p(answer)").optional(),
  kind: z.enum(["zero", "mean", "resample"]).default("zero").describe("zero, mean (the reference's activation) or resample (drawn from the reference)"),
  reference: z.string().min(1, "the reference prompt is empty").optional().describe("a prompt with the same number of tokens; needed by mean and resample"),
  seed: z.number().int().default(0).describe("resample's seed"),
  sweep: z.enum(["heads", "mlps", "positions", "neurons"] satisfies SweepOver[]).default("heads")
    .describe("what to ablate in turn: heads (layer × head), mlps (per layer), positions (residual stream entering each layer, layer × position), neurons (of --layer)"),
  layer: z.number().int().min(0).optional().describe("the layer whose MLP neurons the neurons sweep ablates"),
  top: z.number().int().min(0).default(10).describe("how many of the largest |Δ| cells to list"),
  bos: bosField,
});

export const ablate = defineTechnique({
  name: "ablate",
  summary: "ablate each head, MLP, residual position or neuron (zero|mean|resample): metric change per target",
  input,
  positionals: ["prompt"],
  run(s, inp) {
    const { kind, sweep: over } = inp;
    if (kind !== "zero" && inp.reference === undefined) throw new InputError("reference", `kind ${kind} needs a reference prompt`);
    if (over === "neurons" && inp.layer === undefined) throw new InputError("layer", "the neurons sweep needs a layer");
    if (over !== "neurons" && inp.layer !== undefined) throw new InputError("layer", `only applies to the neurons sweep, not ${over}`);
    const layer = inp.layer === undefined ? undefined : layerOf(s, "layer", inp.layer);
    const ids = promptIds(s, "prompt", inp.prompt, inp.bos);
    const reference = inp.reference === undefined ? undefined : promptIds(s, "reference", inp.reference, inp.bos);
    if (reference && reference.length !== ids.length)
      throw new InputError("reference", `the reference prompt must have the same number of tokens as the prompt: ${reference.length} vs ${ids.length}`);
    const answer = singleToken(s, "answer", inp.answer);
    const wrong = inp.wrong === undefined ? undefined : singleToken(s, "wrong", inp.wrong);
    const metric = wrong !== undefined ? logitDiffMetric([answer, wrong]) : tokenProbMetric(answer);
    const tokens = tokenList(s, ids);
    const r = ablationSweep(s.model, [ids], {
      kind, metric, over, topK: inp.top, seed: inp.seed, posLabels: tokens.map((t) => shownToken(t.str)),
      ...(layer !== undefined ? { layer } : {}), ...(reference ? { reference: [reference] } : {}),
    });
    const shape = r.values.shape;
    const values = shape.length === 2 ? rows2d((i, j) => r.values.get(i, j), shape[0]!, shape[1]!) : (r.values.toList() as number[]);
    const tok = (id: number) => tokenList(s, [id])[0]!;
    return {
      prompt: inp.prompt, kind, sweep: over, ...(layer !== undefined ? { layer } : {}),
      ...(inp.reference !== undefined ? { reference: inp.reference } : {}), ...(kind === "resample" ? { seed: inp.seed } : {}),
      tokens,
      answer: tok(answer), wrong: wrong !== undefined ? tok(wrong) : null,
      metric: { name: metric.name, clean: r.cleanMetric, change: "metric(ablated) − metric(clean)" },
      axes: r.axes, shape,
      /** [layer][head or pos] for heads and positions; [layer] for mlps; [neuron] for neurons. */
      values,
      top: r.top.map((c) => ({ label: c.label, target: c.target, value: c.value })),
    };
  },
  text(r) {
    const v = r.values, axis = r.axes[1];
    const table = axis && Array.isArray(v[0]) ? [
      `${"layer".padEnd(8)}${axis.labels.map((l) => `${axis.name === "head" ? "head " : ""}${l}`.slice(0, 11).padStart(12)).join("")}`,
      ...(v as number[][]).map((row, l) => `${String(l).padEnd(8)}${row.map((x) => x.toFixed(4).padStart(12)).join("")}`),
    ] : r.sweep === "mlps" ? (v as number[]).map((x, l) => `L${l} MLP`.padEnd(10) + x.toFixed(4).padStart(12))
      : [`top ${r.top.length} of ${v.length} neurons by |Δ|:`, ...r.top.map((c) => c.label.padEnd(10) + c.value.toFixed(4).padStart(12))];
    return [`${r.kind} ${r.sweep} ablation: Δ ${r.metric.name} (clean ${r.metric.clean.toFixed(4)})`, ...table].join("\n");
  },
  pictures(r) {
    const v = r.values;
    const title = `${r.kind} ${r.sweep === "neurons" ? `layer ${r.layer} neuron` : r.sweep.replace(/s$/, "")} ablation: Δ ${r.metric.name}`;
    const svg = Array.isArray(v[0])
      ? heatmap(v as number[][], { title, rowLabels: r.axes[0]!.labels, colLabels: r.axes[1]!.labels, xLabel: r.axes[1]!.name === "pos" ? "position" : "head", yLabel: "layer", scale: "signed" })
      : barChart(r.sweep === "neurons" ? r.top : r.axes[0]!.labels.map((l, i) => ({ label: `L${l} MLP`, value: v[i] as number })),
        { title: r.sweep === "neurons" ? `${title} (top ${r.top.length} by |Δ|)` : title, xLabel: `Δ ${r.metric.name}` });
    return [{ name: "ablate.svg", content: svg }];
  },
});
