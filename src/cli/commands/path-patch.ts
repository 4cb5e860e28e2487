// `circuitscope path-patch <snapshot-folder> --clean "<prompt>" --corrupted "<prompt>" --answer " Mary" --wrong " John" --receiver logits`:
// path patching (Wang et al. 2022) from every sender head, one at a time, to chosen receivers — the
// logits (direct path) or head inputs such as 1.0:q — with the logit difference as metric. Reports,
// per layer × head, the patched metric, its normalised value (0 = corrupted, 1 = clean) and the change
// Δ = normalised − normalised(target run); writes path-patch.svg (Δ heatmap, centred at 0) and
// path-patch.json with --out. When |clean − corrupted| is ~0 (conditioning.ts) the normalisation is
// noise: text, JSON (metric.illConditioned, normalized null) and SVG title say so, and Δ is the raw
// change of the logit difference, value − value(target run).
import { heatmap } from "../../plot/svg.js";
import { pathPatchSweep, type ReceiverRef } from "../../analysis/path-patching.js";
import type { Direction } from "../../analysis/patching.js";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";
import { loadContrastPair } from "../prompt-pair.js";
import { conditioningFields, illText, illTitle } from "../../techniques/pair.js";
import { rows2d } from "../../techniques/inputs.js";
import { cellSize, writeOutputs } from "../outputs.js";

const USAGE = `circuitscope path-patch <snapshot-folder> --clean "<prompt>" --corrupted "<prompt>" --answer " Mary" --wrong " John" [--receiver logits|L.H:q,...] [--direction noising|denoising] [--freeze-mlps] [--out dir] [--no-bos] [--json]
  --clean, --corrupted  the two prompts; they must tokenise to the same number of tokens
  --answer, --wrong     single tokens; the metric is logit(answer) − logit(wrong) at the last position
  --receiver R          logits (default: the direct path to the unembedding) or a comma-separated list of
                        head inputs L.H:q|k|v (e.g. 1.0:q or 2.3:k,2.3:v); every sender head of an earlier
                        layer is path-patched on its own
  --direction D         noising (default, as Wang et al.: clean run, corrupted senders) or denoising
  --freeze-mlps         also freeze MLP outputs (head-to-head paths only; default: MLPs recompute)
  --out dir             write path-patch.svg and path-patch.json there
  --no-bos              do not put the tokenizer's BOS token before the prompts`;

/** "logits" or "L.H:q,L.H:k"; checked against the model's shape with messages naming the receiver. */
export function parseReceivers(s: string, nLayers: number, nHeads: number): ReceiverRef[] | "logits" {
  if (s === "logits") return "logits";
  return s.split(",").map((part) => {
    const m = /^(\d+)\.(\d+):(q|k|v)$/.exec(part.trim());
    if (!m) throw new UsageError(`--receiver: "${part}" is not "logits" or a head input L.H:q|k|v (e.g. 1.0:q)`);
    const layer = Number(m[1]), head = Number(m[2]);
    if (layer >= nLayers || head >= nHeads) throw new UsageError(`--receiver: ${part} does not exist; the model has ${nLayers} layers × ${nHeads} heads`);
    if (layer === 0) throw new UsageError(`--receiver: ${part} is in layer 0, so no head is before it to send to it`);
    return { layer, head, input: m[3] as ReceiverRef["input"] };
  });
}

export const pathPatchCmd: Command = {
  name: "path-patch",
  summary: "path patching: every sender head → receivers (logits or head q/k/v), layer × head",
  usage: USAGE,
  run(pos, flags, out) {
    const text = { clean: flags.str("clean"), corrupted: flags.str("corrupted"), answer: flags.str("answer"), wrong: flags.str("wrong"), noBos: flags.bool("no-bos") };
    const receiverText = flags.str("receiver", "logits");
    const direction = flags.str("direction", "noising") as Direction;
    const freezeMlps = flags.bool("freeze-mlps");
    const outDir = flags.str("out");
    flags.checkUnknown();
    const [folder, ...extra] = pos;
    if (folder === undefined) throw new UsageError("path-patch needs a snapshot folder");
    if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(" ")}`);
    if (direction !== "denoising" && direction !== "noising") throw new UsageError(`--direction must be noising or denoising, got ${direction}`);

    const { model, cfg, clean, corrupted, base, cleanLd, corruptedLd, conditioning, doc: pair } = loadContrastPair("path-patch", folder, text);
    const ill = conditioning.illConditioned;
    const shownDelta = ill ? "Δ raw logit diff" : "Δ normalised logit diff";
    const receivers = parseReceivers(receiverText, cfg.n_layers, cfg.n_heads);
    if (freezeMlps && cfg.attn_only) throw new UsageError("--freeze-mlps: this model is attention-only (it has no MLPs)");
    const receiverName = receivers === "logits" ? "logits" : receivers.map((r) => `${r.layer}.${r.head}:${r.input}`).join(",");
    const senders = receivers === "logits" ? cfg.n_layers : Math.min(...receivers.map((r) => r.layer));
    out.info(`${direction} path patching → ${receiverName}: ${senders * cfg.n_heads} sender heads`);
    const r = pathPatchSweep(model, { clean: [clean], corrupted: [corrupted], metric: base, receivers, direction, freezeMlps });
    const L = cfg.n_layers, H = cfg.n_heads;
    const nul = (v: number) => (Number.isNaN(v) ? null : v);
    const targetNorm = direction === "noising" ? 1 : 0;
    const values = rows2d((l, h) => r.values.get(l, h), L, H);
    const normalized = rows2d((l, h) => r.normalized.get(l, h), L, H);
    const delta = ill ? values.map((row) => row.map((v) => v - r.targetMetric)) : normalized.map((row) => row.map((v) => v - targetNorm));
    const doc = {
      model: folder, direction, receiver: receiverName, freezeMlps, ...pair,
      metric: { name: base.name, cleanLogitDiff: cleanLd, corruptedLogitDiff: corruptedLd, target: r.targetMetric, ...conditioningFields(conditioning), delta: ill ? "value − target" : "normalized − normalized(target)" },
      axes: [{ name: "layer", labels: r.axes[0]!.labels }, { name: "head", labels: r.axes[1]!.labels }],
      shape: [L, H],
      // [layer][head]; null where the head is not a sender (not before every receiver); normalized is all null when ill-conditioned.
      values: values.map((row) => row.map(nul)), normalized: normalized.map((row) => row.map((v) => (ill ? null : nul(v)))), delta: delta.map((row) => row.map(nul)),
      files: [] as string[],
    };
    if (outDir !== undefined) {
      const svg = heatmap(delta, {
        title: `${ill ? `${illTitle(conditioning)} — ` : ""}path patching (${direction}) heads → ${receiverName}: ${shownDelta} ${JSON.stringify(pair.answer.str)} − ${JSON.stringify(pair.wrong.str)}`,
        rowLabels: r.axes[0]!.labels.map((l) => `L${l}`), colLabels: r.axes[1]!.labels.map((h) => `H${h}`),
        xLabel: "sender head", yLabel: "sender layer", scale: "signed", cell: cellSize(L, H),
      });
      writeOutputs(outDir, "path-patch", svg, doc);
    }
    // Raw Δs of an ill-conditioned pair are tiny: shown in exponent form.
    const f = (v: number) => (Number.isNaN(v) ? "—" : ill ? v.toExponential(2) : v.toFixed(4)).padStart(10);
    out.result(doc, () => [
      ...(ill ? [illText(conditioning)] : []),
      `${direction} path patching → ${receiverName}: ${shownDelta} (clean ${cleanLd.toFixed(4)}, corrupted ${corruptedLd.toFixed(4)})`,
      `${"".padEnd(8)}${r.axes[1]!.labels.map((h) => `H${h}`.padStart(10)).join("")}`,
      ...delta.map((row, l) => `${`L${l}`.padEnd(8)}${row.map(f).join("")}`),
      ...(doc.files.length ? [`files: ${doc.files.join(", ")}`] : []),
    ].join("\n"));
  },
};
