// Head detectors and head composition: previous-token, duplicate-token and induction scores of every
// head on repeated random tokens, and Q-, K- and V-composition between every pair of heads in
// different layers against a random-matrix baseline, on the processed weights by default.
import { z } from "zod";
import { allCompositionScores, compositionBaseline, COMPOSITION_KINDS, type CompositionKind } from "../analysis/circuits.js";
import { headDetectorScores, repeatedRandomTokens, topHead, HEAD_KINDS, type HeadScores } from "../analysis/head-detectors.js";
import { heatmap } from "../plot/svg.js";
import { processedModel } from "./processed.js";
import { defineTechnique, InputError } from "./technique.js";

const input = z.object({
  seqLen: z.number().int().min(2).optional().describe("length of the random sequence that is repeated once (default 20, less if twice it and BOS exceed n_ctx)"),
  batch: z.number().int().min(1).default(8).describe("how many repeated sequences the detectors average over"),
  seed: z.number().int().min(0).default(0).describe("seed of the random tokens and of the baseline matrices"),
  process: z.boolean().default(true).describe("TransformerLens's weight processing (folding LayerNorm into the circuits)"),
});

type Composition = ReturnType<typeof allCompositionScores>;

/** Composition scores of every head with every later-layer head: [n_layers * n_heads]², null where the pair is not (earlier, later). */
function headByHead(pairs: Composition, nLayers: number, nHeads: number): (number | null)[][] {
  const N = nLayers * nHeads;
  const m: (number | null)[][] = Array.from({ length: N }, () => new Array<number | null>(N).fill(null));
  for (const { srcLayer, dstLayer, scores } of pairs)
    scores.forEach((row, a) => row.forEach((x, b) => { m[srcLayer * nHeads + a]![dstLayer * nHeads + b] = x; }));
  return m;
}

export const circuits = defineTechnique({
  name: "circuits",
  summary: "detect previous-token / duplicate / induction heads and score head composition",
  input,
  run(s, inp) {
    const cfg = s.model.cfg;
    const bos = cfg.bos_token_id ?? undefined;
    const room = Math.floor((cfg.n_ctx - (bos === undefined ? 0 : 1)) / 2);
    const seqLen = inp.seqLen ?? Math.min(20, room);
    if (seqLen < 2 || seqLen > room) throw new InputError("seqLen", `must be in [2, ${room}] so the repeated sequence fits n_ctx = ${cfg.n_ctx}`);
    const { model, steps } = processedModel(s, inp.process);
    const tokens = repeatedRandomTokens({ seqLen, batch: inp.batch, dVocab: cfg.d_vocab, seed: inp.seed, ...(bos === undefined ? {} : { bos }) });
    // A BOS column is an attention sink, not a target of any detector.
    const heads: HeadScores = headDetectorScores(model, tokens, { excludeBos: bos !== undefined });
    const composition = Object.fromEntries(COMPOSITION_KINDS.map((k) => [k, allCompositionScores(model, k)])) as Record<CompositionKind, Composition>;
    const baseline = compositionBaseline(cfg, { seed: inp.seed });
    const topHeads = Object.fromEntries(HEAD_KINDS.map((k) => [k, topHead(heads[k])])) as Record<keyof HeadScores, ReturnType<typeof topHead>>;
    const topKComposition = composition.K.flatMap((p) => p.scores.flatMap((row, a) => row.map((score, b) => ({ src: `L${p.srcLayer}H${a}`, dst: `L${p.dstLayer}H${b}`, score }))))
      .sort((x, y) => y.score - x.score).slice(0, 5);
    return {
      config: { architecture: cfg.architecture, n_layers: cfg.n_layers, n_heads: cfg.n_heads, d_model: cfg.d_model, d_head: cfg.d_head },
      processedWeights: steps,
      tokens: { seqLen, batch: inp.batch, seed: inp.seed, bos: bos ?? null, length: tokens.shape[1]! },
      axes: [{ name: "layer", labels: heads.induction_head.map((_, l) => `L${l}`) }, { name: "head", labels: heads.induction_head[0]!.map((_, h) => `H${h}`) }],
      heads, // [layer][head] per detector
      topHeads,
      composition, // per kind: [{ srcLayer, dstLayer, scores[head in src][head in dst] }]
      baseline, // random matrices of the same shapes
      topKComposition,
    };
  },
  text(r) {
    const pct = (x: number) => x.toFixed(3);
    return [
      ...HEAD_KINDS.map((k) => `${k.padEnd(22)} top L${r.topHeads[k].layer}H${r.topHeads[k].head} (${pct(r.topHeads[k].score)}); per layer: ${r.heads[k].map((row) => row.map(pct).join(" ")).join(" | ")}`),
      r.config.n_layers < 2 ? "composition: needs at least 2 layers" : `K-composition (random baseline ${pct(r.baseline.mean)} ± ${pct(r.baseline.std)}), top pairs: ${r.topKComposition.map((p) => `${p.src}→${p.dst} ${pct(p.score)}`).join(", ")}`,
    ].join("\n");
  },
  pictures(r) {
    const { n_layers: L, n_heads: H } = r.config;
    const [layerLabels, headLabels] = [r.axes[0]!.labels, r.axes[1]!.labels];
    const out = HEAD_KINDS.map((k) => ({
      name: `heads-${k}.svg`,
      content: heatmap(r.heads[k], { title: k.replace(/_head$/, "").replace(/_/g, "-"), rowLabels: layerLabels, colLabels: headLabels, xLabel: "head", yLabel: "layer", scale: "sequential", min: 0, max: 1 }),
    }));
    const l01 = r.composition.K.find((p) => p.srcLayer === 0 && p.dstLayer === 1);
    if (l01) out.push({ name: "k-composition-L0-L1.svg", content: heatmap(l01.scores, {
      title: "K-composition L0 → L1",
      rowLabels: headLabels.map((h) => `L0${h}`), colLabels: headLabels.map((h) => `L1${h}`), xLabel: `layer-1 head; random ${r.baseline.mean.toFixed(2)}`, yLabel: "layer-0 head", scale: "sequential", min: 0,
    }) });
    const all = layerLabels.flatMap((l) => headLabels.map((h) => `${l}${h}`));
    if (L >= 2) for (const kind of COMPOSITION_KINDS) {
      const m = headByHead(r.composition[kind], L, H).map((row) => row.map((x) => x ?? NaN));
      out.push({ name: `composition-${kind}.svg`, content: heatmap(m, { title: `${kind}-composition (earlier head → later head)`, rowLabels: all, colLabels: all, xLabel: "later head", yLabel: "earlier head", scale: "sequential", min: 0 }) });
    }
    return out;
  },
});
