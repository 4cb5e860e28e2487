// The logit lens: each layer's residual stream (resid_pre of every block, then the final
// resid_post) read through ln_final and the unembedding — the top tokens per layer × position, and
// with a target its probability and rank in every cell.
import { z } from "zod";
import { noGrad } from "../tensor/autodiff.js";
import { logitLens } from "../analysis/residual.js";
import { heatmap } from "../plot/svg.js";
import { bosField, promptField, promptIds, rows2d, shownToken, singleToken, tokenField, tokenList } from "./inputs.js";
import { defineTechnique } from "./technique.js";

const input = z.object({
  prompt: promptField(),
  target: tokenField("a token whose probability and rank are tracked per layer × position").optional(),
  top: z.number().int().min(1).max(100).default(5).describe("top tokens kept per cell"),
  bos: bosField,
});

export const lens = defineTechnique({
  name: "lens",
  summary: "logit lens: top tokens per layer × position (and a target token's probability)",
  input,
  positionals: ["prompt"],
  run(s, inp) {
    const ids = promptIds(s, "prompt", inp.prompt, inp.bos);
    const target = inp.target === undefined ? undefined : singleToken(s, "target", inp.target);
    const r = noGrad(() => {
      const { cache } = s.model.runWithCache([ids]);
      return logitLens(s.model, cache, { topK: inp.top, ...(target !== undefined ? { target } : {}) });
    });
    const tokens = tokenList(s, ids), layers = r.axes[0]!.labels, P = ids.length;
    const str = (id: number) => tokenList(s, [id])[0]!.str;
    return {
      tokens,
      axes: [{ name: "layer", labels: layers }, { name: "pos", labels: tokens.map((t) => t.str) }],
      shape: [layers.length, P],
      /** [layer][pos] → the top tokens, most likely first. */
      topTokens: layers.map((_, l) => tokens.map((_, p) => r.topK[l]![0]![p]!.map((t) => ({ id: t.token, str: str(t.token), prob: t.prob })))),
      target: target === undefined ? null : {
        id: target, str: str(target),
        prob: rows2d((l, p) => r.targetProb!.get(l, 0, p), layers.length, P),
        rank: rows2d((l, p) => r.targetRank!.get(l, 0, p), layers.length, P),
      },
    };
  },
  text(r, inp) {
    const layers = r.axes[0]!.labels;
    return [
      `logit lens (top ${inp.top} per layer at each position)`,
      ...r.tokens.flatMap((t, p) => [
        `position ${p} ${JSON.stringify(t.str)}`,
        ...layers.map((name, l) => `  ${name.padEnd(12)} ${r.topTokens[l]![p]!.map((c) => `${JSON.stringify(c.str)} ${c.prob.toFixed(3)}`).join("  ")}` +
          (r.target ? `   | target p=${r.target.prob[l]![p]!.toFixed(4)} rank ${r.target.rank[l]![p]!}` : "")),
      ]),
    ].join("\n");
  },
  pictures(r) {
    const [L, P] = r.shape as [number, number];
    const common = { rowLabels: r.axes[0]!.labels, colLabels: r.tokens.map((t) => shownToken(t.str)), xLabel: "position", yLabel: "layer", scale: "sequential" as const, min: 0, max: 1 };
    const svg = r.target
      ? heatmap(r.target.prob, { ...common, title: `logit lens: p(${JSON.stringify(r.target.str)})` })
      : heatmap(rows2d((l, p) => r.topTokens[l]![p]![0]!.prob, L, P), { ...common, title: "logit lens: top-1 probability" });
    return [{ name: "lens.svg", content: svg }];
  },
});
