// `circuitscope ablate <snapshot-folder> "<prompt>" --answer " Paris" [--wrong " London"]`: ablate
// every attention head in turn (zero, mean over a reference prompt, or resampled from it) and report
// the change in the metric per layer × head — logit(answer) − logit(wrong) with --wrong, else the
// answer's probability, at the last position. --sweep mlps|positions|neurons sweeps every MLP, the
// residual stream at every layer × position, or the neurons of --layer L instead. With --out
// writes ablate.svg (heatmap, or bars for MLPs and the top neurons) and ablate.json.
import { ablationSweep, SWEEP_OVER, type AblationKind, type SweepOver } from "../../analysis/ablation.js";
import { logitDiffMetric, tokenProbMetric } from "../../analysis/patching-metrics.js";
import { heatmap } from "../../plot/svg.js";
import { barChart } from "../../plot/bars.js";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";
import { loadWithTokenizer, promptIds, singleToken } from "../legacy-inputs.js";
import { rows2d, shownToken } from "../../techniques/inputs.js";
import { writeOutputs } from "../outputs.js";

const KINDS: readonly AblationKind[] = ["zero", "mean", "resample"];

const USAGE = `circuitscope ablate <snapshot-folder> "<prompt>" --answer " Paris" [--wrong " London"] [--kind zero|mean|resample] [--reference "<prompt>"] [--seed 0] [--sweep heads|mlps|positions|neurons] [--layer L] [--top 10] [--out dir] [--no-bos] [--json]
  --answer T     the token the metric reads (one token)
  --wrong T      with it the metric is logit(answer) − logit(wrong); without it, p(answer)
  --kind K       zero (default), mean (the reference's activation) or resample (drawn from the reference)
  --reference P  a prompt with the same number of tokens; needed by mean and resample
  --seed N       resample's seed (default 0)
  --sweep S      what to ablate in turn: heads (default, layer × head), mlps (per layer),
                 positions (residual stream entering each layer, layer × position), neurons (of --layer)
  --layer L      the layer whose MLP neurons --sweep neurons ablates
  --top K        how many of the largest |Δ| cells to list (default 10)
  --out dir      write ablate.svg and ablate.json there
  --no-bos       do not put the tokenizer's BOS token before the prompts`;

export const ablateCmd: Command = {
  name: "ablate",
  summary: "ablate each head, MLP, residual position or neuron (zero|mean|resample): metric change per target",
  usage: USAGE,
  run(pos, flags, out) {
    const answerText = flags.str("answer"), wrongText = flags.str("wrong");
    const kind = flags.str("kind", "zero") as AblationKind;
    const referenceText = flags.str("reference");
    const seed = flags.num("seed", 0);
    const over = flags.str("sweep", "heads") as SweepOver;
    const layer = flags.str("layer") === undefined ? undefined : flags.num("layer", 0);
    const topK = flags.num("top", 10);
    const outDir = flags.str("out");
    const noBos = flags.bool("no-bos");
    flags.checkUnknown();
    const [folder, prompt, ...extra] = pos;
    if (folder === undefined || prompt === undefined) throw new UsageError("ablate needs a snapshot folder and a prompt");
    if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(" ")}`);
    if (answerText === undefined) throw new UsageError("ablate needs --answer");
    if (!KINDS.includes(kind)) throw new UsageError(`--kind must be one of ${KINDS.join(", ")}, got ${kind}`);
    if (kind !== "zero" && referenceText === undefined) throw new UsageError(`--kind ${kind} needs --reference "<prompt>"`);
    if (!Number.isInteger(seed)) throw new UsageError(`--seed must be an integer, got ${seed}`);
    if (!SWEEP_OVER.includes(over)) throw new UsageError(`--sweep must be one of ${SWEEP_OVER.join(", ")}, got ${over}`);
    if (over === "neurons" && layer === undefined) throw new UsageError("--sweep neurons needs --layer L");
    if (over !== "neurons" && layer !== undefined) throw new UsageError("--layer only applies to --sweep neurons");
    if (!Number.isInteger(topK) || topK < 0) throw new UsageError(`--top must be a non-negative integer, got ${topK}`);

    const { model, tokenizer, config: cfg } = loadWithTokenizer(folder);
    const ids = promptIds(tokenizer, prompt, cfg.n_ctx, noBos);
    const reference = referenceText !== undefined ? promptIds(tokenizer, referenceText, cfg.n_ctx, noBos, "the reference prompt") : undefined;
    if (reference && reference.length !== ids.length)
      throw new UsageError(`the reference prompt must have the same number of tokens as the prompt: ${reference.length} vs ${ids.length}`);
    const answer = singleToken(tokenizer, "answer", answerText);
    const wrong = wrongText !== undefined ? singleToken(tokenizer, "wrong", wrongText) : undefined;
    const metric = wrong !== undefined ? logitDiffMetric([answer, wrong]) : tokenProbMetric(answer);
    if (layer !== undefined && (!Number.isInteger(layer) || layer < 0 || layer >= cfg.n_layers)) throw new UsageError(`--layer must be an integer in [0, ${cfg.n_layers}), got ${layer}`);
    const strs = ids.map((id) => tokenizer.decode([id]));
    const what = over === "heads" ? `${cfg.n_layers} × ${cfg.n_heads} heads` : over === "mlps" ? `${cfg.n_layers} MLPs`
      : over === "positions" ? `${cfg.n_layers} layers × ${ids.length} positions` : `${cfg.d_mlp} neurons of layer ${layer}`;
    out.info(`${kind} ablation of ${what}, metric ${metric.name}`);
    const r = ablationSweep(model, [ids], {
      kind, metric, over, topK, seed, posLabels: strs.map(shownToken),
      ...(layer !== undefined ? { layer } : {}), ...(reference ? { reference: [reference] } : {}),
    });
    const shape = r.values.shape;
    const values = shape.length === 2 ? rows2d((i, j) => r.values.get(i, j), shape[0]!, shape[1]!) : r.values.toList();
    const doc = {
      model: folder, prompt, kind, sweep: over, ...(layer !== undefined ? { layer } : {}),
      ...(referenceText !== undefined ? { reference: referenceText } : {}), ...(kind === "resample" ? { seed } : {}),
      tokens: ids.map((id, i) => ({ id, str: strs[i]! })),
      answer: { id: answer, str: tokenizer.decode([answer]) },
      wrong: wrong !== undefined ? { id: wrong, str: tokenizer.decode([wrong]) } : null,
      metric: { name: metric.name, clean: r.cleanMetric, change: "metric(ablated) − metric(clean)" },
      axes: r.axes, shape, values,
      top: r.top.map((c) => ({ label: c.label, target: c.target, value: c.value })),
      files: [] as string[],
    };
    if (outDir !== undefined) {
      const title = `${kind} ${over === "neurons" ? `layer ${layer} neuron` : over.replace(/s$/, "")} ablation: Δ ${metric.name}`;
      const svg = Array.isArray(values[0])
        ? heatmap(values as number[][], { title, rowLabels: r.axes[0]!.labels, colLabels: r.axes[1]!.labels, xLabel: r.axes[1]!.name === "pos" ? "position" : "head", yLabel: "layer", scale: "signed" })
        : barChart(over === "neurons" ? r.top : r.axes[0]!.labels.map((l, i) => ({ label: `L${l} MLP`, value: values[i] as number })),
          { title: over === "neurons" ? `${title} (top ${r.top.length} by |Δ|)` : title, xLabel: `Δ ${metric.name}` });
      writeOutputs(outDir, "ablate", svg, doc);
    }
    const table = Array.isArray(values[0]) ? [
      `${"layer".padEnd(8)}${r.axes[1]!.labels.map((l) => `${r.axes[1]!.name === "head" ? "head " : ""}${l}`.slice(0, 11).padStart(12)).join("")}`,
      ...(values as number[][]).map((row, l) => `${String(l).padEnd(8)}${row.map((v) => v.toFixed(4).padStart(12)).join("")}`),
    ] : over === "mlps" ? (values as number[]).map((v, l) => `L${l} MLP`.padEnd(10) + v.toFixed(4).padStart(12))
      : [`top ${r.top.length} of ${values.length} neurons by |Δ|:`, ...r.top.map((c) => c.label.padEnd(10) + c.value.toFixed(4).padStart(12))];
    out.result(doc, () => [
      `${kind} ${over} ablation: Δ ${metric.name} (clean ${r.cleanMetric.toFixed(4)})`,
      ...table,
      ...(doc.files.length ? [`files: ${doc.files.join(", ")}`] : []),
    ].join("\n"));
  },
};
