// Attention patterns (blocks.L.attn.hook_pattern, [dest_pos, src_pos]) of chosen heads — all by
// default, or every head of one layer — on one prompt, with each head's previous-token /
// duplicate-token / induction score on that prompt (the head detectors' scoring, TransformerLens's
// "mul" measure). Pictures: one heatmap per head, query tokens down, key tokens across, as
// CircuitsVis's attention_patterns.
import { z } from "zod";
import { noGrad } from "../tensor/autodiff.js";
import type { HookName } from "../model/hooks.js";
import { detectionPattern, scorePattern, HEAD_KINDS, type HeadKind } from "../analysis/head-detectors.js";
import { svgGrid } from "../plot/grid.js";
import { heatmap } from "../plot/svg.js";
import { bosField, headList, layerOf, promptField, promptIds, rows2d, shownToken, tokenList } from "./inputs.js";
import { defineTechnique, InputError } from "./technique.js";

const input = z.object({
  prompt: promptField(),
  heads: z.string().default("all").describe("comma-separated heads L.H (e.g. 0.1,1.0), or all"),
  layer: z.number().int().min(0).optional().describe("every head of this layer (instead of --heads)"),
  cols: z.number().int().min(1).optional().describe("heatmaps per row in attention.svg (default: as square as possible)"),
  bos: bosField,
});

export const attention = defineTechnique({
  name: "attention",
  summary: "attention patterns of chosen heads on a prompt (token-labelled heatmaps) with head-detector scores",
  input,
  positionals: ["prompt"],
  run(s, inp) {
    if (inp.layer !== undefined && inp.heads !== "all") throw new InputError("layer", "give layer or heads, not both");
    const layer = inp.layer === undefined ? null : layerOf(s, "layer", inp.layer);
    const heads = layer === null ? headList(s, "heads", inp.heads) : headList(s, "heads", "all").filter((h) => h.layer === layer);
    const ids = promptIds(s, "prompt", inp.prompt, inp.bos), T = ids.length;
    const names = [...new Set(heads.map((h) => `blocks.${h.layer}.attn.hook_pattern` as HookName))];
    const patterns = noGrad(() => {
      const { cache } = s.model.runWithCache([ids], { names });
      // hook_pattern is [batch, head_index, dest_pos, src_pos].
      return heads.map(({ layer, head }) => { const p = cache.at(layer, "attn.hook_pattern"); return rows2d((q, k) => p.get(0, head, q, k), T, T); });
    });
    const detections = Object.fromEntries(HEAD_KINDS.map((k) => [k, detectionPattern(k, ids)])) as Record<HeadKind, Float64Array>;
    // The BOS column is left out of the scores when the prompt starts with one.
    const bosId = s.tokenizer?.bosTokenId;
    const excludeBos = bosId != null && ids[0] === bosId;
    const scores = patterns.map((p) => Object.fromEntries(HEAD_KINDS.map((k) => {
      const r = scorePattern(p.flat(), detections[k], T, { excludeBos });
      return [k, r.rows > 0 ? r.sum / r.rows : null];
    })) as Record<HeadKind, number | null>);
    return {
      prompt: inp.prompt, layer,
      tokens: tokenList(s, ids),
      /** pattern[dest_pos][src_pos]; scores: mean attention on the detector's targets, null when the prompt has none. */
      heads: heads.map((h, i) => ({ ...h, pattern: patterns[i]!, scores: scores[i]! })),
    };
  },
  text(r) {
    const strs = r.tokens.map((t) => t.str);
    return [
      `attention patterns of ${r.heads.length} head(s) over ${strs.length} tokens: ${strs.map((s) => JSON.stringify(s)).join(" ")}`,
      ...r.heads.flatMap((h) => [
        `L${h.layer}H${h.head}: ${HEAD_KINDS.map((k) => `${k} ${h.scores[k] === null ? "—" : h.scores[k]!.toFixed(3)}`).join(", ")}`,
        ...h.pattern.map((row, q) => `  ${shownToken(strs[q]!).slice(0, 10).padEnd(10)} ${row.map((v) => v.toFixed(2)).join(" ")}`),
      ]),
    ].join("\n");
  },
  pictures(r, inp) {
    const labels = r.tokens.map((t, i) => `${i} ${shownToken(t.str)}`);
    const fmt = (v: number | null) => (v === null ? "—" : v.toFixed(2));
    const panels = r.heads.map((h) => heatmap(h.pattern, {
      title: `L${h.layer}H${h.head}  prev ${fmt(h.scores.previous_token_head)} dup ${fmt(h.scores.duplicate_token_head)} ind ${fmt(h.scores.induction_head)}`,
      rowLabels: labels, colLabels: labels, xLabel: "key (source) token", yLabel: "query (destination) token", scale: "sequential", min: 0, max: 1,
    }));
    const title = `attention patterns: ${r.prompt.length > 60 ? r.prompt.slice(0, 57) + "…" : r.prompt}`;
    return [{ name: "attention.svg", content: svgGrid(panels, { title, ...(inp.cols !== undefined ? { cols: inp.cols } : {}) }) }];
  },
});
