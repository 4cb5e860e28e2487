// Renders a LabResult as report.md plus SVG figures, comparing the numbers with the paper's findings
// (Elhage et al. 2022). Pure: returns file names and contents; the CLI writes them. Not the
// experiment (lab.ts).
import { figureSection, verdict } from "../markdown.js";
import { heatmap, lineChart, scatter } from "../../plot/index.js";
import { nearestFraction } from "./analysis.js";
import { TOY_WEIGHT_DECAY, type InstanceResult, type LabResult } from "./lab.js";

const f2 = (v: number) => v.toFixed(2), f3 = (v: number) => v.toFixed(3);

export function renderReport(r: LabResult): Record<string, string> {
  const files: Record<string, string> = {};
  const { nFeatures: n, nHidden: m, decay } = r.options;
  const by = (v: InstanceResult["variant"]) => r.instances.filter((x) => x.variant === v);
  const relu = by("relu"), lin = by("linear"), uni = by("relu-uniform");
  const sLabel = (s: number) => `S=${s}`;

  // §2's signature figure: WᵀW per sparsity (and the linear model beside it).
  for (const x of [...relu, ...lin]) {
    files[`gram-${x.variant}-S${x.sparsity}.svg`] = heatmap(x.gram, { title: `WᵀW, ${x.variant}, ${sLabel(x.sparsity)}`, scale: "signed", min: -1, max: 1, xLabel: "feature j", yLabel: "feature i" });
  }
  // Feature norms: a heatmap with one row per sparsity reads like the paper's bar stacks.
  files["feature-norms.svg"] = heatmap([...relu, ...lin].map((x) => x.norms), {
    title: "‖W_i‖ per feature (rows: model, sparsity)", scale: "sequential", min: 0, max: Math.max(1.2, ...relu.flatMap((x) => x.norms)),
    rowLabels: [...relu, ...lin].map((x) => `${x.variant} ${sLabel(x.sparsity)}`), xLabel: "feature i (importance decreasing)",
  });
  files["superposition.svg"] = heatmap(relu.map((x) => x.superposition), {
    title: "Σ_{j≠i} (Ŵ_i·W_j)² per feature", scale: "sequential", min: 0, rowLabels: relu.map((x) => `relu ${sLabel(x.sparsity)}`), xLabel: "feature i",
  });
  const inv = (s: number) => 1 / (1 - s);
  files["dims-per-feature.svg"] = lineChart([
    { name: "ReLU, uniform I", x: uni.map((x) => inv(x.sparsity)), y: uni.map((x) => x.dimsPerFeature) },
    { name: `ReLU, I=${decay}^i`, x: relu.map((x) => inv(x.sparsity)), y: relu.map((x) => x.dimsPerFeature) },
    { name: "1/2 (antipodal)", x: [1, inv(Math.max(...r.options.sparsities))], y: [0.5, 0.5], dashed: true, color: "#999" },
    { name: "2/5 (pentagon)", x: [1, inv(Math.max(...r.options.sparsities))], y: [0.4, 0.4], dashed: true, color: "#bbb" },
  ], { title: "dimensions per feature m/‖W‖_F² vs 1/(1−S)", xLog: true, xLabel: "1/(1−S)", yLabel: "m / ‖W‖_F²" });
  files["feature-dimensionality.svg"] = scatter(uni.flatMap((x) => x.dimensionality.map((D, i) => ({ x: inv(x.sparsity) * (1 + 0.02 * (i - n / 2) / n), y: D, label: `feature ${i}, S=${x.sparsity}, D=${f3(D)}` }))), {
    title: "feature dimensionality D_i (uniform importance)", xLog: true, xLabel: "1/(1−S)", yLabel: "D_i",
  });
  files["represented.svg"] = lineChart([
    { name: "ReLU", x: relu.map((x) => inv(x.sparsity)), y: relu.map((x) => x.represented) },
    { name: "linear", x: lin.map((x) => inv(x.sparsity)), y: lin.map((x) => x.represented), dashed: true },
    { name: "ReLU, uniform I", x: uni.map((x) => inv(x.sparsity)), y: uni.map((x) => x.represented) },
  ], { title: `features represented (‖W_i‖ > 0.5) of n=${n}, m=${m}`, xLog: true, xLabel: "1/(1−S)", yLabel: "features" });

  const row = (x: InstanceResult) => {
    const fr = x.dimensionality.filter((_, i) => x.norms[i]! > 0.5).map((D) => nearestFraction(D)?.label ?? "other");
    const counts = [...new Set(fr)].map((l) => `${fr.filter((v) => v === l).length}× ${l}`).join(", ");
    return `| ${x.variant} | ${x.sparsity} | ${x.represented} | ${x.inSuperposition} | ${f3(x.dimsPerFeature)} | ${x.loss.toExponential(2)} | ${counts || "—"} |`;
  };
  const head = "| model | S | represented | in superposition | m/‖W‖_F² | loss | D_i near |\n|---|---|---|---|---|---|---|";
  const dense = relu.find((x) => x.sparsity === 0);
  const linMax = Math.max(...lin.map((x) => x.represented));
  const sparsest = relu[relu.length - 1]!;
  const linSup = Math.max(...lin.map((x) => x.inSuperposition));
  const paper = (ok: boolean) => (ok ? "as the paper finds" : "unlike the paper");
  const findings = [
    dense ? `- **Dense (S=0), ReLU:** ${dense.represented} of ${n} features represented, ${dense.inSuperposition} in superposition; norms of the top ${m}: ${dense.norms.slice(0, m).map(f2).join(", ")}. ` +
      verdict(dense.represented <= m && dense.inSuperposition === 0, "At most m features, none superposed", "Not the paper's PCA-like solution", `represented ${dense.represented} vs m=${m}, in superposition ${dense.inSuperposition}`) +
      ` — ${paper(dense.represented <= m && dense.inSuperposition === 0)} (§2: the ${m} most important, orthogonally, like PCA).` : "",
    `- **Linear model:** at most ${linMax} features represented at any sparsity, at most ${linSup} in superposition. ` +
      verdict(linMax <= m && linSup === 0, "It never superposes", "It superposes or represents more than m features", `max represented ${linMax} vs m=${m}, max in superposition ${linSup}`) +
      ` — ${paper(linMax <= m && linSup === 0)} (§2: the linear model learns the top-m features and never superposes).`,
    `- **Sparse (S=${sparsest.sparsity}), ReLU:** ${sparsest.represented} of ${n} features represented, ${sparsest.inSuperposition} in superposition. ` +
      verdict(sparsest.represented > m && sparsest.inSuperposition > 0, "More features than dimensions, packed into superposition", "No more features than dimensions in superposition", `represented ${sparsest.represented} vs m=${m}, in superposition ${sparsest.inSuperposition}`) +
      ` — ${paper(sparsest.represented > m && sparsest.inSuperposition > 0)} (§2: as sparsity grows, more features are packed into superposition).` +
      (sparsest.represented < n ? ` ${n - sparsest.represented} features stay out (with I_i = ${decay}^i the least important carry little weight in the loss).` : ` Every feature is represented.`),
    `- **Transition:** features represented by sparsity: ${relu.map((x) => `S=${x.sparsity}: ${x.represented}`).join(", ")}.`,
    `- **Dimensions per feature (uniform importance, §4):** ${uni.map((x) => `1/(1−S)=${f2(1 / (1 - x.sparsity))}: ${f3(x.dimsPerFeature)}`).join(", ")}. The paper finds this sticks at 1 (dense), then at 1/2 (antipodal pairs) over a range of sparsity, and falls toward 2/5 and below (pentagons and other polytopes); with n=${n} the floor is m/n=${f2(m / n)}.`,
  ].filter(Boolean);
  const geometry = [...relu, ...uni].map((x) => `- ${x.variant} S=${x.sparsity}: ${x.polytopes.map((p) => `${p.shape} {${p.features.join(",")}} D̄=${f3(p.meanD)}`).join("; ") || "none"}`);
  files["report.md"] = [
    `# Toy models of superposition — n=${n}, m=${m}`,
    "",
    `Reproduces Elhage et al. 2022, "Toy Models of Superposition" (https://transformer-circuits.pub/2022/toy_model/index.html), §2 and §4.`,
    `Model h = W x, x' = ReLU(Wᵀh + b) (and linear x' = Wᵀh + b), loss Σ_i I_i (x_i − x'_i)², I_i = ${decay}^i; x_i uniform on [0,1] with probability 1−S, else 0.`,
    `Training: ${r.options.steps} AdamW steps (peak lr ${r.options.lr}, cosine to 0, weight decay ${TOY_WEIGHT_DECAY}), batch ${r.options.batchSize}, seed ${r.options.seed}; ${r.instances.length} instances in one run, ${r.seconds.toFixed(1)} s.`,
    "",
    "## Findings vs the paper",
    "",
    ...findings,
    "",
    "## Per instance",
    "",
    head,
    ...r.instances.map(row),
    "",
    "## Geometry (features grouped by interference; dims = Σ D_i, §4)",
    "",
    ...geometry,
    "",
    ...figureSection(files),
  ].join("\n");
  return files;
}
