// Bias probe of minimal pairs: where in the network prompts A and B diverge (residual stream per
// layer × position, head and MLP outputs) and which components' direct logit attribution to
// logit(answer) − logit(wrong) differs most; several pairs are averaged.
import { z } from "zod";
import { biasProbe, type MinimalPair } from "../analysis/bias-probes.js";
import { barChart } from "../plot/bars.js";
import { svgGrid } from "../plot/grid.js";
import { heatmap } from "../plot/svg.js";
import { bosField, promptField, promptIds, shownToken, singleToken, tokenField, tokenList } from "./inputs.js";
import { defineTechnique, InputError } from "./technique.js";

type Axis = { name: string; labels: string[] };
const pair = z.object({ a: promptField("prompt A"), b: promptField("prompt B"), answer: tokenField("the answer token").optional(), wrong: tokenField("the wrong token").optional() });

const input = z.object({
  a: promptField("prompt A of a minimal pair (same number of tokens as B, differing in a few)").optional(),
  b: promptField("prompt B of the pair").optional(),
  answer: tokenField("the answer token; the target is logit(answer) − logit(wrong) at the last position").optional(),
  wrong: tokenField("the wrong token").optional(),
  pairs: z.array(pair).optional().describe(`more pairs: [{"a", "b", "answer"?, "wrong"?}] (the CLI takes a JSON or JSONL file); answer and wrong default to the fields above`),
  threshold: z.number().min(0).default(0.05).describe("divergence ‖A − B‖ / max(‖A‖, ‖B‖) at the last position that counts as diverged"),
  top: z.number().int().min(1).default(20).describe("components shown in the DLA bar chart"),
  bos: bosField,
});

export const probe = defineTechnique({
  name: "probe",
  summary: "bias probe of minimal pairs: where A and B diverge, per-component DLA difference",
  input,
  run(s, inp) {
    if ((inp.a === undefined) !== (inp.b === undefined)) throw new InputError(inp.a === undefined ? "a" : "b", "a and b go together");
    const texts = [
      ...(inp.a !== undefined ? [{ a: inp.a, b: inp.b!, where: "a/b" }] : []),
      ...(inp.pairs ?? []).map((p, i) => ({ ...p, where: `pairs.${i}` })),
    ];
    if (texts.length === 0) throw new InputError("a", "give prompts a and b, or pairs");
    const field = (t: { where: string }, f: string) => (t.where === "a/b" ? f : `${t.where}.${f}`);
    const pairs: (MinimalPair & { text: (typeof texts)[number] })[] = texts.map((t) => {
      const a = promptIds(s, field(t, "a"), t.a, inp.bos), b = promptIds(s, field(t, "b"), t.b, inp.bos);
      const strs = (ids: number[]) => tokenList(s, ids).map((x) => x.str);
      if (a.length !== b.length) throw new InputError(field(t, "b"), `the prompts must have the same number of tokens: A has ${a.length} ${JSON.stringify(strs(a))}, B has ${b.length} ${JSON.stringify(strs(b))}`);
      const tok = (f: "answer" | "wrong") => {
        const text = ("answer" in t ? t[f] : undefined) ?? inp[f];
        if (text === undefined) throw new InputError(f, `${t.where}: no ${f} token (give ${f}, or "${f}" in the pair)`);
        return singleToken(s, f, text);
      };
      return { a, b, target: { token: tok("answer"), incorrect: tok("wrong") }, text: t };
    });
    const first = pairs[0]!.target!;
    const r = biasProbe(s.model, pairs, { target: { token: first.token, incorrect: first.incorrect! }, threshold: inp.threshold });
    const str = (id: number) => tokenList(s, [id])[0]!;
    // One pair: positions labelled with their tokens ("doctor/nurse" where they differ).
    const posLabels = pairs.length === 1
      ? pairs[0]!.a.map((id, i) => { const x = str(id).str, o = str(pairs[0]!.b[i]!).str; return x === o ? shownToken(x) : `${shownToken(x)}/${shownToken(o)}`; })
      : r.posLabels;
    const sameTarget = pairs.every((p) => p.target!.token === first.token && p.target!.incorrect === first.incorrect);
    return {
      threshold: inp.threshold, top: inp.top,
      divergence: "‖A − B‖ / max(‖A‖, ‖B‖)",
      answer: sameTarget ? str(first.token) : null, wrong: sameTarget ? str(first.incorrect!) : null,
      axes: {
        resid: [{ name: "layer", labels: r.residLabels }, { name: "pos", labels: posLabels }] as [Axis, Axis],
        heads: [{ name: "layer", labels: r.mean.heads.map((_, l) => String(l)) }, { name: "head", labels: r.mean.heads[0]!.map((_, h) => String(h)) }],
        components: r.mean.dla.labels,
      },
      mean: r.mean,
      pairs: r.pairs.map((p, k) => {
        const { text, a, b, target } = pairs[k]!;
        return { a: { prompt: text.a, tokens: tokenList(s, a) }, b: { prompt: text.b, tokens: tokenList(s, b) }, answer: str(target!.token), wrong: str(target!.incorrect!), ...p };
      }),
    };
  },
  text(r) {
    const m = r.mean, n = r.pairs.length, fmt = (v: number) => v.toFixed(4).padStart(9);
    const [resid, pos] = r.axes.resid;
    return [
      `bias probe of ${n} pair${n > 1 ? "s (means)" : ""}: logit diff A ${m.logitDiff.a.toFixed(4)}, B ${m.logitDiff.b.toFixed(4)}, A − B ${m.logitDiff.diff.toFixed(4)}`,
      `first divergence at the last position (> ${r.threshold}): ${m.firstDivergence ? `${m.firstDivergence.label} (${m.firstDivergence.value.toFixed(4)})` : "none"}`,
      `largest DLA difference: ${m.topComponent.label} ${m.topComponent.diff.toFixed(4)} (${(100 * m.topComponent.share).toFixed(1)}% of A − B)`,
      `residual divergence (layer × position):`,
      `${"".padEnd(11)}${pos.labels.map((l) => l.slice(0, 8).padStart(9)).join("")}`,
      ...m.resid.map((row, i) => `${resid.labels[i]!.padEnd(11)}${row.map(fmt).join("")}`),
      `head output divergence (layer × head):`,
      ...m.heads.map((row, l) => `${`L${l}`.padEnd(11)}${row.map(fmt).join("")}`),
      ...(m.mlps.length ? [`MLP output divergence: ${m.mlps.map((v, l) => `L${l} ${v.toFixed(4)}`).join(", ")}`] : []),
    ].join("\n");
  },
  pictures(r) {
    const m = r.mean, n = r.pairs.length, of = n > 1 ? ` (mean of ${n} pairs)` : "";
    const targetLabel = r.answer && r.wrong ? `${JSON.stringify(r.answer.str)} − ${JSON.stringify(r.wrong.str)}` : "each pair's target";
    const [resid, pos] = r.axes.resid;
    const rh = heatmap(m.resid, { title: `residual divergence A vs B${of}`, rowLabels: resid.labels, colLabels: pos.labels, xLabel: "position", yLabel: "layer", scale: "sequential", min: 0 });
    const hh = heatmap(m.heads, { title: "head output divergence", rowLabels: m.heads.map((_, l) => String(l)), colLabels: m.heads[0]!.map((_, h) => String(h)), xLabel: "head", yLabel: "layer", scale: "sequential", min: 0 });
    const order = m.dla.diff.map((_, i) => i).sort((x, y) => Math.abs(m.dla.diff[y]!) - Math.abs(m.dla.diff[x]!) || x - y).slice(0, r.top);
    const bars = barChart(order.map((i) => ({ label: m.dla.labels[i]!, value: m.dla.diff[i]! })), {
      title: `DLA difference A − B of ${targetLabel}`, xLabel: `Δ logit diff (total ${m.logitDiff.diff.toPrecision(4)})`, width: 420,
    });
    return [{ name: "probe.svg", content: svgGrid([rh, hh, bars], { cols: 3 }) }];
  },
});
