// `circuitscope circuits <snapshot-folder>`: find previous-token, duplicate-token and induction heads
// on repeated random tokens, and score Q-, K- and V-composition between every pair of heads in
// different layers against a random-matrix baseline. Writes heatmap SVGs and a JSON report to
// --out when given; the result goes to stdout (one JSON document with --json), progress to stderr.
import { loadPretrained } from "../../io/snapshot.js";
import { processWeights } from "../../model/weight-processing.js";
import { heatmap } from "../../plot/svg.js";
import { allCompositionScores, compositionBaseline, COMPOSITION_KINDS, type CompositionKind } from "../../analysis/circuits.js";
import { headDetectorScores, repeatedRandomTokens, topHead, HEAD_KINDS, type HeadScores } from "../../analysis/head-detectors.js";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";
import { writeOutputFiles } from "../outputs.js";

const USAGE = `circuitscope circuits <snapshot-folder> [--out dir] [--seq-len N] [--batch B] [--seed S] [--no-process] [--json]
  --out dir       write heatmaps (heads-<kind>.svg, k-composition-L0-L1.svg, composition-<Q|K|V>.svg) and circuits.json there
  --seq-len N     length of the random sequence that is repeated once (default 20, less if twice it and BOS exceed n_ctx)
  --batch B       how many repeated sequences the detectors average over (default 8)
  --seed S        seed of the random tokens and of the baseline matrices (default 0)
  --no-process    skip TransformerLens's weight processing (folding LayerNorm into the circuits)`;

const intFlag = (name: string, v: number, min: number) => {
  if (!Number.isInteger(v) || v < min) throw new UsageError(`--${name} must be an integer >= ${min}, got ${v}`);
  return v;
};

/** Composition scores of every head with every later-layer head: [n_layers * n_heads]², null where the pair is not (earlier, later). */
function headByHead(pairs: ReturnType<typeof allCompositionScores>, nLayers: number, nHeads: number): (number | null)[][] {
  const N = nLayers * nHeads;
  const m: (number | null)[][] = Array.from({ length: N }, () => new Array<number | null>(N).fill(null));
  for (const { srcLayer, dstLayer, scores } of pairs)
    scores.forEach((row, a) => row.forEach((x, b) => { m[srcLayer * nHeads + a]![dstLayer * nHeads + b] = x; }));
  return m;
}

export const circuits: Command = {
  name: "circuits",
  summary: "detect previous-token / duplicate / induction heads and score head composition",
  usage: USAGE,
  run(pos, flags, out) {
    const outDir = flags.str("out");
    const batch = intFlag("batch", flags.num("batch", 8), 1), seed = intFlag("seed", flags.num("seed", 0), 0);
    const seqLenFlag = flags.str("seq-len");
    const noProcess = flags.bool("no-process");
    flags.checkUnknown();
    const [folder, ...extra] = pos;
    if (folder === undefined) throw new UsageError("circuits needs a snapshot folder");
    if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(" ")}`);

    out.info(`loading ${folder}`);
    const { model, config: cfg } = loadPretrained(folder);
    const steps = noProcess ? [] : processWeights(model);
    out.info(`loaded ${cfg.architecture} (${cfg.n_layers} layers × ${cfg.n_heads} heads, d_model ${cfg.d_model}, d_head ${cfg.d_head})${steps.length ? `; processed weights: ${steps.join(", ")}` : ""}`);

    const bos = cfg.bos_token_id ?? undefined;
    const room = Math.floor((cfg.n_ctx - (bos === undefined ? 0 : 1)) / 2);
    const seqLen = seqLenFlag === undefined ? Math.min(20, room) : intFlag("seq-len", Number(seqLenFlag), 2);
    if (seqLen < 2 || seqLen > room) throw new UsageError(`--seq-len must be in [2, ${room}] so the repeated sequence fits n_ctx = ${cfg.n_ctx}`);
    const tokens = repeatedRandomTokens({ seqLen, batch, dVocab: cfg.d_vocab, seed, ...(bos === undefined ? {} : { bos }) });
    out.info(`detectors on ${batch} × ${tokens.shape[1]} tokens (${seqLen} random, repeated${bos === undefined ? "" : ", after BOS"})`);
    // A BOS column is an attention sink, not a target of any detector.
    const heads: HeadScores = headDetectorScores(model, tokens, { excludeBos: bos !== undefined });

    const composition = {} as Record<CompositionKind, ReturnType<typeof allCompositionScores>>;
    for (const kind of COMPOSITION_KINDS) {
      const t0 = performance.now();
      composition[kind] = allCompositionScores(model, kind);
      out.info(`${kind}-composition: ${composition[kind].length} layer pairs in ${(performance.now() - t0).toFixed(0)} ms`);
    }
    const baseline = compositionBaseline(cfg, { seed });
    const top = Object.fromEntries(HEAD_KINDS.map((k) => [k, topHead(heads[k])])) as Record<keyof HeadScores, ReturnType<typeof topHead>>;
    const bestK = composition.K.flatMap((p) => p.scores.flatMap((row, a) => row.map((score, b) => ({ src: `L${p.srcLayer}H${a}`, dst: `L${p.dstLayer}H${b}`, score }))))
      .sort((x, y) => y.score - x.score).slice(0, 5);

    const doc = {
      model: { folder, architecture: cfg.architecture, n_layers: cfg.n_layers, n_heads: cfg.n_heads, d_model: cfg.d_model, d_head: cfg.d_head },
      processedWeights: steps,
      tokens: { seqLen, batch, seed, bos: bos ?? null },
      heads, // [layer][head] per detector
      topHeads: top,
      composition, // per kind: [{ srcLayer, dstLayer, scores[head in src][head in dst] }]
      baseline, // random matrices of the same shapes
      topKComposition: bestK,
      files: [] as string[],
    };

    if (outDir !== undefined) {
      const pictures: [string, string][] = [];
      const write = (name: string, text: string) => { pictures.push([name, text]); };
      const headLabels = Array.from({ length: cfg.n_heads }, (_, h) => `H${h}`), layerLabels = Array.from({ length: cfg.n_layers }, (_, l) => `L${l}`);
      for (const k of HEAD_KINDS)
        write(`heads-${k}.svg`, heatmap(heads[k], { title: k.replace(/_head$/, "").replace(/_/g, "-"), rowLabels: layerLabels, colLabels: headLabels, xLabel: "head", yLabel: "layer", scale: "sequential", min: 0, max: 1 }));
      const l01 = composition.K.find((p) => p.srcLayer === 0 && p.dstLayer === 1);
      if (l01) write("k-composition-L0-L1.svg", heatmap(l01.scores, {
        title: "K-composition L0 → L1",
        rowLabels: headLabels.map((h) => `L0${h}`), colLabels: headLabels.map((h) => `L1${h}`), xLabel: `layer-1 head; random ${baseline.mean.toFixed(2)}`, yLabel: "layer-0 head", scale: "sequential", min: 0,
      }));
      const all = layerLabels.flatMap((l) => headLabels.map((h) => `${l}${h}`));
      for (const kind of COMPOSITION_KINDS) {
        if (cfg.n_layers < 2) break;
        const m = headByHead(composition[kind], cfg.n_layers, cfg.n_heads).map((row) => row.map((x) => x ?? NaN));
        write(`composition-${kind}.svg`, heatmap(m, { title: `${kind}-composition (earlier head → later head)`, rowLabels: all, colLabels: all, xLabel: "later head", yLabel: "earlier head", scale: "sequential", min: 0 }));
      }
      writeOutputFiles(outDir, pictures, "circuits", doc);
      out.info(`wrote ${doc.files.length} files to ${outDir}`);
    }

    const pct = (x: number) => x.toFixed(3);
    out.result(doc, () => [
      ...HEAD_KINDS.map((k) => `${k.padEnd(22)} top L${top[k].layer}H${top[k].head} (${pct(top[k].score)}); per layer: ${heads[k].map((r) => r.map(pct).join(" ")).join(" | ")}`),
      cfg.n_layers < 2 ? "composition: needs at least 2 layers" : `K-composition (random baseline ${pct(baseline.mean)} ± ${pct(baseline.std)}), top pairs: ${bestK.map((p) => `${p.src}→${p.dst} ${pct(p.score)}`).join(", ")}`,
      ...(doc.files.length ? [`files: ${doc.files.join(", ")}`] : []),
    ].join("\n"));
  },
};
