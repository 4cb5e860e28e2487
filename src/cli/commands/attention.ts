// `circuitscope attention <snapshot-folder> "<prompt>" [--heads 0.1,1.0]`: the attention patterns
// (blocks.L.attn.hook_pattern, [dest_pos, src_pos]) of chosen heads — all by default — on one prompt,
// with each head's previous-token / duplicate-token / induction score on that prompt (the head
// detectors' scoring, TransformerLens's "mul" measure). --out writes attention.svg (one heatmap per
// head, query tokens down, key tokens across, as CircuitsVis's attention_patterns) and attention.json.
import { noGrad } from "../../tensor/autodiff.js";
import type { HookName } from "../../model/hooks.js";
import { detectionPattern, scorePattern, HEAD_KINDS, type HeadKind } from "../../analysis/head-detectors.js";
import { svgGrid } from "../../plot/grid.js";
import { heatmap } from "../../plot/svg.js";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";
import { loadWithTokenizer, promptIds } from "../legacy-inputs.js";
import { rows2d, shownToken } from "../../techniques/inputs.js";
import { writeOutputs } from "../outputs.js";

const USAGE = `circuitscope attention <snapshot-folder> "<prompt>" [--heads all|L.H,...] [--cols N] [--out dir] [--no-bos] [--json]
  --heads H   comma-separated heads L.H (e.g. 0.1,1.0), or all (default)
  --cols N    heatmaps per row in attention.svg (default: as square as possible)
  --out dir   write attention.svg and attention.json there
  --no-bos    do not put the tokenizer's BOS token before the prompt`;

/** "all" or "L.H,L.H" checked against the model's shape. */
export function parseHeads(s: string, nLayers: number, nHeads: number): { layer: number; head: number }[] {
  if (s === "all") return Array.from({ length: nLayers * nHeads }, (_, i) => ({ layer: Math.floor(i / nHeads), head: i % nHeads }));
  return s.split(",").map((part) => {
    const m = /^(\d+)\.(\d+)$/.exec(part.trim());
    if (!m) throw new UsageError(`--heads: "${part}" is not a head L.H (e.g. 1.0) or "all"`);
    const layer = Number(m[1]), head = Number(m[2]);
    if (layer >= nLayers || head >= nHeads) throw new UsageError(`--heads: ${part} does not exist; the model has ${nLayers} layers × ${nHeads} heads`);
    return { layer, head };
  });
}

export const attention: Command = {
  name: "attention",
  summary: "attention patterns of chosen heads on a prompt (token-labelled heatmaps) with head-detector scores",
  usage: USAGE,
  run(pos, flags, out) {
    const headsText = flags.str("heads", "all");
    const cols = flags.num("cols", 0);
    const outDir = flags.str("out");
    const noBos = flags.bool("no-bos");
    flags.checkUnknown();
    const [folder, prompt, ...extra] = pos;
    if (folder === undefined || prompt === undefined) throw new UsageError("attention needs a snapshot folder and a prompt");
    if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(" ")}`);
    if (!Number.isInteger(cols) || cols < 0) throw new UsageError(`--cols must be a positive integer, got ${cols}`);

    const { model, tokenizer, config: cfg } = loadWithTokenizer(folder);
    const heads = parseHeads(headsText, cfg.n_layers, cfg.n_heads);
    const ids = promptIds(tokenizer, prompt, cfg.n_ctx, noBos);
    const T = ids.length;
    const names = [...new Set(heads.map((h) => `blocks.${h.layer}.attn.hook_pattern` as HookName))];
    const patterns = noGrad(() => {
      const { cache } = model.runWithCache([ids], { names });
      // hook_pattern is [batch, head_index, dest_pos, src_pos].
      return heads.map(({ layer, head }) => { const p = cache.at(layer, "attn.hook_pattern"); return rows2d((q, k) => p.get(0, head, q, k), T, T); });
    });
    const detections = Object.fromEntries(HEAD_KINDS.map((k) => [k, detectionPattern(k, ids)])) as Record<HeadKind, Float64Array>;
    const bos = !noBos && tokenizer.bosTokenId != null;
    const scores = patterns.map((p) => Object.fromEntries(HEAD_KINDS.map((k) => {
      const s = scorePattern(p.flat(), detections[k], T, { excludeBos: bos });
      return [k, s.rows > 0 ? s.sum / s.rows : null];
    })) as Record<HeadKind, number | null>);
    const strs = ids.map((id) => tokenizer.decode([id]));
    out.info(`attention patterns of ${heads.length} head(s) over ${T} tokens`);
    const doc = {
      model: folder, prompt,
      tokens: ids.map((id, i) => ({ id, str: strs[i]! })),
      heads: heads.map((h, i) => ({ ...h, pattern: patterns[i]!, scores: scores[i]! })), // pattern[dest_pos][src_pos]
      files: [] as string[],
    };
    if (outDir !== undefined) {
      const labels = strs.map((s, i) => `${i} ${shownToken(s)}`);
      const fmt = (v: number | null) => (v === null ? "—" : v.toFixed(2));
      const panels = doc.heads.map((h) => heatmap(h.pattern, {
        title: `L${h.layer}H${h.head}  prev ${fmt(h.scores.previous_token_head)} dup ${fmt(h.scores.duplicate_token_head)} ind ${fmt(h.scores.induction_head)}`,
        rowLabels: labels, colLabels: labels, xLabel: "key (source) token", yLabel: "query (destination) token", scale: "sequential", min: 0, max: 1,
      }));
      writeOutputs(outDir, "attention", svgGrid(panels, { title: `attention patterns: ${prompt.length > 60 ? prompt.slice(0, 57) + "…" : prompt}`, ...(cols > 0 ? { cols } : {}) }), doc);
    }
    out.result(doc, () => [
      `attention patterns over ${T} tokens: ${strs.map((s) => JSON.stringify(s)).join(" ")}`,
      ...doc.heads.flatMap((h) => [
        `L${h.layer}H${h.head}: ${HEAD_KINDS.map((k) => `${k} ${h.scores[k] === null ? "—" : h.scores[k]!.toFixed(3)}`).join(", ")}`,
        ...h.pattern.map((row, q) => `  ${shownToken(strs[q]!).slice(0, 10).padEnd(10)} ${row.map((v) => v.toFixed(2)).join(" ")}`),
      ]),
      ...(doc.files.length ? [`files: ${doc.files.join(", ")}`] : []),
    ].join("\n"));
  },
};
