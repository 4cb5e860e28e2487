// Renders the text variant of the induction-heads lab as report.md plus SVG figures, comparing the
// numbers with Olsson et al. 2022 (the ICL score falls ~0.4 nats in a phase change early in
// training, at the same time as induction heads form). Pure: returns file names and contents.
import { figureSection, illConditioned, verdict } from "../markdown.js";
import { heatmap, lineChart, stackVertically, type Series } from "../../plot/index.js";
import type { TextInductionLab } from "./lab.js";
import type { TextInductionAnalysis } from "./text-analysis.js";
import { DETECTOR_ROWS, TEXT_QK_STD } from "./text-train.js";

/** Olsson et al. 2022: the in-context-learning score falls by about this many nats in the phase change (larger models, n_ctx 8192). */
export const PAPER_ICL_DROP = 0.4;

const f2 = (v: number) => v.toFixed(2), f3 = (v: number) => v.toFixed(3);
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];

/** Whether the ICL drop, the repeated-text drop and the induction crossing coincide (the paper's Argument 1), with the windows beside the answer. */
export function together(a: TextInductionAnalysis, steps: number): string {
  const f2 = (v: number) => v.toFixed(2);
  const windows = `ICL drop steps ${a.icl.start}–${a.icl.end} (centre ${a.icl.step}), repeated-text drop ${a.repeated.start}–${a.repeated.end}, induction score ≥ ${a.threshold} ${a.inductionCrossStep === null ? "never" : `from step ${a.inductionCrossStep}`}`;
  if (a.coincide) return `Yes: the ICL drop window overlaps the repeated-text drop window and the induction score crosses its threshold within one window of the ICL drop (${windows}).`;
  if (a.inductionCrossStep !== null) return `Not cleanly: the ICL drop, the repeated-text drop and the induction crossing do not all fall in one window at these settings (${windows}; see the figure).`;
  const copy = verdict(a.final.repeated < a.final.firstHalf,
    "Even so, the loss on repeated random text falls below the first half's", "The loss on repeated random text does not fall below the first half's",
    `second half ${f2(a.final.repeated)}, first half ${f2(a.final.firstHalf)} nats`);
  return `No induction head formed in ${steps} steps (${windows}), so this is not the paper's phase change: whatever ICL score the model reaches comes from other uses of the context than an induction head (e.g. attention to earlier characters of the same word or speech — skip-trigrams, Elhage et al. 2021). ${copy}. Train longer (--steps) or with a longer context (--n-ctx) to look for the phase change.`;
}

/** The JSON-able summary (no model; the checkpoint log is kept, it is small). */
export function textSummary(r: TextInductionLab) {
  const t = r.training, a = r.analysis;
  const { snippet: _s, ...rest } = a;
  return { data: "text" as const, seconds: r.seconds, options: t.options, vocabSize: t.tokenizer.vocabSize, trainTokens: t.trainTokens, windows: t.windows, ...rest, checkpoints: t.checkpoints };
}

export function renderTextReport(r: TextInductionLab): Record<string, string> {
  const files: Record<string, string> = {};
  const t = r.training, a = r.analysis, o = t.options, cps = t.checkpoints, steps = cps.map((c) => c.step);
  const nL = a.induction.length, nH = a.induction[0]!.length, last = nL - 1;
  const markBoth = (lo: number, hi: number): Series[] => [{ name: `ICL drop window ${a.icl.start}–${a.icl.end}`, x: [a.icl.start, a.icl.start, NaN, a.icl.end, a.icl.end], y: [lo, hi, NaN, hi, lo], dashed: true, color: "#999" }];
  const icls = cps.map((c) => c.icl), reps = cps.map((c) => c.repeated);
  const width = 760, height = 260;
  const panels = [
    lineChart([
      { name: "ICL score (late − early loss)", x: steps, y: icls, color: "#d62728" },
      { name: "zero", x: [0, o.steps], y: [0, 0], color: "#bbb", dashed: true },
      ...markBoth(Math.min(...icls), Math.max(0, ...icls)),
    ], { title: "in-context-learning score on held-out text (nats)", xLabel: "step", yLabel: "nats", width, height }),
    lineChart([
      { name: "repeated random text, 2nd half", x: steps, y: reps, color: "#1f77b4" },
      { name: "repeated random text, 1st half", x: steps, y: cps.map((c) => c.firstHalf), color: "#1f77b4", dashed: true },
      { name: "held-out text, late positions", x: steps, y: cps.map((c) => c.late), color: "#2ca02c" },
      ...markBoth(0, Math.max(...reps, ...cps.map((c) => c.firstHalf))),
    ], { title: "losses (nats)", xLabel: "step", yLabel: "nats", width, height }),
    lineChart([
      ...Array.from({ length: nH }, (_, h): Series => ({ name: `L${last}H${h} induction`, x: steps, y: cps.map((c) => c.induction[last]![h]!), color: PALETTE[h % PALETTE.length] })),
      ...Array.from({ length: nH }, (_, h): Series => ({ name: `L0H${h} prev-token`, x: steps, y: cps.map((c) => c.previousToken[0]![h]!), color: PALETTE[h % PALETTE.length], dashed: true })),
      { name: "max K-composition L0→L1", x: steps, y: cps.map((c) => Math.max(...c.kComposition.flat())), color: "#000" },
      ...markBoth(0, 1),
    ], { title: "head scores on repeated random text (solid: induction, dashed: previous token)", xLabel: "step", yLabel: "score", width, height: 320 }),
  ];
  files["phase-change.svg"] = stackVertically(panels);
  files["per-position-loss.svg"] = lineChart([
    { name: "initialisation", x: t.perPositionInitial.map((_, i) => i), y: t.perPositionInitial, color: "#999" },
    { name: `step ${o.steps}`, x: t.perPositionFinal.map((_, i) => i), y: t.perPositionFinal, color: "#d62728" },
    { name: "early window", x: [t.windows.early[0], t.windows.early[1] - 1], y: [a.final.early, a.final.early], color: "#2ca02c" },
    { name: "late window", x: [t.windows.late[0], t.windows.late[1] - 1], y: [a.final.late, a.final.late], color: "#1f77b4" },
  ], { title: "held-out loss by position in the context", xLabel: "token position", yLabel: "nats" });
  const rows = a.induction.map((_, l) => `layer ${l}`), cols = a.induction[0]!.map((_, h) => `H${h}`);
  files["detectors-final.svg"] = heatmap([...a.induction, ...a.previousToken], {
    title: "final detector scores (top: induction, bottom: previous token)", scale: "sequential", min: 0, max: 1,
    rowLabels: [...rows.map((x) => `ind ${x}`), ...rows.map((x) => `prev ${x}`)], colLabels: cols, xLabel: "head",
  });
  files["k-composition.svg"] = heatmap(a.kComposition, {
    title: `K-composition, layer-0 → layer-1 heads (random baseline ${f3(a.baseline.mean)})`, scale: "sequential", min: 0,
    rowLabels: cols.map((c) => `L0${c}`), colLabels: cols.map((c) => `L1${c}`), xLabel: "layer-1 head (keys)", yLabel: "layer-0 head",
  });
  const shown = (c: string) => (c === "\n" ? "⏎" : c === " " ? "␣" : c);
  const labels = a.snippet.chars.map((c, i) => `${i} ${shown(c)}`);
  files["induction-attention.svg"] = heatmap(a.snippet.pattern, {
    title: `L${a.inductionHead.layer}H${a.inductionHead.head} attention on a held-out snippet written twice (induction score ${f2(a.snippet.score)})`,
    scale: "sequential", min: 0, max: 1, rowLabels: labels, colLabels: labels, xLabel: "key (attended) position", yLabel: "query position", cell: 9,
  });
  const table = (m: number[][], name: string) => [`| ${name} | ${cols.join(" | ")} |`, `|---|${cols.map(() => "---").join("|")}|`, ...m.map((row, i) => `| ${i} | ${row.map(f3).join(" | ")} |`)];
  const snippetText = a.snippet.chars.slice(0, a.snippet.chars.length / 2).join("");
  files["report.md"] = [
    `# Induction heads in a character-level text model`,
    "",
    `Reproduces, on Tiny Shakespeare at the character level, the observation of Olsson et al. 2022, "In-context Learning and Induction Heads" (https://transformer-circuits.pub/2022/in-context-learning-and-induction-heads/index.html): early in training there is a phase change in which the in-context-learning (ICL) score — loss at late token positions minus loss at early ones — drops, at the same time as induction heads form and the loss on repeated random text falls (their Argument 1).`,
    "",
    `Model: ${t.model.cfg.n_layers}-layer attention-only transformer, ${o.nHeads} heads × d_head ${o.dHead} per layer, d_model ${o.dModel}, n_ctx ${o.nCtx}, d_vocab ${t.tokenizer.vocabSize} characters, no LayerNorm or biases; sinusoidal initial positions (learned), W_Q and W_K at std ${TEXT_QK_STD}. Data: ${o.corpus} (${t.trainTokens} training characters, the last 10% held out). ${o.steps} steps of the shared trainer (AdamW, peak lr ${o.lr}, warm-up then cosine, weight decay ${o.weightDecay}, batch ${o.batch} × ${o.nCtx}), seed ${o.seed}; measured every ${o.logEvery} steps; ${r.seconds.toFixed(1)} s in all.`,
    "",
    `ICL score: mean held-out loss over positions ${t.windows.late[0]}–${t.windows.late[1] - 1} minus positions ${t.windows.early[0]}–${t.windows.early[1] - 1} (${o.evalWindows} fixed held-out windows). Repeated random text: ${DETECTOR_ROWS} rows of ${o.nCtx / 2} characters drawn from the corpus's character frequencies, each written twice; the detectors (src/analysis/head-detectors.ts) read the attention on it.`,
    "",
    "## Findings vs the paper",
    "",
    `- **ICL score:** ${f3(a.initial.icl)} at initialisation, ${f3(a.final.icl)} nats after training (early positions ${f2(a.final.early)}, late ${f2(a.final.late)}). It falls fastest between steps ${a.icl.start} and ${a.icl.end}: ${f3(a.icl.before)} → ${f3(a.icl.after)} (a drop of ${f3(a.icl.drop)} nats; the paper: about ${PAPER_ICL_DROP} nats in larger models at n_ctx 8192).`,
    `- **Repeated random text:** second-half loss ${f2(a.initial.repeated)} → ${f2(a.final.repeated)} nats (first half, nothing to copy: ${f2(a.final.firstHalf)}); fastest fall between steps ${a.repeated.start} and ${a.repeated.end} (${f2(a.repeated.before)} → ${f2(a.repeated.after)}).`,
    `- **Induction heads:** the best layer-${last} induction score is ${f3(a.initial.induction)} at initialisation and ${f3(a.final.induction)} after training (L${a.inductionHead.layer}H${a.inductionHead.head}); it ${a.inductionCrossStep === null ? `never reaches ${a.threshold}` : `reaches ${a.threshold} at step ${a.inductionCrossStep}`}. On the held-out snippet "${snippetText.replace(/\n/g, "⏎")}" written twice its induction score is ${f3(a.snippet.score)}.`,
    `- **Previous-token head and K-composition:** L0H${a.previousTokenHead.head} (score ${f3(a.previousTokenHead.score)}); K-composition into the induction head ${f3(a.kPair)} vs random matrices ${f3(a.baseline.mean)} ± ${f3(a.baseline.std)} (${illConditioned(a.baseline.mean, a.kPair) ? "ratio ill-conditioned: the baseline mean is ~0" : `${f2(a.kPair / a.baseline.mean)}×`}).`,
    `- **Together?** ${together(a, o.steps)}`,
    "",
    "## Final detector scores (repeated random text)",
    "",
    ...table(a.induction, "induction, layer"),
    "",
    ...table(a.previousToken, "previous token, layer"),
    "",
    "## K-composition (rows: layer-0 head, columns: layer-1 head)",
    "",
    ...table(a.kComposition, "L0 head"),
    "",
    "## Checkpoints",
    "",
    `| step | ICL score | early | late | repeated 2nd half | best L${last} induction | best L0 prev-token | max K |`,
    "|---|---|---|---|---|---|---|---|",
    ...cps.map((c) => `| ${c.step} | ${f3(c.icl)} | ${f3(c.early)} | ${f3(c.late)} | ${f3(c.repeated)} | ${f3(Math.max(...c.induction[last]!))} | ${f3(Math.max(...c.previousToken[0]!))} | ${f3(Math.max(...c.kComposition.flat()))} |`),
    "",
    ...figureSection(files),
  ].join("\n");
  return files;
}
