// One hook point's activation on a prompt, per position — what the workbench colours tokens by.
// Activations whose first axis after batch is pos ([batch, pos, …]) are flattened per position;
// attention patterns and scores ([batch, head_index, query_pos, key_pos]) are given per query
// position as [head_index × key_pos]. Pictures: the L2 norm per position and the dimensions with the
// largest |value| as a position × dimension heatmap.
import { z } from "zod";
import { noGrad } from "../tensor/autodiff.js";
import { barChart } from "../plot/bars.js";
import { svgGrid } from "../plot/grid.js";
import { heatmap } from "../plot/svg.js";
import { bosField, hookOf, promptField, promptIds, shownToken, tokenList } from "./inputs.js";
import { defineTechnique } from "./technique.js";

const input = z.object({
  prompt: promptField(),
  hook: z.string({ error: (iss) => (iss.input === undefined ? "missing: give a hook point, e.g. blocks.0.hook_resid_post" : undefined) })
    .describe("the hook point (TransformerLens name, e.g. blocks.0.mlp.hook_post)"),
  bos: bosField,
});

/** Indices of the n largest values, largest first (ties by index). */
const topOf = (values: readonly number[], n: number) => values.map((_, i) => i).sort((a, b) => values[b]! - values[a]! || a - b).slice(0, n);
const norm = (v: readonly number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
/** Dimensions shown in the heatmap and the text. */
const SHOWN = 16;

export const activations = defineTechnique({
  name: "activations",
  summary: "one hook point's activation at every position of a prompt (what the workbench colours tokens by)",
  input,
  positionals: ["prompt"],
  run(s, inp) {
    const hook = hookOf(s, "hook", inp.hook);
    const ids = promptIds(s, "prompt", inp.prompt, inp.bos);
    const act = noGrad(() => s.model.runWithCache([ids], { names: [hook] }).cache.get(hook)).contiguous();
    const shape = act.shape.slice(1), a = act.toArray(), tokens = tokenList(s, ids);
    if (hook.endsWith(".hook_pattern") || hook.endsWith(".hook_attn_scores")) {
      // [head_index, query_pos, key_pos] → per query position: [head_index × key_pos].
      const [H, T, K] = shape as [number, number, number];
      const values = Array.from({ length: T }, (_, q) => Array.from({ length: H * K }, (_, i) => a[(Math.floor(i / K) * T + q) * K + (i % K)]!));
      return { tokens, hook: hook as string, shape, axes: ["head_index", "query_pos", "key_pos"], values };
    }
    const T = shape[0]!, D = shape.slice(1).reduce((x, y) => x * y, 1);
    /** values[pos][dim], dim running over the flattened axes after pos. */
    const values = Array.from({ length: T }, (_, t) => Array.from(a.subarray(t * D, (t + 1) * D)));
    const axes = shape.length === 3 ? ["pos", "head_index", "dim"] : ["pos", ...shape.slice(1).map(() => "dim")];
    return { tokens, hook: hook as string, shape, axes, values };
  },
  text(r) {
    const D = r.values[0]?.length ?? 0;
    return [
      `${r.hook}: shape [${r.shape.join(", ")}] (${r.axes.join(", ")}); ${D} values per position; L2 norm and the largest |value| dimensions per position`,
      ...r.values.map((v, p) => `  ${String(p).padStart(3)} ${JSON.stringify(r.tokens[p]!.str).padEnd(12)} ‖·‖ ${norm(v).toFixed(4).padStart(9)}   ` +
        topOf(v.map(Math.abs), 3).map((d) => `d${d} ${v[d]!.toFixed(4)}`).join(", ")),
    ].join("\n");
  },
  pictures(r) {
    const labels = r.tokens.map((t, i) => `${i} ${shownToken(t.str)}`);
    const D = r.values[0]?.length ?? 0;
    const peak = Array.from({ length: D }, (_, d) => Math.max(...r.values.map((v) => Math.abs(v[d]!))));
    const dims = topOf(peak, SHOWN);
    const norms = barChart(r.values.map((v, p) => ({ label: labels[p]!, value: norm(v) })), { title: `${r.hook}: L2 norm per position`, xLabel: "‖activation‖" });
    const map = heatmap(r.values.map((v) => dims.map((d) => v[d]!)), {
      title: `the ${dims.length} of ${D} dimensions with the largest |value|`, rowLabels: labels, colLabels: dims.map(String),
      xLabel: `dimension (of ${r.axes.slice(1).join(" × ")}, flattened)`, yLabel: r.axes[0] === "pos" ? "position" : "query position", scale: "signed",
    });
    return [{ name: "activations.svg", content: svgGrid([norms, map], { cols: 2, title: `${r.hook} activations` }) }];
  },
});
