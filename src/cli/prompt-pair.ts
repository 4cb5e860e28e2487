// A clean/corrupted prompt pair with an answer and a wrong token, as patch and path-patch take them:
// loads the snapshot, tokenizes both prompts (same length required), resolves the two single tokens
// and measures the logit difference on both runs, with whether their gap is ~0 (conditioning.ts).
// Throws UsageError naming the flag for bad input.
import { noGrad } from "../tensor/autodiff.js";
import { logitDiffMetric } from "../analysis/patching-metrics.js";
import { spanConditioning } from "../analysis/conditioning.js";
import { UsageError } from "./args.js";
import { loadWithTokenizer, promptIds, singleToken } from "./legacy-inputs.js";
import { shownToken } from "../techniques/inputs.js";

export interface PairText { clean?: string | undefined; corrupted?: string | undefined; answer?: string | undefined; wrong?: string | undefined; noBos: boolean }

export function loadContrastPair(command: string, folder: string, t: PairText) {
  if (t.clean === undefined || t.corrupted === undefined) throw new UsageError(`${command} needs --clean and --corrupted prompts`);
  if (t.answer === undefined || t.wrong === undefined) throw new UsageError(`${command} needs --answer and --wrong tokens`);
  const { model, tokenizer, config: cfg } = loadWithTokenizer(folder);
  const clean = promptIds(tokenizer, t.clean, cfg.n_ctx, t.noBos, "the clean prompt");
  const corrupted = promptIds(tokenizer, t.corrupted, cfg.n_ctx, t.noBos, "the corrupted prompt");
  const strs = (ids: number[]) => ids.map((id) => tokenizer.decode([id]));
  const cleanStrs = strs(clean), corruptedStrs = strs(corrupted);
  if (clean.length !== corrupted.length)
    throw new UsageError(`clean and corrupted prompts must have the same number of tokens: clean has ${clean.length} ${JSON.stringify(cleanStrs)}, corrupted has ${corrupted.length} ${JSON.stringify(corruptedStrs)}`);
  const answer = singleToken(tokenizer, "answer", t.answer), wrong = singleToken(tokenizer, "wrong", t.wrong);
  const base = logitDiffMetric([answer, wrong]);
  const cleanLd = noGrad(() => base.compute(model.forward([clean])).item());
  const corruptedLd = noGrad(() => base.compute(model.forward([corrupted])).item());
  // Equal or nearly equal logit differences cannot be normalised by: commands flag it and show the raw metric.
  const conditioning = spanConditioning(cleanLd, corruptedLd);
  // A position where the prompts differ is labelled with both tokens.
  const posLabels = cleanStrs.map((s, i) => s === corruptedStrs[i] ? shownToken(s) : `${shownToken(s)}/${shownToken(corruptedStrs[i]!)}`);
  const doc = {
    clean: { prompt: t.clean, tokens: clean.map((id, i) => ({ id, str: cleanStrs[i]! })) },
    corrupted: { prompt: t.corrupted, tokens: corrupted.map((id, i) => ({ id, str: corruptedStrs[i]! })) },
    answer: { id: answer, str: tokenizer.decode([answer]) }, wrong: { id: wrong, str: tokenizer.decode([wrong]) },
  };
  return { model, tokenizer, cfg, clean, corrupted, answer, wrong, base, cleanLd, corruptedLd, conditioning, posLabels, doc };
}
