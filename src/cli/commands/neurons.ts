// `circuitscope neurons <snapshot-folder> --corpus file.txt --layer L [--neurons 0,5,7 | --top N]`:
// max-activating examples of MLP neurons (hook_post of block L) over a text corpus, streamed in
// windows of --ctx tokens, with each neuron's activation histogram and the polysemanticity heuristic
// of src/analysis/neurons.ts. --out writes neurons.html (one card per neuron: statistics, histogram,
// the examples' tokens coloured by that neuron's activation, max token outlined, as Neuronpedia's
// feature cards), neurons-histograms.svg and neurons.json; the JSON document goes to stdout.
import fs from "node:fs";
import { activationHistogram, maxActivatingExamples, neuronActivations, polysemanticity, type NeuronHistogram } from "../../analysis/neurons.js";
import type { HookName } from "../../model/hooks.js";
import { histogramChart } from "../../plot/bars.js";
import { svgGrid } from "../../plot/grid.js";
import { htmlPage, legendSvg, tokenSpans } from "../../plot/tokens.js";
import { esc, fmtTick } from "../../plot/svg.js";
import { intAtLeast as int, UsageError } from "../args.js";
import type { Command } from "../command.js";
import { intList, writeOutputFiles } from "../outputs.js";
import { loadWithTokenizer } from "../legacy-inputs.js";
import { shownToken } from "../../techniques/inputs.js";

const RANKS = ["max", "std"] as const;

const USAGE = `circuitscope neurons <snapshot-folder> --corpus file.txt --layer L [--neurons 0,5,7 | --top N] [--rank max|std] [--k 8] [--ctx 32] [--max-windows 64] [--batch 8] [--before 10] [--after 4] [--bins 40] [--threshold 0.5] [--out dir] [--no-bos] [--json]
  --corpus F       a text file; read line by line and cut into windows of --ctx tokens (the whole file is never tokenized)
  --layer L        block whose MLP neurons (blocks.L.mlp.hook_post) are scanned
  --neurons LIST   comma-separated neuron indices; or
  --top N          the N neurons with the largest --rank statistic over the corpus (default: --top 4)
  --rank R         max (most active, default) or std (most variable)
  --k K            examples kept per neuron (default 8)
  --ctx T          tokens per window (default 32; a BOS token is put before each window unless --no-bos)
  --max-windows W  windows read from the corpus at most (default 64)
  --batch B        windows per forward pass (default 8)
  --before, --after  tokens shown before / after the max position (default 10 / 4)
  --bins N         histogram bins (default 40)
  --threshold C    cosine of W_E rows at which tokens join a polysemanticity cluster (default 0.5)
  --out dir        write neurons.html, neurons-histograms.svg and neurons.json there
  --no-bos         no BOS token before each window (by default the BOS position is skipped in the statistics)`;

/** What corpusWindows needs from a tokenizer. */
interface Encoder { encode(text: string, opts?: { addSpecialTokens?: boolean }): number[] }

/**
 * Windows of `ctx` corpus tokens (plus `bos` first if given), at most maxWindows of them, the text
 * encoded line by line (each line with its newline) so only what is used gets tokenized.
 */
export function corpusWindows(tokenizer: Encoder, text: string, ctx: number, maxWindows: number, bos?: number): number[][] {
  const want = ctx * maxWindows, ids: number[] = [];
  for (let at = 0; at < text.length && ids.length < want;) {
    const nl = text.indexOf("\n", at), end = nl < 0 ? text.length : nl + 1;
    ids.push(...tokenizer.encode(text.slice(at, end), { addSpecialTokens: false }));
    at = end;
  }
  const n = Math.min(maxWindows, Math.floor(ids.length / ctx));
  return Array.from({ length: n }, (_, w) => [...(bos === undefined ? [] : [bos]), ...ids.slice(w * ctx, (w + 1) * ctx)]);
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

interface NeuronDoc {
  neuron: number;
  histogram: NeuronHistogram;
  polysemanticity: ReturnType<typeof polysemanticityDoc>;
  examples: { value: number; sequence: number; position: number; token: { id: number; str: string }; windowStart: number; offset: number; tokens: { id: number; str: string; act: number }[] }[];
}

/** The polysemanticity result with token strings beside the ids. */
function polysemanticityDoc(p: ReturnType<typeof polysemanticity>, str: (id: number) => string) {
  return { ...p, groups: p.groups.map((g) => ({ ...g, tokens: g.tokens.map((id) => ({ id, str: str(id) })) })) };
}

export const neuronsCmd: Command = {
  name: "neurons",
  summary: "max-activating examples, activation histograms and polysemanticity of MLP neurons over a corpus",
  usage: USAGE,
  run(pos, flags, out) {
    const corpusFile = flags.str("corpus"), layerText = flags.str("layer"), neuronsText = flags.str("neurons"), topText = flags.str("top");
    const rank = flags.str("rank", "max") as (typeof RANKS)[number];
    const k = int("k", flags.num("k", 8), 1), ctx = int("ctx", flags.num("ctx", 32), 1), maxWindows = int("max-windows", flags.num("max-windows", 64), 1);
    const batch = int("batch", flags.num("batch", 8), 1), before = int("before", flags.num("before", 10), 0), after = int("after", flags.num("after", 4), 0);
    const bins = int("bins", flags.num("bins", 40), 1), threshold = flags.num("threshold", 0.5);
    const outDir = flags.str("out");
    const noBos = flags.bool("no-bos");
    flags.checkUnknown();
    const [folder, ...extra] = pos;
    if (folder === undefined) throw new UsageError("neurons needs a snapshot folder");
    if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(" ")}`);
    if (corpusFile === undefined) throw new UsageError("neurons needs --corpus file.txt");
    if (layerText === undefined) throw new UsageError("neurons needs --layer L");
    if (neuronsText !== undefined && topText !== undefined) throw new UsageError("give --neurons or --top, not both");
    if (!RANKS.includes(rank)) throw new UsageError(`--rank must be max or std, got ${rank}`);
    if (!fs.existsSync(corpusFile)) throw new UsageError(`--corpus: no file at ${corpusFile}`);
    const layer = Number(layerText);
    const listed = neuronsText === undefined ? null : intList(neuronsText);
    if (neuronsText !== undefined && listed === null) throw new UsageError(`--neurons must be comma-separated integers, got "${neuronsText}"`);
    const top = topText === undefined ? 4 : int("top", Number(topText), 1);

    const { model, tokenizer, config: cfg } = loadWithTokenizer(folder);
    if (!Number.isInteger(layer) || layer < 0 || layer >= cfg.n_layers) throw new UsageError(`--layer ${layerText} is out of range: the model has layers 0..${cfg.n_layers - 1}`);
    if (cfg.attn_only) throw new UsageError("this model is attention-only: it has no MLP neurons");
    const dMlp = cfg.d_mlp;
    for (const n of listed ?? []) if (n < 0 || n >= dMlp) throw new UsageError(`--neurons: neuron ${n} is out of range: layer ${layer} has neurons 0..${dMlp - 1}`);
    const bos = noBos ? undefined : tokenizer.bosTokenId ?? undefined;
    if (1 + ctx > cfg.n_ctx) throw new UsageError(`--ctx ${ctx} (plus BOS) exceeds n_ctx = ${cfg.n_ctx}`);
    const windows = corpusWindows(tokenizer, fs.readFileSync(corpusFile, "utf8"), ctx, maxWindows, bos);
    if (windows.length === 0) throw new UsageError(`--corpus: ${corpusFile} has fewer than --ctx = ${ctx} tokens`);
    const batches = Array.from({ length: Math.ceil(windows.length / batch) }, (_, i) => windows.slice(i * batch, (i + 1) * batch));
    const hook = `blocks.${layer}.mlp.hook_post` as HookName;
    const scan = { layer, skipPositions: bos === undefined ? 0 : 1 };
    out.info(`${windows.length} windows × ${ctx} tokens from ${corpusFile}; ${hook}`);

    // --top: rank every neuron by the histogram pass's statistic, then keep those N.
    let hists: NeuronHistogram[];
    let chosen: number[];
    if (listed) { chosen = listed; hists = activationHistogram(model, batches, { ...scan, neurons: chosen, bins }); }
    else {
      const all = activationHistogram(model, batches, { ...scan, bins });
      hists = [...all].sort((a, b) => b[rank] - a[rank] || a.neuron - b.neuron).slice(0, Math.min(top, dMlp));
      chosen = hists.map((h) => h.neuron);
    }
    const found = maxActivatingExamples(model, batches, { ...scan, neurons: chosen, k, contextBefore: before, contextAfter: after });
    // Every token of the shown windows coloured by the neuron: one more pass over just those windows.
    const seqs = [...new Set(found.flatMap((f) => f.examples.map((e) => e.sequence)))].sort((a, b) => a - b);
    const acts = new Map<number, number[][]>();
    for (let i = 0; i < seqs.length; i += batch) {
      const part = seqs.slice(i, i + batch);
      neuronActivations(model, part.map((s) => windows[s]!), { layer, neurons: chosen }).forEach((a, j) => acts.set(part[j]!, a));
    }
    const str = (id: number) => tokenizer.decode([id]);
    const neurons: NeuronDoc[] = found.map((f, j) => ({
      neuron: f.neuron,
      histogram: hists[j]!,
      polysemanticity: polysemanticityDoc(polysemanticity(f.examples, model, { threshold }), str),
      examples: f.examples.map((e) => ({
        value: e.value, sequence: e.sequence, position: e.position, token: { id: e.token, str: str(e.token) }, windowStart: e.windowStart, offset: e.offset,
        tokens: e.tokens.map((id, t) => ({ id, str: str(id), act: acts.get(e.sequence)![e.windowStart + t]![j]! })),
      })),
    }));
    const doc = {
      model: folder, layer, hook,
      corpus: { file: corpusFile, windows: windows.length, ctx, bos: bos ?? null, skippedPositions: scan.skipPositions },
      selection: listed ? { mode: "list" } : { mode: "top", top, rank },
      k, context: { before, after }, threshold,
      neurons,
      files: [] as string[],
    };
    if (outDir !== undefined) {
      const hist = (n: NeuronDoc, title: string) => histogramChart(n.histogram.edges, n.histogram.counts, { title, xLabel: "activation", logCounts: true, width: 360, height: 220 });
      const html = htmlPage(`MLP neurons of layer ${layer}: max-activating examples`,
        `<p>${esc(`${windows.length} windows of ${ctx} tokens from ${corpusFile}; ${hook}; ${listed ? "chosen neurons" : `top ${top} by ${rank}`}`)}</p>` +
        neurons.map((n) => card(layer, n, hist(n, `L${layer}N${n.neuron} activations`))).join(""));
      const grid = svgGrid(neurons.map((n) => hist(n, `L${layer}N${n.neuron}`)), { title: `activation histograms, ${hook}`, cols: Math.min(3, neurons.length) });
      writeOutputFiles(outDir, [["neurons.html", html], ["neurons-histograms.svg", grid]], "neurons", doc);
    }
    out.result(doc, () => [
      `MLP neurons of layer ${layer} over ${windows.length} windows × ${ctx} tokens`,
      ...neurons.flatMap((n) => [
        `L${layer}N${n.neuron}: max ${n.histogram.max.toFixed(4)}, mean ${n.histogram.mean.toFixed(4)}, std ${n.histogram.std.toFixed(4)}; ` +
          `${n.polysemanticity.clusters} cluster(s), effective ${n.polysemanticity.effectiveClusters.toFixed(2)}`,
        ...n.examples.map((e) => `  ${e.value.toFixed(4).padStart(9)}  ${e.tokens.map((t, i) => (i === e.offset ? `[[${shownToken(t.str)}]]` : shownToken(t.str))).join("")}`),
      ]),
      ...(doc.files.length ? [`files: ${doc.files.join(", ")}`] : []),
    ].join("\n"));
  },
};
