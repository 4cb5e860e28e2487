// `circuitscope ablate <snapshot-folder> "<prompt>" --answer " Paris" [--wrong " London"]`: ablate
// every attention head in turn (zero, mean over a reference prompt, or resampled from it) and report
// the change in the metric per layer × head — logit(answer) − logit(wrong) with --wrong, else the
// answer's probability, at the last position. With --out writes ablate.svg (heatmap) and ablate.json.
import { ablationSweep, type AblationKind } from "../../analysis/ablation.js";
import { logitDiffMetric, tokenProbMetric } from "../../analysis/patching-metrics.js";
import { heatmap } from "../../plot/svg.js";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";
import { loadWithTokenizer, promptIds, rows2d, singleToken, writeOutputs } from "./patch.js";

const KINDS: readonly AblationKind[] = ["zero", "mean", "resample"];

const USAGE = `circuitscope ablate <snapshot-folder> "<prompt>" --answer " Paris" [--wrong " London"] [--kind zero|mean|resample] [--reference "<prompt>"] [--seed 0] [--out dir] [--no-bos] [--json]
  --answer T     the token the metric reads (one token)
  --wrong T      with it the metric is logit(answer) − logit(wrong); without it, p(answer)
  --kind K       zero (default), mean (the reference's activation) or resample (drawn from the reference)
  --reference P  a prompt with the same number of tokens; needed by mean and resample
  --seed N       resample's seed (default 0)
  --out dir      write ablate.svg and ablate.json there
  --no-bos       do not put the tokenizer's BOS token before the prompts`;

export const ablateCmd: Command = {
  name: "ablate",
  summary: "ablate each attention head (zero|mean|resample): metric change per layer × head",
  usage: USAGE,
  run(pos, flags, out) {
    const answerText = flags.str("answer"), wrongText = flags.str("wrong");
    const kind = flags.str("kind", "zero") as AblationKind;
    const referenceText = flags.str("reference");
    const seed = flags.num("seed", 0);
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

    const { model, tokenizer, config: cfg } = loadWithTokenizer(folder);
    const ids = promptIds(tokenizer, prompt, cfg.n_ctx, noBos);
    const reference = referenceText !== undefined ? promptIds(tokenizer, referenceText, cfg.n_ctx, noBos, "the reference prompt") : undefined;
    if (reference && reference.length !== ids.length)
      throw new UsageError(`the reference prompt must have the same number of tokens as the prompt: ${reference.length} vs ${ids.length}`);
    const answer = singleToken(tokenizer, "answer", answerText);
    const wrong = wrongText !== undefined ? singleToken(tokenizer, "wrong", wrongText) : undefined;
    const metric = wrong !== undefined ? logitDiffMetric([answer, wrong]) : tokenProbMetric(answer);
    out.info(`${kind} ablation of ${cfg.n_layers} × ${cfg.n_heads} heads, metric ${metric.name}`);
    const r = ablationSweep(model, [ids], { kind, metric, ...(reference ? { reference: [reference] } : {}), seed });
    const [L, H] = r.values.shape as [number, number];
    const values = rows2d((l, h) => r.values.get(l, h), L, H);
    const strs = ids.map((id) => tokenizer.decode([id]));
    const doc = {
      model: folder, prompt, kind, ...(referenceText !== undefined ? { reference: referenceText } : {}), ...(kind === "resample" ? { seed } : {}),
      tokens: ids.map((id, i) => ({ id, str: strs[i]! })),
      answer: { id: answer, str: tokenizer.decode([answer]) },
      wrong: wrong !== undefined ? { id: wrong, str: tokenizer.decode([wrong]) } : null,
      metric: { name: metric.name, clean: r.cleanMetric, change: "metric(ablated) − metric(clean)" },
      axes: r.axes, shape: [L, H], values,
      files: [] as string[],
    };
    if (outDir !== undefined) {
      const svg = heatmap(values, { title: `${kind} head ablation: Δ ${metric.name}`, rowLabels: r.axes[0]!.labels, colLabels: r.axes[1]!.labels, xLabel: "head", yLabel: "layer", scale: "signed" });
      writeOutputs(outDir, "ablate", svg, doc);
    }
    out.result(doc, () => [
      `${kind} ablation: Δ ${metric.name} (clean ${r.cleanMetric.toFixed(4)})`,
      `${"layer".padEnd(8)}${r.axes[1]!.labels.map((l) => `head ${l}`.padStart(12)).join("")}`,
      ...values.map((row, l) => `${String(l).padEnd(8)}${row.map((v) => v.toFixed(4).padStart(12)).join("")}`),
      ...(doc.files.length ? [`files: ${doc.files.join(", ")}`] : []),
    ].join("\n"));
  },
};
