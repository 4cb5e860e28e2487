// `circuitscope probe <snapshot-folder> --a "The doctor said that" --b "The nurse said that" --answer " he" --wrong " she"`:
// bias probe of minimal pairs — where in the network prompts A and B diverge (residual stream per
// layer × position, head and MLP outputs) and which components' direct logit attribution to
// logit(answer) − logit(wrong) differs most. --pairs reads more pairs from a JSONL file. With --out
// writes probe.svg (divergence heatmaps beside a bar chart of DLA differences) and probe.json.
import fs from "node:fs";
import { biasProbe, biasProbeSvg, type MinimalPair } from "../../analysis/bias-probes.js";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";
import { loadWithTokenizer, promptIds, shownToken, singleToken, writeOutputs } from "./patch.js";

const USAGE = `circuitscope probe <snapshot-folder> --a "<prompt>" --b "<prompt>" --answer " he" --wrong " she" [--pairs pairs.jsonl] [--threshold 0.05] [--top 20] [--out dir] [--no-bos] [--json]
  --a, --b          a minimal pair: two prompts with the same number of tokens, differing in a few
  --answer, --wrong single tokens; the target is logit(answer) − logit(wrong) at the last position
  --pairs F         more pairs, one JSON object a line: {"a": "...", "b": "...", "answer"?: " he", "wrong"?: " she"}
                    (answer and wrong default to the flags); with --pairs, --a/--b are optional
  --threshold X     divergence (‖A − B‖ / max(‖A‖, ‖B‖)) at the last position that counts as diverged (default 0.05)
  --top K           components shown in the DLA bar chart (default 20)
  --out dir         write probe.svg and probe.json there
  --no-bos          do not put the tokenizer's BOS token before the prompts`;

interface PairText { a: string; b: string; answer?: string; wrong?: string; where: string }

/** Pairs from a JSONL file, each line checked (UsageError naming file:line). */
function readPairs(file: string): PairText[] {
  let text: string;
  try { text = fs.readFileSync(file, "utf8"); } catch (e) { throw new UsageError(`--pairs: cannot read ${file}: ${(e as Error).message}`); }
  const out: PairText[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    const where = `${file}:${i + 1}`;
    let o: unknown;
    try { o = JSON.parse(line); } catch (e) { throw new UsageError(`${where}: not JSON (${(e as Error).message})`); }
    const r = o as Record<string, unknown>;
    if (typeof o !== "object" || o === null || typeof r.a !== "string" || typeof r.b !== "string") throw new UsageError(`${where}: expected {"a": "<prompt>", "b": "<prompt>"}`);
    for (const k of ["answer", "wrong"] as const) if (r[k] !== undefined && typeof r[k] !== "string") throw new UsageError(`${where}: "${k}" must be a string`);
    out.push({ a: r.a, b: r.b, answer: r.answer as string | undefined, wrong: r.wrong as string | undefined, where });
  });
  if (out.length === 0) throw new UsageError(`--pairs: ${file} has no pairs`);
  return out;
}

export const probe: Command = {
  name: "probe",
  summary: "bias probe of minimal pairs: where A and B diverge, per-component DLA difference",
  usage: USAGE,
  run(pos, flags, out) {
    const aText = flags.str("a"), bText = flags.str("b");
    const answerText = flags.str("answer"), wrongText = flags.str("wrong");
    const pairsFile = flags.str("pairs");
    const threshold = flags.num("threshold", 0.05);
    const top = flags.num("top", 20);
    const outDir = flags.str("out");
    const noBos = flags.bool("no-bos");
    flags.checkUnknown();
    const [folder, ...extra] = pos;
    if (folder === undefined) throw new UsageError("probe needs a snapshot folder");
    if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(" ")}`);
    if ((aText === undefined) !== (bText === undefined)) throw new UsageError("--a and --b go together");
    if (aText === undefined && pairsFile === undefined) throw new UsageError("probe needs --a and --b prompts or --pairs file.jsonl");
    if (!(threshold >= 0)) throw new UsageError(`--threshold must be ≥ 0, got ${threshold}`);
    if (!Number.isInteger(top) || top < 1) throw new UsageError(`--top must be a positive integer, got ${top}`);
    const texts: PairText[] = [
      ...(aText !== undefined ? [{ a: aText, b: bText!, where: "--a/--b" }] : []),
      ...(pairsFile !== undefined ? readPairs(pairsFile) : []),
    ];

    const { model, tokenizer, config: cfg } = loadWithTokenizer(folder);
    const strs = (ids: readonly number[]) => ids.map((id) => tokenizer.decode([id]));
    const tokenOf = (flag: string, text: string | undefined, where: string) => {
      if (text === undefined) throw new UsageError(`${where}: no --${flag} token (give --${flag} or "${flag}" in the pair)`);
      return singleToken(tokenizer, flag, text);
    };
    const pairs: (MinimalPair & { text: PairText })[] = texts.map((t) => {
      const a = promptIds(tokenizer, t.a, cfg.n_ctx, noBos, `${t.where} prompt A`), b = promptIds(tokenizer, t.b, cfg.n_ctx, noBos, `${t.where} prompt B`);
      if (a.length !== b.length)
        throw new UsageError(`${t.where}: the prompts must have the same number of tokens: A has ${a.length} ${JSON.stringify(strs(a))}, B has ${b.length} ${JSON.stringify(strs(b))}`);
      const answer = tokenOf("answer", t.answer ?? answerText, t.where), wrong = tokenOf("wrong", t.wrong ?? wrongText, t.where);
      return { a, b, target: { token: answer, incorrect: wrong }, text: t };
    });
    const first = pairs[0]!.target!;
    out.info(`probing ${pairs.length} pair${pairs.length > 1 ? "s" : ""} on ${cfg.n_layers} layers × ${cfg.n_heads} heads`);
    const r = biasProbe(model, pairs, { target: { token: first.token, incorrect: first.incorrect! }, threshold });
    // One pair: positions labelled with their tokens ("doctor/nurse" where they differ).
    const posLabels = pairs.length === 1
      ? strs(pairs[0]!.a).map((s, i) => { const o = tokenizer.decode([pairs[0]!.b[i]!]); return s === o ? shownToken(s) : `${shownToken(s)}/${shownToken(o)}`; })
      : r.posLabels;
    const tok = (id: number) => ({ id, str: tokenizer.decode([id]) });
    const sameTarget = pairs.every((p) => p.target!.token === first.token && p.target!.incorrect === first.incorrect);
    const doc = {
      model: folder, threshold,
      divergence: "‖A − B‖ / max(‖A‖, ‖B‖)",
      answer: sameTarget ? tok(first.token) : null, wrong: sameTarget ? tok(first.incorrect!) : null,
      axes: {
        resid: [{ name: "layer", labels: r.residLabels }, { name: "pos", labels: posLabels }],
        heads: [{ name: "layer", labels: r.mean.heads.map((_, l) => String(l)) }, { name: "head", labels: r.mean.heads[0]!.map((_, h) => String(h)) }],
        components: r.mean.dla.labels,
      },
      mean: r.mean,
      pairs: r.pairs.map((p, k) => {
        const { text, a, b, target } = pairs[k]!;
        return {
          a: { prompt: text.a, tokens: a.map((id, i) => ({ id, str: strs(a)[i]! })) },
          b: { prompt: text.b, tokens: b.map((id, i) => ({ id, str: strs(b)[i]! })) },
          answer: tok(target!.token), wrong: tok(target!.incorrect!), ...p,
        };
      }),
      files: [] as string[],
    };
    if (outDir !== undefined) {
      const targetLabel = sameTarget ? `${JSON.stringify(doc.answer!.str)} − ${JSON.stringify(doc.wrong!.str)}` : "each pair's target";
      writeOutputs(outDir, "probe", biasProbeSvg(r, { posLabels, top, targetLabel }), doc);
    }
    const m = r.mean;
    const fmt = (v: number) => v.toFixed(4).padStart(9);
    out.result(doc, () => [
      `bias probe of ${pairs.length} pair${pairs.length > 1 ? "s" : ""}${pairs.length > 1 ? " (means)" : ""}: logit diff A ${m.logitDiff.a.toFixed(4)}, B ${m.logitDiff.b.toFixed(4)}, A − B ${m.logitDiff.diff.toFixed(4)}`,
      `first divergence at the last position (> ${threshold}): ${m.firstDivergence ? `${m.firstDivergence.label} (${m.firstDivergence.value.toFixed(4)})` : "none"}`,
      `largest DLA difference: ${m.topComponent.label} ${m.topComponent.diff.toFixed(4)} (${(100 * m.topComponent.share).toFixed(1)}% of A − B)`,
      `residual divergence (layer × position):`,
      `${"".padEnd(11)}${posLabels.map((l) => l.slice(0, 8).padStart(9)).join("")}`,
      ...m.resid.map((row, i) => `${r.residLabels[i]!.padEnd(11)}${row.map(fmt).join("")}`),
      `head output divergence (layer × head):`,
      ...m.heads.map((row, l) => `${`L${l}`.padEnd(11)}${row.map(fmt).join("")}`),
      ...(m.mlps.length ? [`MLP output divergence: ${m.mlps.map((v, l) => `L${l} ${v.toFixed(4)}`).join(", ")}`] : []),
      ...(doc.files.length ? [`files: ${doc.files.join(", ")}`] : []),
    ].join("\n"));
  },
};
