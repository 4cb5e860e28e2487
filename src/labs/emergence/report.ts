// Renders an EmergenceLabResult as report.md plus SVG figures, contrasting Wei et al. 2022 ("Emergent
// Abilities of Large Language Models": abilities appear abruptly, measured by exact match) with
// Schaeffer et al. 2023 ("Are Emergent Abilities of Large Language Models a Mirage?": under continuous
// metrics such as per-token loss the same improvement is smooth and starts earlier). Pure: returns
// file names and contents; the CLI writes them.
import { figureSection, verdict } from "../markdown.js";
import { lineChart, type Series } from "../../plot/index.js";
import { BASELINE_BAND, METRICS, type MetricName, type SizeAnalysis, type Transition } from "./analysis.js";
import type { EmergenceLabResult } from "./lab.js";
import { ADDITION_HEADS, VOCAB } from "./train.js";

const f3 = (v: number) => v.toFixed(3), pct = (v: number) => `${(100 * v).toFixed(1)}%`;
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];
const LABEL: Record<MetricName, string> = { loss: "answer-token loss", digitAccuracy: "per-digit accuracy", pAnswer: "p(full answer)", exactMatch: "exact match" };

const st = (x: number | null) => (x === null ? "—" : String(x));

/** The per-size checks of the two readings, each sentence chosen by its numbers. */
export function readings(s: SizeAnalysis, baseline: { loss: number; digitAccuracy: number }, steps: number): string[] {
  const l = s.transitions.loss, e = s.transitions.exactMatch;
  const sharper = l.width === null || e.width === null ? null : e.width < l.width;
  const lossFirst = l.start === null || e.start === null ? null : l.start < e.start;
  const pa = s.transitions.pAnswer, pFirst = pa.start === null || e.start === null ? null : pa.start < e.start;
  const b = s.atBaseline;
  return [
    `- d_model ${s.dModel}, Wei et al.'s reading (exact match flat, then a short rise): ` + verdict(sharper,
      "exact match rises over a shorter span than the loss", "exact match does not rise over a shorter span than the loss",
      `10% → 90% widths: exact match ${st(e.width)}, loss ${st(l.width)} steps; exact match ${pct(e.initial)} at step 0, 10% of its rise reached at step ${st(e.start)} of ${steps}`,
      "Inconclusive: a metric never covers 10% → 90% of its change"),
    `- d_model ${s.dModel}, Schaeffer et al.'s reading (the loss moves first): ` + verdict(lossFirst,
      "the loss starts to move before exact match", "the loss does not start to move before exact match",
      `10% points: loss ${st(l.start)}, exact match ${st(e.start)}; exact match when the loss started: ${pct(s.exactAtLossStart)}`,
      "Inconclusive: a metric never covers 10% of its change"),
    `- d_model ${s.dModel}, the continuous p(full answer): ` + verdict(pFirst,
      "p(full answer) starts to move before exact match", "p(full answer) does not start to move before exact match",
      `10% points: p(full answer) ${st(pa.start)}, exact match ${st(e.start)}`, "Inconclusive: a metric never covers 10% of its change"),
    `- d_model ${s.dModel}, early plateau at digit frequencies: ` + verdict(b.evals >= 2,
      `the loss sits at the digit-frequency baseline for ${b.evals} evals (steps ${st(b.first)}–${st(b.last)})`,
      b.evals === 1 ? `the loss passes the digit-frequency baseline at one eval only (step ${st(b.first)}), no plateau there` : "the loss never comes near the digit-frequency baseline",
      `baseline loss ${f3(baseline.loss)}, per-digit accuracy ${pct(baseline.digitAccuracy)}; band ±${100 * BASELINE_BAND}%`),
  ];
}

/** The JSON-able summary: options, per-size analysis and the eval log (no models). */
export function summary(r: EmergenceLabResult) {
  return {
    seconds: r.seconds, options: r.training.options, answerDigits: r.analysis.answerDigits, baseline: r.analysis.baseline, sizes: r.analysis.sizes,
    evals: r.training.runs.map((x) => ({ dModel: x.dModel, steps: x.steps, metrics: x.evals })),
  };
}

export function renderReport(r: EmergenceLabResult): Record<string, string> {
  const files: Record<string, string> = {};
  const t = r.training, o = t.options, a = r.analysis;
  const per = (m: MetricName, dashed = false): Series[] => t.runs.map((x, i) => ({ name: `d_model ${x.dModel}`, x: x.steps, y: x.evals.map((e) => e[m]), color: PALETTE[i % PALETTE.length], dashed }));
  files["loss.svg"] = lineChart(per("loss"), { title: "held-out answer-token cross-entropy (smooth metric)", xLabel: "step", yLabel: "nats per answer token" });
  files["exact-match.svg"] = lineChart(per("exactMatch"), { title: "held-out exact match (whole answer correct)", xLabel: "step", yLabel: "accuracy" });
  files["progress.svg"] = lineChart([
    ...per("digitAccuracy").map((s) => ({ ...s, name: `${s.name} per-digit acc` })),
    ...per("pAnswer", true).map((s) => ({ ...s, name: `${s.name} p(answer)` })),
  ], { title: "progress measures (solid: per-digit accuracy, dashed: p(full answer))", xLabel: "step", yLabel: "value" });
  files["metrics-by-size.svg"] = lineChart(METRICS.filter((m) => m !== "loss").map((m, i) => ({
    name: LABEL[m], x: a.sizes.map((s) => s.params), y: a.sizes.map((s) => s.final[m]), color: PALETTE[i],
  })), { title: `final metrics vs parameters (after ${o.steps} steps)`, xLabel: "parameters", yLabel: "value", xLog: true });
  const tr = (x: Transition) => `${st(x.start)} → ${st(x.end)} (${st(x.width)})`;
  const rows = a.sizes.map((s) => `| ${s.dModel} | ${s.params} | ${METRICS.map((m) => tr(s.transitions[m])).join(" | ")} | ${st(s.exactHalfStep)} | ${pct(s.exactAtLossStart)} |`);
  const finals = a.sizes.map((s) => `| ${s.dModel} | ${f3(s.final.loss)} | ${pct(s.final.digitAccuracy)} | ${f3(s.final.pAnswer)} | ${pct(s.final.exactMatch)} | ${f3(s.independenceGap)} |`);
  const lead = a.sizes.map((s) => {
    const l = s.transitions.loss.start, e = s.transitions.exactMatch.start, d = s.transitions.digitAccuracy.start;
    return `- d_model ${s.dModel}: the loss starts to move at step ${st(l)}, per-digit accuracy at ${st(d)}, exact match at ${st(e)}` +
      (l !== null && e !== null ? (e >= l ? ` (${e - l} steps later)` : ` (${l - e} steps earlier)`) : "") + `; exact match when the loss started moving: ${pct(s.exactAtLossStart)}; exact match ≥ 50% from step ${st(s.exactHalfStep)}.`;
  });
  files["report.md"] = [
    "# Emergence: abrupt exact match vs smooth loss",
    "",
    `Contrasts Wei et al. 2022, "Emergent Abilities of Large Language Models" (https://arxiv.org/abs/2206.07682) — abilities such as multi-digit arithmetic appear abruptly, measured by exact match — with Schaeffer et al. 2023, "Are Emergent Abilities of Large Language Models a Mirage?" (https://arxiv.org/abs/2304.15004) — the abruptness comes from the nonlinear/discontinuous metric: exact match on an L-token answer behaves like (per-token accuracy)^L, while per-token loss improves smoothly and earlier. Here the x-axis is training steps (and model width), not parameters across a model family.`,
    "",
    `Task: ${o.digits}-digit addition "a+b=" → the ${a.answerDigits} digits of the sum, written **least significant digit first** (reversed: each digit then depends only on operand digits and the carry from the digit already written), zero-padded; tokens 0–9, '+', '=' (vocab ${VOCAB}). Models: decoder-only transformers, ${o.nLayers} layers, ${ADDITION_HEADS} heads, LayerNorm, MLP 4×, d_model ∈ {${o.sizes.join(", ")}}. ${o.steps} AdamW steps each (lr ${o.lr}, weight decay ${o.weightDecay}), batch ${o.batch} random problems, the same problem stream for every size, loss only on the answer tokens, seed ${o.seed}. Every ${o.evalEvery} steps a fixed held-out set of ${o.evalSize} problems is scored (teacher-forced; exact match = every answer digit's argmax right = greedy decoding correct). ${r.seconds.toFixed(1)} s.`,
    "",
    "## Findings",
    "",
    ...lead,
    "",
    `Transition steps per metric: first eval step at which the metric has covered 10% → 90% of its change from initialisation to the end of training (width in steps). "Starts to move" = the 10% point.`,
    "",
    `| d_model | params | ${METRICS.map((m) => LABEL[m]).join(" | ")} | exact ≥ 50% | exact at loss start |`,
    `|---|---|${METRICS.map(() => "---").join("|")}|---|---|`,
    ...rows,
    "",
    "Final held-out metrics. The last column is the largest gap over training between exact match and (per-digit accuracy)^" + a.answerDigits + " — small if exact match is just the nonlinear transform of per-token accuracy that Schaeffer et al. describe.",
    "",
    "| d_model | loss | per-digit acc | p(answer) | exact match | max |exact − acc^L| |",
    "|---|---|---|---|---|---|",
    ...finals,
    "",
    "## Reading",
    "",
    `Each reading is checked per model size; the numbers of each check stand beside it. The digit-frequency baseline predicts each answer position's digit by its frequency on the held-out set (digit frequencies known, addition not): loss ${f3(a.baseline.loss)} nats, per-digit accuracy ${pct(a.baseline.digitAccuracy)}.`,
    "",
    ...a.sizes.flatMap((s) => readings(s, a.baseline, o.steps)),
    "",
    ...figureSection(files),
  ].join("\n");
  return files;
}
