// `circuitscope lens <snapshot-folder> "<prompt>" [--target " Paris"]`: the logit lens — each layer's
// residual stream (resid_pre of every block, then the final resid_post) read through ln_final and
// the unembedding. Reports the top tokens per layer × position; with --target also the target's
// probability and rank per cell. With --out writes lens.svg (the target's probability, or without
// a target the top-1 probability, as a layer × position heatmap) and lens.json.
import { noGrad } from "../../tensor/autodiff.js";
import { heatmap } from "../../plot/svg.js";
import { logitLens, logitLensSvg } from "../../analysis/residual.js";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";
import { loadWithTokenizer, promptIds, rows2d, shownToken, singleToken, writeOutputs } from "./patch.js";

const USAGE = `circuitscope lens <snapshot-folder> "<prompt>" [--target " Paris"] [--top 5] [--out dir] [--no-bos] [--json]
  --target T   one token whose probability and rank are tracked per layer × position (heatmap in lens.svg)
  --top K      top tokens kept per cell (default 5)
  --out dir    write lens.svg and lens.json there
  --no-bos     do not put the tokenizer's BOS token before the prompt`;

export const lens: Command = {
  name: "lens",
  summary: "logit lens: top tokens per layer × position (and a target token's probability)",
  usage: USAGE,
  run(pos, flags, out) {
    const targetText = flags.str("target");
    const top = flags.num("top", 5);
    const outDir = flags.str("out");
    const noBos = flags.bool("no-bos");
    flags.checkUnknown();
    const [folder, prompt, ...extra] = pos;
    if (folder === undefined || prompt === undefined) throw new UsageError("lens needs a snapshot folder and a prompt");
    if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(" ")}`);
    if (!Number.isInteger(top) || top < 1) throw new UsageError(`--top must be an integer >= 1, got ${top}`);

    const { model, tokenizer, config: cfg } = loadWithTokenizer(folder);
    const ids = promptIds(tokenizer, prompt, cfg.n_ctx, noBos);
    const target = targetText !== undefined ? singleToken(tokenizer, "target", targetText) : undefined;
    out.info(`logit lens over ${cfg.n_layers + 1} residual streams × ${ids.length} positions`);
    const r = noGrad(() => {
      const { cache } = model.runWithCache([ids]);
      return logitLens(model, cache, { topK: top, ...(target !== undefined ? { target } : {}) });
    });
    const strs = ids.map((id) => tokenizer.decode([id]));
    const layers = r.axes[0]!.labels, P = ids.length;
    const cells = layers.map((_, l) => strs.map((_, p) => r.topK[l]![0]![p]!.map((t) => ({ id: t.token, str: tokenizer.decode([t.token]), prob: t.prob }))));
    const targetDoc = target === undefined ? null : {
      id: target, str: tokenizer.decode([target]),
      prob: rows2d((l, p) => r.targetProb!.get(l, 0, p), layers.length, P),
      rank: rows2d((l, p) => r.targetRank!.get(l, 0, p), layers.length, P),
    };
    const doc = {
      model: folder, prompt, top,
      tokens: ids.map((id, i) => ({ id, str: strs[i]! })),
      axes: [{ name: "layer", labels: layers }, { name: "pos", labels: strs }],
      shape: [layers.length, P],
      topTokens: cells,
      target: targetDoc,
      files: [] as string[],
    };
    if (outDir !== undefined) {
      const posLabels = strs.map(shownToken);
      const svg = targetDoc
        ? logitLensSvg(r, { posLabels, title: `logit lens: p(${JSON.stringify(targetDoc.str)})` })
        : heatmap(rows2d((l, p) => cells[l]![p]![0]!.prob, layers.length, P), { title: "logit lens: top-1 probability", rowLabels: layers, colLabels: posLabels, xLabel: "position", yLabel: "layer", scale: "sequential", min: 0, max: 1 });
      writeOutputs(outDir, "lens", svg, doc);
    }
    out.result(doc, () => [
      `logit lens (top ${top} per layer at each position)`,
      ...strs.flatMap((s, p) => [
        `position ${p} ${JSON.stringify(s)}`,
        ...layers.map((name, l) => `  ${name.padEnd(12)} ${cells[l]![p]!.map((t) => `${JSON.stringify(t.str)} ${t.prob.toFixed(3)}`).join("  ")}` +
          (targetDoc ? `   | target p=${targetDoc.prob[l]![p]!.toFixed(4)} rank ${targetDoc.rank[l]![p]!}` : "")),
      ]),
      ...(doc.files.length ? [`files: ${doc.files.join(", ")}`] : []),
    ].join("\n"));
  },
};
