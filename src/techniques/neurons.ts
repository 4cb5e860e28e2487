// MLP neurons over a text corpus: max-activating examples of the neurons of block L's hook_post,
// streamed in windows of ctx tokens, each neuron's activation histogram and the polysemanticity
// heuristic of analysis/neurons.ts. Pictures: neurons.html (one card per neuron — statistics,
// histogram, the examples' tokens coloured by that neuron's activation, max token outlined, as
// Neuronpedia's feature cards) and neurons-histograms.svg.
import { z } from "zod";
import { activationHistogram, maxActivatingExamples, neuronActivations, polysemanticity, type NeuronHistogram } from "../analysis/neurons.js";
import type { HookName } from "../model/hooks.js";
import { histogramChart } from "../plot/bars.js";
import { svgGrid } from "../plot/grid.js";
import { htmlPage, legendSvg, tokenSpans } from "../plot/tokens.js";
import { esc, fmtTick } from "../plot/svg.js";
import { corpusField, corpusWindows, readCorpus } from "./corpus.js";
import { bosField, shownToken, tokenizerOf } from "./inputs.js";
import { defineTechnique, InputError, progressOf } from "./technique.js";

const int = (min: number) => z.number().int().min(min);

const input = z.object({
  corpus: corpusField("a text file; read line by line and cut into windows of ctx tokens (the whole file is never tokenized)"),
  layer: int(0).describe("block whose MLP neurons (blocks.L.mlp.hook_post) are scanned"),
  neurons: z.array(int(0)).min(1).optional().describe("neuron indices (comma-separated on the CLI); or"),
  top: int(1).optional().describe("the N neurons with the largest rank statistic over the corpus (default: top 4)"),
  rank: z.enum(["max", "std"]).default("max").describe("max (most active) or std (most variable)"),
  k: int(1).default(8).describe("examples kept per neuron"),
  ctx: int(1).default(32).describe("tokens per window (a BOS token is put before each window unless --no-bos)"),
  maxWindows: int(1).default(64).describe("windows read from the corpus at most"),
  batch: int(1).default(8).describe("windows per forward pass"),
  before: int(0).default(10).describe("tokens shown before the max position"),
  after: int(0).default(4).describe("tokens shown after the max position"),
  bins: int(1).default(40).describe("histogram bins"),
  threshold: z.number().min(-1).max(1).default(0.5).describe("cosine of W_E rows at which tokens join a polysemanticity cluster"),
  bos: bosField.describe("put the tokenizer's BOS token before each window (its position is skipped in the statistics)"),
});

export interface NeuronDoc {
  neuron: number;
  histogram: NeuronHistogram;
  polysemanticity: ReturnType<typeof polysemanticityDoc>;
  examples: { value: number; sequence: number; position: number; token: { id: number; str: string }; windowStart: number; offset: number; tokens: { id: number; str: string; act: number }[] }[];
}

/** The polysemanticity result with token strings beside the ids. */
function polysemanticityDoc(p: ReturnType<typeof polysemanticity>, str: (id: number) => string) {
  return { ...p, groups: p.groups.map((g) => ({ ...g, tokens: g.tokens.map((id) => ({ id, str: str(id) })) })) };
}

/** One neuron's card: heading, statistics, polysemanticity, histogram and coloured examples. */
function card(layer: number, n: NeuronDoc, hist: string): string {
  const max = Math.max(1e-12, ...n.examples.map((e) => Math.abs(e.value)));
  const h = n.histogram, p = n.polysemanticity;
  const stats = `max ${fmtTick(h.max)} · min ${fmtTick(h.min)} · mean ${fmtTick(h.mean)} · std ${fmtTick(h.std)} · fraction &gt; 0: ${(100 * h.fractionPositive).toFixed(1)}% over ${h.count} activations`;
  const poly = `polysemanticity (heuristic): ${p.clusters} token cluster${p.clusters === 1 ? "" : "s"}, effective ${p.effectiveClusters.toFixed(2)}, top share ${(100 * p.topShare).toFixed(0)}% — ` +
    p.groups.map((g) => `[${g.tokens.map((t) => esc(JSON.stringify(t.str))).join(" ")}] ${(100 * g.share).toFixed(0)}%`).join(" · ");
  const rows = n.examples.map((e) => `<div class="ex"><span class="v">${e.value.toFixed(4)}</span>` +
    tokenSpans(e.tokens.map((t) => t.str), e.tokens.map((t) => t.act), max, e.offset) + "</div>").join("");
  return `<h2>L${layer} N${n.neuron}</h2><p>${stats}</p><p>${poly}</p>` +
    `<div style="display:flex;gap:24px;align-items:flex-start"><div>${hist}</div><div>${legendSvg(max, `activation of L${layer}N${n.neuron}`, `lg${n.neuron}`)}` +
    `<p style="font-size:12px;color:#555">top ${n.examples.length} examples; outlined: the max token</p></div></div>${rows}`;
}

export const neurons = defineTechnique({
  name: "neurons",
  summary: "max-activating examples, activation histograms and polysemanticity of MLP neurons over a corpus",
  input,
  long: true,
  async run(s, inp, opts) {
    const cfg = s.model.cfg;
    if (inp.neurons !== undefined && inp.top !== undefined) throw new InputError("top", "give neurons or top, not both");
    if (inp.layer >= cfg.n_layers) throw new InputError("layer", `${inp.layer} is out of range: the model has layers 0..${cfg.n_layers - 1}`);
    if (cfg.attn_only) throw new InputError("layer", "this model is attention-only: it has no MLP neurons");
    const dMlp = cfg.d_mlp, layer = inp.layer;
    for (const n of inp.neurons ?? []) if (n >= dMlp) throw new InputError("neurons", `neuron ${n} is out of range: layer ${layer} has neurons 0..${dMlp - 1}`);
    const tokenizer = tokenizerOf(s, "corpus");
    const bos = inp.bos ? tokenizer.bosTokenId ?? undefined : undefined;
    const cap = Math.min(cfg.n_ctx, s.maxTokens ?? cfg.n_ctx), width = inp.ctx + (bos === undefined ? 0 : 1);
    if (width > cap) throw new InputError("ctx", `${inp.ctx}${bos === undefined ? "" : " (plus BOS)"} exceeds ${cap === cfg.n_ctx ? `n_ctx = ${cap}` : `this server's limit of ${cap} tokens`}`);
    let windows: number[][];
    const text = readCorpus("corpus", inp.corpus, s);
    try { windows = corpusWindows(tokenizer, text, inp.ctx, inp.maxWindows, bos); } catch (e) { throw new InputError("corpus", `${inp.corpus}: ${(e as Error).message}`); }
    if (windows.length === 0) throw new InputError("corpus", `${inp.corpus} has fewer than ctx = ${inp.ctx} tokens`);
    const batches = Array.from({ length: Math.ceil(windows.length / inp.batch) }, (_, i) => windows.slice(i * inp.batch, (i + 1) * inp.batch));
    const hook = `blocks.${layer}.mlp.hook_post` as HookName;
    const scan = { layer, skipPositions: bos === undefined ? 0 : 1 };
    // Two histogram passes and one examples pass over the batches, then at most as many to colour the examples.
    const progress = progressOf(opts, 4 * batches.length, `${hook} over ${windows.length} windows`);
    // The library's passes are synchronous: each batch they take reports progress (and honours cancellation).
    const counted = () => (function* () { for (const b of batches) { progress.tick(); yield b; } })();

    // top: rank every neuron by the histogram pass's statistic, then keep those N.
    const listed = inp.neurons ?? null, top = inp.top ?? 4;
    let hists: NeuronHistogram[];
    if (listed) hists = activationHistogram(s.model, counted, { ...scan, neurons: listed, bins: inp.bins });
    else hists = activationHistogram(s.model, counted, { ...scan, bins: inp.bins }).sort((a, b) => b[inp.rank] - a[inp.rank] || a.neuron - b.neuron).slice(0, Math.min(top, dMlp));
    const chosen = hists.map((h) => h.neuron);
    const found = maxActivatingExamples(s.model, counted(), { ...scan, neurons: chosen, k: inp.k, contextBefore: inp.before, contextAfter: inp.after });
    // Every token of the shown windows coloured by the neuron: one more pass over just those windows.
    const seqs = [...new Set(found.flatMap((f) => f.examples.map((e) => e.sequence)))].sort((a, b) => a - b);
    const acts = new Map<number, number[][]>();
    const colourBatches = Math.ceil(seqs.length / inp.batch);
    for (let i = 0; i < seqs.length; i += inp.batch) {
      const part = seqs.slice(i, i + inp.batch);
      neuronActivations(s.model, part.map((q) => windows[q]!), { layer, neurons: chosen }).forEach((a, j) => acts.set(part[j]!, a));
      await progress.step();
    }
    if (colourBatches < batches.length) await progress.step(batches.length - colourBatches);
    const str = (id: number) => tokenizer.decode([id]);
    const result: NeuronDoc[] = found.map((f, j) => ({
      neuron: f.neuron,
      histogram: hists[j]!,
      polysemanticity: polysemanticityDoc(polysemanticity(f.examples, s.model, { threshold: inp.threshold }), str),
      examples: f.examples.map((e) => ({
        value: e.value, sequence: e.sequence, position: e.position, token: { id: e.token, str: str(e.token) }, windowStart: e.windowStart, offset: e.offset,
        tokens: e.tokens.map((id, t) => ({ id, str: str(id), act: acts.get(e.sequence)![e.windowStart + t]![j]! })),
      })),
    }));
    return {
      layer, hook,
      corpus: { file: inp.corpus, windows: windows.length, ctx: inp.ctx, bos: bos ?? null, skippedPositions: scan.skipPositions },
      selection: listed ? { mode: "list" as const } : { mode: "top" as const, top, rank: inp.rank },
      k: inp.k, context: { before: inp.before, after: inp.after }, threshold: inp.threshold,
      neurons: result,
    };
  },
  text(r) {
    return [
      `MLP neurons of layer ${r.layer} over ${r.corpus.windows} windows × ${r.corpus.ctx} tokens`,
      ...r.neurons.flatMap((n) => [
        `L${r.layer}N${n.neuron}: max ${n.histogram.max.toFixed(4)}, mean ${n.histogram.mean.toFixed(4)}, std ${n.histogram.std.toFixed(4)}; ` +
          `${n.polysemanticity.clusters} cluster(s), effective ${n.polysemanticity.effectiveClusters.toFixed(2)}`,
        ...n.examples.map((e) => `  ${e.value.toFixed(4).padStart(9)}  ${e.tokens.map((t, i) => (i === e.offset ? `[[${shownToken(t.str)}]]` : shownToken(t.str))).join("")}`),
      ]),
    ].join("\n");
  },
  pictures(r) {
    const L = r.layer, sel = r.selection;
    const hist = (n: NeuronDoc, title: string) => histogramChart(n.histogram.edges, n.histogram.counts, { title, xLabel: "activation", logCounts: true, width: 360, height: 220 });
    const html = htmlPage(`MLP neurons of layer ${L}: max-activating examples`,
      `<p>${esc(`${r.corpus.windows} windows of ${r.corpus.ctx} tokens from ${r.corpus.file}; ${r.hook}; ${sel.mode === "list" ? "chosen neurons" : `top ${sel.top} by ${sel.rank}`}`)}</p>` +
      r.neurons.map((n) => card(L, n, hist(n, `L${L}N${n.neuron} activations`))).join(""));
    const grid = svgGrid(r.neurons.map((n) => hist(n, `L${L}N${n.neuron}`)), { title: `activation histograms, ${r.hook}`, cols: Math.min(3, r.neurons.length) });
    return [{ name: "neurons.html", content: html }, { name: "neurons-histograms.svg", content: grid }];
  },
});
